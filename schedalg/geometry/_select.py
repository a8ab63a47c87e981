"""Choose a (schedule, time grid, solver) for a denoiser and a budget of network evaluations.

Candidates are measured, not predicted: each runs on *calibration* noise (to be drawn
separately from any noise the choice is later evaluated on) and is scored by its endpoint
error against a fine reference solve from the same start,

    error = mean_b sqrt( mean_d (x_b - x_b^ref)_d^2 ),

the reference being the classical RK4 (:mod:`schedalg.sampling.solvers._rk`) on
``reference_steps`` steps of the same family's grid. Grid family: a power warp of the
schedule's own time (EDM's "rho" idea applied to ``t``, Karras et al. 2022, eq. 5),

    t_k = t_data + (t_noise - t_data) (1 - k/N)^rho,

so ``rho = 1`` is uniform in ``t`` and ``rho > 1`` puts more steps near the data end. A
grid on a schedule other than the denoiser's is served by the sampler's pathwise schedule
conversion, so the same denoiser can be integrated along the trajectories of another
schedule. Each candidate gets the most steps whose exact NFE fits the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
import inspect
from typing import Any, Mapping, Sequence

import torch

from ..errors import SchedalgError
from ..models._contract import Denoiser
from ..symbolic import Schedule

__all__ = ["Candidate", "Selection", "power_times", "endpoint_error", "select_sampler", "VARIANCES"]

#: Default data variances tried for solvers that take a ``variance`` option (log-spaced, plus 0).
VARIANCES: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1)


@dataclass(frozen=True)
class Candidate:
    """One measured candidate: schedule name, warp ``rho``, solver name and options, grid, NFE, calibration error."""

    schedule: str
    rho: float
    solver: str
    options: tuple[tuple[str, Any], ...]
    grid: Any  # schedalg.sampling.TimeGrid
    nfe: int
    error: float

    @property
    def label(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.options)
        return f"{self.solver}{extra} on {self.schedule}/power(rho={self.rho:g})"


@dataclass(frozen=True)
class Selection:
    """All candidates measured for one budget (sorted by calibration error) and the best one."""

    budget: int
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


def power_times(schedule: Schedule, steps: int, rho: float) -> torch.Tensor:
    """``t_k = t_data + (t_noise - t_data)(1 - k/N)^rho``, k = 0..N (float64, noise end first)."""
    from ..sampling import TimeGrid

    return TimeGrid.power(schedule, steps, rho).times


def endpoint_error(endpoint: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over the batch of the RMS per dimension of ``endpoint - reference``."""
    if endpoint.shape != reference.shape:
        raise SchedalgError("an endpoint of the reference's shape", f"{tuple(endpoint.shape)} vs "
                            f"{tuple(reference.shape)}", "sample from the same noise as the reference")
    diff = (endpoint.to(torch.float64) - reference.to(torch.float64)).reshape(reference.shape[0], -1)
    return float(diff.pow(2).mean(1).sqrt().mean())


def _options_of(solver: str | tuple[str, Mapping[str, Any]]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    if isinstance(solver, str):
        return solver, ()
    if isinstance(solver, tuple) and len(solver) == 2 and isinstance(solver[0], str) and isinstance(solver[1], Mapping):
        return solver[0], tuple(sorted(solver[1].items()))
    raise SchedalgError("a solver name or a (name, options) pair", repr(solver), "e.g. ('rk4', {'final_heun3': False})")


def _expand_variances(entries: Sequence[tuple[str, tuple[tuple[str, Any], ...]]],
                      variances: Sequence[float]) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    """One entry per variance for solvers that take a ``variance`` option and were given none."""
    from ..sampling import SOLVERS

    out = []
    for name, options in entries:
        takes_variance = name in SOLVERS and "variance" in inspect.signature(SOLVERS[name]).parameters
        if takes_variance and "variance" not in dict(options):
            out.extend((name, tuple(sorted(options + (("variance", v),)))) for v in variances)
        else:
            out.append((name, options))
    return out


def select_sampler(denoiser: Denoiser, calibration_noise: torch.Tensor, budget: int, *,
                   schedules: Mapping[str, Schedule] | None = None,
                   solvers: Sequence[str | tuple[str, Mapping[str, Any]]] = ("rk4", "heun3", "midpoint", "heun"),
                   rhos: Sequence[float] = (1.0, 1.25, 1.5, 2.0),
                   reference_steps: int = 64, reference_rho: float = 1.5,
                   variances: Sequence[float] = VARIANCES) -> Selection:
    """Measure every ``schedule x rho x solver`` on ``calibration_noise``; best first.

    ``schedules``: name -> schedule of the grid (default: the denoiser's own). Candidates
    whose grid cannot be built or sampled (a :class:`SchedalgError`, e.g. a coefficient
    that is infinite at an end) or that fit no step into ``budget`` are left out; if none
    is left, an error says so. The reference for each distinct start is the classical RK4
    on ``reference_steps`` steps of the ``reference_rho`` grid of that schedule.
    ``variances``: the values tried for solvers that take a ``variance`` option and were
    listed without one (see the module docstring).
    """
    from ..sampling import Sampler, TimeGrid, get_solver

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SchedalgError("a budget of network evaluations >= 1 (an int)", repr(budget), "pass e.g. budget=10")
    if not isinstance(calibration_noise, torch.Tensor):
        raise SchedalgError("calibration noise as a torch.Tensor (B, ...)", type(calibration_noise).__name__,
                            "draw it with a generator seeded apart from the evaluation noise")
    schedules = {denoiser.schedule.name: denoiser.schedule} if schedules is None else dict(schedules)
    entries = _expand_variances([_options_of(entry) for entry in solvers], variances)
    references: dict[tuple[str, float], torch.Tensor] = {}
    measured = []
    for schedule_name, schedule in schedules.items():
        for rho in rhos:
            for name, options in entries:
                solver = get_solver(name, **dict(options))
                try:
                    grid = _fit_budget(schedule, rho, solver, budget, TimeGrid)
                    if grid is None:
                        continue
                    key = (schedule_name, float(grid.times[0]))
                    if key not in references:
                        fine = TimeGrid(schedule, power_times(schedule, reference_steps, reference_rho),
                                        label="reference")
                        references[key] = Sampler(denoiser, fine, "rk4")(calibration_noise)
                    sampler = Sampler(denoiser, grid, solver)
                    error = endpoint_error(sampler(calibration_noise), references[key])
                except SchedalgError:
                    continue
                measured.append(Candidate(schedule_name, float(rho), name, options, grid, sampler.nfe, error))
    if not measured:
        raise SchedalgError(f"at least one candidate that fits {budget} network evaluations", "none",
                            "raise the budget or add cheaper solvers (e.g. 'euler')")
    measured.sort(key=lambda c: (c.error if c.error == c.error else float("inf")))
    return Selection(budget, tuple(measured))


def _fit_budget(schedule: Schedule, rho: float, solver: Any, budget: int, grid_type: Any) -> Any:
    """The power-warped grid with the most steps whose exact NFE for ``solver`` fits ``budget``."""
    for steps in range(budget, 0, -1):
        grid = grid_type(schedule, power_times(schedule, steps, rho), label=f"power(rho={rho:g})")
        if solver.nfe(grid) <= budget:
            return grid
    return None
