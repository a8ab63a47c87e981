"""Flow maps as samplers like any other: exported by the one safe format, planned by select_sampler."""

from __future__ import annotations

import pytest
import torch

import schedalg as sa
from _perturbed_map import Perturbed
from schedalg.errors import SchedalgError
from schedalg.flowmaps import (FlowMap, FlowMapError, FlowMapSampler, gaussian_flow_map,
                               mixture_flow_map, velocity_denoiser)
from schedalg.denoisers import GaussianDenoiser
from schedalg.geometry import choose_steps, endpoint_error, jump_counts, sampling_schedules, select_sampler
from schedalg.sampling import ExportError, Sampler, TimeGrid, export_sampler, load_sampler, per_sample_normal

F64 = torch.float64
MEAN, VAR = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 2.0])
LINEAR = sa.schedules.linear()


class _MapNet(torch.nn.Module):
    """A small v_theta(x, s, t) (random weights: any map is a map)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.SiLU(), torch.nn.Linear(16, 2))

    def forward(self, x, s, t):
        return self.net(torch.cat([x, s[:, None].to(x.dtype), t[:, None].to(x.dtype)], dim=1))


# ---------------------------------------------------------------- export


def _flow_map_samplers():
    network = FlowMap(_MapNet(), LINEAR)
    cosine_grid = TimeGrid.uniform(sa.schedules.cosine(), 3, t_start=0.99, t_end=0.01)
    return {"network_own_grid": FlowMapSampler(network, 3),
            "network_cosine_grid": FlowMapSampler(network, cosine_grid),  # converted map, start_scale != 1
            "gaussian_oracle": FlowMapSampler(gaussian_flow_map(LINEAR, MEAN, VAR), TimeGrid.power(LINEAR, 2, 2.0))}


@pytest.mark.parametrize("case", sorted(_flow_map_samplers()))
def test_exported_flow_map_sampler_is_bitwise_the_sampler(case, tmp_path):
    """``load(export(s))(noise, seed=...)`` is ``s(noise, seed=...)`` bitwise on CPU, from the noise and
    from the state; the file records the jump times, the count and the start scale."""
    sampler = _flow_map_samplers()[case]
    dtype = F64 if case == "gaussian_oracle" else torch.float32
    noise = per_sample_normal((5, 2), 0, dtype=dtype)
    path = export_sampler(sampler, tmp_path / "map.safetensors", noise, write_loader=False)
    loaded = load_sampler(path)
    expected = sampler(noise, seed=4)
    assert not torch.equal(expected, noise)
    assert torch.equal(loaded(noise, seed=4), expected)
    assert torch.equal(loaded.sample_from_state(sampler.initial_state(noise)), expected)
    assert loaded.meta["solver"] == "flow_map" and loaded.meta["nfe"] == sampler.nfe and loaded.noise_draws == 0
    assert loaded.meta["times"] == sampler.grid.times.tolist()
    assert loaded.start_scale == sampler.start_scale
    if case == "gaussian_oracle":  # and it is the exact flow: one jump of the oracle
        torch.testing.assert_close(loaded(noise), gaussian_flow_map(LINEAR, MEAN, VAR)(noise, 0.0, 1.0),
                                   rtol=1e-12, atol=1e-12)


def test_flow_map_export_with_a_free_batch_size_and_refusals(tmp_path):
    sampler = _flow_map_samplers()["network_cosine_grid"]
    path = export_sampler(sampler, tmp_path / "map.safetensors", per_sample_normal((4, 2), 0), dynamic_batch=True)
    other = per_sample_normal((7, 2), 1)
    assert torch.equal(load_sampler(path)(other), sampler(other))
    with pytest.raises(ExportError, match="conditioning|draws"):
        export_sampler(sampler, tmp_path / "c.safetensors", other, label=torch.zeros(7))
    with pytest.raises(ExportError, match="ExportableSampler"):
        export_sampler(object(), tmp_path / "o.safetensors", other)


# ---------------------------------------------------------------- planner


def test_jump_counts_are_powers_of_two_and_the_budget():
    assert jump_counts(1) == (1,) and jump_counts(8) == (1, 2, 4, 8) and jump_counts(6) == (1, 2, 4, 6)


def test_planner_takes_one_jump_of_an_exact_flow_map():
    """Exact map: every jump grid lands on the exact flow (semigroup), so every candidate's error is the
    teacher's own (RK4) error and the near-tie goes to the fewest jumps."""
    noise = per_sample_normal((32, 2), 3, dtype=F64)
    plan = select_sampler(gaussian_flow_map(LINEAR, MEAN, VAR), noise, 8)
    assert {c.nfe for c in plan.candidates} == {1, 2, 4, 8} and not plan.unstable
    assert {c.schedule for c in plan.candidates} >= {"own", "trigonometric"}
    assert max(c.error for c in plan.candidates) < 1e-7  # measured: 3.4e-9 each, the teacher's error
    assert plan.best.nfe == 1 and plan.best.solver == "flow_map"
    # a grid family of another schedule places the same log-SNR points in the map's own time
    warped = next(c for c in plan.candidates if c.schedule == "trigonometric" and c.rho == 2.0 and c.nfe == 4)
    source = TimeGrid.power(sampling_schedules(LINEAR)["trigonometric"], 4, 2.0)
    assert warped.grid.schedule is LINEAR and warped.grid.times[[0, -1]].tolist() == [0.0, 1.0]
    torch.testing.assert_close(warped.grid.log_snr[1:-1], source.log_snr[1:-1], rtol=1e-12, atol=1e-12)
    teacher_cost = sum(Sampler(velocity_denoiser(plan.model), TimeGrid.power(LINEAR, n, 2.0), "rk4").nfe
                       for n in (96, 48))
    assert plan.cost == teacher_cost + sum(c.nfe for c in plan.candidates)
    mixture = mixture_flow_map(LINEAR, torch.tensor([[1.0, 0.5], [-1.0, -0.5]]), 0.05)
    plan = select_sampler(mixture, noise[:8], 4, schedules={"own": LINEAR}, rhos=(1.0, 2.0), teacher_steps=32)
    assert plan.best.nfe == 1 and max(c.error for c in plan.candidates) < 1e-5  # measured 9.3e-7


def test_planner_takes_more_jumps_for_a_perturbed_map():
    """A map off the flow by 0.5 (t - s)^2 sin(x) per jump: N jumps err O(1/N), so the most jumps win."""
    noise = per_sample_normal((32, 2), 3, dtype=F64)
    perturbed = Perturbed(gaussian_flow_map(LINEAR, MEAN, VAR), eps=0.5, power=2)
    plan = select_sampler(perturbed, noise, 8)
    uniform = {c.nfe: c.error for c in plan.candidates if c.schedule == "own" and c.rho == 1.0}
    assert uniform[8] < uniform[4] < uniform[2] < uniform[1]  # measured 0.039 / 0.080 / 0.16 / 0.31
    assert plan.best.nfe == 8
    assert select_sampler(perturbed, noise, 3, schedules={"own": LINEAR}, rhos=(1.0,)).best.nfe == 3


def test_planned_flow_map_sampler_reproduces_its_score_and_exports(tmp_path):
    """Selection.sampler() is a FlowMapSampler on the best grid, called as any sampler; its error against
    a fine RK4 solve of the map's diagonal (the planner's reference) is the plan's; it exports bitwise."""
    flow_map = FlowMap(_MapNet().double(), LINEAR)
    noise = per_sample_normal((16, 2), 2, dtype=F64)
    plan = select_sampler(flow_map, noise, 4, rhos=(1.0, 2.0), teacher_steps=32)
    sampler = plan.sampler()
    assert isinstance(sampler, FlowMapSampler) and sampler.nfe == plan.best.nfe <= 4
    reference = Sampler(velocity_denoiser(flow_map), TimeGrid.power(LINEAR, 32, 2.0), "rk4")(noise)
    assert endpoint_error(sampler(noise, seed=0), reference) == pytest.approx(plan.best.error, rel=1e-9)
    loaded = load_sampler(export_sampler(sampler, tmp_path / "plan.safetensors", noise, write_loader=False))
    assert torch.equal(loaded(noise, seed=0), sampler(noise, seed=0))


def test_a_given_teacher_is_the_reference():
    """Perturbed by eps (t - s) sin(x), the map's own diagonal is off the true velocity by eps sin(x): with
    the oracle's velocity as teacher, errors are measured against the exact flow instead."""
    oracle = gaussian_flow_map(LINEAR, MEAN, VAR)
    perturbed = Perturbed(oracle, eps=0.05, power=1)
    noise = per_sample_normal((16, 2), 5, dtype=F64)
    exact = oracle(noise, 0.0, 1.0)
    narrow = dict(schedules={"own": LINEAR}, rhos=(1.0,), teacher_steps=32)
    taught = select_sampler(perturbed, noise, 4, teacher=velocity_denoiser(oracle), **narrow)
    for c in taught.candidates:
        assert c.error == pytest.approx(endpoint_error(FlowMapSampler(perturbed, c.grid)(noise), exact), abs=1e-6)
    own = select_sampler(perturbed, noise, 4, **narrow)  # its own diagonal: another reference
    assert abs(own.candidates[0].error - taught.candidates[0].error) > 1e-3
    with pytest.raises(SchedalgError, match="schedule"):
        select_sampler(perturbed, noise, 4, teacher=GaussianDenoiser(sa.schedules.cosine(), MEAN, VAR))


def test_choose_steps_is_the_planner_on_uniform_grids():
    noise = per_sample_normal((16, 2), 1, dtype=F64)
    perturbed = Perturbed(gaussian_flow_map(LINEAR, MEAN, VAR), eps=0.5, power=2)
    choice = choose_steps(perturbed, noise, candidates=(1, 2, 4))  # default: the planner's error criterion
    plan = select_sampler(perturbed, noise, 4, schedules={"own": LINEAR}, grids=("power",), rhos=(1.0,),
                          steps=(1, 2, 4), tie=0.0)
    assert choice.scores == {c.nfe: c.score for c in plan.candidates} and choice.steps == plan.best.nfe == 4
    assert choose_steps(perturbed, noise, candidates=(1, 2, 4), tolerance=choice.scores[1]).steps == 1


def test_flow_map_planning_bad_input_is_a_clear_error():
    oracle = gaussian_flow_map(LINEAR, MEAN, VAR)
    noise = per_sample_normal((8, 2), 0, dtype=F64)
    with pytest.raises(SchedalgError, match="no solvers for a flow map"):
        select_sampler(oracle, noise, 4, solvers=("heun",))
    with pytest.raises(SchedalgError, match="step counts"):
        select_sampler(oracle, noise, 4, steps=(0, 2))
    with pytest.raises(SchedalgError, match="<= the budget"):
        select_sampler(oracle, noise, 2, steps=(4, 8))
    with pytest.raises(SchedalgError, match="gits"):
        select_sampler(oracle, noise, 4, grids=("power", "gits"))
    with pytest.raises(SchedalgError, match="flow map only"):
        select_sampler(GaussianDenoiser(LINEAR, MEAN, VAR), noise, 4, steps=(1, 2))
    with pytest.raises(SchedalgError, match="flow map"):
        select_sampler(lambda x: x, noise, 4)
    with pytest.raises(FlowMapError, match="Denoiser|flow map"):
        velocity_denoiser(GaussianDenoiser(LINEAR, MEAN, VAR))


def test_the_committed_digits_flow_map_exports_bitwise(tmp_path):
    """The distilled digits map (examples/digits_flowmap) through the one export path: its network traces
    into allowlisted operators and the file reproduces two jumps bitwise."""
    import importlib.util
    from pathlib import Path

    here = Path(__file__).resolve().parents[1] / "examples" / "digits_flowmap"
    spec = importlib.util.spec_from_file_location("digits_flowmap_model", here / "model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    sampler = FlowMapSampler(FlowMap(model.load_flow_map(here / "lagrangian.pt"), LINEAR), 2)
    noise = per_sample_normal((8, 64), 0)
    loaded = load_sampler(export_sampler(sampler, tmp_path / "digits.safetensors", noise, write_loader=False))
    assert torch.equal(loaded(noise, seed=0), sampler(noise, seed=0))
