"""select_sampler as a planner: model span, model coordinates, stability, cost, robust choice."""

from __future__ import annotations

import math

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.errors import SchedalgError
from schedalg.geometry import PlannedSampler, endpoint_error, sampling_schedules, select_sampler
from schedalg.sampling import Sampler, TimeGrid, export_sampler, load_sampler, per_sample_normal

EDM = sa.schedules.edm(sigma_max=80.0, sigma_min=0.002)
MEANS = torch.tensor([[1.0, 0.5, -0.3], [-1.2, 0.3, 0.8], [0.2, -1.5, 0.1]], dtype=torch.float64)


def _search_small(model, noise, budget, **kw):
    """A narrow search (fast): two schedules, two grids, three solvers."""
    options = dict(schedules={"own": model.schedule, "linear": sa.schedules.linear()}, rhos=(1.0, 2.0),
                   grids=("power",), solvers=("heun", "ipndm", "rk4"), teacher_steps=32)
    options.update(kw)
    return select_sampler(model, noise, budget, **options)


def test_default_schedules_are_truncated_to_the_model_span():
    families = sampling_schedules(EDM)
    assert {"own", "linear", "trigonometric", "vp_log_snr_time", "edm_sigma_time"} <= set(families)
    for name, schedule in families.items():
        assert schedule.log_snr_range == pytest.approx(EDM.log_snr_range, abs=1e-9), name
    # a flow model's noise end is pure noise: families with a finite noise end cannot serve it
    flow = sampling_schedules(sa.schedules.linear())
    assert "edm_sigma_time" not in flow and "vp_log_snr_time" not in flow and "trigonometric" in flow


def test_plan_starts_at_sigma_max_noise_and_returns_model_coordinates_at_the_span_end():
    """Point data x0: trajectories are x0 + sigma eps (eps = noise - x0/80 from the start 80 noise), so
    the plan's sampler must return exactly x0 + 0.002 eps in EDM coordinates, whichever schedule it
    samples along (the linear path's endpoint is x0/1.002-scaled: mapped back by 1/c)."""
    x0 = torch.tensor([[0.7, -1.3, 0.4]], dtype=torch.float64)
    model = GaussianMixtureDenoiser(EDM, x0, variance=0.0)
    noise = per_sample_normal((8, 3), 0, dtype=torch.float64)
    plan = select_sampler(model, noise, 4, schedules={"linear": sa.schedules.linear()}, grids=("power",),
                          rhos=(1.0,), solvers=("heun",), teacher_steps=8)
    sampler = plan.sampler()
    assert isinstance(sampler, PlannedSampler) and isinstance(sampler, Sampler)
    assert plan.best.schedule == "linear" and plan.best.output_scale == pytest.approx(1.002, rel=1e-13)
    first = next(iter(sampler.iterate(noise)))
    torch.testing.assert_close(first.x, 80.0 / 81.0 * noise, rtol=1e-13, atol=0)  # = c(s_0) * 80 noise
    torch.testing.assert_close(sampler(noise), x0 + 0.002 * (noise - x0 / 80.0), rtol=1e-11, atol=1e-11)



def test_exported_plan_answers_in_the_model_coordinates(tmp_path):
    """The plan samples along the linear path and maps back by 1/c = 1.002: the exported file does too."""
    model = GaussianMixtureDenoiser(EDM, MEANS, variance=0.05)
    noise = per_sample_normal((8, 3), 0, dtype=torch.float64)
    plan = select_sampler(model, noise, 4, schedules={"linear": sa.schedules.linear()}, grids=("power",),
                          rhos=(1.0,), solvers=("heun",), teacher_steps=8)
    sampler = plan.sampler()
    assert sampler.output_scale == pytest.approx(1.002, rel=1e-13)
    loaded = load_sampler(export_sampler(sampler, tmp_path / "plan.safetensors", noise, write_loader=False))
    assert torch.equal(loaded(noise, seed=0), sampler(noise, seed=0))


def test_plan_error_is_measured_in_model_coordinates_and_reproduces():
    model = GaussianMixtureDenoiser(EDM, MEANS, variance=0.05)
    noise = per_sample_normal((16, 3), 1, dtype=torch.float64)
    plan = _search_small(model, noise, 8)
    reference = Sampler(model, TimeGrid.karras(EDM, 160), "rk4")(noise)
    assert plan.teacher_error < 1e-3 * plan.best.error  # RK4 on 32 steps: ~4e-6 here
    assert endpoint_error(plan.sampler()(noise), reference) == pytest.approx(plan.best.error, rel=1e-3)
    for candidate in plan.candidates:
        assert math.isfinite(candidate.error) and candidate.nfe <= 8


def test_never_returns_a_diverged_plan():
    """VE on [0.002, 80] in its own time: explicit solvers on few uniform steps diverge; they are left out."""
    ve = sa.schedules.ve(sigma_min=0.002, sigma_max=80.0)
    model = GaussianMixtureDenoiser(ve, MEANS, variance=0.05)
    noise = per_sample_normal((16, 3), 2, dtype=torch.float64)
    plan = select_sampler(model, noise, 5, schedules={"own": ve, "linear": sa.schedules.linear()},
                          grids=("power",), rhos=(1.0,), solvers=("heun", "ipndm", "midpoint"), teacher_steps=32)
    assert plan.unstable and all(c.schedule == "own" for c in plan.unstable)
    assert plan.best.schedule == "linear" and plan.best.error < 1.0


def test_nothing_stable_is_a_clear_error():
    class Broken:
        schedule = EDM

        def prepare(self, times):
            return lambda x, i, **cond: (torch.full_like(x, math.nan), torch.full_like(x, math.nan))

    noise = per_sample_normal((8, 3), 3, dtype=torch.float64)
    with pytest.raises(SchedalgError, match="stays finite"):
        _search_small(Broken(), noise, 4)


def test_planning_cost_is_counted_and_capped():
    model = GaussianMixtureDenoiser(EDM, MEANS, variance=0.05)
    noise = per_sample_normal((8, 3), 4, dtype=torch.float64)
    plan = _search_small(model, noise, 6, max_evaluations=300)
    teacher = 4 * 32 + 4 * 16  # RK4 on 32 and 16 steps
    assert teacher < plan.cost <= 300
    full = _search_small(model, noise, 6)
    assert full.cost == teacher + sum(c.nfe for c in full.candidates + full.unstable)


def test_near_ties_go_to_the_simpler_candidate():
    """adams and ipndm are the same method on uniform steps: equal scores, the earlier-listed one wins."""
    model = GaussianMixtureDenoiser(EDM, MEANS, variance=0.05)
    noise = per_sample_normal((16, 3), 5, dtype=torch.float64)
    plan = select_sampler(model, noise, 10, schedules={"linear": sa.schedules.linear()}, grids=("power",),
                          rhos=(1.0,), solvers=("ipndm", "adams"), teacher_steps=32)
    assert plan.candidates[0].score == pytest.approx(plan.candidates[1].score, rel=1e-9)
    assert plan.best.solver == "ipndm"
    threshold = plan.candidates[0].score * 1.05
    assert plan.best.rank == min(c.rank for c in plan.candidates if c.score <= threshold)
