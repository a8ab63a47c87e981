"""The generic sampler: denoiser x time grid x solver x noise, joined in one loop.

:class:`Sampler` does all host-side work once, when it is built:

1. puts the denoiser in the grid's schedule (wrapping it with
   :class:`schedalg.models.ConvertedDenoiser` when the schedules differ);
2. plans the solver on the grid (every coefficient, float64, as Python floats; the
   exact number of network evaluations and of noise draws);
3. prepares the denoiser on the solver's evaluation times.

A run then only calls the network and combines tensors with those floats: no SymPy,
no host-device synchronization. The state starts at ``sigma(t_0) * noise`` (exact
when ``alpha(t_0) = 0``; 0 at a point-mass start) unless ``scale_noise=False``, keeps
the dtype of ``noise``, and each step's state and denoised prediction are exposed by
:meth:`Sampler.iterate` or a ``callback``. Stochastic solvers read standard-normal
draws ``(K, B, ...)`` seeded per sample (:func:`per_sample_normal`), so samples do not
change with the batch size, or draws passed explicitly. The draws are made before the
loop (``K`` = number of steps), so they take ``K`` times the memory of one state.

When the solver's step and the denoiser's output map are both affine (Euler, DDIM,
ancestral, Euler-Maruyama on a :class:`schedalg.models.NetworkDenoiser`, converted or not),
a plain call (no callback, no progress bar) runs the fused loop of
:mod:`schedalg.sampling._fused`: one network call and one or two tensor operations per
step, the same samples up to float rounding. ``Sampler.fuse = False`` turns it off.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

import torch

from ..models._contract import Denoiser, PreparedDenoiser
from ..symbolic._schedule import Schedule
from ._errors import SamplingError
from ._fused import FusedLoop, fuse
from ._grid import TimeGrid
from ._noise import STREAM_STEPS, per_sample_normal
from ._solver import Plan, Solver, get_solver

__all__ = ["Sampler", "SamplerStep", "sample", "same_schedule"]


class SamplerStep(NamedTuple):
    """One step of a run: the state ``x`` at ``t``, its denoised prediction, and the next state."""

    index: int
    t: float
    t_next: float
    x: torch.Tensor
    x0_hat: torch.Tensor
    x_next: torch.Tensor


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
    try:
        from ..models import ConvertedDenoiser  # type: ignore[attr-defined]
    except ImportError as exc:
        raise SamplingError(
            f"a grid on the denoiser's own schedule {denoiser.schedule.name!r}",
            f"a grid on {schedule.name!r}, and schedule conversion (schedalg.models.ConvertedDenoiser) "
            "is not available in this build",
            "build the grid on denoiser.schedule",
        ) from exc
    return ConvertedDenoiser(denoiser, schedule)


def run_loop(solver: Solver, plan: Plan, denoise: Callable, x: torch.Tensor,
             draws: torch.Tensor | None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The sampling loop: yields ``(i, x_i, x0_hat_i, x_{i+1})`` for every step.

    Shared verbatim by :class:`Sampler` and the exported module
    (:class:`schedalg.sampling.SamplerModule`), so both run the same tensor operations.
    """
    memory = solver.init_memory()
    for i in range(plan.grid.n_steps):
        noise = draws[i] if draws is not None else None
        x_next, x0, memory = solver.step(plan, i, x, denoise, memory, noise)
        yield i, x, x0, x_next
        x = x_next


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

    Attributes: ``grid``, ``solver``, ``plan``, ``prepared`` (the prepared denoiser),
    ``nfe`` (network evaluations per run, exact), ``last_nfe`` (counted in the last run),
    ``fuse`` (True: plain calls use the fused loop when both sides are affine).
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
        self._fused: tuple[Any, FusedLoop | None] = (None, None)

    def fused_loop(self) -> FusedLoop | None:
        """The fused loop for the current ``prepared`` denoiser (None when it or the solver is not affine)."""
        prepared, loop = self._fused
        if prepared is not self.prepared:
            loop = fuse(self.solver, self.plan, self.prepared)
            self._fused = (self.prepared, loop)
        return loop

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
        counter = [0]
        prepared = self.prepared

        def denoise(state: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
            counter[0] += 1
            return prepared(state, k, **cond)

        times = self._times
        self.last_nfe = 0
        with torch.no_grad():
            for i, x_i, x0, x_next in run_loop(self.solver, self.plan, denoise, x, draws):
                self.last_nfe = counter[0]
                if bar is not None:
                    bar.update(1)
                yield SamplerStep(i, times[i], times[i + 1], x_i, x0, x_next)
        if bar is not None:
            bar.close()
        finish = getattr(prepared, "finish", None)
        if callable(finish):  # deferred checks of the network's outputs: one host sync, after the loop
            finish()

    def __call__(self, noise: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
                 draws: torch.Tensor | None = None, scale_noise: bool = True, progress: bool = False,
                 callback: Callable[[SamplerStep], None] | None = None, **cond: Any) -> torch.Tensor:
        """The sample at the end of the grid; ``callback(step)`` is called after every step."""
        loop = self.fused_loop() if (self.fuse and callback is None and not progress) else None
        if loop is not None:
            return self._run_fused(loop, noise, seed, generator, draws, scale_noise, cond)
        out = noise  # replaced at every step (a grid has at least one)
        for step in self.iterate(noise, seed=seed, generator=generator, draws=draws, scale_noise=scale_noise,
                                 progress=progress, **cond):
            if callback is not None:
                callback(step)
            out = step.x_next
        return out

    def _run_fused(self, loop: FusedLoop, noise: torch.Tensor, seed: int | None,
                   generator: torch.Generator | None, draws: torch.Tensor | None, scale_noise: bool,
                   cond: dict[str, Any]) -> torch.Tensor:
        x = self.initial_state(noise, scale_noise)
        if draws is None:
            draws = self.draws(x, seed=seed, generator=generator)
        self._check_draws(draws, x)
        self.last_nfe = 0
        with torch.no_grad():
            out = loop.run(x, draws, cond)
        self.last_nfe = loop.nfe
        finish = getattr(self.prepared, "finish", None)
        if callable(finish):  # deferred checks of the network's outputs: one host sync, after the loop
            finish()
        return out

    def export(self, path: Any, example_noise: torch.Tensor, **options: Any) -> Any:
        """Write this sampler as a torch-only file (see :func:`schedalg.sampling.export_sampler`)."""
        from ._export import export_sampler

        return export_sampler(self, path, example_noise, **options)

    def __repr__(self) -> str:
        return f"Sampler({self.solver!r}, {self.grid!r}, nfe={self.nfe})"


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
