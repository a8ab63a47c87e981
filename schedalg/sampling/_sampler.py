"""The generic sampler: denoiser x time grid x solver x noise, joined in one loop.

:class:`Sampler` does all host-side work once, when it is built:

1. puts the denoiser in the grid's schedule (wrapping it with
   :class:`schedalg.models.ConvertedDenoiser` when the schedules differ);
2. plans the solver on the grid (every coefficient, float64, as Python floats; the
   exact number of network evaluations and of noise draws);
3. prepares the denoiser on the solver's evaluation times.

A run then only executes the solver's :class:`~schedalg.sampling.Program`: network calls
and combinations with weights computed in float64 beforehand, no SymPy, no host-device
synchronization. The state starts at ``sigma(t_0) * noise`` (exact
when ``alpha(t_0) = 0``; 0 at a point-mass start) unless ``scale_noise=False``, keeps
the dtype of ``noise``, and each step's state and denoised prediction are exposed by
:meth:`Sampler.iterate` or a ``callback``. Stochastic solvers read standard-normal
draws ``(K, B, ...)`` seeded per sample (:func:`per_sample_normal`), so samples do not
change with the batch size, or draws passed explicitly. The draws are made before the
loop (``K`` = number of steps), so they take ``K`` times the memory of one state.

When the prepared denoiser's output is affine in a raw network output (a
:class:`schedalg.models.NetworkDenoiser`, converted or not), the program is fused with that
output map (:meth:`Program.fuse`): every solver then combines the raw outputs directly, e.g.
Euler is one network call and one ``torch.add`` per step; the same samples up to float
rounding. ``Sampler.fuse = False`` runs the unfused program. Every run (plain, with a
callback or a progress bar, :meth:`Sampler.iterate`, the exported module) executes the same
program with the same interpreter; ``x0_hat`` of a step is formed only when an observer reads it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from ..models import ConvertedDenoiser, Denoiser, PreparedDenoiser
from ..symbolic import Schedule
from ._errors import SamplingError
from ._grid import TimeGrid
from ._noise import STREAM_STEPS, per_sample_normal
from ._program import Program, _combine
from ._solver import Solver, get_solver

__all__ = ["Sampler", "SamplerStep", "SamplerModule", "sample", "same_schedule"]


class SamplerStep:
    """One step of a run: the state ``x`` at ``t``, its denoised prediction ``x0_hat``, and the next state.

    ``x0_hat`` (of the step's first evaluation) is formed when it is first read, from what the
    program kept for it (in a fused program: ``a_x x + a_p F``), so observing a run costs nothing
    when it is not read.
    """

    __slots__ = ("index", "t", "t_next", "x", "x_next", "_x0")

    def __init__(self, index: int, t: float, t_next: float, x: torch.Tensor, x_next: torch.Tensor, x0: Any):
        self.index, self.t, self.t_next, self.x, self.x_next, self._x0 = index, t, t_next, x, x_next, x0

    @property
    def x0_hat(self) -> torch.Tensor:
        if not isinstance(self._x0, torch.Tensor):
            terms = self._x0
            self._x0 = _combine(tuple((w, j) for j, (w, _) in enumerate(terms)), [v for _, v in terms])
        return self._x0

    def __repr__(self) -> str:
        return f"SamplerStep(index={self.index}, t={self.t:.6g}, t_next={self.t_next:.6g})"


class _Bound:
    """A prepared denoiser whose ``raw`` is bound to one run's states (``PreparedNetwork.raw_for``)."""

    __slots__ = ("prepared", "raw")

    def __init__(self, prepared: Any, raw: Callable[[torch.Tensor, int], torch.Tensor]):
        self.prepared, self.raw = prepared, raw

    def __call__(self, x: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prepared(x, i, **cond)


def same_schedule(a: Schedule, b: Schedule) -> bool:
    """True when ``a`` and ``b`` are the same object or have identical expressions and domain."""
    if a is b:
        return True
    return bool(a.alpha == b.alpha and a.sigma == b.sigma and tuple(a.domain) == tuple(b.domain))


def _on_schedule(denoiser: Denoiser, schedule: Schedule | None) -> Denoiser:
    """``denoiser`` in the coordinates of ``schedule`` (converted when they differ; None: its own)."""
    if not isinstance(getattr(denoiser, "schedule", None), Schedule) or not callable(getattr(denoiser, "prepare",
                                                                                               None)):
        raise SamplingError("a schedalg.models.Denoiser (with .schedule and .prepare(times))",
                            type(denoiser).__name__, "wrap your network with schedalg.models")
    if schedule is None or same_schedule(denoiser.schedule, schedule):
        return denoiser
    return ConvertedDenoiser(denoiser, schedule)


class Sampler:
    """A denoiser, a grid and a solver, planned and prepared once; call it to sample.

    Parameters
    ----------
    denoiser:
        A :class:`schedalg.models.Denoiser`.
    grid:
        A :class:`TimeGrid` (in any schedule: the denoiser is converted to it), or an
        int: that many uniform steps in the denoiser's own time.
    solver:
        A registry name (see :data:`schedalg.sampling.SOLVERS`) or a :class:`Solver`.
    **solver_options:
        Options of a solver given by name (e.g. ``eta=0.5`` for ``"ancestral"``).

    Attributes: ``grid``, ``solver``, ``plan`` (the solver's :class:`Program`), ``prepared``
    (the prepared denoiser), ``nfe`` (network evaluations per run, exact), ``last_nfe``
    (evaluations made by the last run), ``fuse`` (True: run the program fused with the
    denoiser's output map where it is affine, see :meth:`program`).
    """

    def __init__(self, denoiser: Denoiser, grid: TimeGrid | int, solver: str | Solver = "euler",
                 **solver_options: Any):
        if isinstance(grid, int) and not isinstance(grid, bool):
            grid = TimeGrid.uniform(_on_schedule(denoiser, None).schedule, grid)
        if not isinstance(grid, TimeGrid):
            raise SamplingError("a TimeGrid or a number of steps", type(grid).__name__, None)
        self.solver = get_solver(solver, **solver_options)
        self.grid = grid
        self.denoiser = _on_schedule(denoiser, grid.schedule)
        self.plan = self.solver.plan(grid)
        self.prepared: PreparedDenoiser = self.denoiser.prepare(self.plan.eval_grid.times)
        self.nfe = self.plan.nfe
        self.last_nfe: int | None = None
        self.start_scale = float(grid.sigma[0])
        self._times = grid.values("times")
        self.fuse = True
        self._program: tuple[Any, bool, Program] = (None, False, self.plan)

    @property
    def method(self) -> str:
        """The solver's registry name (what an exported file records as its method)."""
        return self.solver.name

    @property
    def noise_draws(self) -> int:
        """``K``: standard-normal draws ``(K, B, ...)`` a run reads (0 for deterministic solvers)."""
        return self.plan.noise_draws

    def program(self) -> Program:
        """The program a run executes: :attr:`plan`, fused with the current ``prepared`` denoiser's output map
        when ``fuse`` is True (:meth:`Program.fuse`; the plan itself where nothing can be fused)."""
        prepared, fused, program = self._program
        if prepared is not self.prepared or fused != self.fuse:
            program = self.plan.fuse(self.prepared) if self.fuse else self.plan
            self._program = (self.prepared, self.fuse, program)
        return program

    # ------------------------------------------------------------------ inputs

    def initial_state(self, noise: torch.Tensor, scale_noise: bool = True) -> torch.Tensor:
        """``sigma(t_0) * noise`` (or ``noise`` itself when ``scale_noise`` is False)."""
        if not isinstance(noise, torch.Tensor) or noise.dim() < 1 or not noise.is_floating_point():
            raise SamplingError("noise as a floating-point tensor (batch, ...)",
                                f"{type(noise).__name__}" + (f" {tuple(noise.shape)} {noise.dtype}"
                                                             if isinstance(noise, torch.Tensor) else ""),
                                "e.g. torch.randn(16, 2) or schedalg.sampling.per_sample_normal((16, 2), seed=0)")
        if not scale_noise or self.start_scale == 1.0:
            return noise
        return noise * self.start_scale

    def draws(self, like: torch.Tensor, *, seed: int | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Standard-normal draws ``(K, B, ...)`` for the stochastic solver (None if deterministic).

        With ``seed`` they are per-sample seeded (independent of the batch size); with a
        ``generator`` they are drawn in one call from it (then they depend on the batch size).
        """
        count = self.plan.noise_draws
        if count == 0:
            return None
        if seed is not None:
            return per_sample_normal(tuple(like.shape), seed, stream=STREAM_STEPS, count=count,
                                     dtype=like.dtype, device=like.device)
        if generator is None:
            raise SamplingError(f"a seed or a torch.Generator for the {self.solver.name!r} solver's noise",
                                "neither", "pass seed=0 (per-sample, batch-size independent) or generator=...")
        return torch.randn((count,) + tuple(like.shape), generator=generator, dtype=like.dtype,
                           device=generator.device).to(like.device)

    def _check_draws(self, draws: torch.Tensor | None, x: torch.Tensor) -> None:
        expected = (self.plan.noise_draws,) + tuple(x.shape)
        if self.plan.noise_draws == 0:
            if draws is not None:
                raise SamplingError(f"no draws for the deterministic {self.solver.name!r} solver",
                                    f"draws of shape {tuple(draws.shape)}", "drop draws=")
            return
        if not isinstance(draws, torch.Tensor) or tuple(draws.shape) != expected:
            got = tuple(draws.shape) if isinstance(draws, torch.Tensor) else type(draws).__name__
            raise SamplingError(f"draws of shape (K, batch, ...) = {expected}", f"{got}",
                                "use Sampler.draws(x, seed=...) or omit draws=")

    # ------------------------------------------------------------------ runs

    def iterate(self, noise: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
                draws: torch.Tensor | None = None, scale_noise: bool = True, progress: bool = False,
                **cond: Any) -> Iterator[SamplerStep]:
        """Run, yielding a :class:`SamplerStep` per step (the last one's ``x_next`` is the sample).

        Inputs are checked and the noise drawn here, before the first step; the returned
        iterator only runs the loop.
        """
        x = self.initial_state(noise, scale_noise)
        if draws is None:
            draws = self.draws(x, seed=seed, generator=generator)
        self._check_draws(draws, x)
        bar = _progress(self.grid.n_steps, self.solver.name) if progress else None
        return self._steps(x, draws, bar, cond)

    def _steps(self, x: torch.Tensor, draws: torch.Tensor | None, bar: Any,
               cond: dict[str, Any]) -> Iterator[SamplerStep]:
        """The run as a generator of steps (what :meth:`iterate` returns): :meth:`_run`, paused at each step."""
        seen: list[SamplerStep] = []
        program, regs = self.program(), None
        for i in range(program.n_steps):
            regs = self._run(x, draws, cond, seen.append, bar, (i, regs))
            yield seen.pop()
        self._end(bar, regs[program.ends[-1][1]])  # after the last step is handed out, as for a call

    def _run(self, x: torch.Tensor, draws: torch.Tensor | None, cond: dict[str, Any],
             observe: Callable[[SamplerStep], None] | None, bar: Any, only: tuple | None = None) -> Any:
        """The loop of every run: the program's steps, each observed (``observe(step)``) when asked.

        ``only = (i, registers)`` runs step ``i`` alone on those registers (``None`` at the first step) and
        returns them: :meth:`iterate` pauses the same loop after each step (and ends the run itself).
        """
        program, prepared = self.program(), self.prepared
        first, last = (0, program.n_steps) if only is None else (only[0], only[0] + 1)
        regs = only[1] if only is not None and only[1] is not None else program.start(x, draws)
        if first == 0:
            self.last_nfe = 0
        run_step, ends = program.run_step, program.ends
        watch = observe is not None or bar is not None
        if only is None and program.fused and not cond:  # the raw call bound once for this run
            bind = getattr(prepared, "raw_for", None)
            raw = bind(x) if callable(bind) else None
            if raw is not None:
                prepared = _Bound(prepared, raw)
        with torch.no_grad():
            for i in range(first, last):
                run_step(i, regs, prepared, cond)
                if watch:
                    self._observe(i, regs, ends[i], observe, bar)
                for r in ends[i][3]:
                    regs[r] = None
        self.last_nfe += sum(program.evaluations[first:last])
        if only is not None:
            return regs
        final = regs[ends[-1][1]]
        self._end(bar, final)
        return final

    def _end(self, bar: Any, final: torch.Tensor | None) -> None:
        if bar is not None:
            bar.close()
        finish = getattr(self.prepared, "finish", None)
        if callable(finish):  # deferred checks of the network's outputs: one host sync, after the loop
            covered = self.program().propagated
            if covered and final is not None:  # a finite final state shows these outputs finite
                finish(final=final, covered=covered)
            else:
                finish()

    def _observe(self, i: int, regs: list, end: tuple, observe: Callable[[SamplerStep], None] | None,
                 bar: Any) -> None:
        x_i, x_next, x0_terms, _ = end
        if observe is not None:
            x0 = regs[x0_terms[0][1]] if len(x0_terms) == 1 and x0_terms[0][0] == 1.0 else \
                [(w, regs[r]) for w, r in x0_terms]
            observe(SamplerStep(i, self._times[i], self._times[i + 1], regs[x_i], regs[x_next], x0))
        if bar is not None:
            bar.update(1)

    def __call__(self, noise: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
                 draws: torch.Tensor | None = None, scale_noise: bool = True, progress: bool = False,
                 callback: Callable[[SamplerStep], None] | None = None, **cond: Any) -> torch.Tensor:
        """The sample at the end of the grid; ``callback(step)`` is called after every step."""
        x = self.initial_state(noise, scale_noise)
        if draws is None:
            draws = self.draws(x, seed=seed, generator=generator)
        self._check_draws(draws, x)
        bar = _progress(self.grid.n_steps, self.solver.name) if progress else None
        return self._run(x, draws, cond, callback, bar)

    def module(self) -> "SamplerModule":
        """This sampler's run as a ``torch.nn.Module`` (for ``torch.compile`` and export)."""
        return SamplerModule(self)

    def __repr__(self) -> str:
        return f"Sampler({self.solver!r}, {self.grid!r}, nfe={self.nfe})"


class SamplerModule(torch.nn.Module):
    """The run of a :class:`Sampler` as an ``nn.Module``: ``forward(x, draws=None, cond=None)``.

    ``x`` is the initial state ``(B, ...)`` (see :meth:`Sampler.initial_state`), ``draws`` the
    standard normals ``(K, B, ...)`` of a stochastic solver, ``cond`` a dict of conditioning
    keyword arguments for the network. It executes the sampler's program (fused as the
    sampler's) with a prepared denoiser of its own, so that tracing (``torch.export``,
    ``torch.compile``) leaves nothing in the sampler's. The deferred finite check of the
    network's outputs is then the caller's, outside the traced region (it reads one value back):
    ``module.prepared.finish()`` after a run, or ``module.prepared.finish(final=out,
    covered=module.program.propagated)`` to skip the records a finite sample vouches for.
    """

    def __init__(self, sampler: Sampler):
        super().__init__()
        self.sampler = sampler
        self.prepared = sampler.denoiser.prepare(sampler.plan.eval_grid.times)
        self.program = sampler.plan.fuse(self.prepared) if sampler.fuse else sampler.plan
        # register the networks so that export lifts their weights as the program's state
        self.networks = torch.nn.ModuleList(_networks(self.prepared))

    def forward(self, x: torch.Tensor, draws: torch.Tensor | None = None,
                cond: dict[str, Any] | None = None) -> torch.Tensor:
        return self.program.run(x, draws, self.prepared, cond)


def _networks(obj: Any, depth: int = 0, seen: set[int] | None = None) -> list[torch.nn.Module]:
    """The ``nn.Module`` objects reachable from a prepared denoiser's attributes (a few levels)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 4:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        return [obj]
    found: list[torch.nn.Module] = []
    children = obj.values() if isinstance(obj, dict) else (obj if isinstance(obj, (list, tuple)) else
                                                              getattr(obj, "__dict__", {}).values())
    for child in children:
        if isinstance(child, (torch.Tensor, str, bytes, int, float)):
            continue
        found.extend(_networks(child, depth + 1, seen))
    return found


def _progress(total: int, label: str):
    from .._optional import require

    tqdm = require("tqdm", "the sampling progress bar (or pass progress=False)")
    return tqdm.tqdm(total=total, desc=f"schedalg {label}", leave=False)


def sample(denoiser: Denoiser, noise: torch.Tensor, grid: TimeGrid | int, solver: str | Solver = "euler", *,
           seed: int | None = None, generator: torch.Generator | None = None, draws: torch.Tensor | None = None,
           scale_noise: bool = True, progress: bool = False, callback: Callable[[SamplerStep], None] | None = None,
           solver_options: dict[str, Any] | None = None, **cond: Any) -> torch.Tensor:
    """Sample ``denoiser`` from ``noise`` along ``grid`` with ``solver``; see :class:`Sampler`.

    ``cond`` are conditioning keyword arguments passed to the network at every call.
    """
    sampler = Sampler(denoiser, grid, solver, **(solver_options or {}))
    return sampler(noise, seed=seed, generator=generator, draws=draws, scale_noise=scale_noise,
                   progress=progress, callback=callback, **cond)
