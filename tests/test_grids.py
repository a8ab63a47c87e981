"""Time grids: constructors, precomputed quantities, one-step grids, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.sampling import GRID_QUANTITIES, GridError, TimeGrid

LIBRARY_NAMES = sorted(sa.schedules.LIBRARY)


def _schedule(name: str) -> sa.Schedule:
    return sa.schedules.LIBRARY[name]()


def test_uniform_grid_runs_from_noise_to_data_in_float64():
    for name in ("linear", "cosine"):
        schedule = _schedule(name)
        grid = TimeGrid.uniform(schedule, 8)
        assert grid.times.dtype == torch.float64 and grid.n_steps == 8 and len(grid) == 9
        assert float(grid.times[0]) == float(schedule.t_noise)
        assert float(grid.times[-1]) == float(schedule.t_data)
        torch.testing.assert_close(grid.dt, torch.full((8,), grid.dt[0].item(), dtype=torch.float64))
        assert schedule.direction * float(grid.dt[0]) > 0


def test_precomputed_quantities_equal_the_compiled_schedule():
    schedule = _schedule("vp_linear")
    grid = TimeGrid.uniform(schedule, 5, t_end=1e-3)
    compiled = schedule.compile()
    for name in GRID_QUANTITIES:
        torch.testing.assert_close(getattr(grid, name), getattr(compiled, name)(grid.times))


def test_log_snr_uniform_grid_has_equal_log_snr_steps():
    schedule = _schedule("cosine")
    grid = TimeGrid.log_snr_uniform(schedule, 12, t_start=0.99, t_end=0.01)
    steps = grid.d_log_snr_steps
    torch.testing.assert_close(steps, torch.full_like(steps, float(steps.mean())), rtol=1e-9, atol=1e-9)


def test_log_snr_uniform_needs_finite_ends():
    with pytest.raises(GridError, match="finite log-SNR"):
        TimeGrid.log_snr_uniform(_schedule("linear"), 4)


def test_karras_levels_follow_the_rho_formula():
    schedule = _schedule("vp_linear")
    grid = TimeGrid.karras(schedule, 6, sigma_min=0.01, sigma_max=50.0, rho=7.0, to_data=False)
    levels = grid.sigma / grid.alpha
    ramp = torch.linspace(0, 1, 7, dtype=torch.float64)
    expected = (50.0 ** (1 / 7) + ramp * (0.01 ** (1 / 7) - 50.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(levels, expected, rtol=1e-9, atol=0)


def test_karras_to_data_appends_the_data_end():
    schedule = _schedule("edm")
    grid = TimeGrid.karras(schedule, 5)
    assert grid.n_steps == 5 and float(grid.times[-1]) == 0.0 and float(grid.sigma[-1]) == 0.0
    torch.testing.assert_close(grid.times[0], torch.tensor(80.0, dtype=torch.float64))


@pytest.mark.parametrize("name", LIBRARY_NAMES)
def test_one_step_grids_carry_no_nan(name):
    schedule = _schedule(name)
    grids = [TimeGrid.uniform(schedule, 1), TimeGrid.karras(schedule, 1, sigma_min=0.05, sigma_max=5.0)]
    if not schedule.is_point_mass:
        lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
        inside = (lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
        start, end = inside if schedule.direction > 0 else inside[::-1]
        grids.append(TimeGrid.log_snr_uniform(schedule, 1, t_start=start, t_end=end))
    for grid in grids:
        assert grid.n_steps == 1
        for quantity in GRID_QUANTITIES:
            assert not bool(torch.isnan(getattr(grid, quantity)).any()), (grid, quantity)


def test_point_mass_end_uses_limits_instead_of_nan():
    grid = TimeGrid.uniform(sa.schedules.brownian_bridge(), 4)
    assert float(grid.alpha[0]) == 0.0 and float(grid.sigma[0]) == 0.0
    assert float(grid.e_star[0]) == pytest.approx(0.5)  # e* = alpha'/2 on the bridge
    assert float(grid.log_snr[0]) == -math.inf


def test_with_midpoints_interleaves_times():
    grid = TimeGrid.uniform(_schedule("linear"), 3)
    mids = grid.with_midpoints()
    torch.testing.assert_close(mids.times, torch.linspace(0, 1, 7, dtype=torch.float64))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_discrete_spacings_match_diffusers_timesteps(spacing):
    import diffusers
    betas = sa.schedules.discrete_betas("linear", 1000)
    schedule = sa.schedules.from_betas(betas)
    grid = TimeGrid.discrete(schedule, 10, spacing=spacing)
    reference = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    reference.set_timesteps(10)
    expected = reference.timesteps.to(torch.float64)
    torch.testing.assert_close(grid.times[: expected.numel()], expected)
    assert float(grid.times[-1]) == 0.0


def test_discrete_rejects_duplicate_timesteps():
    schedule = sa.schedules.from_betas(sa.schedules.discrete_betas("linear", 10))
    with pytest.raises(GridError, match="duplicate"):
        TimeGrid.discrete(schedule, 20, spacing="linspace")


def test_discrete_needs_a_tabulated_schedule_and_a_known_spacing():
    with pytest.raises(GridError, match="tabulated"):
        TimeGrid.discrete(_schedule("linear"), 4)
    schedule = sa.schedules.from_betas(sa.schedules.discrete_betas("linear", 100))
    with pytest.raises(GridError, match="spacing"):
        TimeGrid.discrete(schedule, 4, spacing="sideways")


@pytest.mark.parametrize(
    ("times", "message"),
    [([0.0, 0.5, 0.5, 1.0], "duplicate"), ([0.0, 0.6, 0.4, 1.0], "step back"), ([0.5], "at least two"),
     ([0.0, float("nan")], "finite"), ([0.0, 1.5], "inside the domain"), ([[0.0, 1.0]], "1-D")],
)
def test_from_times_rejects_bad_times(times, message):
    with pytest.raises(GridError, match=message):
        TimeGrid.from_times(_schedule("linear"), times)


def test_from_times_direction_follows_the_schedule():
    cosine = _schedule("cosine")  # data at t = 0: times must decrease
    with pytest.raises(GridError, match="decreasing"):
        TimeGrid.from_times(cosine, [0.1, 0.9])
    assert TimeGrid.from_times(cosine, [0.9, 0.1]).n_steps == 1


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "4"])
def test_bad_step_counts_raise(steps):
    with pytest.raises(GridError, match="number of steps"):
        TimeGrid.uniform(_schedule("linear"), steps)


def test_bad_karras_arguments_raise():
    with pytest.raises(GridError, match="rho"):
        TimeGrid.karras(_schedule("edm"), 4, rho=0.0)
    with pytest.raises(GridError, match="sigma_min < sigma_max"):
        TimeGrid.karras(_schedule("edm"), 4, sigma_min=2.0, sigma_max=1.0)


def test_grid_needs_a_schedule():
    with pytest.raises(GridError, match="Schedule"):
        TimeGrid("linear", [0.0, 1.0])  # type: ignore[arg-type]


@settings(max_examples=25)
@given(name=st.sampled_from(LIBRARY_NAMES), steps=st.integers(1, 30), rho=st.floats(1.0, 10.0))
def test_karras_grids_are_strictly_monotone_and_finite(name, steps, rho):
    schedule = _schedule(name)
    grid = TimeGrid.karras(schedule, steps, sigma_min=0.02, sigma_max=10.0, rho=rho)
    assert bool((grid.dt * schedule.direction > 0).all())
    assert bool(torch.isfinite(grid.alpha).all()) and bool(torch.isfinite(grid.sigma).all())
    assert bool((grid.d_log_snr_steps > 0).all())


@pytest.mark.parametrize("name", ["cosine", "trigonometric", "vp_cosine"])
@pytest.mark.parametrize("steps", [1, 5, 50, 200])
def test_karras_defaults_on_cosine_schedules_have_no_duplicates(name, steps):
    """Peer weak spot: Karras spacing on cosine schedules gives duplicate timesteps there.

    With the default levels (the noise end of a cosine schedule has sigma/alpha = inf in
    exact arithmetic, 1.6e16 in floating point), times must stay strictly monotone."""
    schedule = sa.schedules.LIBRARY[name]()
    grid = TimeGrid.karras(schedule, steps)
    steps_in_t = torch.diff(grid.times) * schedule.direction
    assert bool((steps_in_t > 0).all()) and torch.unique(grid.times).numel() == grid.times.numel()
    assert bool(torch.isfinite(grid.alpha).all() & torch.isfinite(grid.sigma).all())
