"""Stochastic solvers: Euler-Maruyama (weak and strong order, point-mass start) and ancestral steps.

The sampler is affine in (initial state, draws) for Gaussian data with an exact denoiser,
so the law of the result is computed exactly by probing it with unit draws: sample 0
gets all zeros (the mean), sample 1 a unit initial state, sample 2 + j a unit draw j.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.sampling import Sampler, TimeGrid, per_sample_normal
from schedalg.sampling.solvers._euler_maruyama import drift_coefficients

MU, VAR = 0.4, 0.3


def _exact_law(sampler: Sampler) -> tuple[float, float]:
    """Mean and variance of the sample when the start is the exact marginal at grid.times[0]."""
    grid = sampler.grid
    a0, s0 = float(grid.alpha[0]), float(grid.sigma[0])
    draws_count = sampler.plan.noise_draws
    batch = draws_count + 2
    unit = torch.zeros(batch, 1, dtype=torch.float64)
    unit[1] = 1.0
    state = a0 * MU + (a0**2 * VAR + s0**2) ** 0.5 * unit
    draws = torch.zeros(draws_count, batch, 1, dtype=torch.float64)
    for j in range(draws_count):
        draws[j, j + 2, 0] = 1.0
    out = sampler(state, draws=draws, scale_noise=False)[:, 0]
    centred = out - out[0]
    return float(out[0]), float((centred[1:] ** 2).sum())


@pytest.mark.parametrize(
    ("schedule", "solver", "start", "steps"),
    [("brownian_bridge", "euler_maruyama", 0.0, [8, 16, 32, 64]),
     ("linear", "euler_maruyama", 0.05, [8, 16, 32, 64]),
     ("linear", "ancestral", 0.0, [16, 32, 64, 128])],
)
def test_weak_error_of_the_variance_has_order_one(schedule, solver, start, steps):
    """With e* the SDE keeps the exact marginals N(alpha mu, alpha^2 var + sigma^2); EM's bias is O(h)."""
    denoiser = GaussianDenoiser(sa.schedules.linear(), MU, VAR)  # converted to the grid's schedule
    target = sa.schedules.LIBRARY[schedule]()
    errors = []
    for n in steps:
        sampler = Sampler(denoiser, TimeGrid.uniform(target, n, t_start=start, t_end=0.98), solver)
        mean, var = _exact_law(sampler)
        a1, s1 = float(sampler.grid.alpha[-1]), float(sampler.grid.sigma[-1])
        assert mean == pytest.approx(a1 * MU, abs=1e-12)
        errors.append(abs(var - (a1**2 * VAR + s1**2)))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope > 0.75, errors


def test_strong_error_against_a_fine_path_from_the_point_mass():
    """Same Brownian path at 1024 and N steps (summed increments): strong order >= 1/2 (1 here: additive noise)."""
    denoiser = GaussianDenoiser(sa.schedules.linear(), MU, VAR)
    bridge = sa.schedules.brownian_bridge()
    fine_steps, batch = 512, 64
    fine = per_sample_normal((batch, 1), 5, stream=1, count=fine_steps, dtype=torch.float64)
    start = torch.zeros(batch, 1, dtype=torch.float64)
    reference = Sampler(denoiser, TimeGrid.uniform(bridge, fine_steps, t_end=0.98), "euler_maruyama")(
        start, draws=fine)
    steps, errors = [8, 16, 32, 64], []
    for n in steps:
        k = fine_steps // n
        coarse = fine.reshape(n, k, batch, 1).sum(1) / k**0.5
        out = Sampler(denoiser, TimeGrid.uniform(bridge, n, t_end=0.98), "euler_maruyama")(start, draws=coarse)
        errors.append(float((out - reference).abs().mean()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope > 0.5, errors


def test_point_mass_start_evaluates_the_denoiser_at_the_point_mass():
    bridge = sa.schedules.brownian_bridge()
    denoiser = GaussianDenoiser(sa.schedules.linear(), MU, VAR)
    sampler = Sampler(denoiser, TimeGrid.uniform(bridge, 4, t_end=0.9), "euler_maruyama")
    steps = list(sampler.iterate(torch.randn(3, 1, dtype=torch.float64), seed=0))
    assert float(steps[0].x.abs().max()) == 0.0  # sigma(t_0) = 0: the start is the point mass
    torch.testing.assert_close(steps[0].x0_hat, torch.full((3, 1), MU, dtype=torch.float64))
    assert bool(torch.isfinite(steps[-1].x_next).all())


def test_em_drift_on_the_bridge_with_e_star_is_the_lazy_drift():
    """Bridge + e*: drift = (x0_hat - X)/(1 - t), noise sqrt(|h|) (Damsholt et al. 2026)."""
    bridge = sa.schedules.brownian_bridge()
    a_expr, b_expr = drift_coefficients(bridge, bridge.e_star)
    assert sp.simplify(a_expr + 1 / (1 - sa.t)) == 0
    assert sp.simplify(b_expr - 1 / (1 - sa.t)) == 0
    grid = TimeGrid.uniform(bridge, 5, t_end=0.9)
    plan = Sampler(GaussianDenoiser(sa.schedules.linear()), grid, "euler_maruyama").plan
    tau = grid.dt.abs()
    torch.testing.assert_close(torch.tensor(plan["x"], dtype=torch.float64), 1 - tau / (1 - grid.times[:-1]))
    torch.testing.assert_close(torch.tensor(plan["noise"], dtype=torch.float64), tau.sqrt())


def test_em_with_zero_diffusion_is_an_ode_solver():
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MU, VAR)
    grid = TimeGrid.uniform(schedule, 6, t_start=0.05, t_end=0.95)
    x = per_sample_normal((4, 1), 0, dtype=torch.float64)
    out = Sampler(denoiser, grid, "euler_maruyama", diffusion="zero")(x, seed=1)
    torch.testing.assert_close(out, Sampler(denoiser, grid, "euler")(x))


def test_diffusion_as_expression_and_scale():
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.1, t_end=0.9)
    denoiser = GaussianDenoiser(schedule, MU, VAR)
    constant = Sampler(denoiser, grid, "euler_maruyama", diffusion=0.5).plan
    scaled = Sampler(denoiser, grid, "euler_maruyama", diffusion=sp.Integer(1), scale=0.5).plan
    assert constant["noise"] == pytest.approx(scaled["noise"])
    assert constant["noise"][0] == pytest.approx((2 * 0.5 * 0.2) ** 0.5)


def test_point_mass_start_with_a_denoiser_in_the_bridge_itself():
    """GaussianDenoiser on the bridge answers E[x0] at the point mass; same run as the converted one."""
    bridge = sa.schedules.brownian_bridge()
    grid = TimeGrid.uniform(bridge, 8, t_end=0.95)
    noise = per_sample_normal((5, 1), 0, dtype=torch.float64)
    direct = Sampler(GaussianDenoiser(bridge, MU, VAR), grid, "euler_maruyama")
    converted = Sampler(GaussianDenoiser(sa.schedules.linear(), MU, VAR), grid, "euler_maruyama")
    out = direct(noise, seed=4)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out, converted(noise, seed=4), rtol=1e-9, atol=1e-9)
