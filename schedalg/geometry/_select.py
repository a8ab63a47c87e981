"""Choose a sampling plan (sampling schedule, time grid, solver) for a model and a budget.

``plan = select_sampler(model, calibration_noise, budget)`` measures candidates instead
of predicting them. The model (a :class:`schedalg.models.Denoiser`) is trained on a span
of its schedule (:meth:`schedalg.Schedule.truncate`); every candidate runs on that span:

1. **Teacher.** The probability-flow ODE from ``calibration_noise`` at the model's noise
   end to its data end, solved by RK4 on ``teacher_steps`` steps of a power grid
   (``rho = 2``) in the time of the linear schedule truncated to the model's log-SNR span
   (its velocity ``x0_hat - eps_hat`` stays finite at both ends), mapped back to the
   model's coordinates. A second solve on half the steps estimates the teacher's error
   (Richardson, order 4). Its evaluations count in the planning cost.
2. **Sampling schedules.** The model's own, and (default) the linear path, the SD3-style
   shifted linear path (``shift = 3``, Esser et al. 2024), the trigonometric / VP-cosine
   path (also the lazy ODE family of unstandardized data, Damsholt et al. 2026), a
   variance-preserving schedule in log-SNR time and EDM's ``sigma`` time: each is
   truncated to the model's log-SNR span and served through the schedule algebra's
   conversion (:class:`schedalg.models.ConvertedDenoiser`). Families that do not cover
   the span (e.g. EDM time for a model whose noise end is pure noise) are left out.
3. **Grids** in each schedule's own time: power warps
   ``t_k = t_data + (t_noise - t_data)(1 - k/N)^rho`` (``rho = 1`` uniform), EDM's
   rho = 7 spacing, equal log-SNR steps (where the span's log-SNR is finite), and a GITS
   grid (Chen et al. 2024): the least-cost path through the teacher's trajectory for
   DDIM jumps, computed once in log-SNR and mapped into every schedule.
4. **Solvers**: Runge-Kutta (Heun, midpoint, Heun3, RK4, 3/8 rule), multistep Adams
   (``ipndm``, variable-step ``adams``), DPM-Solver++ 2M/3M and the variance-aware 2M.

Every candidate's endpoint is mapped to the model's coordinates at the span's data end
(``x_model = x_candidate / c(t_data)``, ``c`` the conversion scale) and scored there
against the teacher: error = mean over samples of the RMS per dimension. Candidates with
a non-finite endpoint or an error as large as the teacher's endpoint itself are unstable
and never chosen; if none is left a :class:`SchedalgError` says so. The choice is robust
to the calibration batch: the batch is split into ``splits`` groups and a candidate's
score is its mean error plus the standard deviation of its group errors; candidates
within ``tie`` (relative) of the best score are near-ties, and the simplest of them
(model's own schedule, uniform grid, fewest stages, in that order) is returned.
Planning cost is counted in batch network evaluations and capped at ``max_evaluations``.

A flow map (:mod:`schedalg.flowmaps`) is planned the same way, with jump grids as candidates
(``N`` jumps for ``N`` = 1, 2, 4, ... up to the budget, and the budget itself; the fewest jumps win
near-ties): see :func:`select_sampler`. :func:`choose_steps` (the a-posteriori
step count of seed 004) is this selection on uniform grids.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import sympy as sp
import torch

from ..errors import SchedalgError
from ..models import Denoiser
from ..symbolic import Schedule

__all__ = ["Candidate", "Selection", "power_times", "endpoint_error", "select_sampler", "sampling_schedules",
           "jump_counts", "StepChoice", "choose_steps", "VARIANCES", "DEFAULT_SOLVERS", "DEFAULT_RHOS", "DEFAULT_GRIDS", "MAX_EVALUATIONS"]

#: Default data variances tried for solvers that take a ``variance`` option and are listed without one.
VARIANCES: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1)
#: Solvers searched by default (simplest first: on near-ties the earlier one wins).
DEFAULT_SOLVERS: tuple[Any, ...] = ("heun", "midpoint", "ipndm", "adams", "dpmpp_2m", "dpmpp_3m", "heun3", "rk4",
                                    "rk4_38", ("vdpmpp_2m", {"variance": 0.01}))
#: Power-warp exponents searched by default.
DEFAULT_RHOS: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
#: Grid families searched by default (simplest first).
DEFAULT_GRIDS: tuple[str, ...] = ("power", "karras", "log_snr", "gits")
#: Most batch network evaluations one selection may spend (teacher included).
MAX_EVALUATIONS = 10_000
#: The SD3 shift of the shifted linear family.
SD3_SHIFT = 3.0


@dataclass(frozen=True)
class Candidate:
    """One measured candidate.

    ``schedule`` (name), ``grid_family`` and ``rho`` (power warps; ``None`` otherwise),
    ``solver`` and ``options``, the ``grid`` (a :class:`~schedalg.sampling.TimeGrid` on the
    truncated sampling schedule), ``nfe``, ``error`` (mean calibration error in the model's
    coordinates), ``spread`` (standard deviation of the group errors), ``score`` (``error
    + spread``), ``output_scale`` (``1 / c(t_data)``, candidate -> model coordinates) and
    ``rank`` (simplicity; lower is simpler).
    """

    schedule: str
    rho: float | None
    solver: str
    options: tuple[tuple[str, Any], ...]
    grid: Any
    nfe: int
    error: float
    spread: float = 0.0
    grid_family: str = "power"
    output_scale: float = 1.0
    rank: tuple[int, ...] = ()

    @property
    def score(self) -> float:
        return self.error + self.spread

    @property
    def stable(self) -> bool:
        return math.isfinite(self.error)

    @property
    def label(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.options)
        grid = f"power(rho={self.rho:g})" if self.grid_family == "power" else self.grid_family
        return f"{self.solver}{extra} on {self.schedule}/{grid}"


@dataclass(frozen=True)
class Selection:
    """The plan for one budget: every measured candidate (best score first) and the choice.

    ``best`` is the chosen candidate (the simplest near-tie of the best score);
    ``cost`` the planning cost in batch network evaluations (teacher included);
    ``teacher_error`` the estimated error of the teacher (same measure as ``error``);
    ``unstable`` the candidates left out for non-finite or diverged endpoints.
    :meth:`sampler` returns the ready sampler.
    """

    budget: int
    candidates: tuple[Candidate, ...]
    choice: int = 0
    cost: int = 0
    teacher_error: float = 0.0
    unstable: tuple[Candidate, ...] = ()
    model: Any = field(default=None, repr=False)

    @property
    def best(self) -> Candidate:
        return self.candidates[self.choice]

    def __repr__(self) -> str:  # a plan has hundreds of candidates: show the choice, not the list
        best = self.best
        options = "".join(f", {k}={v!r}" for k, v in best.options)
        return (f"Selection(budget={self.budget}: {best.solver}{options} on {best.schedule!r}, {best.grid!r}; "
                f"calibration error {best.error:.4g}; {len(self.candidates)} candidates, "
                f"{len(self.unstable)} unstable; cost {self.cost} batch evaluations)")

    def sampler(self):
        """A :class:`schedalg.geometry.PlannedSampler` for :attr:`best`: ``sampler(noise)`` starts at the
        model's noise end and returns the state in the model's coordinates at its span's data end. For a
        flow map, a :class:`schedalg.flowmaps.FlowMapSampler` (the best jumps, in the map's own time).
        Either is called as ``sampler(noise, seed=...)`` and exports with :func:`schedalg.sampling.export_sampler`."""
        from ..flowmaps import FlowMapSampler, is_flow_map
        from ..sampling import get_solver
        from ._plan import PlannedSampler

        best = self.best
        if is_flow_map(self.model):
            return FlowMapSampler(self.model, best.grid)
        return PlannedSampler.for_model(self.model, best.grid, get_solver(best.solver, **dict(best.options)))


def power_times(schedule: Schedule, steps: int, rho: float) -> torch.Tensor:
    """``t_k = t_data + (t_noise - t_data)(1 - k/N)^rho``, k = 0..N (float64, noise end first)."""
    from ..sampling import TimeGrid

    return TimeGrid.power(schedule, steps, rho).times


def endpoint_error(endpoint: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over the batch of the RMS per dimension of ``endpoint - reference``."""
    return float(_sample_errors(endpoint, reference).mean())


def _sample_errors(endpoint: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    if endpoint.shape != reference.shape:
        raise SchedalgError("an endpoint of the reference's shape", f"{tuple(endpoint.shape)} vs "
                            f"{tuple(reference.shape)}", "sample from the same noise as the reference")
    diff = (endpoint.to(torch.float64) - reference.to(torch.float64)).reshape(reference.shape[0], -1)
    return diff.pow(2).mean(1).sqrt()


# ---------------------------------------------------------------------- schedules


def _shifted_linear(shift: float) -> Schedule:
    """SD3's shifted linear path: noise fraction ``s' = shift s / (1 + (shift - 1) s)``, ``s = 1 - t``."""
    from ..symbolic import t

    denominator = 1 + (sp.nsimplify(shift) - 1) * (1 - t)
    return Schedule(alpha=t / denominator, sigma=sp.nsimplify(shift) * (1 - t) / denominator,
                    name=f"shifted_linear({shift:g})")


def _log_snr_time(low: float, high: float) -> Schedule:
    """Variance preserving in log-SNR time: ``alpha^2 = sigmoid(t)``, ``sigma^2 = sigmoid(-t)``, ``t = lambda``."""
    from ..symbolic import t

    return Schedule(alpha=1 / sp.sqrt(1 + sp.exp(-t)), sigma=1 / sp.sqrt(1 + sp.exp(t)),
                    domain=(sp.Float(low), sp.Float(high)), name="vp_log_snr_time", truncated=True)


def sampling_schedules(model_schedule: Schedule) -> dict[str, Schedule]:
    """The default sampling schedules for a model, each truncated to the model's log-SNR span.

    Families whose log-SNR range does not cover the model's span are left out.
    """
    from ..schedules import edm, linear, trigonometric

    low, high = model_schedule.log_snr_range
    families: dict[str, Schedule] = {"own": model_schedule, "linear": linear(),
                                     f"shifted_linear({SD3_SHIFT:g})": _shifted_linear(SD3_SHIFT),
                                     "trigonometric": trigonometric()}
    if math.isfinite(low) and math.isfinite(high):
        families["vp_log_snr_time"] = _log_snr_time(low, high)
    if math.isfinite(low):
        sigma_max = math.exp(-low / 2)
        families["edm_sigma_time"] = edm(sigma_max * 1.5)
    out = {}
    for name, schedule in families.items():
        if name == "own":
            out[name] = schedule
            continue
        s_low, s_high = schedule.log_snr_range
        if s_low > low or s_high < high:
            continue
        out[name] = schedule.truncate(log_snr=(low, high))
    return out


# ---------------------------------------------------------------------- options


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


# ---------------------------------------------------------------------- counting


class _Counted:
    """A denoiser whose prepared calls are counted (one call = one batch network evaluation)."""

    def __init__(self, inner: Denoiser):
        self.inner = inner
        self.schedule = inner.schedule
        self.calls = 0

    def prepare(self, times: torch.Tensor, *args: Any, **kwargs: Any):
        prepared = self.inner.prepare(times, *args, **kwargs)
        owner = self

        class _Prepared:
            def __call__(self, x, i, **cond):
                owner.calls += 1
                return prepared(x, i, **cond)

            def __getattr__(self, name):
                if name in ("raw", "affine_output"):  # keep every call countable (no fused loop)
                    raise AttributeError(name)
                return getattr(prepared, name)

        return _Prepared()


# ---------------------------------------------------------------------- selection


def _check_inputs(model: Any, calibration_noise: Any, budget: Any) -> bool:
    """Check the three arguments; True when ``model`` is a flow map, False for a denoiser."""
    from ..flowmaps import is_flow_map

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SchedalgError("a budget of network evaluations >= 1 (an int)", repr(budget), "pass e.g. budget=10")
    if not isinstance(calibration_noise, torch.Tensor) or calibration_noise.dim() < 2:
        raise SchedalgError("calibration noise as a torch.Tensor (B, ...)", type(calibration_noise).__name__,
                            "draw it with a generator seeded apart from the evaluation noise")
    if is_flow_map(model):
        return True
    if not isinstance(getattr(model, "schedule", None), Schedule) or not callable(getattr(model, "prepare", None)):
        raise SchedalgError("a schedalg.models.Denoiser (with .schedule and .prepare(times)) or a flow map "
                            "(callable (x, s, t) with .schedule and .velocity, see schedalg.flowmaps)",
                            type(model).__name__, "wrap your network with schedalg.models.NetworkDenoiser or "
                            "schedalg.flowmaps.FlowMap")
    return False


def jump_counts(budget: int) -> tuple[int, ...]:
    """The default jump counts of a flow map at ``budget``: the powers of two up to it, and ``budget`` itself."""
    counts = {budget}
    n = 1
    while n <= budget:
        counts.add(n)
        n *= 2
    return tuple(sorted(counts))


def select_sampler(model: Any, calibration_noise: torch.Tensor, budget: int, *,
                   schedules: Mapping[str, Schedule] | None = None,
                   solvers: Sequence[str | tuple[str, Mapping[str, Any]]] | None = None,
                   rhos: Sequence[float] | None = None, grids: Sequence[str] | None = None,
                   teacher_steps: int = 96, variances: Sequence[float] = VARIANCES, splits: int = 4,
                   tie: float = 0.05, max_evaluations: int = MAX_EVALUATIONS, steps: Sequence[int] | None = None,
                   teacher: Denoiser | None = None, score: Callable[[torch.Tensor], float] | None = None,
                   tolerance: float = 0.0) -> Selection:
    """The plan for ``model`` at ``budget`` network evaluations per sample (see the module docstring).

    ``model``: a :class:`schedalg.models.Denoiser`, or a flow map (:mod:`schedalg.flowmaps`), whose
    candidates are jump grids (below). Only the first three arguments are needed. ``schedules``
    (name -> schedule; each is truncated to the model's span), ``solvers``, ``rhos`` and ``grids``
    (families among :data:`DEFAULT_GRIDS`) narrow or widen the search; ``variances`` are tried for
    variance-aware solvers listed without one. ``score(samples) -> float`` (lower is better)
    replaces the endpoint error against the teacher (then no teacher is solved, ``spread`` is 0 and
    ``teacher_error`` NaN); candidates within ``tie`` (relative) plus ``tolerance`` (absolute) of the
    best score are near-ties.

    Flow maps (Boffi, Albergo & Vanden-Eijnden, arXiv 2406.07507: the number of jumps is chosen after
    training). A candidate is ``N`` jumps ``X_{t_k, t_{k+1}}`` (``N`` evaluations) for ``N`` in
    ``steps`` (default :func:`jump_counts`: 1, 2, 4, ... and ``budget``, those <= ``budget``) on each
    grid family of each sampling schedule. Jumps do not depend on the schedule the map is served in
    (``X^B = c X^A(./c)`` telescopes), so a schedule only places the times: each grid is mapped to the
    map's own time (``tau`` of :func:`schedalg.convert`, ends exact) and the map runs there, answering
    in its own coordinates. The reference is the fine RK4 solve (as for denoisers) of ``teacher`` (a
    :class:`~schedalg.models.Denoiser` in the map's schedule, e.g. the velocity model the map was
    distilled from) or, by default, of the map's own diagonal ``b_t = v_{t,t}``
    (:func:`schedalg.flowmaps.velocity_denoiser`: exact for the oracles; for a learned map it carries
    the distillation error of the diagonal, so pass the teacher when you have it). Near-ties go to
    the fewest jumps. A flow map runs in the dtype of ``calibration_noise`` (denoisers in float64).
    """
    from ..sampling import Sampler, TimeGrid, get_solver
    from ..symbolic import convert

    flow = _check_inputs(model, calibration_noise, budget)
    schedule_of_model = model.schedule
    schedule_of_model.require_bound("plan a sampler for it")
    if score is not None and not callable(score):
        raise SchedalgError("score as a callable samples -> float (lower is better)", type(score).__name__, None)
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0.0):
        raise SchedalgError("tolerance >= 0 (absolute, in units of the score)", repr(tolerance), None)
    if flow:
        if solvers is not None:
            raise SchedalgError("no solvers for a flow map (its candidates are jump counts)", f"solvers={solvers!r}",
                                "pass steps=(1, 2, 4) instead")
        jumps = _jump_steps(jump_counts(budget) if steps is None else steps, budget)
        if teacher is not None and not _teacher_fits(teacher, schedule_of_model):
            raise SchedalgError("a teacher Denoiser in the flow map's schedule", f"{type(teacher).__name__} on "
                                f"{getattr(getattr(teacher, 'schedule', None), 'name', None)!r}",
                                "serve it in the map's schedule: schedalg.models.ConvertedDenoiser(teacher, "
                                "flow_map.schedule)")
        if teacher is None and score is None:
            from ..flowmaps import velocity_denoiser

            teacher = velocity_denoiser(model)
        noise = calibration_noise
    else:
        if steps is not None or teacher is not None:
            raise SchedalgError("steps= and teacher= for a flow map only", "a denoiser model",
                                "drop them (a denoiser is its own teacher; solvers set the steps)")
        teacher = model
        noise = calibration_noise.to(torch.float64)
    counted = _Counted(teacher) if teacher is not None else None
    families = sampling_schedules(schedule_of_model) if schedules is None else {
        name: (s if _same_span(s, schedule_of_model) else s.truncate(log_snr=schedule_of_model.log_snr_range))
        for name, s in schedules.items()}
    no_gits = flow or score is not None  # GITS grids are DDIM paths through the teacher's trajectory
    grid_families = tuple((tuple(g for g in DEFAULT_GRIDS if g != "gits") if no_gits else DEFAULT_GRIDS)
                          if grids is None else grids)
    unknown = set(grid_families) - set(DEFAULT_GRIDS)
    if unknown:
        raise SchedalgError(f"grid families among {DEFAULT_GRIDS}", f"{sorted(unknown)}", None)
    if no_gits and "gits" in grid_families:
        raise SchedalgError("grid families without 'gits' for a flow map or a custom score",
                            f"grids={grid_families!r}", "drop 'gits' (it needs the teacher's ODE path and DDIM jumps)")
    if score is None:
        reference, teacher_error, trajectory = _teacher(counted, noise, teacher_steps)
        scale_ref = float(_sample_errors(reference, torch.zeros_like(reference)).mean())
    else:
        reference, teacher_error, trajectory, scale_ref = None, math.nan, None, math.inf
    rho_values = tuple(DEFAULT_RHOS if rhos is None else rhos)
    gits = _GitsPath(counted, trajectory) if "gits" in grid_families else None
    groups = _groups(noise.shape[0], splits)
    measured, unstable = [], []
    spent = [0]  # batch evaluations of the flow-map candidates (denoiser candidates count through `counted`)

    def cost() -> int:
        return (0 if counted is None else counted.calls) + spent[0]

    def measure(out: torch.Tensor) -> tuple[float, float]:
        if score is not None:
            return float(score(out)), 0.0
        errors = _sample_errors(out, reference)
        group_errors = torch.stack([errors[g].mean() for g in groups])
        return float(errors.mean()), (float(group_errors.std()) if len(groups) > 1 else 0.0)

    def keep(candidate: Candidate) -> None:
        stable = math.isfinite(candidate.error) and candidate.error < scale_ref
        (measured if stable else unstable).append(candidate)

    grid_list = _grid_list(grid_families, rho_values)
    if flow:
        from ..flowmaps import FlowMapSampler

        for s_rank, (schedule_name, schedule) in enumerate(families.items()):
            for g_rank, (family, rho) in enumerate(grid_list):
                for n in jumps:
                    if cost() + n > max_evaluations:
                        break
                    try:
                        grid = _in_own_time(_build_grid(TimeGrid, schedule, family, rho, n, None), schedule_of_model)
                        sampler = FlowMapSampler(model, grid)
                        spent[0] += n
                        out = sampler(noise)
                    except SchedalgError:
                        continue
                    error, spread = measure(out)
                    keep(Candidate(schedule_name, rho, "flow_map", (), grid, n, error, spread, family, 1.0,
                                   (n, s_rank, g_rank)))
    else:
        entries = _expand_variances([_options_of(e) for e in (DEFAULT_SOLVERS if solvers is None else solvers)],
                                    variances)
        solver_objects = [(name, options, get_solver(name, **dict(options))) for name, options in entries]
        for s_rank, (schedule_name, schedule) in enumerate(families.items()):
            output_scale = 1.0 if _same_span(schedule, schedule_of_model) else 1.0 / float(
                convert(schedule_of_model, schedule).scale(torch.tensor([float(schedule.t_data)],
                                                                        dtype=torch.float64))[0])
            for g_rank, (family, rho) in enumerate(grid_list):
                for v_rank, (name, options, solver) in enumerate(solver_objects):
                    if cost() + budget > max_evaluations:
                        break
                    try:
                        grid = _fit_budget(lambda n: _build_grid(TimeGrid, schedule, family, rho, n, gits),
                                           solver, budget)
                        if grid is None:
                            continue
                        sampler = Sampler(counted, grid, solver)
                        out = sampler(noise) * output_scale
                    except SchedalgError:
                        continue
                    error, spread = measure(out)
                    keep(Candidate(schedule_name, rho, name, options, grid, sampler.nfe, error, spread, family,
                                   output_scale, (s_rank, g_rank, v_rank)))
    if not measured:
        detail = f"{len(unstable)} unstable (non-finite or diverged)" if unstable else "none fits"
        raise SchedalgError(f"at least one candidate that fits {budget} network evaluations and stays finite",
                            detail, "raise the budget or add cheaper solvers (e.g. 'euler')")
    measured.sort(key=lambda c: c.score)
    threshold = measured[0].score * (1.0 + tie) + tolerance
    near = [i for i, c in enumerate(measured) if c.score <= threshold]
    choice = min(near, key=lambda i: measured[i].rank)
    return Selection(budget, tuple(measured), choice, cost(), teacher_error, tuple(unstable), model)


def _jump_steps(steps: Any, budget: int) -> tuple[int, ...]:
    """The jump counts to try: ints >= 1, those within ``budget``."""
    try:
        counts = [int(n) for n in steps]
    except (TypeError, ValueError):
        counts = []
    if not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in steps):
        raise SchedalgError("jump step counts, ints >= 1", repr(steps), "e.g. steps=(1, 2, 4, 8)")
    within = sorted({n for n in counts if n <= budget})
    if not within:
        raise SchedalgError(f"at least one jump step count <= the budget {budget}", repr(tuple(counts)),
                            "raise the budget or add smaller step counts")
    return tuple(within)


def _teacher_fits(teacher: Any, schedule: Schedule) -> bool:
    return (isinstance(getattr(teacher, "schedule", None), Schedule) and callable(getattr(teacher, "prepare", None))
            and _same_span(teacher.schedule, schedule))


def _in_own_time(grid: Any, model: Schedule) -> Any:
    """A flow map's jump grid from ``grid`` (any schedule on the model's span): the interior times mapped
    to ``model``'s own time (``tau`` of the conversion model -> grid schedule, the same log-SNR points),
    the ends the span's own (a family that stops short of an end, e.g. Karras at ``sigma = 0``, only
    places the interior times: the jumps always run the whole span)."""
    from ..sampling import TimeGrid
    from ..symbolic import convert

    inner = grid.times[1:-1].to(torch.float64)
    if not _same_span(grid.schedule, model):
        inner = convert(model, grid.schedule).time(inner)
    ends = torch.tensor([float(model.t_noise), float(model.t_data)], dtype=torch.float64)
    times = torch.cat([ends[:1], inner, ends[1:]])
    if _same_span(grid.schedule, model) and bool(torch.equal(times, grid.times.to(torch.float64))):
        return grid
    return TimeGrid.from_times(model, times)


def _same_span(schedule: Schedule, model: Schedule) -> bool:
    return schedule is model or (schedule.alpha == model.alpha and schedule.sigma == model.sigma
                                 and tuple(schedule.domain) == tuple(model.domain))


def _groups(batch: int, splits: int) -> list[slice]:
    count = max(1, min(int(splits), batch // 4))
    bounds = [round(k * batch / count) for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _grid_list(families: Sequence[str], rhos: Sequence[float]) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    for family in families:
        if family == "power":
            out += [("power", float(r)) for r in rhos]
        else:
            out.append((family, None))
    return out


def _build_grid(grid_type: Any, schedule: Schedule, family: str, rho: float | None, steps: int,
                gits: "_GitsPath | None") -> Any:
    if family == "power":
        return grid_type.power(schedule, steps, rho)
    if family == "karras":
        return grid_type.karras(schedule, steps)
    if family == "log_snr":
        return grid_type.log_snr_uniform(schedule, steps)
    return grid_type.from_times(schedule, gits.times(schedule, steps))


def _fit_budget(build: Any, solver: Any, budget: int) -> Any:
    """The grid with the most steps whose exact NFE for ``solver`` fits ``budget`` (None if none)."""
    steps = budget
    while steps >= 1:
        grid = build(steps)
        nfe = solver.nfe(grid)
        if nfe <= budget:
            return grid
        steps = min(steps - 1, int(budget * steps / nfe))  # NFE is close to proportional to the steps
    return None


def _teacher(counted: _Counted, noise: torch.Tensor, steps: int) -> tuple[torch.Tensor, float, Any]:
    """RK4 endpoints (model coordinates) on ``steps`` and ``steps // 2`` power steps in linear time.

    Returns ``(endpoint, estimated error, (schedule, times, states))``: the fine run's
    states at every grid time, in the linear schedule's coordinates (for GITS).
    """
    from ..sampling import Sampler, TimeGrid
    from ..schedules import linear
    from ..symbolic import convert

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 4:
        raise SchedalgError("teacher_steps >= 4 (an int)", repr(steps), "e.g. teacher_steps=96")
    model = counted.schedule
    path = linear()
    low, high = model.log_snr_range
    if (low, high) != path.log_snr_range:
        path = path.truncate(log_snr=(low, high))
    scale = 1.0 / float(convert(model, path).scale(torch.tensor([float(path.t_data)], dtype=torch.float64))[0])
    runs = []
    states = []
    for n in (steps, steps // 2):
        grid = TimeGrid.power(path, n, 2.0)
        sampler = Sampler(counted, grid, "rk4")
        keep = []
        out = None
        for step in sampler.iterate(noise):
            if n == steps:
                keep.append(step.x)
            out = step.x_next
        if n == steps:
            states = keep + [out]
            times = grid.times
        runs.append(out * scale)
    estimate = float(_sample_errors(runs[0], runs[1]).mean()) / 15.0  # fourth order: (2^4 - 1)
    return runs[0], estimate, (path, times, torch.stack(states))


class _GitsPath:
    """GITS (Chen et al. 2024) on the teacher: DDIM jump costs between teacher states, in log-SNR.

    Every fourth teacher time is a candidate; a jump ``i -> j`` costs the RMS error (model
    coordinates) of one DDIM step from the teacher's state at ``i`` to time ``j``, which is
    the same step in every schedule, so the least-cost path is computed once and mapped to
    each schedule through its log-SNR (ends exact).
    """

    def __init__(self, counted: _Counted, trajectory: Any, stride: int = 4):
        from ..models import ConvertedDenoiser
        from ..symbolic import convert
        from ._gits import jump_costs

        path, times, states = trajectory
        index = list(range(0, times.numel(), stride))
        if index[-1] != times.numel() - 1:
            index.append(times.numel() - 1)
        self.fine = times[index]
        scale = convert(counted.schedule, path).scale(self.fine)
        served = ConvertedDenoiser(counted, path) if not _same_span(path, counted.schedule) else counted
        self.costs = jump_costs(served, states[index], self.fine, weight=lambda _t: 1.0 / scale)
        self.log_snr = path.compile().log_snr(self.fine)
        self._paths: dict[int, list[int]] = {}

    def times(self, schedule: Schedule, steps: int) -> torch.Tensor:
        from ._gits import least_cost_path

        if steps not in self._paths:
            self._paths[steps] = list(least_cost_path(self.costs, steps)[0])
        lam = self.log_snr[self._paths[steps]]
        inner = schedule.compile().t_of_log_snr(lam[1:-1], check=False)
        ends = torch.tensor([float(schedule.t_noise), float(schedule.t_data)], dtype=torch.float64)
        return torch.cat([ends[:1], inner, ends[1:]])


class StepChoice(NamedTuple):
    """The chosen step count and every candidate's score (lower is better)."""

    steps: int
    scores: dict[int, float]


def choose_steps(flow_map: Any, noise: torch.Tensor, score: Callable[[torch.Tensor], float] | None = None,
                 candidates: Sequence[int] = (1, 2, 4, 8), tolerance: float = 0.0, *,
                 teacher: Any = None) -> StepChoice:
    """Choose the number of jumps after training: the fewest whose score is within ``tolerance`` of the best.

    Boffi, Albergo & Vanden-Eijnden (arXiv 2406.07507): the step count of a flow map is an
    a-posteriori choice. This is the planner's selection (:func:`schedalg.geometry.select_sampler`
    on a flow map) restricted to uniform grids in the map's own time, ``N`` in ``candidates``, with
    near-ties at ``tolerance`` (absolute, no relative tie), so the two cannot disagree.
    ``noise``: held-out calibration noise (not the evaluation noise); ``score(samples)``: a number,
    lower is better (e.g. a squared MMD to calibration data); by default the planner's criterion:
    the endpoint error against a fine ODE solve of ``teacher`` (a denoiser in the map's schedule)
    or of the map's own diagonal (mean RMS plus its spread over sub-batches); ``tolerance``: how much
    worse than the best candidate is acceptable (e.g. the score's sampling noise).
    """
    from ..flowmaps import FlowMapError

    candidates = tuple(candidates)
    if not candidates or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in candidates):
        raise FlowMapError("candidate step counts, ints >= 1", repr(candidates), "e.g. (1, 2, 4, 8)")
    counts = sorted(set(candidates))
    if not tolerance >= 0.0:
        raise FlowMapError("tolerance >= 0", repr(tolerance), None)
    schedule = getattr(flow_map, "schedule", None)
    selection = select_sampler(flow_map, noise, counts[-1], schedules={"own": schedule}, grids=("power",),
                               rhos=(1.0,), steps=counts, teacher=teacher, score=score, tie=0.0,
                               tolerance=float(tolerance))
    scores = {c.nfe: c.score for c in selection.candidates + selection.unstable}
    return StepChoice(selection.best.nfe, dict(sorted(scores.items())))
