"""Proofs of the identities behind schedalg.geometry (GITS jumps, trajectory statistics).

Each proof reduces the identity to 0 with SymPy, then checks that what the package computes
(:func:`schedalg.geometry.jump_costs`, :func:`~schedalg.geometry.chord_deviation`,
:func:`~schedalg.geometry.eps_angle`; float64 torch code) equals the proved formula on numbers.
"""

from __future__ import annotations

import sympy as sp
import torch

import schedalg as sa
from schedalg.denoisers import OptimalDenoiser
from schedalg.geometry import chord_deviation, eps_angle, jump_costs

t = sa.t
alpha, sigma = sp.Function("alpha")(t), sp.Function("sigma")(t)
ai, si, aj, sj = sp.symbols("alpha_i sigma_i alpha_j sigma_j", positive=True)
x0, eps, y = sp.symbols("x0 eps y", real=True)
F64 = torch.float64


def test_ddim_jump_is_euler_in_the_edm_view():
    """With ``y = x/alpha``, ``s = sigma/alpha``, the Euler step ``y_j = y_i + (s_j - s_i) eps_hat``
    is ``x_j = alpha_j x0_hat + sigma_j eps_hat`` when ``x_i = alpha_i x0_hat + sigma_i eps_hat``;
    jump_costs measures exactly this jump: its cost against the Euler-in-EDM-view target is 0."""
    x_i = ai * x0 + si * eps
    euler_edm = aj * (x_i / ai + (sj / aj - si / ai) * eps)
    assert sp.simplify(euler_edm - (aj * x0 + sj * eps)) == 0
    schedule = sa.schedules.vp_linear()
    den = OptimalDenoiser(schedule, torch.tensor([[-1.0, 0.5], [0.8, 0.2]], dtype=F64))
    times = torch.tensor([0.9, 0.5], dtype=F64)
    a, s = schedule.compile().evaluate(times, "alpha", "sigma")
    x_first = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    x0_hat, eps_hat = den.prepare(times)(x_first, 0)
    euler = a[1] * (x_first / a[0] + (s[1] / a[1] - s[0] / a[0]) * eps_hat)
    costs = jump_costs(den, torch.stack([x_first, euler]), times)
    assert float(costs[0, 1]) < 1e-13


def test_ddim_is_exact_for_a_single_data_point():
    """For one data point ``y``: ``x(t) = alpha(t) y + sigma(t) e`` solves the probability-flow ODE
    ``x' = alpha' x0_hat + sigma' eps_hat`` for every ``e``, and one DDIM jump from any ``t_i`` lands
    on it exactly: GITS costs (jump_costs of the package) vanish for Dirac data."""
    e = sp.Symbol("e", real=True)
    path = alpha * y + sigma * e
    eps_hat = (path - alpha * y) / sigma
    assert sp.simplify(sp.diff(path, t) - (sp.diff(alpha, t) * y + sp.diff(sigma, t) * eps_hat)) == 0
    jump = aj * y + sj * ((ai * y + si * e - ai * y) / si)
    assert sp.simplify(jump - (aj * y + sj * e)) == 0
    schedule = sa.schedules.linear()
    point = torch.tensor([[0.7, -0.4]], dtype=F64)
    times = torch.tensor([0.1, 0.4, 0.8], dtype=F64)
    a, s = schedule.compile().evaluate(times, "alpha", "sigma")
    noise = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    trajectory = torch.stack([a[k] * point + s[k] * noise for k in range(3)])
    costs = jump_costs(OptimalDenoiser(schedule, point), trajectory, times)
    assert float(costs[torch.isfinite(costs)].max()) < 1e-12


def test_chord_residual_is_orthogonal_to_the_chord():
    """``r = d - <d, u> u`` with unit ``u`` satisfies ``<r, u> = 0`` and ``|d|^2 = <d,u>^2 + |r|^2``:
    ``|r|`` is the distance from the line (3 coordinates); chord_deviation returns |r|."""
    d = sp.Matrix(sp.symbols("d_1:4", real=True))
    c = sp.Matrix(sp.symbols("c_1:4", real=True))
    u = c / sp.sqrt(c.dot(c))
    r = d - d.dot(u) * u
    assert sp.simplify(r.dot(u)) == 0
    assert sp.simplify(d.dot(d) - d.dot(u) ** 2 - r.dot(r)) == 0
    states = torch.tensor([[[3.0, 0.0, 4.0]], [[1.0, 2.0, 2.0]], [[0.0, 0.0, 0.0]]], dtype=F64)  # chord (3,0,4)
    values = {**dict(zip(d, (1, 2, 2))), **dict(zip(c, (3, 0, 4)))}
    want = float(sp.sqrt(r.dot(r)).subs(values))
    got = chord_deviation(states)
    torch.testing.assert_close(got[:, 0], torch.tensor([0.0, want, 0.0], dtype=F64), rtol=1e-12, atol=1e-12)


def test_eps_hat_points_along_the_state_for_a_single_data_point():
    """EDM view, one data point: ``x - x_data = s e`` and ``eps_hat = (x - y)/s = e``: eps_angle of the
    package's optimal denoiser along a trajectory to that point is 0."""
    s, e = sp.symbols("s e", positive=True)
    x = y + s * e
    assert sp.simplify((x - y) / s - e) == 0
    schedule = sa.schedules.edm()
    point = torch.tensor([[0.3, -1.2, 0.5]], dtype=F64)
    levels = torch.tensor([5.0, 1.0, 0.2, 0.0], dtype=F64)
    direction = torch.randn(2, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    states = torch.stack([point + level * direction for level in levels])
    prepared = OptimalDenoiser(schedule, point).prepare(levels)
    eps_hats = torch.stack([prepared(states[k], k)[1] for k in range(4)])
    angles = eps_angle(eps_hats, states)
    # arccos near 1 resolves angles to ~sqrt(2 eps) = 2e-8
    assert float(angles[:-1].abs().max()) < 1e-6, angles
