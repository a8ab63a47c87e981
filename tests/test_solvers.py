"""Solvers: convergence orders on Gaussian data (exact flow map), exactness, counts, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from _order import CASES, MEAN, VARIANCE
from _order import fitted_order as _slope
from schedalg.denoisers import GaussianDenoiser
from schedalg.sampling import SOLVERS, Sampler, SolverError, TimeGrid, get_solver, per_sample_normal
from schedalg.sampling.solvers._dpmpp import multistep_weights

DETERMINISTIC = [name for name, cls in SOLVERS.items() if not cls.stochastic]




def _global_errors(schedule, start, end, solver, steps):
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    x = per_sample_normal((6, 2), 0, dtype=torch.float64)
    errors = []
    for n in steps:
        grid = TimeGrid.log_snr_uniform(schedule, n, t_start=start, t_end=end)
        state = x * float(grid.sigma[0])
        out = Sampler(denoiser, grid, solver)(state, scale_noise=False)
        errors.append(float((out - denoiser.flow(state, start, end)).abs().max()))
    return errors


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("solver", ["euler", "heun", "midpoint", "ddim", "dpmpp_2m"])
def test_global_error_slope_matches_declared_order(case, solver):
    make, start, end = CASES[case]
    steps = [16, 32, 64, 128]
    errors = _global_errors(make(), start, end, solver, steps)
    order = SOLVERS[solver].order
    assert errors[-1] < errors[0]
    assert _slope(steps, errors) > order - 0.2, errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_dpmpp_3m_is_third_order_from_exact_starting_values(case):
    """The 3M update from exact history: global slope 3 (the warm-up steps are tested below)."""
    make, start, end = CASES[case]
    schedule = make()
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    x = per_sample_normal((6, 2), 0, dtype=torch.float64)
    solver = get_solver("dpmpp_3m")
    steps, errors = [16, 32, 64, 128], []
    for n in steps:
        grid = TimeGrid.log_snr_uniform(schedule, n, t_start=start, t_end=end)
        plan = solver.plan(grid)
        prepared = denoiser.prepare(grid.times)
        times = grid.values("times")
        exact = [denoiser.flow(x, start, t) for t in times[:3]]
        memory = (prepared(exact[1], 1)[0], prepared(exact[0], 0)[0])
        state = exact[2]
        for i in range(2, n):
            state, memory = plan.step_from(i, state, memory, prepared), (prepared(state, i)[0], memory[0])
        errors.append(float((state - denoiser.flow(x, start, end)).abs().max()))
    assert _slope(steps, errors) > 2.8, errors


@pytest.mark.parametrize("case", ["linear", "edm"])
def test_dpmpp_3m_with_lower_order_warm_up_is_at_least_second_order(case):
    make, start, end = CASES[case]
    steps = [16, 32, 64, 128]
    errors = _global_errors(make(), start, end, "dpmpp_3m", steps)
    assert _slope(steps, errors) > 1.9, errors
    assert errors[-1] < _global_errors(make(), start, end, "dpmpp_2m", steps[-1:])[0]


@pytest.mark.parametrize("schedule", [sa.schedules.linear, sa.schedules.edm])
def test_euler_equals_ddim_when_alpha_and_sigma_are_affine(schedule):
    """Linear (alpha=t, sigma=1-t) and EDM (alpha=1, sigma=t): an Euler step in t is the DDIM step."""
    schedule = schedule()
    start, end = (0.0, 1.0) if schedule.direction > 0 else (80.0, 0.0)
    grid = TimeGrid.uniform(schedule, 7, t_start=start, t_end=end)
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    x = per_sample_normal((5, 2), 3, dtype=torch.float64)
    torch.testing.assert_close(Sampler(denoiser, grid, "euler")(x), Sampler(denoiser, grid, "ddim")(x))


@settings(max_examples=15)
@given(name=st.sampled_from(sorted(CASES)), steps=st.integers(1, 9), solver=st.sampled_from(["ddim", "dpmpp_2m",
                                                                                           "dpmpp_3m"]))
def test_exponential_solvers_are_exact_when_the_data_is_a_point(name, steps, solver):
    """Data = a point (variance 0): x0_hat is constant and every exponential integrator is exact."""
    make, start, end = CASES[name]
    schedule = make()
    denoiser = GaussianDenoiser(schedule, MEAN, torch.zeros(2, dtype=torch.float64))
    grid = TimeGrid.log_snr_uniform(schedule, steps, t_start=start, t_end=end)
    x = per_sample_normal((4, 2), 1, dtype=torch.float64) * float(grid.sigma[0])
    out = Sampler(denoiser, grid, solver)(x, scale_noise=False)
    torch.testing.assert_close(out, denoiser.flow(x, start, end), rtol=1e-10, atol=1e-10)


def test_dpmpp_3m_weights_integrate_quadratic_predictions_exactly():
    """Weights of a 3M step reproduce sigma_s/sigma_t x + sigma_s int e^l P(l) dl for quadratic P."""
    schedule = sa.schedules.vp_cosine()
    grid = TimeGrid.log_snr_uniform(schedule, 6, t_start=0.9, t_end=0.1)
    weights = multistep_weights(grid, 3)
    half = (0.5 * grid.log_snr).tolist()
    sigma, alpha = grid.sigma.tolist(), grid.alpha.tolist()
    coefficients = (0.7, -0.4, 0.15)
    l_sym = sp.Symbol("l")
    poly = sum(c * l_sym**k for k, c in enumerate(coefficients))
    for i in range(2, grid.n_steps):
        m = [float(poly.subs(l_sym, half[i - j])) for j in range(3)]
        x = 0.37
        update = weights["x"][i] * x + sum(weights[f"m{j}"][i] * m[j] for j in range(3))
        integral = float(sp.integrate(sp.exp(l_sym) * poly, (l_sym, half[i], half[i + 1])))
        exact = sigma[i + 1] / sigma[i] * x + sigma[i + 1] * integral
        assert update == pytest.approx(exact, rel=1e-11, abs=1e-12)
        assert alpha[i + 1] > 0


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_network_evaluations_are_counted_exactly(solver):
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    for grid in (TimeGrid.uniform(schedule, 5, t_start=0.05), TimeGrid.uniform(schedule, 5, t_start=0.05,
                                                                                   t_end=0.9)):
        sampler = Sampler(denoiser, grid, solver)
        calls = []
        prepared = sampler.prepared
        sampler.prepared = lambda x, i, **c: calls.append(i) or prepared(x, i, **c)
        sampler(per_sample_normal((3, 2), 0, dtype=torch.float64), seed=0)
        assert sampler.last_nfe == sampler.nfe == len(calls)


def test_heun_skips_the_correction_where_sigma_ends_at_zero():
    schedule = sa.schedules.linear()
    full = Sampler(GaussianDenoiser(schedule), TimeGrid.uniform(schedule, 4), "heun")
    inside = Sampler(GaussianDenoiser(schedule), TimeGrid.uniform(schedule, 4, t_end=0.9), "heun")
    assert full.nfe == 7 and inside.nfe == 8
    assert get_solver("heun", final_euler=False).nfe(TimeGrid.uniform(schedule, 4)) == 8


def test_ancestral_with_eta_zero_is_ddim():
    schedule = sa.schedules.vp_cosine()
    grid = TimeGrid.uniform(schedule, 6, t_start=0.95, t_end=0.0)
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    x = per_sample_normal((4, 2), 0, dtype=torch.float64)
    torch.testing.assert_close(Sampler(denoiser, grid, "ancestral", eta=0.0)(x, seed=3),
                               Sampler(denoiser, grid, "ddim")(x))


def test_registry_and_option_errors():
    with pytest.raises(SolverError, match="solver name"):
        get_solver("rk45")
    with pytest.raises(SolverError, match="valid options"):
        get_solver("euler", churn=1.0)
    with pytest.raises(SolverError, match="eta"):
        get_solver("ancestral", eta=1.5)
    with pytest.raises(SolverError, match="options only"):
        get_solver(get_solver("euler"), eta=1.0)
    with pytest.raises(SolverError, match="diffusion"):
        get_solver("euler_maruyama", diffusion="loud").plan(TimeGrid.uniform(sa.schedules.linear(), 2, t_start=0.1))
    with pytest.raises(SolverError, match="scale"):
        get_solver("euler_maruyama", scale=-1.0).plan(TimeGrid.uniform(sa.schedules.linear(), 2, t_start=0.1))
    with pytest.raises(SolverError, match=">= 0"):
        get_solver("euler_maruyama", diffusion=sa.t - 0.5).plan(TimeGrid.uniform(sa.schedules.linear(), 2))
    with pytest.raises(SolverError, match="TimeGrid"):
        get_solver("euler").plan([0.0, 1.0])  # type: ignore[arg-type]


def test_infinite_coefficients_are_reported_before_the_loop():
    """e* diverges at the Gaussian noise end of the linear schedule: plan() says where."""
    with pytest.raises(SolverError, match=r"t = 0 -> "):
        get_solver("euler_maruyama").plan(TimeGrid.uniform(sa.schedules.linear(), 4))
    with pytest.raises(SolverError, match="finite dpmpp_2m"):  # sigma = 0 at a point-mass start
        get_solver("dpmpp_2m").plan(TimeGrid.uniform(sa.schedules.brownian_bridge(), 4, t_end=0.9))


def test_declared_attributes():
    for name, cls in SOLVERS.items():
        assert cls.name == name and cls.order in (1, 2, 3, 4) and isinstance(cls.stochastic, bool)
        assert cls.__doc__
    assert {n for n, c in SOLVERS.items() if c.stochastic} == {"euler_maruyama", "ancestral"}
    assert math.isfinite(get_solver("dpmpp_3m").order)


def test_published_3m_coefficients_are_not_exact_for_quadratic_predictions():
    """The reference implementations' D2 weight (h phi_3) leaves an O(h^3) local error; ours (2 h phi_3) does not."""
    schedule = sa.schedules.vp_cosine()
    grid = TimeGrid.log_snr_uniform(schedule, 6, t_start=0.9, t_end=0.1)
    exact, published = multistep_weights(grid, 3), multistep_weights(grid, 3, published=True)
    half = (0.5 * grid.log_snr).tolist()
    i = 4
    m = [half[i - j] ** 2 for j in range(3)]  # x0_hat(l) = l^2
    l_sym = sp.Symbol("l")
    integral = float(sp.integrate(sp.exp(l_sym) * l_sym**2, (l_sym, half[i], half[i + 1])))
    target = float(grid.sigma[i + 1]) * integral

    def update(weights):
        return sum(weights[f"m{j}"][i] * m[j] for j in range(3))

    assert update(exact) == pytest.approx(target, rel=1e-11)
    assert abs(update(published) - target) > 1e-4 * abs(target)


def test_published_3m_is_less_accurate_than_the_exact_3m():
    make, start, end = CASES["linear"]
    schedule = make()
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    grid = TimeGrid.log_snr_uniform(schedule, 64, t_start=start, t_end=end)
    x = per_sample_normal((6, 2), 0, dtype=torch.float64) * float(grid.sigma[0])
    truth = denoiser.flow(x, start, end)
    error = {flag: float((Sampler(denoiser, grid, "dpmpp_3m", published=flag)(x, scale_noise=False) - truth)
                         .abs().max()) for flag in (False, True)}
    assert error[False] < 0.2 * error[True], error


@pytest.mark.parametrize("name", sorted(sa.schedules.LIBRARY))
def test_every_library_schedule_reaches_the_exact_flow(name):
    """Both directions, VE/EDM/VP/sub-VP/flow paths: 3M on 40 log-SNR steps lands on the exact flow map."""
    schedule = sa.schedules.LIBRARY[name]()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    inside = (lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo))
    start, end = inside if schedule.direction > 0 else inside[::-1]
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    grid = TimeGrid.log_snr_uniform(schedule, 40, t_start=start, t_end=end)
    x = per_sample_normal((4, 2), 0, dtype=torch.float64) * float(grid.sigma[0])
    out = Sampler(denoiser, grid, "dpmpp_3m")(x, scale_noise=False)
    exact = denoiser.flow(x, start, end)
    torch.testing.assert_close(out, exact, rtol=2e-3, atol=2e-3 * float(exact.abs().max()))


def test_tabulated_schedule_with_a_discrete_grid():
    """A DDPM table, leading spacing: DDIM and 2M run and approach the exact flow."""
    schedule = sa.schedules.from_betas(sa.schedules.discrete_betas("linear", 1000))
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    coarse, fine = (TimeGrid.discrete(schedule, n, spacing="trailing") for n in (10, 100))
    x = per_sample_normal((4, 2), 0, dtype=torch.float64)
    start, end = float(coarse.times[0]), float(coarse.times[-1])
    exact = denoiser.flow(x * float(coarse.sigma[0]), start, end)
    errors = {(solver, g.n_steps): float((Sampler(denoiser, g, solver)(x) - exact).abs().max())
              for solver in ("ddim", "dpmpp_2m") for g in (coarse, fine)}
    assert errors[("ddim", 100)] < errors[("ddim", 10)] and errors[("dpmpp_2m", 100)] < 1e-2, errors


@settings(max_examples=40)
@given(coefficients=st.lists(st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.5, -1e-3]), min_size=1, max_size=4))
def test_combine_is_the_linear_combination(coefficients):
    """A program's combination of registers (here: the draws) is the linear combination; inputs are untouched."""
    from schedalg.sampling import ProgramBuilder

    tensors = torch.stack([torch.full((2, 3), float(k + 1), dtype=torch.float64) for k in range(len(coefficients))])
    kept = tensors.clone()
    b = ProgramBuilder(1, torch.zeros(2, dtype=torch.float64), noise_draws=len(coefficients))
    out = b.combine(*((c, b.noise(j)) for j, c in enumerate(coefficients)))
    b.end_step(out, out)
    out = b.build().run(torch.zeros(2, 3, dtype=torch.float64), tensors, denoiser=None)
    expected = sum((c * t for c, t in zip(coefficients, kept)), torch.zeros(2, 3, dtype=torch.float64))
    torch.testing.assert_close(out, expected)
    assert torch.equal(tensors, kept)  # inputs untouched
    if [c for c in coefficients if c != 0.0] != [1.0]:  # one term of weight 1 is that register itself
        assert all(out.data_ptr() != t.data_ptr() for t in tensors)
