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
@pytest.mark.parametrize("pair", [("vddim", "ddim")])
def test_variance_zero_is_ddim(name, pair):
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


def _linear_r_denoiser(grid: TimeGrid, variance: float, a: torch.Tensor, b: torch.Tensor):
    """A prepared denoiser whose mean estimate r = x0_hat - (alpha v/sigma) eps_hat is a + b l, l = log(alpha/c)."""
    c = torch.hypot(grid.sigma, grid.alpha * math.sqrt(variance))
    ell = torch.log(grid.alpha / c)

    def denoise(x, i):
        r = a + b * ell[i]
        centred = x - grid.alpha[i] * r
        return r + grid.alpha[i] * variance * centred / c[i] ** 2, grid.sigma[i] * centred / c[i] ** 2

    def exact(x, i, n):  # x_n = (c_n/c_i) x + c_n [F(l_n) - F(l_i)], F(l) = e^l (a + b (l - 1))
        big_f = [torch.exp(ell[k]) * (a + b * (ell[k] - 1)) for k in (i, n)]
        return c[n] / c[i] * x + c[n] * (big_f[1] - big_f[0])

    return denoise, exact, ell


@pytest.mark.parametrize("variance", [0.0, 0.01, 0.5])
@pytest.mark.parametrize("name", ["linear", "vp_cosine", "edm"])
def test_two_step_update_is_exact_for_r_linear_in_l(name, variance):
    # steps after the first, from exact history: the 2-step update integrates a linear r exactly
    schedule = getattr(sa.schedules, name)()
    t0, t1 = {"linear": (0.05, 0.95), "vp_cosine": (0.95, 0.05), "edm": (20.0, 0.05)}[name]
    grid = TimeGrid.from_times(schedule, torch.linspace(t0, t1, 7, dtype=torch.float64))
    a = torch.tensor([0.4, -1.0, 0.2], dtype=torch.float64)
    b = torch.tensor([0.3, 0.1, -0.7], dtype=torch.float64)
    denoise, exact, ell = _linear_r_denoiser(grid, variance, a, b)
    solver = get_solver("vdpmpp_2m", variance=variance)
    plan = solver.plan(grid)
    x = per_sample_normal((4, 3), 1, dtype=torch.float64)
    for i in range(1, grid.n_steps):
        history = (a + b * ell[i - 1],)
        stepped = plan.step_from(i, x, history, denoise)
        torch.testing.assert_close(stepped, exact(x, i, i + 1), rtol=1e-10, atol=1e-10)


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
    assert "x" not in plan.coefficients  # the state's weight is 0: x_{i+1} = x0 x0_hat + eps eps_hat
    for i in range(grid.n_steps):
        x0, eps = prepared(x, i)
        affine = plan["x0"][i] * x0 + plan["eps"][i] * eps
        stepped = plan.step_from(i, x, (), prepared)
        torch.testing.assert_close(stepped, affine, rtol=1e-12, atol=1e-12)
        x = stepped


def test_selection_tries_each_variance_for_variance_solvers():
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, 0.01)
    noise = per_sample_normal((8, 3), 7, dtype=torch.float64)
    selection = select_sampler(denoiser, noise, 4, solvers=("vddim", ("vdpmpp_2m", {"variance": 0.5}), "heun"),
                               rhos=(1.0,), variances=(0.0, 0.01, 0.1), schedules={"linear": schedule},
                               grids=("power",))
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
    with pytest.raises(SolverError, match="data variance v >= 0"):
        select_sampler(denoiser, noise, 4, solvers=("vdpmpp_2m",), rhos=(1.0,), variances=("big",))
