"""Single-step solvers of order 3-4 (heun3, rk3, rk4 in t; dpm_3s in log-SNR): orders on Gaussian data, counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import schedalg as sa
from _order import CASES, MEAN, VARIANCE
from _order import fitted_order as _slope
from schedalg.denoisers import GaussianDenoiser
from schedalg.sampling import SOLVERS, Sampler, SolverError, TimeGrid, get_solver, per_sample_normal

RK = ["heun3", "rk3", "rk4", "rk4_38"]
SINGLE_STEP = RK + ["dpm_3s"]




def _errors(schedule, solver, steps, make_grid):
    denoiser = GaussianDenoiser(schedule, MEAN, VARIANCE)
    x = per_sample_normal((6, 2), 0, dtype=torch.float64)
    errors = []
    for n in steps:
        grid = make_grid(n)
        state = x * float(grid.sigma[0])
        out = Sampler(denoiser, grid, solver)(state, scale_noise=False)
        exact = denoiser.flow(state, float(grid.times[0]), float(grid.times[-1]))
        errors.append(float((out - exact).abs().max()))
    return errors


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("solver", SINGLE_STEP)
def test_global_error_slope_matches_declared_order(case, solver):
    make, start, end = CASES[case]
    schedule = make()
    steps = [16, 32, 64, 128] if solver == "dpm_3s" else [8, 16, 32, 64]
    errors = _errors(schedule, solver, steps,
                     lambda n: TimeGrid.log_snr_uniform(schedule, n, t_start=start, t_end=end))
    order = SOLVERS[solver].order
    assert errors[-1] < errors[0]
    assert _slope(steps, errors) > order - 0.4, errors


@pytest.mark.parametrize("solver", RK)
def test_order_is_kept_when_the_grid_ends_at_sigma_zero(solver):
    """Linear schedule on [0, 1]: the last step avoids the end point (Heun3) and the order stays."""
    schedule = sa.schedules.linear()
    steps = [8, 16, 32, 64]
    errors = _errors(schedule, solver, steps, lambda n: TimeGrid.uniform(schedule, n))
    assert _slope(steps, errors) > SOLVERS[solver].order - 0.3, errors


def test_rk4_is_more_accurate_than_midpoint_at_equal_evaluations():
    schedule = sa.schedules.linear()
    rk4 = _errors(schedule, "rk4", [5], lambda n: TimeGrid.uniform(schedule, n, t_end=0.98))[0]
    midpoint = _errors(schedule, "midpoint", [10], lambda n: TimeGrid.uniform(schedule, n, t_end=0.98))[0]
    assert rk4 < 0.5 * midpoint


@pytest.mark.parametrize("solver", RK)
def test_exact_for_a_velocity_that_is_a_polynomial_in_t(solver):
    """Data = a point, linear schedule: b = x0 - eps_hat is smooth and the flow is a straight line; exact."""
    schedule = sa.schedules.linear()
    denoiser = GaussianDenoiser(schedule, MEAN, torch.zeros(2, dtype=torch.float64))
    grid = TimeGrid.uniform(schedule, 3, t_end=0.9)
    x = per_sample_normal((4, 2), 1, dtype=torch.float64)
    out = Sampler(denoiser, grid, solver)(x, scale_noise=False)
    torch.testing.assert_close(out, denoiser.flow(x, 0.0, 0.9), rtol=1e-10, atol=1e-10)


def test_counts_and_evaluation_nodes():
    schedule = sa.schedules.linear()
    inside, full = TimeGrid.uniform(schedule, 4, t_end=0.9), TimeGrid.uniform(schedule, 4)
    assert get_solver("rk4").nfe(inside) == 16 and get_solver("rk4").nfe(full) == 15
    assert get_solver("rk4", final_heun3=False).nfe(full) == 16
    assert get_solver("rk3").nfe(full) == 12 and get_solver("heun3").nfe(full) == 12
    nodes = get_solver("heun3").evaluation_grid(inside).values("times")
    assert len(nodes) == 3 * 4 + 1
    torch.testing.assert_close(torch.tensor(nodes[:4], dtype=torch.float64),
                               torch.tensor([0.0, 0.075, 0.15, 0.225], dtype=torch.float64))
    plan = get_solver("rk4").plan(full)
    assert plan.evaluation_indices(0) == (0, 1, 1, 2) and len(plan.evaluation_indices(3)) == 3
    assert plan.eval_grid.times[-1] == 1.0


def test_infinite_stage_coefficients_are_reported_before_the_loop():
    """Brownian bridge: sigma' is infinite at the point-mass start t = 0; plan() says so."""
    schedule = sa.schedules.brownian_bridge()
    with pytest.raises(SolverError, match="finite rk4"):
        get_solver("rk4").plan(TimeGrid.uniform(schedule, 4, t_end=0.9))


@pytest.mark.parametrize("case", sorted(CASES))
def test_dpm_3s_is_exact_when_the_data_is_a_point(case):
    """Data = a point: x0_hat is constant along the flow and the exponential integrator is exact."""
    make, start, end = CASES[case]
    schedule = make()
    denoiser = GaussianDenoiser(schedule, MEAN, torch.zeros(2, dtype=torch.float64))
    grid = TimeGrid.log_snr_uniform(schedule, 3, t_start=start, t_end=end)
    x = per_sample_normal((4, 2), 1, dtype=torch.float64) * float(grid.sigma[0])
    out = Sampler(denoiser, grid, "dpm_3s")(x, scale_noise=False)
    torch.testing.assert_close(out, denoiser.flow(x, start, end), rtol=1e-10, atol=1e-10)


def test_dpm_3s_nodes_are_at_thirds_of_the_log_snr_step_and_open_ends_take_one_evaluation():
    schedule = sa.schedules.linear()
    inside = TimeGrid.log_snr_uniform(schedule, 2, t_start=0.1, t_end=0.9)
    nodes = get_solver("dpm_3s").evaluation_grid(inside)
    lam, ends = nodes.log_snr, inside.log_snr
    torch.testing.assert_close(lam[1:3], ends[0] + torch.tensor([1 / 3, 2 / 3], dtype=torch.float64) * (ends[1] - ends[0]))
    assert get_solver("dpm_3s").nfe(inside) == 6
    full = TimeGrid.uniform(schedule, 4)  # log-SNR -inf at t = 0 and +inf at t = 1: DDIM steps there
    assert get_solver("dpm_3s").nfe(full) == 1 + 3 + 3 + 1
