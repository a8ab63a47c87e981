"""Sampling geometry: teacher trajectories, GITS grids, trajectory statistics."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser, GaussianMixtureDenoiser, OptimalDenoiser
from schedalg.errors import SchedalgError
from schedalg.geometry import (chord_deviation, default_fine_times, eps_angle, gits_grid, jump_costs,
                               least_cost_path, score_deviation, teacher_trajectory)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _ddim(denoiser, noise, times):
    """First-order exponential integrator x_j = alpha_j x0_hat + sigma_j eps_hat (test helper)."""
    alpha, sigma = denoiser.schedule.compile().evaluate(times, "alpha", "sigma")
    prepared = denoiser.prepare(times)
    x = noise
    for i in range(times.numel() - 1):
        x0, eps = prepared(x, i)
        x = alpha[i + 1] * x0 + sigma[i + 1] * eps
    return x


@given(size=st.integers(2, 7), steps=st.integers(1, 6), seed=st.integers(0, 1000))
def test_least_cost_path_is_the_brute_force_minimum(size, steps, seed):
    steps = min(steps, size - 1)
    costs = torch.rand(size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    costs = torch.where(torch.ones(size, size).triu(1).bool(), costs, torch.full_like(costs, torch.inf))
    path, total = least_cost_path(costs, steps)
    best = min(sum(float(costs[a, b]) for a, b in zip((0,) + inner, inner + (size - 1,)))
               for inner in itertools.combinations(range(1, size - 1), steps - 1))
    assert path[0] == 0 and path[-1] == size - 1 and len(path) == steps + 1
    assert all(a < b for a, b in zip(path, path[1:]))
    assert total == pytest.approx(best, rel=1e-12)
    assert total == pytest.approx(sum(float(costs[a, b]) for a, b in zip(path, path[1:])), rel=1e-12)


def test_teacher_is_second_order_against_the_exact_gaussian_flow():
    schedule = sa.schedules.cosine()
    den = GaussianDenoiser(schedule, mean=0.3, variance=torch.tensor([0.05, 0.5, 2.0]))
    times = torch.linspace(0.999, 0.0, 9, dtype=torch.float64)
    noise = _randn(4, 3)
    exact = den.flow(noise, 0.999, 0.0)
    errors = [float((teacher_trajectory(den, noise, times, substeps=n)[-1] - exact).abs().max()) for n in (4, 8)]
    assert errors[1] < 5e-3
    assert 3.0 < errors[0] / errors[1] < 5.0  # order 2: halving the step divides the error by ~4


def test_dirac_data_makes_every_jump_exact():
    """One data point, no variance: x0_hat is constant, so the ODE is solved exactly by DDIM."""
    den = OptimalDenoiser(sa.schedules.linear(), _randn(1, 5))
    times = default_fine_times(den, 21)
    trajectory = teacher_trajectory(den, _randn(3, 5, seed=1), times, substeps=1)
    costs = jump_costs(den, trajectory, times)
    upper = costs[torch.ones_like(costs).triu(1).bool()]
    assert float(upper.max()) < 1e-12
    assert bool(torch.isinf(costs[torch.ones_like(costs).tril().bool()]).all())


def test_jump_cost_entry_matches_a_hand_step():
    den = GaussianMixtureDenoiser(sa.schedules.vp_linear(), _randn(30, 4), 0.05)
    times = torch.linspace(1.0, 1e-3, 11, dtype=torch.float64)
    trajectory = teacher_trajectory(den, _randn(6, 4, seed=2), times, substeps=2)
    costs = jump_costs(den, trajectory, times, weight=lambda tt: 2.0 * torch.ones_like(tt))
    landed = _ddim(den, trajectory[2], times[[2, 7]])
    expected = 2.0 * ((landed - trajectory[7]) ** 2).mean(-1).sqrt().mean()
    assert_close(costs[2, 7], expected)


def test_gits_grid_beats_the_karras_grid_on_held_out_noise():
    """EDM, sigma 80 -> 0, 6 DDIM steps: the GITS grid beats Karras' rho = 7 grid (sigma_min 0.002)."""
    data = _randn(60, 6) * 0.5 + _randn(60, 1, seed=3).sign()
    den = GaussianMixtureDenoiser(sa.schedules.edm(), data, 0.01)
    calibration, held_out = 80 * _randn(16, 6, seed=4), 80 * _randn(16, 6, seed=5)
    fine = default_fine_times(den, 41)
    grid = gits_grid(den, calibration, 6, fine_times=fine, substeps=2)
    assert grid.times.shape == (7,) and grid.times[0] == fine[0] and grid.times[-1] == fine[-1]
    assert bool((torch.diff(grid.times) < 0).all())
    reference = teacher_trajectory(den, held_out, fine, substeps=8)[-1]
    ramp = torch.linspace(0, 1, 6, dtype=torch.float64)
    karras = torch.cat([(80 ** (1 / 7) + ramp * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7,
                        torch.zeros(1, dtype=torch.float64)])

    def rms(times):
        return float(((_ddim(den, held_out, times) - reference) ** 2).mean().sqrt())

    assert rms(grid.times) < 0.8 * rms(karras)


def test_chord_deviation_and_eps_angle():
    line = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None, None] * _randn(1, 2, 3)
    assert_close(chord_deviation(line), torch.zeros(5, 2, dtype=torch.float64))
    bent = torch.tensor([[[0.0, 0.0]], [[1.0, 1.0]], [[2.0, 0.0]]], dtype=torch.float64)
    assert_close(chord_deviation(bent)[:, 0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    # Dirac data: eps_hat(x_t) is exactly parallel to x_t - x_data
    den = OptimalDenoiser(sa.schedules.edm(), _randn(1, 4))
    times = torch.linspace(20.0, 0.0, 6, dtype=torch.float64)
    states = teacher_trajectory(den, _randn(3, 4, seed=6), times, substeps=1)
    prepared = den.prepare(times)
    eps = torch.stack([prepared(states[k], k)[1] for k in range(5)] + [torch.ones(3, 4, dtype=torch.float64)])
    angles = eps_angle(eps, states)
    assert float(angles[:-1].max()) < 1e-6


def test_score_deviation():
    schedule = sa.schedules.edm()
    data = _randn(20, 3)
    exact = OptimalDenoiser(schedule, data)
    smoothed = GaussianMixtureDenoiser(schedule, data, 0.1)
    times = torch.tensor([10.0, 1.0, 0.1], dtype=torch.float64)
    states = _randn(3, 5, 3, seed=7)
    assert_close(score_deviation(exact, exact, states, times), torch.zeros(3, 5, dtype=torch.float64))
    dev = score_deviation(smoothed, exact, states, times)
    hand = (smoothed.posterior(states[1], 1.0)[0] - exact.posterior(states[1], 1.0)[0]).norm(dim=-1)
    assert_close(dev[1], hand)
    with pytest.raises(SchedalgError, match="same schedule"):
        score_deviation(OptimalDenoiser(sa.schedules.linear(), data), exact, states, times)
    with pytest.raises(SchedalgError, match="one time per state"):
        score_deviation(exact, exact, states, times[:2])


@pytest.mark.parametrize("call, match", [
    (lambda den: teacher_trajectory(den, _randn(2, 3), torch.tensor([0.0])), "at least 2"),
    (lambda den: teacher_trajectory(den, _randn(2, 3), torch.tensor([0.0, 0.5, 0.2])), "monotone"),
    (lambda den: teacher_trajectory(den, _randn(2, 3), torch.tensor([0.0, 1.0]), substeps=0), "substeps"),
    (lambda den: jump_costs(den, _randn(3, 2, 3), torch.tensor([0.0, 1.0])), "trajectory of shape"),
    (lambda den: least_cost_path(torch.zeros(4, 4), 4), "number of steps"),
    (lambda den: default_fine_times(den, 3), "fine points"),
    (lambda den: chord_deviation(_randn(3, 4)), "states of shape"),
    (lambda den: eps_angle(_randn(3, 2, 4), _randn(3, 2, 5)), "shaped like"),
])
def test_bad_input(call, match):
    den = OptimalDenoiser(sa.schedules.linear(), _randn(4, 3))
    with pytest.raises(SchedalgError, match=match):
        call(den)


def test_solver_jumps_match_the_builtin_ddim_jumps():
    """jump_costs(solver="ddim") (one schedalg.sampling step per pair) equals the vectorized DDIM costs."""
    den = GaussianMixtureDenoiser(sa.schedules.cosine(), _randn(15, 3), 0.02)
    times = torch.linspace(0.99, 0.0, 7, dtype=torch.float64)
    trajectory = teacher_trajectory(den, _randn(4, 3, seed=8), times, substeps=2)
    builtin = jump_costs(den, trajectory, times)
    stepped = jump_costs(den, trajectory, times, solver="ddim")
    assert_close(stepped, builtin, rtol=1e-9, atol=1e-12)
    heun = gits_grid(den, _randn(4, 3, seed=8), 3, fine_times=times, trajectory=trajectory, solver="heun")
    assert heun.times.shape == (4,) and heun.indices[0] == 0 and heun.indices[-1] == 6
