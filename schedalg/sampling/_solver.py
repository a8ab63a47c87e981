"""The solver interface: one small unit per integration scheme, coefficients as data.

A solver integrates the generation dynamics of a schedule from the noise end to the
data end of a :class:`~schedalg.sampling.TimeGrid`, using only the pair
``(x0_hat, eps_hat)`` a prepared :class:`schedalg.models.Denoiser` returns, in the
sampling schedule's own coordinates: the probability-flow ODE

    dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat

(own time ``t``, either direction), or the SDE family of the stochastic interpolants
(Damsholt et al. 2026) in generation time ``tau`` (``d tau = |dt|``):

    dX = [b + e s] d tau + sqrt(2 e) dW,   s = -eps_hat / sigma.

Work is split in two phases so that the loop does no SymPy work and no host-device
synchronization:

1. :meth:`Solver.plan` (before the loop, host side, float64): the evaluation grid, the
   per-step coefficients as plain Python floats, the exact number of network
   evaluations and of standard-normal draws. Non-finite coefficients are reported here.
2. :meth:`Solver.step` (in the loop): a few tensor operations with those floats.

Each concrete solver lives in its own file in :mod:`schedalg.sampling.solvers` and is
registered under a short name (:data:`SOLVERS`, :func:`get_solver`).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, NamedTuple, Sequence

import torch

from ._errors import SolverError
from ._grid import TimeGrid

__all__ = ["Solver", "Plan", "Denoise", "AffineStep", "SOLVERS", "register_solver", "get_solver", "combine"]

#: ``denoise(x, k) -> (x0_hat, eps_hat)`` at index ``k`` of the plan's evaluation grid.
Denoise = Callable[[torch.Tensor, int], "tuple[torch.Tensor, torch.Tensor]"]

#: Registry: solver name -> solver class.
SOLVERS: dict[str, type["Solver"]] = {}


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything a solver needs for one grid, computed before the loop.

    Attributes
    ----------
    solver, grid:
        The solver and the sampling grid (``grid.n_steps`` steps).
    eval_grid:
        The times at which the denoiser is evaluated; the denoiser is prepared on
        ``eval_grid.times`` and ``denoise(x, k)`` refers to its index ``k``.
    coefficients:
        ``name -> tuple of floats`` (one per step, float64 values as Python floats).
    nfe:
        Exact number of network evaluations of a run.
    noise_draws:
        Number of standard-normal draws of the state's shape a run consumes (0 for
        deterministic solvers); draw ``j`` is used at step ``j`` unless the solver says otherwise.
    """

    solver: "Solver"
    grid: TimeGrid
    eval_grid: TimeGrid
    coefficients: Mapping[str, tuple[float, ...]]
    nfe: int
    noise_draws: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> tuple[float, ...]:
        return self.coefficients[name]


class AffineStep(NamedTuple):
    """A step that is one affine combination of one evaluation at index ``i`` of the evaluation grid:

        x_{i+1} = x x_i + x0 x0_hat(x_i) + eps eps_hat(x_i) + noise xi_i

    (Python floats from the plan; a zero weight means the term is left out, as in :func:`combine`).
    """

    x: float
    x0: float
    eps: float
    noise: float = 0.0


class Solver(abc.ABC):
    """Base class of the solvers.

    Class attributes: ``name`` (registry key), ``order`` (declared convergence order:
    global error ``O(h^order)`` for deterministic solvers, weak order for stochastic
    ones), ``stochastic``.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 1
    stochastic: ClassVar[bool] = False

    # ------------------------------------------------------------------ planning (host side)

    def evaluation_grid(self, grid: TimeGrid) -> TimeGrid:
        """Times at which the denoiser is evaluated (default: the grid itself)."""
        return grid

    @abc.abstractmethod
    def nfe(self, grid: TimeGrid) -> int:
        """Exact number of network evaluations on ``grid``."""

    def noise_draws(self, grid: TimeGrid) -> int:
        """Standard-normal draws (of the state's shape) a run consumes."""
        return grid.n_steps if self.stochastic else 0

    @abc.abstractmethod
    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, Sequence[float]]:
        """Per-step coefficients (float64 math, returned as Python floats)."""

    def plan(self, grid: TimeGrid) -> Plan:
        """Build the :class:`Plan` for ``grid``: evaluation grid, coefficients, counts."""
        if not isinstance(grid, TimeGrid):
            raise SolverError("a schedalg.sampling.TimeGrid", type(grid).__name__,
                              "build one with TimeGrid.uniform(schedule, steps) or another constructor")
        eval_grid = self.evaluation_grid(grid)
        raw = self.coefficients(grid, eval_grid)
        coefficients = {}
        for key, values in raw.items():
            floats = tuple(float(v) for v in values)
            bad = [i for i, v in enumerate(floats) if not math.isfinite(v)]
            if bad:
                i = bad[0]
                raise SolverError(
                    f"finite {self.name} coefficients on every step",
                    f"{key}[{i}] = {floats[i]} at t = {float(grid.times[i]):.6g} -> "
                    f"{float(grid.times[i + 1]):.6g} on {grid.schedule.name!r}",
                    "start or end the grid strictly inside the domain (t_start/t_end), "
                    "or pick a solver suited to this end of the schedule",
                )
            coefficients[key] = floats
        return Plan(self, grid, eval_grid, coefficients, self.nfe(grid), self.noise_draws(grid))

    # ------------------------------------------------------------------ the loop

    def init_memory(self) -> tuple:
        """State carried between steps (e.g. past predictions of multistep solvers)."""
        return ()

    @abc.abstractmethod
    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """One step ``i`` from ``grid.times[i]`` to ``grid.times[i+1]``.

        Returns ``(x_next, x0_hat, memory)``, where ``x0_hat`` is the denoised prediction
        at the current state ``x`` (exposed to callbacks). ``noise`` is the step's
        standard-normal draw (stochastic solvers) or ``None``.
        """

    def affine(self, plan: Plan, i: int) -> AffineStep | None:
        """Step ``i`` as an :class:`AffineStep` (same result as :meth:`step`), or None if it is not one.

        Declaring it lets the sampler fuse the step with an affine denoiser's output map
        (:mod:`schedalg.sampling._fused`). Default: None (multistep and multi-evaluation solvers).
        """
        return None

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


def register_solver(cls: type[Solver]) -> type[Solver]:
    """Class decorator: register ``cls`` under ``cls.name`` in :data:`SOLVERS`."""
    if not cls.name:
        raise SolverError("a solver class with a non-empty name", cls.__name__, "set the class attribute `name`")
    SOLVERS[cls.name] = cls
    return cls


def get_solver(solver: str | Solver, **options: Any) -> Solver:
    """A :class:`Solver` from a registry name (``"euler"``, ``"dpmpp_2m"``, ...) or an instance."""
    if isinstance(solver, Solver):
        if options:
            raise SolverError("options only with a solver name", f"an instance plus {sorted(options)}",
                              "configure the instance itself")
        return solver
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise SolverError(f"a solver name among {sorted(SOLVERS)} or a Solver instance", repr(solver), None)
    try:
        return SOLVERS[solver](**options)
    except TypeError as exc:
        raise SolverError(f"valid options for solver {solver!r}", f"{sorted(options)}", str(exc)) from exc


def combine(*terms: tuple[float, torch.Tensor | None]) -> torch.Tensor:
    """``sum_k c_k T_k`` with Python-float coefficients; terms with ``c_k == 0`` are skipped.

    Skipping exact zeros (decided on the host, from plan coefficients) keeps undefined
    inputs out, e.g. ``eps_hat`` at a point-mass start where its coefficient is 0.
    The first non-zero term fixes the dtype; the sum uses fused ``add(.., alpha=c)``.
    """
    out = None
    for c, tensor in terms:
        if c == 0.0:
            continue
        if out is None:
            first, first_c = tensor, c
            out = tensor if c == 1.0 else tensor * c  # (a bare first term is never modified in place)
        elif out is first and first_c == 1.0:
            out = torch.add(first, tensor, alpha=c)
        else:
            out.add_(tensor, alpha=c)
    if out is None:
        return torch.zeros_like(next(tensor for _, tensor in terms if tensor is not None))
    return out.clone() if out is first and first_c == 1.0 else out
