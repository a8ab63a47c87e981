"""schedalg's side of the quality benchmark: every solver x schedule x time grid.

Grids (all from schedalg): ``uniform`` in the schedule's own ``t``; ``karras`` (EDM's
rho = 7 spacing, noise levels 0.002..80); ``log_snr`` (equal steps in log-SNR over
``[-2 log 80, 2 log 500]`` clipped to the schedule's range, plus its exact noise/data
ends where those are at infinite log-SNR); ``gits`` (schedalg.geometry: least-cost
path through a fine teacher trajectory computed from *calibration* noise, never the
evaluation noise). For a budget of network evaluations each solver gets the largest
number of steps whose exact NFE fits. ``converted`` rows serve a denoiser written for
one schedule (VP, as a DDPM-trained model would be) on the grid of another via
schedalg's pathwise conversion; ``lazy`` rows use :mod:`schedalg.lazy`.

The sweep's best row per budget is chosen *on the evaluation noise* (an oracle choice).
``calibrated`` rows are the honest counterpart: :func:`schedalg.geometry.select_sampler`
picks one (schedule, power-warped grid, solver) per budget on separate calibration noise
(seed :data:`SELECTION_SEED`), and only that choice is then run on the evaluation noise.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import torch

import schedalg as sa
from schedalg.geometry import default_fine_times, jump_costs, least_cost_path, select_sampler, teacher_trajectory
from schedalg.geometry._select import VARIANCES
from schedalg.sampling import Sampler, TimeGrid

from ._problem import Problem, Run

SOLVERS = ("euler", "heun", "midpoint", "ddim", "dpmpp_2m", "dpmpp_3m", "heun3", "rk3", "rk4", "rk4_38", "dpm_3s")
SELECTION_SEED = 5150  # calibration noise of the calibrated rows; disjoint from EVAL_SEED and CALIBRATION_SEED
# vddim / vdpmpp_2m are listed without a variance: select_sampler tries each of its `variances`
SELECTION_SOLVERS = ("rk4", ("rk4", {"final_heun3": False}), "rk4_38", ("rk4_38", {"final_heun3": False}), "heun3",
                     "rk3", "midpoint", "heun", "vddim", "vdpmpp_2m")
#: Sweep rows of the variance-aware solvers (linear schedule only, to keep the sweep's time down);
#: variance 0 is already in the sweep as ddim / dpmpp_2m.
VARIANCE_SOLVERS = tuple(sa.sampling.get_solver(name, variance=v) for name in ("vddim", "vdpmpp_2m")
                         for v in VARIANCES if v > 0)
SELECTION_RHOS = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
LAM_LOW, LAM_HIGH = -2 * math.log(80.0), 2 * math.log(500.0)


class CountingDenoiser:
    """Wraps a denoiser; counts calls of its prepared form (one call = one network evaluation)."""

    def __init__(self, inner):
        self.inner = inner
        self.schedule = inner.schedule
        self.calls = 0

    def prepare(self, times: torch.Tensor):
        prepared = self.inner.prepare(times)

        def call(x, i, **cond):
            self.calls += 1
            return prepared(x, i, **cond)

        call.times = prepared.times
        return call


def schedules() -> dict[str, sa.Schedule]:
    return {"linear": sa.schedules.linear(), "cosine": sa.schedules.cosine(),
            "vp_linear": sa.schedules.vp_linear(), "edm": sa.schedules.edm()}


def log_snr_times(schedule: sa.Schedule, steps: int, *, from_noise_end: bool = True) -> torch.Tensor | None:
    """Equal log-SNR steps on the clipped range, plus exact infinite-log-SNR ends
    (the noise end only when ``from_noise_end``)."""
    compiled = schedule.compile()
    low, high = compiled.log_snr_range
    head = [compiled.t_noise] if low < LAM_LOW and from_noise_end else []
    tail = [compiled.t_data] if high > LAM_HIGH else []
    inner = steps + 1 - len(head) - len(tail)
    if inner < 2:
        return None
    lam = torch.linspace(max(low, LAM_LOW), min(high, LAM_HIGH), inner, dtype=torch.float64)
    times = compiled.t_of_log_snr(lam)
    return torch.cat([torch.tensor(head, dtype=torch.float64), times, torch.tensor(tail, dtype=torch.float64)])


class GitsCache:
    """Teacher trajectory and jump costs per schedule, from the calibration noise."""

    def __init__(self, problem: Problem, fine_points: int = 121, substeps: int = 4):
        self.problem = problem
        self.fine_points = fine_points
        self.substeps = substeps
        self._costs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def times(self, name: str, schedule: sa.Schedule, steps: int) -> torch.Tensor:
        if name not in self._costs:
            denoiser = self.problem.denoiser(schedule)
            fine = default_fine_times(denoiser, self.fine_points)
            start = self.problem.calibration_noise * schedule.compile().sigma(fine[:1])
            trajectory = teacher_trajectory(denoiser, start, fine, substeps=self.substeps)
            self._costs[name] = (fine, jump_costs(denoiser, trajectory, fine))
        fine, costs = self._costs[name]
        indices, _ = least_cost_path(costs, steps)
        return fine[list(indices)]


def _grid_builders(gits: GitsCache) -> dict[str, Callable[[str, sa.Schedule, int], TimeGrid | None]]:
    def karras(name, schedule, steps):
        return TimeGrid.karras(schedule, steps, sigma_max=80.0, sigma_min=0.002)

    def log_snr(name, schedule, steps):
        times = log_snr_times(schedule, steps)
        return None if times is None else TimeGrid.from_times(schedule, times)

    def log_snr_80(name, schedule, steps):
        times = log_snr_times(schedule, steps, from_noise_end=False)
        return None if times is None else TimeGrid.from_times(schedule, times)

    return {
        "uniform": lambda name, schedule, steps: TimeGrid.uniform(schedule, steps),
        "karras": karras,
        "log_snr": log_snr,
        "log_snr_80": log_snr_80,
        "gits": lambda name, schedule, steps: TimeGrid.from_times(schedule, gits.times(name, schedule, steps)),
    }


def _fit_budget(build: Callable[[int], TimeGrid | None], solver: str | sa.sampling.Solver,
                budget: int) -> TimeGrid | None:
    """The grid with the most steps whose exact NFE for ``solver`` fits ``budget``."""
    for steps in range(budget, 0, -1):
        grid = build(steps)
        if grid is None:
            continue
        if sa.sampling.get_solver(solver).plan(grid).nfe <= budget:
            return grid
    return None


def _label(solver: str | sa.sampling.Solver) -> str:
    """A sweep row's sampler name: the registry name, plus ``(variance=v)`` for the variance-aware solvers."""
    if isinstance(solver, str):
        return solver
    return solver.name + "".join(f"(variance={v:g})" for k, v in vars(solver).items() if k == "variance")


def _run(problem: Problem, denoiser, grid: TimeGrid, solver, system_grid: str, note: str = "",
         label: str | None = None) -> Run:
    """One measured run on the evaluation noise; ``solver`` is a name or a Solver (then give ``label``)."""
    counted = CountingDenoiser(denoiser)
    sampler = Sampler(counted, grid, solver)
    alpha0, sigma0 = float(grid.alpha[0]), float(grid.sigma[0])
    reference = problem.reference(alpha0, sigma0, sigma0)
    start = time.perf_counter()
    out = sampler(problem.noise)
    seconds = time.perf_counter() - start
    if counted.calls != sampler.nfe:
        raise RuntimeError(f"NFE mismatch: counted {counted.calls}, planned {sampler.nfe}")
    return Run("schedalg", label or solver, system_grid, counted.calls, problem.error(out, reference), seconds, note)


def schedalg_runs(problem: Problem, budget: int, *, gits: GitsCache,
                  schedule_names: tuple[str, ...] | None = None,
                  grid_names: tuple[str, ...] | None = None) -> Iterator[Run]:
    """Every solver on every schedule and grid that fits ``budget`` network evaluations."""
    builders = _grid_builders(gits)
    del builders["log_snr_80"]  # the same grid as log_snr where the schedule starts at sigma/alpha = 80
    for name, schedule in schedules().items():
        if schedule_names and name not in schedule_names:
            continue
        denoiser = problem.denoiser(schedule)
        for grid_name, builder in builders.items():
            if grid_names and grid_name not in grid_names:
                continue
            for solver in SOLVERS + (VARIANCE_SOLVERS if name == "linear" else ()):
                grid = _fit_budget(lambda steps: builder(name, schedule, steps), solver, budget)
                if grid is not None:
                    yield _run(problem, denoiser, grid, solver, f"{name}/{grid_name}", label=_label(solver))


def converted_runs(problem: Problem, budget: int, *, gits: GitsCache) -> Iterator[Run]:
    """A VP-trained denoiser served on linear-schedule grids through schedule conversion."""
    source = problem.denoiser(sa.schedules.vp_linear())
    target = sa.schedules.linear()
    builders = _grid_builders(gits)
    # vp_linear reaches log-SNR -10.05 only: grids start at sigma/alpha = 80 (log-SNR -8.76)
    for grid_name in ("log_snr_80", "karras"):
        for solver in ("dpmpp_2m", "dpmpp_3m", "heun"):
            grid = _fit_budget(lambda steps: builders[grid_name]("linear", target, steps), solver, budget)
            if grid is None:
                continue
            try:
                yield _run(problem, source, grid, solver, f"vp_linear->linear/{grid_name}", "converted")
            except sa.SchedalgError as exc:  # e.g. a grid time outside the source's log-SNR range
                print(f"  [skip] converted {solver} {grid_name}: {exc}")


def lazy_runs(problem: Problem, budget: int) -> Iterator[Run]:
    """schedalg.lazy's variance-preserving lazy ODE (uniform in the angle), data standardized."""
    from schedalg.lazy import Standardization, lazy_nfe, lazy_ode_sample

    standardization = Standardization.given(float(problem.data.mean()), float(problem.data.std()))
    denoiser = problem.denoiser(sa.schedules.linear())
    reference = problem.reference(0.0, 1.0, 1.0)
    for solver in ("euler", "heun", "midpoint"):
        steps = max((s for s in range(1, budget + 1) if lazy_nfe(solver, s) <= budget), default=None)
        if steps is None:
            continue
        counted = CountingDenoiser(denoiser)
        start = time.perf_counter()
        out = lazy_ode_sample(counted, problem.noise, standardization, steps=steps, solver=solver)
        seconds = time.perf_counter() - start
        yield Run("schedalg", f"lazy_{solver}", "lazy_ode/uniform_angle", counted.calls,
                  problem.error(out, reference), seconds, "lazy")


def selection_noise(problem: Problem, batch: int) -> torch.Tensor:
    """Calibration noise for :func:`calibrated_runs` (seed :data:`SELECTION_SEED`, never the evaluation noise)."""
    return torch.randn(batch, problem.data.shape[1], dtype=torch.float64,
                       generator=torch.Generator().manual_seed(SELECTION_SEED))


def calibrated_runs(problem: Problem, budget: int, *, calibration: torch.Tensor,
                    rhos: tuple[float, ...] | None = None) -> Iterator[Run]:
    """The (schedule, grid, solver) chosen on ``calibration`` noise, measured once on the evaluation noise."""
    denoiser = problem.denoiser(sa.schedules.linear())
    grid_schedules = {"linear": sa.schedules.linear(), "trigonometric": sa.schedules.trigonometric()}
    selection = select_sampler(denoiser, calibration, budget, schedules=grid_schedules,
                               solvers=SELECTION_SOLVERS, rhos=rhos or SELECTION_RHOS)
    best = selection.best
    solver = sa.sampling.get_solver(best.solver, **dict(best.options))
    label = best.solver + "".join(f"({k}={v})" for k, v in best.options)
    yield _run(problem, denoiser, best.grid, solver, f"{best.schedule}/power(rho={best.rho:g})",
               f"calibrated on {calibration.shape[0]} separate samples (calibration error {best.error:.3e}; "
               f"{len(selection.candidates)} candidates)", label=label)
