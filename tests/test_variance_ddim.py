"""Variance-aware solvers vddim / vdpmpp_2m: exactness on Gaussian data, v = 0 limits, order, selection, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.geometry import select_sampler
from schedalg.sampling import Sampler, SolverError, TimeGrid, get_solver, per_sample_normal

MEAN = torch.tensor([0.3, -0.5, 1.2], dtype=torch.float64)
SCHEDULES = ["linear", "trigonometric", "vp_cosine", "vp_linear", "cosine"]


def _flow_end(denoiser: GaussianDenoiser, grid: TimeGrid, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(noise, exact endpoint)``: the sampler starts from ``sigma_0 * noise`` (its noise scaling)."""
    return noise, denoiser.flow(noise * grid.sigma[0], float(grid.times[0]), float(grid.times[-1]))


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(SCHEDULES), variance=st.floats(1e-3, 2.0), steps=st.integers(1, 6),
       solver=st.sampled_from(["vddim", "vdpmpp_2m"]))
def test_exact_for_gaussian_data_of_the_assumed_variance(name, variance, steps, solver):
    schedule = getattr(sa.schedules, name)()
    denoiser = GaussianDenoiser(schedule, MEAN, variance)
    grid = TimeGrid.uniform(schedule, steps)
    start, exact = _flow_end(denoiser, grid, per_sample_normal((8, 3), 3, dtype=torch.float64))
    out = Sampler(denoiser, grid, get_solver(solver, variance=variance))(start)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out, exact, rtol=1e-9, atol=1e-9)


def test_one_step_is_exact_from_the_edm_noise_end():
    schedule = sa.schedules.edm()
    denoiser = GaussianDenoiser(schedule, MEAN, 0.04)
    grid = TimeGrid.uniform(schedule, 1)
    start, exact = _flow_end(denoiser, grid, per_sample_normal((8, 3), 5, dtype=torch.float64))
    torch.testing.assert_close(Sampler(denoiser, grid, get_solver("vddim", variance=0.04))(start), exact,
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("pair", [("vddim", "ddim"), ("vdpmpp_2m", "dpmpp_2m")])
def test_variance_zero_is_ddim_and_dpmpp_2m(name, pair):
    schedule = getattr(sa.schedules, name)()
    denoiser = GaussianDenoiser(schedule, MEAN, torch.tensor([0.02, 0.5, 2.0], dtype=torch.float64))
    grid = TimeGrid.uniform(schedule, 7)
    noise = per_sample_normal((8, 3), 11, dtype=torch.float64)
    ours = Sampler(denoiser, grid, get_solver(pair[0], variance=0.0))(noise)
    theirs = Sampler(denoiser, grid, pair[1])(noise)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [("linear", 0.02, 0.98), ("vp_cosine", 0.98, 0.02), ("edm", 10.0, 0.05)])
@pytest.mark.parametrize("solver", ["vddim", "vdpmpp_2m"])
def test_convergence_order_on_data_of_another_variance(solver, case):
    # anisotropic data, the solver assumes v = 0.1: not exact, converges at its declared order
    name, start, end = case
    schedule = getattr(sa.schedules, name)()
    denoiser = GaussianDenoiser(schedule, MEAN, torch.tensor([0.02, 0.5, 2.0], dtype=torch.float64))
    noise = per_sample_normal((16, 3), 2, dtype=torch.float64)
    errors = []
    steps = (16, 32, 64)
    for n in steps:
        grid = TimeGrid.log_snr_uniform(schedule, n, t_start=start, t_end=end)
        state = noise * float(grid.sigma[0])
        out = Sampler(denoiser, grid, get_solver(solver, variance=0.1))(state, scale_noise=False)
        errors.append(float((out - denoiser.flow(state, start, end)).abs().max()))
    slope = math.log(errors[0] / errors[-1]) / math.log(steps[-1] / steps[0])
    order = sa.sampling.SOLVERS[solver].order
    assert order - 0.2 < slope < order + 0.5, errors


def test_matching_variance_beats_ddim_on_nearly_isotropic_data():
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, torch.tensor([0.009, 0.01, 0.011], dtype=torch.float64))
    grid = TimeGrid.uniform(schedule, 4)
    start, exact = _flow_end(denoiser, grid, per_sample_normal((16, 3), 4, dtype=torch.float64))
    err = {name: float((Sampler(denoiser, grid, get_solver(name, **opts))(start) - exact).abs().max())
           for name, opts in [("ddim", {}), ("vddim", {"variance": 0.01})]}
    assert err["vddim"] < 0.1 * err["ddim"], err


def test_declared_affine_step_matches_the_step():
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, 0.3)
    grid = TimeGrid.uniform(schedule, 5)
    solver = get_solver("vddim", variance=0.05)
    plan = solver.plan(grid)
    prepared = denoiser.prepare(plan.eval_grid.times)
    x = per_sample_normal((4, 3), 9, dtype=torch.float64)
    for i in range(grid.n_steps):
        x0, eps = prepared(x, i)
        weights = solver.affine(plan, i)
        affine = weights.x * x + weights.x0 * x0 + weights.eps * eps
        stepped, _, _ = solver.step(plan, i, x, prepared, (), None)
        torch.testing.assert_close(stepped, affine, rtol=1e-12, atol=1e-12)
        x = stepped


def test_selection_tries_each_variance_for_variance_solvers():
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, 0.01)
    noise = per_sample_normal((8, 3), 7, dtype=torch.float64)
    selection = select_sampler(denoiser, noise, 4, solvers=("vddim", ("vdpmpp_2m", {"variance": 0.5}), "heun"),
                               rhos=(1.0,), variances=(0.0, 0.01, 0.1))
    labels = sorted((c.solver, c.options) for c in selection.candidates)
    assert labels == [("heun", ()), ("vddim", (("variance", 0.0),)), ("vddim", (("variance", 0.01),)),
                      ("vddim", (("variance", 0.1),)), ("vdpmpp_2m", (("variance", 0.5),))]
    # the data are N(mean, 0.01 I): the matching variance is exact and wins
    assert selection.best.options == (("variance", 0.01),) and selection.best.error < 1e-6


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "0.1", True])
@pytest.mark.parametrize("solver", ["vddim", "vdpmpp_2m"])
def test_bad_variance_gets_a_clear_error(solver, bad):
    with pytest.raises(SolverError, match="data variance v >= 0"):
        get_solver(solver, variance=bad)


def test_bad_variances_in_selection_get_a_clear_error():
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, 0.01)
    noise = per_sample_normal((2, 3), 7, dtype=torch.float64)
    with pytest.raises(SolverError, match="data variance v >= 0"):
        select_sampler(denoiser, noise, 4, solvers=("vddim",), rhos=(1.0,), variances=(-1.0,))
