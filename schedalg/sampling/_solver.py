"""The solver interface and the one registry of solvers.

A solver integrates the generation dynamics of a schedule from the noise end to the data
end of a :class:`~schedalg.sampling.TimeGrid`, using only the pair ``(x0_hat, eps_hat)`` a
prepared :class:`schedalg.models.Denoiser` returns: the probability-flow ODE

    dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat

(own time ``t``, either direction), or the SDE family of the stochastic interpolants
(Damsholt et al. 2026) in generation time ``tau`` (``d tau = |dt|``):

    dX = [b + e s] d tau + sqrt(2 e) dW,   s = -eps_hat / sigma.

A solver does its work once, before the loop (host side, float64): :meth:`Solver.plan`
writes the :class:`~schedalg.sampling.Program` of a grid, i.e. which evaluations at which
times and which weights on states, predictions, memory and noise, step by step
(:meth:`Solver.write`). The loop only runs that program (:mod:`schedalg.sampling._program`).

Solvers are registered by name in :data:`SOLVERS` with :func:`register_solver`: a class
(a :class:`Solver` subclass) or a :class:`~schedalg.sampling.Tableau` (an explicit
Runge-Kutta method, :mod:`schedalg.sampling._tableau`). The registry serves every stack:
the schedule samplers, the lazy samplers (:mod:`schedalg.lazy`) and the augmented ones
(:mod:`schedalg.augmented`, the tableaux with matrix weights).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._errors import SolverError
from ._grid import TimeGrid
from ._program import Program, ProgramBuilder

__all__ = ["Solver", "SOLVERS", "register_solver", "get_solver"]

#: Registry: solver name -> solver class.
SOLVERS: dict[str, type["Solver"]] = {}


class Solver:
    """Base class of the solvers: write the program of a grid (:meth:`write`).

    Class attributes: ``name`` (registry key, set by :func:`register_solver`), ``order``
    (declared convergence order: global error ``O(h^order)`` for deterministic solvers,
    weak order for stochastic ones), ``stochastic``.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 1
    stochastic: ClassVar[bool] = False

    def evaluation_grid(self, grid: TimeGrid) -> TimeGrid:
        """Times at which the denoiser is evaluated (default: the grid itself)."""
        return grid

    def noise_draws(self, grid: TimeGrid) -> int:
        """Standard-normal draws (of the state's shape) a run consumes: one per step when stochastic."""
        return grid.n_steps if self.stochastic else 0

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        """Write every step into ``b`` (``b.evaluate``, ``b.combine``, ``b.noise``, ``b.end_step``)."""
        raise NotImplementedError(f"{type(self).__name__}.write")

    def plan(self, grid: TimeGrid) -> Program:
        """The :class:`Program` of this solver on ``grid`` (weights in float64, counts exact)."""
        if not isinstance(grid, TimeGrid):
            raise SolverError("a schedalg.sampling.TimeGrid", type(grid).__name__,
                              "build one with TimeGrid.uniform(schedule, steps) or another constructor")
        eval_grid = self.evaluation_grid(grid)
        b = ProgramBuilder(grid.n_steps, eval_grid.times, noise_draws=self.noise_draws(grid))
        self.write(b, grid, eval_grid)
        if b.bad is not None:
            i, weight = b.bad
            raise SolverError(
                f"finite {self.name} coefficients on every step",
                f"a weight {weight} at step {i}: t = {float(grid.times[i]):.6g} -> "
                f"{float(grid.times[i + 1]):.6g} on {grid.schedule.name!r}",
                "start or end the grid strictly inside the domain (t_start/t_end), "
                "or pick a solver suited to this end of the schedule",
            )
        return b.build(eval_grid=eval_grid, grid=grid, solver=self)

    def nfe(self, grid: TimeGrid) -> int:
        """Exact number of network evaluations on ``grid``."""
        return self.plan(grid).nfe

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


def register_solver(name: str, solver: Any = None, *, order: int | None = None, replace: bool = False) -> Any:
    """Register ``solver`` under ``name`` in :data:`SOLVERS` and return the registered class.

    ``solver`` is a :class:`Solver` subclass, or a :class:`~schedalg.sampling.Tableau` (an
    explicit Runge-Kutta method; its order is read from the order conditions unless
    ``order`` is given). Without ``solver`` this is a class decorator. An existing name is an
    error unless ``replace=True``. Two examples::

        from schedalg.sampling import Solver, Tableau, register_solver

        # Ralston's second-order method: data only (schedule, lazy and augmented samplers)
        register_solver("ralston", Tableau(c=(0, "2/3"), a=((), ("2/3",)), b=("1/4", "3/4")))

        @register_solver("ddim_again", order=1)
        class DDIMAgain(Solver):
            \"\"\"x_{i+1} = alpha_{i+1} x0_hat + sigma_{i+1} eps_hat (one evaluation per step).\"\"\"

            def write(self, b, grid, eval_grid):
                alpha, sigma, x = grid.values("alpha"), grid.values("sigma"), b.state
                for i in range(grid.n_steps):
                    x0, eps = b.evaluate(x, i)
                    x = b.combine((alpha[i + 1], x0), (sigma[i + 1], eps))
                    b.end_step(x, x0)
    """
    if solver is None:
        return lambda cls: register_solver(name, cls, order=order, replace=replace)
    if not isinstance(name, str) or not name.isidentifier():
        raise SolverError("a solver name that is an identifier (e.g. 'my_rk')", repr(name), None)
    if name in SOLVERS and not replace:
        raise SolverError(f"a new solver name (not one of {sorted(SOLVERS)})", repr(name),
                          "pick another name, or pass replace=True to replace the registered solver")
    if callable(getattr(solver, "solver_class", None)):  # a Tableau
        cls = solver.solver_class(name, order)
    elif isinstance(solver, type) and issubclass(solver, Solver):
        cls = solver
        if any(registered is cls for registered in SOLVERS.values()):  # registered already: a subclass of its own
            cls = type(cls.__name__, (cls,), {"__doc__": cls.__doc__, "__module__": cls.__module__})
        if order is not None:
            cls.order = order
    else:
        raise SolverError("a Solver subclass or a Tableau", type(solver).__name__,
                          "subclass schedalg.sampling.Solver, or describe the method as a Tableau")
    if isinstance(cls.order, bool) or not isinstance(cls.order, int) or cls.order < 1:
        raise SolverError("a declared order >= 1", repr(cls.order), "pass order=")
    cls.name = name
    SOLVERS[name] = cls
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
