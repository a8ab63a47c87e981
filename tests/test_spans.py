"""Truncated spans: a model's span declared on its schedule; grids, conversions and samplers use its ends."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser, GaussianMixtureDenoiser
from schedalg.errors import DomainError, ScheduleError
from schedalg.sampling import Sampler, TimeGrid, per_sample_normal

t = sa.t


def _table():
    return sa.schedules.from_betas(sa.schedules.discrete_betas("linear", 1000))


SCHEDULES = dict(sa.schedules.LIBRARY) | {"tabulated": _table}


def _span(schedule):
    """A log-SNR interval strictly inside the schedule's range (truncates both ends where finite)."""
    lo, hi = schedule.log_snr_range
    return (max(-5.0, lo + 0.5) if math.isfinite(lo) else -5.0), (min(8.0, hi - 0.5) if math.isfinite(hi) else 8.0)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_library_schedule_truncates_and_grids_stop_at_the_span_ends(name):
    schedule = SCHEDULES[name]()
    span = _span(schedule)
    cut = schedule.truncate(log_snr=span)
    assert cut.truncated and not cut.reaches_data
    # the inverse log-SNR is polished by Newton steps: ends to ~1e-12 in lambda
    assert cut.log_snr_range == pytest.approx(span, abs=1e-9)
    for grid in (TimeGrid.uniform(cut, 5), TimeGrid.power(cut, 5, 2.0), TimeGrid.log_snr_uniform(cut, 5),
                 TimeGrid.karras(cut, 5)):
        assert float(grid.times[0]) == float(cut.t_noise) and float(grid.times[-1]) == float(cut.t_data), grid
        assert float(grid.log_snr[0]) == pytest.approx(span[0], abs=1e-9)
        assert float(grid.log_snr[-1]) == pytest.approx(span[1], abs=1e-9)
    with pytest.raises(DomainError, match="inside the domain"):
        cut.truncate(t_noise=cut.domain[0] - 1 if cut.direction > 0 else cut.domain[1] + 1)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_conversion_maps_the_span_ends(name):
    """A model on a truncated span, served on the linear schedule truncated to the same log-SNRs:
    the conversion's time map sends the linear span's ends to the model's span ends."""
    cut = SCHEDULES[name]().truncate(log_snr=_span(SCHEDULES[name]()))
    linear = sa.schedules.linear().truncate(log_snr=cut.log_snr_range)
    conversion = sa.convert(cut, linear)
    assert conversion.s_range == pytest.approx((float(linear.domain[0]), float(linear.domain[1])), rel=1e-12)
    ends = torch.tensor([float(linear.t_noise), float(linear.t_data)], dtype=torch.float64)
    tau = conversion.time(ends)
    scale = conversion.scale(ends)
    width = float(cut.domain[1] - cut.domain[0])
    assert float(tau[0]) == pytest.approx(float(cut.t_noise), abs=1e-9 * width)
    assert float(tau[1]) == pytest.approx(float(cut.t_data), abs=1e-9 * width)
    assert bool(torch.isfinite(scale).all()) and bool((scale > 0).all())


def test_edm_span_maps_to_linear_one_over_81_and_500_over_501():
    edm = sa.schedules.edm(sigma_max=80.0, sigma_min=0.002)
    assert (float(edm.t_noise), float(edm.t_data)) == (80.0, 0.002) and not edm.reaches_data
    linear = sa.schedules.linear().truncate(log_snr=edm.log_snr_range)
    # t = 1/(1 + sigma); the closed-form inverse plus Newton polish is within a few ulps
    assert float(linear.t_noise) == pytest.approx(1 / 81, rel=1e-14)
    assert float(linear.t_data) == pytest.approx(500 / 501, rel=1e-14)
    assert sa.convert(edm, sa.schedules.linear()).s_range == pytest.approx((1 / 81, 500 / 501), rel=1e-14)


def test_edm_keeps_its_full_domain_by_default_and_declared_spans_need_the_flag():
    full = sa.schedules.edm(80.0)
    assert tuple(map(float, full.domain)) == (0.0, 80.0) and full.reaches_data and not full.truncated
    assert full.truncate(sigma_min=0.002).domain == pytest.approx((0.002, 80.0), rel=1e-14)
    with pytest.raises(DomainError, match="truncated=True"):
        sa.Schedule(alpha=1, sigma=t, domain=(0.002, 80))
    declared = sa.Schedule(alpha=1, sigma=t, domain=(0.002, 80), truncated=True)
    assert declared.t_data == sp.Float(0.002) and declared.bind().truncated
    affine = sa.Schedule(alpha=1, sigma=0.002 + 79.998 * t, domain=(0, 1), truncated=True)
    assert float(TimeGrid.uniform(affine, 3).sigma[-1]) == pytest.approx(0.002, rel=1e-14)


def test_truncate_rejects_ambiguous_or_bad_ends():
    edm = sa.schedules.edm(80.0)
    with pytest.raises(ScheduleError, match="one way"):
        edm.truncate(t_data=0.1, sigma_min=0.1)
    with pytest.raises(ScheduleError, match="sigma_min > 0"):
        edm.truncate(sigma_min=-1.0)
    with pytest.raises(DomainError, match="log-SNR inside"):
        sa.schedules.ve().truncate(sigma_max=1e4)


def test_tabulated_schedules_keep_their_table_ends():
    table = _table()
    assert tuple(map(float, table.domain)) == (0.0, 999.0) and table.truncated and not table.reaches_data
    grid = TimeGrid.uniform(table, 4)
    assert grid.values("times") == [999.0, 749.25, 499.5, 249.75, 0.0]
    abar = table.alphas_cumprod
    assert float(grid.alpha[-1]) ** 2 == pytest.approx(abar[0], rel=1e-12)
    assert float(grid.alpha[0]) ** 2 == pytest.approx(abar[-1], rel=1e-9)
    cut = table.truncate(t_noise=900)
    assert tuple(map(float, cut.domain)) == (0.0, 900.0) and isinstance(cut, sa.schedules.TabulatedSchedule)


def test_edm_sampler_starts_at_sigma_max_noise_and_ends_at_x0_plus_sigma_min_eps():
    """Point data x0 (variance 0): the flow is x0 + sigma eps with eps fixed (the start 80 noise
    is x0 + 80 eps, eps = noise - x0/80), so any grid's Euler (= DDIM on EDM) run ends exactly
    at x0 + 0.002 eps; served on the matching linear span, the state divided by the conversion
    scale is the same."""
    edm = sa.schedules.edm(sigma_max=80.0, sigma_min=0.002)
    x0 = torch.tensor([[0.7, -1.3]], dtype=torch.float64)
    denoiser = GaussianMixtureDenoiser(edm, x0, variance=0.0)
    noise = per_sample_normal((4, 2), 0, dtype=torch.float64)
    sampler = Sampler(denoiser, TimeGrid.karras(edm, 6), "euler")
    first = next(iter(sampler.iterate(noise)))
    torch.testing.assert_close(first.x, 80.0 * noise, rtol=0, atol=0)
    eps = noise - x0 / 80.0
    torch.testing.assert_close(sampler(noise), x0 + 0.002 * eps, rtol=1e-12, atol=1e-12)
    linear = sa.schedules.linear().truncate(log_snr=edm.log_snr_range)
    served = Sampler(denoiser, TimeGrid.uniform(linear, 6), "ddim")(noise)
    end_scale = float(sa.convert(edm, linear).scale(torch.tensor([float(linear.t_data)], dtype=torch.float64))[0])
    torch.testing.assert_close(served / end_scale, x0 + 0.002 * eps, rtol=1e-12, atol=1e-12)


def test_edm_span_gaussian_flow_matches_the_exact_map():
    edm = sa.schedules.edm(sigma_max=80.0, sigma_min=0.002)
    denoiser = GaussianDenoiser(edm, torch.tensor([0.3, -0.5], dtype=torch.float64),
                                torch.tensor([0.2, 2.0], dtype=torch.float64))
    noise = per_sample_normal((5, 2), 1, dtype=torch.float64)
    out = Sampler(denoiser, TimeGrid.karras(edm, 80), "rk4")(noise)
    # RK4 on 80 Karras steps is within 4e-6 of the exact map (fourth-order slope measured);
    # the flow to sigma = 0 instead of 0.002 would differ by ~2e-3
    torch.testing.assert_close(out, denoiser.flow(80.0 * noise, 80.0, 0.002), rtol=0, atol=2e-5)
