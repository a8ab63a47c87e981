"""Adams-Bashforth solvers (adams, ipndm): weights, exactness, order slopes on a Gaussian mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import schedalg as sa
from _order import fitted_order as _slope
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.sampling import Sampler, SolverError, TimeGrid, get_solver, per_sample_normal
from schedalg.sampling.solvers._adams import IPNDM_WEIGHTS, adams_weights

MEANS = torch.tensor([[1.0, 0.5], [-1.2, 0.3], [0.2, -1.5]], dtype=torch.float64)
T_START, T_END = 0.05, 0.9  # trigonometric schedule (data at t = 1), both ends inside the domain


def test_uniform_steps_reproduce_the_published_weights():
    for k, published in enumerate(IPNDM_WEIGHTS, start=1):
        times = [0.3, 0.4] + [0.3 - 0.1 * j for j in range(1, k)]
        np.testing.assert_allclose(adams_weights(times), [float(w) for w in published], rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_uneven_steps_integrate_polynomials_of_degree_below_k(k):
    rng = np.random.default_rng(k)
    past = np.sort(rng.uniform(-3.0, -0.1, size=k - 1))[::-1]  # distinct past nodes, newest first
    t_i, h = 0.7, 0.23
    times = [t_i, t_i + h] + list(t_i + h * past)
    weights = adams_weights(times)
    nodes = [t_i] + list(times[2:])
    coeffs = rng.normal(size=k)
    poly = np.polynomial.Polynomial(coeffs)
    exact = poly.integ()(t_i + h) - poly.integ()(t_i)
    approx = h * sum(w * poly(node) for w, node in zip(weights, nodes))
    assert abs(approx - exact) < 1e-12 * (1 + abs(exact))


def _mixture():
    # trigonometric: alpha' and sigma' vary along the path (a check that node j uses its own derivatives)
    schedule = sa.schedules.trigonometric()
    return schedule, GaussianMixtureDenoiser(schedule, MEANS, variance=0.3)


def _power_grid(schedule, n, rho=2.0):
    u = np.linspace(0.0, 1.0, n + 1)
    return TimeGrid(schedule, T_END + (T_START - T_END) * (1 - u) ** rho)


def _reference(denoiser, grid, x, refine=6):
    """States at every grid time from RK4 on the grid refined ``refine`` times (error ~1e-13 here)."""
    times = grid.values("times")
    fine = [times[0]]
    for a, b in zip(times[:-1], times[1:]):
        fine += [a + (b - a) * m / refine for m in range(1, refine + 1)]
    states = [x]
    for step in Sampler(denoiser, TimeGrid(grid.schedule, fine), "rk4").iterate(x, scale_noise=False):
        if (step.index + 1) % refine == 0:
            states.append(step.x_next)
    return states


def _errors_from_exact_history(solver_name, steps):
    """Global errors with the first k-1 states and predictions taken from the reference (no warm-up)."""
    schedule, denoiser = _mixture()
    solver = get_solver(solver_name)
    x = per_sample_normal((6, 2), 0, dtype=torch.float64)
    errors = []
    for n in steps:
        grid = _power_grid(schedule, n)
        plan = solver.plan(grid)
        prepared = denoiser.prepare(grid.times)
        exact = _reference(denoiser, grid, x)
        k = solver.order
        d_alpha, d_sigma = grid.values("d_alpha"), grid.values("d_sigma")

        def velocity(state, j):
            x0, eps = prepared(state, j)
            return d_alpha[j] * x0 + d_sigma[j] * eps

        memory = tuple(velocity(exact[j], j) for j in range(k - 2, -1, -1))  # past velocities, newest first
        state = exact[k - 1]
        for i in range(k - 1, n):
            state, memory = plan.step_from(i, state, memory, prepared), (velocity(state, i),) + memory[: k - 2]
        errors.append(float((state - exact[-1]).abs().max()))
    return errors


def test_adams_is_fourth_order_on_uneven_steps_and_ipndm_is_not():
    """Gaussian mixture (b not polynomial), power grid rho=2 in t: variable-step AB4 fits slope 4;
    the fixed iPNDM weights lose orders on the same uneven steps."""
    steps = [10, 20, 40, 80]
    adams = _errors_from_exact_history("adams", steps)
    ipndm = _errors_from_exact_history("ipndm", steps)
    assert _slope(steps, adams) > 3.7, adams
    assert _slope(steps, ipndm) < 3.0, ipndm
    assert adams[-1] < 0.2 * ipndm[-1]


@pytest.mark.parametrize("solver", ["adams", "ipndm"])
def test_uniform_steps_full_run_converges_at_least_second_order(solver):
    """The whole run (Euler, AB2, AB3 warm-up) on uniform steps: slope >= 2 (warm-up bound)."""
    schedule, denoiser = _mixture()
    x = per_sample_normal((6, 2), 1, dtype=torch.float64)
    steps, errors = [10, 20, 40], []
    for n in steps:
        grid = TimeGrid.uniform(schedule, n, t_start=T_START, t_end=T_END)
        exact = _reference(denoiser, grid, x)[-1]
        errors.append(float((Sampler(denoiser, grid, solver)(x, scale_noise=False) - exact).abs().max()))
    assert _slope(steps, errors) > 1.9, errors


def test_adams_equals_ipndm_on_uniform_steps():
    schedule, denoiser = _mixture()
    grid = TimeGrid.uniform(schedule, 9, t_start=T_START, t_end=T_END)
    x = per_sample_normal((5, 2), 2, dtype=torch.float64)
    torch.testing.assert_close(Sampler(denoiser, grid, "adams")(x), Sampler(denoiser, grid, "ipndm")(x),
                               rtol=1e-12, atol=1e-12)


def test_counts_lower_orders_and_bad_order():
    schedule, denoiser = _mixture()
    grid = TimeGrid.uniform(schedule, 7, t_start=T_START, t_end=T_END)
    sampler = Sampler(denoiser, grid, "adams", order=2)
    assert sampler.nfe == 7
    x = per_sample_normal((3, 2), 0, dtype=torch.float64)
    sampler(x)
    assert sampler.last_nfe == 7
    assert sampler.plan["v1"][0] == 0.0 and sampler.plan["v1"][1] != 0.0
    with pytest.raises(SolverError, match="order in 1..4"):
        get_solver("ipndm", order=5)
