"""Symbolic proofs of the identities behind schedalg.geometry (GITS jumps, teacher, statistics)."""

from __future__ import annotations

import sympy as sp

t = sp.Symbol("t", real=True)
alpha, sigma = sp.Function("alpha")(t), sp.Function("sigma")(t)
ai, si, aj, sj = sp.symbols("alpha_i sigma_i alpha_j sigma_j", positive=True)
x0, eps, y = sp.symbols("x0 eps y", real=True)


def test_ddim_jump_is_euler_in_the_edm_view():
    """With ``y = x/alpha``, ``s = sigma/alpha``, the Euler step ``y_j = y_i + (s_j - s_i) eps_hat``
    is ``x_j = alpha_j x0_hat + sigma_j eps_hat`` when ``x_i = alpha_i x0_hat + sigma_i eps_hat``."""
    x_i = ai * x0 + si * eps
    euler_edm = aj * (x_i / ai + (sj / aj - si / ai) * eps)
    assert sp.simplify(euler_edm - (aj * x0 + sj * eps)) == 0


def test_ddim_is_exact_for_a_single_data_point():
    """For one data point ``y`` (no variance) ``x0_hat = y`` and ``eps_hat = (x - alpha y)/sigma``;
    ``x(t) = alpha(t) y + sigma(t) e`` solves the probability-flow ODE
    ``x' = alpha' x0_hat + sigma' eps_hat`` for every ``e``, and one DDIM jump from any
    ``t_i`` lands on it exactly: so GITS costs vanish for Dirac data."""
    e = sp.Symbol("e", real=True)
    path = alpha * y + sigma * e
    eps_hat = (path - alpha * y) / sigma
    assert sp.simplify(sp.diff(path, t) - (sp.diff(alpha, t) * y + sp.diff(sigma, t) * eps_hat)) == 0
    jump = aj * y + sj * ((ai * y + si * e - ai * y) / si)
    assert sp.simplify(jump - (aj * y + sj * e)) == 0


def test_chord_residual_is_orthogonal_to_the_chord():
    """``r = d - <d, u> u`` with unit ``u`` satisfies ``<r, u> = 0`` and ``|d|^2 = <d,u>^2 + |r|^2``:
    ``|r|`` is the distance from the line (3 coordinates)."""
    d = sp.Matrix(sp.symbols("d_1:4", real=True))
    c = sp.Matrix(sp.symbols("c_1:4", real=True))
    u = c / sp.sqrt(c.dot(c))
    r = d - d.dot(u) * u
    assert sp.simplify(r.dot(u)) == 0
    assert sp.simplify(d.dot(d) - d.dot(u) ** 2 - r.dot(r)) == 0


def test_eps_hat_points_along_the_state_for_a_single_data_point():
    """EDM view, one data point: ``x - x_data = s e`` and ``eps_hat = (x - y)/s = e``: angle 0."""
    s, e = sp.symbols("s e", positive=True)
    x = y + s * e
    assert sp.simplify((x - y) / s - e) == 0
