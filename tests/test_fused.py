"""Fused programs (Program.fuse: the solver's weights folded with an affine denoiser output map): the same
samples as the unfused program, the same error reports, no host sync, and the cheap deferred finite check."""

from __future__ import annotations

import pytest
import sympy
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.models import NetworkDenoiser, NetworkOutputError
from schedalg.models._checks import FiniteGuard
from schedalg.sampling import SOLVERS, Sampler, TimeGrid, per_sample_normal

AFFINE = ("euler", "ddim", "ancestral", "euler_maruyama")  # one evaluation per step, affine in it


class _Mlp(torch.nn.Module):
    """A smooth float64 network ``(x, t) -> prediction`` for 2-D states."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def _unfused(sampler: Sampler, noise: torch.Tensor, **kwargs) -> torch.Tensor:
    sampler.fuse = False
    try:
        return sampler(noise, **kwargs)
    finally:
        sampler.fuse = True


def _spy_calls(sampler: Sampler) -> dict[str, int]:
    """Count the prepared denoiser's full calls and raw-output calls (a fused program uses raw only)."""
    counts = {"call": 0, "raw": 0}
    prepared = sampler.prepared
    target = prepared.inner if hasattr(prepared, "inner") else prepared
    call, raw = type(target).__call__, target.raw

    class Counting(type(target)):
        def __call__(self, x, i, **cond):
            counts["call"] += 1
            return call(self, x, i, **cond)

    def counting_raw(x, i, **cond):
        counts["raw"] += 1
        return raw(x, i, **cond)

    target.__class__ = Counting
    target.raw = counting_raw
    sampler._program = (None, False, sampler.plan)  # fuse again around the counting raw
    return counts


CASES = [  # (training schedule, prediction, grid schedule or None, t_start, t_end)
    ("linear", "velocity", None, 0.05, 0.95),
    ("linear", "eps", None, 0.05, 0.95),
    ("linear", "x0", None, 0.02, 0.95),
    ("vp_cosine", "v", None, 0.95, 0.02),
    ("vp_cosine", "score", None, 0.9, 0.05),
    ("linear", "velocity", "brownian_bridge", None, 0.9),  # conversion with a point-mass start
    ("linear", "eps", "vp_cosine", 0.9, 0.1),  # conversion between ordinary schedules
    ("vp_linear", "x0", "linear", 0.05, 0.95),
]


@pytest.mark.parametrize("solver", AFFINE)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c))
def test_fused_samples_equal_the_step_by_step_loop(solver, case):
    train, prediction, on, t_start, t_end = case
    schedule = getattr(sa.schedules, train)()
    denoiser = NetworkDenoiser(_Mlp(), schedule, prediction=prediction)
    grid_schedule = schedule if on is None else getattr(sa.schedules, on)()
    if t_start is None and solver == "euler":  # Euler in t needs sigma' finite: start inside the domain
        t_start = 0.05
    grid = TimeGrid.uniform(grid_schedule, 6, t_start=t_start, t_end=t_end)
    sampler = Sampler(denoiser, grid, solver)
    counts = _spy_calls(sampler)
    assert sampler.program().fused
    noise = per_sample_normal((5, 2), 3, dtype=torch.float64)
    fused = sampler(noise, seed=4)
    assert counts == {"call": 0, "raw": 6} and sampler.last_nfe == 6  # the fused program ran, one evaluation a step
    reference = _unfused(sampler, noise, seed=4)
    assert counts["call"] == 6
    assert torch.isfinite(reference).all()
    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)
    sampler.fuse = False
    torch.testing.assert_close(sampler(noise, seed=4), reference, rtol=0, atol=0)


def test_fused_float32_agrees_to_rounding_and_callbacks_see_the_predictions():
    schedule = sa.schedules.linear()
    mlp = _Mlp().float()
    sampler = Sampler(NetworkDenoiser(mlp, schedule, prediction="velocity"),
                      TimeGrid.uniform(schedule, 8, t_start=0.02, t_end=0.98), "euler")
    noise = per_sample_normal((64, 2), 0)
    seen = []
    with_callback = sampler(noise, callback=seen.append)
    assert len(seen) == 8 and all(step.x0_hat.shape == (64, 2) for step in seen)
    assert torch.equal(sampler(noise), with_callback)  # a callback does not change which code runs
    torch.testing.assert_close(_unfused(sampler, noise), with_callback, rtol=1e-5, atol=1e-6)
    assert sampler(noise).dtype == torch.float32
    reference = list(Sampler(sampler.denoiser, sampler.grid, "euler").iterate(noise))
    sampler.fuse = False
    unfused = list(sampler.iterate(noise))
    for seen_step, step in zip(seen, unfused):  # x0_hat formed from the fused program's registers
        torch.testing.assert_close(seen_step.x0_hat, step.x0_hat, rtol=1e-5, atol=1e-6)
    assert len(reference) == 8


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_fuses_to_the_samples_of_its_unfused_program(solver):
    """Multi-evaluation and multistep solvers fuse too: every evaluation becomes a raw call."""
    schedule = sa.schedules.linear()
    grid = TimeGrid.log_snr_uniform(schedule, 4, t_start=0.05, t_end=0.95)
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="eps"), grid, solver)
    counts = _spy_calls(sampler)
    assert sampler.program().fused
    noise = per_sample_normal((5, 2), 3, dtype=torch.float64)
    fused = sampler(noise, seed=1)
    assert counts == {"call": 0, "raw": sampler.nfe}
    torch.testing.assert_close(fused, _unfused(sampler, noise, seed=1), rtol=1e-12, atol=1e-12)


def test_denoisers_without_a_raw_output_do_not_fuse():
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.05, t_end=0.95)
    assert not Sampler(GaussianDenoiser(schedule), grid, "euler").program().fused
    converted = Sampler(GaussianDenoiser(schedule), TimeGrid.uniform(sa.schedules.vp_cosine(), 4, t_start=0.9,
                                                                       t_end=0.1), "euler")
    assert converted.prepared.affine_output(0) is None and not converted.program().fused


def test_undefined_coefficients_are_left_to_the_full_denoiser_call():
    """eps -> x0 needs alpha > 0: at the linear schedule's noise end that evaluation is not fused, and
    both programs raise the same error there."""
    schedule = sa.schedules.linear()
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="eps"), TimeGrid.uniform(schedule, 3), "ddim")
    assert sampler.prepared.affine_output(0) is None and sampler.program().fused  # steps 1, 2 are fused
    for fuse in (True, False):
        sampler.fuse = fuse
        with pytest.raises(NetworkOutputError, match="step 0"):
            sampler(per_sample_normal((2, 2), 0, dtype=torch.float64))


def _nan_after(calls_before_nan: int, fill: float = float("nan")):
    calls = []

    def net(x, t):
        calls.append(1)
        return torch.full_like(x, fill) if len(calls) > calls_before_nan else 0.1 * x

    return net, calls


@pytest.mark.parametrize("solver", AFFINE)
@pytest.mark.parametrize("fill", [float("nan"), float("inf")])
def test_a_bad_network_output_is_reported_with_its_step(solver, fill):
    schedule = sa.schedules.vp_linear()
    grid = TimeGrid.from_times(schedule, [0.9, 0.7, 0.5, 0.3, 0.1])
    net, calls = _nan_after(2, fill)
    sampler = Sampler(NetworkDenoiser(net, schedule, "eps"), grid, solver)
    assert sampler.program().fused
    with pytest.raises(NetworkOutputError, match=r"step 2 \(t = 0\.5\)"):
        sampler(torch.ones(2, 3, dtype=torch.float64), seed=0)
    assert len(calls) == 4  # the fused program ran to its end without a host sync, then raised


def test_eager_and_off_modes_in_a_fused_program():
    schedule = sa.schedules.vp_linear()
    grid = TimeGrid.from_times(schedule, [0.9, 0.7, 0.5, 0.3, 0.1])
    net, calls = _nan_after(1)
    eager = Sampler(NetworkDenoiser(net, schedule, "eps", check_finite="eager"), grid, "euler")
    assert eager.program().fused
    with pytest.raises(NetworkOutputError, match=r"step 1 \(t = 0\.7\)"):
        eager(torch.ones(2, 3, dtype=torch.float64))
    assert len(calls) == 2  # raised at the bad step itself
    net, calls = _nan_after(1)
    off = Sampler(NetworkDenoiser(net, schedule, "eps", check_finite="off"), grid, "euler")
    out = off(torch.ones(2, 3, dtype=torch.float64))
    assert len(calls) == 4 and torch.isnan(out).all()


def test_a_second_run_after_a_reported_failure_starts_clean():
    schedule = sa.schedules.vp_linear()
    grid = TimeGrid.from_times(schedule, [0.9, 0.5, 0.1])
    flag = {"bad": True}

    def net(x, t):
        return torch.full_like(x, float("nan")) if flag["bad"] else 0.1 * x

    sampler = Sampler(NetworkDenoiser(net, schedule, "eps"), grid, "ddim")
    with pytest.raises(NetworkOutputError, match="step 0"):
        sampler(torch.ones(2, 2, dtype=torch.float64))
    flag["bad"] = False
    assert torch.isfinite(sampler(torch.ones(2, 2, dtype=torch.float64))).all()


@pytest.mark.parametrize("solver", AFFINE)
def test_fused_inputs_are_never_modified_in_place(solver):
    schedule = sa.schedules.linear()
    # a network that returns its own input: the fused update must not write into it
    sampler = Sampler(NetworkDenoiser(lambda x, t: x, schedule, "x0"), TimeGrid.uniform(schedule, 4, t_start=0.1,
                                                                                       t_end=0.9), solver)
    assert sampler.program().fused
    noise = per_sample_normal((3, 2), 0)
    draws = sampler.draws(noise, seed=0)
    kept = (noise.clone(), None if draws is None else draws.clone())
    sampler(noise, draws=draws, scale_noise=False)
    assert torch.equal(noise, kept[0]) and (draws is None or torch.equal(draws, kept[1]))


HOST_READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


@pytest.mark.parametrize("solver", AFFINE)
@pytest.mark.parametrize("converted", [False, True])
def test_fused_program_makes_no_host_sync_and_no_sympy_call(solver, converted, monkeypatch):
    schedule = sa.schedules.linear()
    grid_schedule = sa.schedules.vp_cosine() if converted else schedule
    grid = TimeGrid.uniform(grid_schedule, 4, t_start=0.9 if converted else 0.05, t_end=0.1 if converted else 0.95)
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="velocity"), grid, solver)
    program = sampler.program()
    assert program.fused
    x = sampler.initial_state(per_sample_normal((3, 2), 0, dtype=torch.float64))
    draws = sampler.draws(x, seed=0)
    program.run(x, draws, sampler.prepared)  # warm-up: the wrapper casts its tables once per dtype and device
    sampler.prepared.finish()
    calls: list[str] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _n=name, _o=original, **k: calls.append(_n)
                            or _o(self, *a, **k))
    for name in ("sympify", "simplify", "lambdify", "diff", "limit"):
        original = getattr(sympy, name)
        monkeypatch.setattr(sympy, name, lambda *a, _n=name, _o=original, **k: calls.append(_n) or _o(*a, **k))
    with torch.no_grad():
        program.run(x, draws, sampler.prepared)
    monkeypatch.undo()
    assert calls == []
    sampler.prepared.finish()


def test_the_sync_spy_sees_an_eager_check():
    """The spy above works: the same loop in eager mode reads a flag back at every step."""
    schedule = sa.schedules.linear()
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="velocity", check_finite="eager"),
                      TimeGrid.uniform(schedule, 3, t_start=0.1, t_end=0.9), "euler")
    reads = []
    original = torch.Tensor.__bool__
    torch.Tensor.__bool__ = lambda self: reads.append(1) or original(self)
    try:
        sampler.program().run(per_sample_normal((2, 2), 0, dtype=torch.float64), None, sampler.prepared)
    finally:
        torch.Tensor.__bool__ = original
    assert len(reads) == 3


def test_export_of_a_fused_converted_sampler_is_bitwise_identical(tmp_path):
    from schedalg.sampling import export_sampler, load_sampler

    schedule = sa.schedules.linear()
    sampler = Sampler(NetworkDenoiser(_Mlp().float(), schedule, prediction="velocity"),
                      TimeGrid.uniform(sa.schedules.brownian_bridge(), 5, t_end=0.9), "euler_maruyama")
    assert sampler.program().fused
    noise = per_sample_normal((4, 2), 1)
    loaded = load_sampler(export_sampler(sampler, tmp_path / "s.pt", noise))
    x = sampler.initial_state(noise)
    assert torch.equal(loaded.sample_from_state(x, sampler.draws(x, seed=2)), sampler(noise, seed=2))


def test_fuse_sums_the_weights_of_both_affine_maps():
    """A_i = c_x + c_0 a_x + c_e e_x and B_i = c_0 a_p + c_e e_p (zero solver weights left out)."""
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 3, t_start=0.1, t_end=0.9)
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="eps"), grid, "euler")
    program = sampler.program()
    h, d_alpha, d_sigma = grid.values("dt"), grid.values("d_alpha"), grid.values("d_sigma")
    for i in range(grid.n_steps):
        c_x, c_0, c_e = 1.0, h[i] * d_alpha[i], h[i] * d_sigma[i]  # Euler's weights on x, x0_hat, eps_hat
        x0_x, x0_p, eps_x, eps_p = sampler.prepared.affine_output(i)
        (a, _), (b, _) = program.code[i][-1][2]  # the step's one combination: A x + B F
        assert a == pytest.approx(c_x + c_0 * x0_x + c_e * eps_x, rel=1e-15)
        assert b == pytest.approx(c_0 * x0_p + c_e * eps_p, rel=1e-15)


# ------------------------------------------------------------------ the deferred finite check


def _guard(times: int = 6) -> FiniteGuard:
    return FiniteGuard("deferred", torch.linspace(0.0, 1.0, times, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(3, 2), (64, 80)])  # kept by reference / reduced to a sum
def test_deferred_guard_names_the_first_bad_step(shape):
    guard = _guard()
    assert (shape[0] * shape[1] <= guard.KEEP_NUMEL) == (shape == (3, 2))
    for step in range(6):
        out = torch.ones(shape)
        if step in (2, 4):
            out[1, 1] = float("nan") if step == 2 else float("-inf")
        guard.observe(out, step)
    with pytest.raises(NetworkOutputError, match=r"step 2 \(t = 0\.4\)"):
        guard.raise_if_bad()
    guard.raise_if_bad()  # reset: nothing left to report


def test_deferred_guard_rows_grow_switch_shape_and_are_reused_without_stale_failures():
    """Block sums go into preallocated rows: more records than the first buffer holds, a change of
    output shape and dtype, and a second run on the same guard (rows reused) all keep the verdict
    and the step exact."""
    guard = _guard(300)
    assert guard.ROWS < 200 and 8 * 1024 > guard.KEEP_NUMEL  # reduced to block sums, more than one buffer
    for step in range(200):
        out = torch.ones(8, 1024)
        if step == 150:
            out[3, 7] = float("nan")
        guard.observe(out, step)
    guard.observe(torch.ones(16, 1024, dtype=torch.float16), 210)  # another shape and dtype: a new buffer
    guard.observe(torch.ones(8, 1024), 220)
    with pytest.raises(NetworkOutputError, match="step 150"):
        guard.raise_if_bad()
    for step in range(200):  # the same rows again: the NaN of the first run must not reappear
        guard.observe(torch.ones(8, 1024), step)
    guard.raise_if_bad()
    for step in range(3):
        guard.observe(torch.full((8, 1024), float("inf")) if step == 2 else torch.ones(8, 1024), step)
    with pytest.raises(NetworkOutputError, match="step 2"):
        guard.raise_if_bad()


def test_deferred_guard_with_mixed_records_folding_and_no_false_alarm():
    guard = _guard()
    guard.FOLD_AT = 4  # fold into per-step slots early (bounded memory)
    big = torch.full((64, 80), 1e35)  # finite entries whose float32 sum overflows: not a failure
    for step in range(6):
        guard.observe(torch.ones(2, 2) if step % 2 else big, step)
    guard.raise_if_bad()
    for step in range(6):
        guard.observe(torch.ones(3 + step, 2), step)  # different shapes
    guard.observe(torch.full((2, 2), float("nan")), 5)
    with pytest.raises(NetworkOutputError, match="step 5"):
        guard.raise_if_bad()


def test_deferred_guard_keeps_bounded_references():
    guard = _guard()
    for step in range(6):
        guard.observe(torch.ones(64), step)
    assert guard._kept == 6 * 64
    guard.KEEP_BUDGET = 64 * 6  # full: the next small output is reduced instead of kept
    guard.observe(torch.full((64,), float("inf")), 3)
    assert guard._kept == 6 * 64 and guard._records[-1][2] is False
    with pytest.raises(NetworkOutputError, match="step 3"):
        guard.raise_if_bad()
    assert guard._kept == 0 and guard._records == []


def _nan_at_time(bad_time: float):
    """A network that ignores its input (so NaN never spreads through it) and returns NaN at one time."""
    def net(x, t):
        out = torch.zeros_like(x) + 0.1
        return out + float("nan") if abs(float(t[0]) - bad_time) < 1e-12 else out
    return net


@pytest.mark.parametrize("solver, stage", [("midpoint", 0), ("heun3", 1)])
def test_an_output_that_never_reaches_the_sample_is_still_reported(solver, stage):
    """Midpoint's first stage and heun3's second (weight 0 in the final sum) reach the next state only
    through a network call: a NaN there can vanish (this network ignores its input), the final state
    stays finite, and the deferred check must still read that output's record and name its step."""
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.1, t_end=0.9)
    probe = Sampler(NetworkDenoiser(lambda x, t: x, schedule, "velocity"), grid, solver)
    k = probe.plan.evaluation_indices(1)[stage]
    assert k not in probe.program().propagated and probe.plan.evaluation_indices(1)[-1] in probe.program().propagated
    bad_time = float(probe.plan.eval_grid.times[k])
    unchecked = Sampler(NetworkDenoiser(_nan_at_time(bad_time), schedule, "velocity", check_finite="off"), grid,
                        solver)
    assert torch.isfinite(unchecked(torch.ones(2, 2, dtype=torch.float64))).all()  # the NaN left no trace
    sampler = Sampler(NetworkDenoiser(_nan_at_time(bad_time), schedule, "velocity"), grid, solver)
    with pytest.raises(NetworkOutputError, match=rf"step {k} \(t = {bad_time:.6g}\)"):
        sampler(torch.ones(2, 2, dtype=torch.float64))


@pytest.mark.parametrize("solver", ["euler", "rk4", "dpmpp_2m", "ipndm"])
def test_a_finite_sample_vouches_for_the_outputs_that_reach_it(solver, monkeypatch):
    """Every raw output of these programs reaches the final state through combinations only: a finite
    final state shows them finite, so the records are dropped without the per-record check; a NaN in
    any of them reaches the sample and the records are read (naming the step)."""
    import schedalg.models._checks as checks

    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.1, t_end=0.9)
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, "velocity"), grid, solver)
    program = sampler.program()
    evaluated = {k for i in range(program.n_steps) for k in program.evaluation_indices(i)}
    assert program.propagated == evaluated
    original, read = checks._all_finite, []
    monkeypatch.setattr(checks, "_all_finite", lambda records: read.append(len(records)) or original(records))
    sampler(torch.ones(2, 2, dtype=torch.float64))
    assert read == []
    k = program.evaluation_indices(2)[0]
    bad_time = float(program.eval_grid.times[k])
    bad = Sampler(NetworkDenoiser(_nan_at_time(bad_time), schedule, "velocity"), grid, solver)
    with pytest.raises(NetworkOutputError, match=rf"step {k} \(t = {bad_time:.6g}\)"):
        bad(torch.ones(2, 2, dtype=torch.float64))
    assert read != []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for sync debug mode")
@pytest.mark.parametrize("solver", AFFINE)
def test_cuda_fused_program_under_sync_debug_mode(solver):
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.05, t_end=0.95)
    sampler = Sampler(NetworkDenoiser(_Mlp().float().cuda(), schedule, prediction="velocity"), grid, solver)
    noise = per_sample_normal((8, 2), 0, device="cuda")
    draws = sampler.draws(noise, seed=0)
    expected = sampler(noise, draws=draws)  # warm-up: device copies of the wrapper's tables
    program = sampler.program()
    x = sampler.initial_state(noise)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad():
            out = program.run(x, draws, sampler.prepared)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sampler.prepared.finish()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    sampler.fuse = False
    torch.testing.assert_close(out, sampler(noise, draws=draws), rtol=1e-5, atol=1e-5)
