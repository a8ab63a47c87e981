"""The sampling loop makes no host-device synchronization and no SymPy call.

Every tensor method that reads values back to the host (``item``, ``cpu``, ``tolist``,
``numpy``, ``__bool__``, ``__float__``, ``__int__``, ``__index__`` on a tensor) and
SymPy's entry points are replaced by functions that record the call, while the loop's
steps run (the deferred output check after the loop is allowed one sync). On CUDA the
same loop runs under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import contextlib

import pytest
import sympy
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.models import NetworkDenoiser
from schedalg.sampling import SOLVERS, Sampler, TimeGrid, per_sample_normal

HOST_READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")
SYMPY_CALLS = ("sympify", "srepr", "simplify", "lambdify", "diff", "limit", "solve")


@contextlib.contextmanager
def _guard(monkeypatch):
    calls: list[str] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls.append(f"Tensor.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    for owner, names in ((sympy, SYMPY_CALLS), (sympy.Basic, ("subs",))):
        for name in names:
            original = getattr(owner, name)

            def spy(*args, _name=name, _original=original, **kwargs):
                calls.append(f"sympy.{_name}")
                return _original(*args, **kwargs)

            monkeypatch.setattr(owner, name, spy)
    try:
        yield calls
    finally:
        monkeypatch.undo()


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.SiLU(), torch.nn.Linear(16, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def _denoisers(schedule):
    yield "gaussian", GaussianDenoiser(schedule, 0.3, 0.5)
    yield "network", NetworkDenoiser(_Mlp(), schedule, prediction="velocity")


def _run_loop_under_guard(sampler, noise, monkeypatch):
    steps = sampler.iterate(noise, seed=0)
    with _guard(monkeypatch) as calls:
        for _ in range(sampler.grid.n_steps):
            next(steps)
    for _ in steps:  # the end of the run (deferred checks) may sync once, outside the loop
        pass
    return calls


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_loop_reads_nothing_back_and_calls_no_sympy(solver, monkeypatch):
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.05, t_end=0.95)
    noise = per_sample_normal((3, 2), 0)
    for label, denoiser in _denoisers(schedule):
        sampler = Sampler(denoiser, grid, solver)
        calls = _run_loop_under_guard(sampler, noise, monkeypatch)
        assert calls == [], (label, calls)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_a_plain_call_reads_back_only_after_its_loop(solver, monkeypatch):
    """A plain call runs the fused program with the network's raw call bound once for the run
    (``PreparedNetwork.raw_for``): nothing is read back before the deferred check after the loop, and
    the sample is the stepwise run's, bit for bit."""
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.05, t_end=0.95)
    sampler = Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="velocity"), grid, solver)
    noise = per_sample_normal((3, 2), 0)
    *_, last = sampler.iterate(noise, seed=0)
    finish, reads_before_finish = sampler.prepared.finish, []
    with _guard(monkeypatch) as calls:
        sampler.prepared.finish = lambda *a, **k: reads_before_finish.append(list(calls)) or finish(*a, **k)
        out = sampler(noise, seed=0)
    assert reads_before_finish == [[]]
    assert torch.equal(out, last.x_next)


def test_converted_denoiser_loop_is_sync_free(monkeypatch):
    """A grid in another schedule (the denoiser is converted before the loop)."""
    grid = TimeGrid.uniform(sa.schedules.brownian_bridge(), 4, t_end=0.9)
    sampler = Sampler(GaussianDenoiser(sa.schedules.linear(), 0.3, 0.5), grid, "euler_maruyama")
    calls = _run_loop_under_guard(sampler, per_sample_normal((3, 2), 0), monkeypatch)
    assert calls == [], calls


def test_the_guard_catches_a_sync(monkeypatch):
    """The guard itself works: a denoiser that calls .item() in the loop is caught."""
    schedule = sa.schedules.linear()
    inner = GaussianDenoiser(schedule)

    class Syncing:
        def __init__(self):
            self.schedule = schedule

        def prepare(self, times):
            prepared = inner.prepare(times)

            def call(x, i, **cond):
                x.sum().item()
                return prepared(x, i)

            return call

    sampler = Sampler(Syncing(), TimeGrid.uniform(schedule, 3, t_start=0.1), "euler")
    calls = _run_loop_under_guard(sampler, per_sample_normal((2, 2), 0), monkeypatch)
    assert calls.count("Tensor.item") == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for sync debug mode")
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_cuda_loop_under_sync_debug_mode(solver):
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.05, t_end=0.95)
    denoiser = NetworkDenoiser(_Mlp().cuda(), schedule, prediction="velocity")
    sampler = Sampler(denoiser, grid, solver)
    noise = per_sample_normal((8, 2), 0, device="cuda")
    draws = sampler.draws(noise, seed=0)
    sampler(noise, draws=draws)  # warm-up: lazily cached device copies of the wrapper's tables
    steps = sampler.iterate(noise, draws=draws)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(grid.n_steps):
            next(steps)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for _ in steps:
        pass
