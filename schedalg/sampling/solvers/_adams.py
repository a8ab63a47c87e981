"""Adams-Bashforth multistep solvers on the probability-flow velocity in the schedule's own time.

The probability-flow ODE ``dx/dt = b(x, t) = alpha'(t) x0_hat + sigma'(t) eps_hat`` is
integrated with one network evaluation per step from the past velocities
``b_i, b_{i-1}, ..., b_{i-k+1}`` at ``t_i, ..., t_{i-k+1}``:

    x_{i+1} = x_i + h_i sum_{j<k} w_j b_{i-j},    h_i = t_{i+1} - t_i.

``adams`` (variable-step Adams-Bashforth): ``w_j = int_0^1 L_j(u) du``, ``L_j`` the
Lagrange basis on the nodes ``u_j = (t_{i-j} - t_i) / h_i`` (``u_0 = 0``), i.e. the exact
integral of the interpolant of the past velocities over the step. SymPy derives
``w_j(u_1, ..., u_{k-1})`` once per order (:func:`adams_weight_exprs`) and the formulas
are compiled to plain Python functions; on uniform steps (``u_j = -j``) they are the
classical Adams-Bashforth weights, and every step is exact when ``b`` is a polynomial
of degree ``< k`` in ``t`` (``proofs/prove_adams.py``).

``ipndm`` (improved pseudo numerical method, Zhang & Chen 2023 "DEIS", and the fixed
weights used by Zhou et al. 2024 "AMED"): the uniform-step weights whatever the steps,

    1;  (3, -1)/2;  (23, -16, 5)/12;  (55, -59, 37, -9)/24,

with the lower orders while the history fills (step ``i`` uses ``min(i + 1, 4)`` past
velocities).

Both start with lower orders (the first step is Euler), so on a fixed grid family the
warm-up's local error ``O(h^2)`` bounds the global error asymptotically; the update
itself has order ``k`` from exact history (tested). ``order`` picks ``k`` in 1..4.
The program keeps the past velocities ``b_j = alpha'(t_j) x0_hat_j + sigma'(t_j) eps_hat_j`` as the
solver's memory (``order - 1`` of them) and combines ``x_i + h_i sum_j w_j b_{i-j}``; the weights
``h_i w_j`` are recorded as ``v0 .. v3`` in the program's coefficients.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Callable, Sequence

import sympy as sp

from .._grid import TimeGrid
from .._program import ProgramBuilder
from .._solver import Solver, SolverError, register_solver

__all__ = ["AdamsBashforth", "IPNDM", "IPNDM_WEIGHTS", "adams_weight_exprs", "adams_weights", "MAX_ORDER"]

#: Highest order of the Adams solvers here.
MAX_ORDER = 4

#: The fixed iPNDM weights by number of past velocities (newest first).
IPNDM_WEIGHTS: tuple[tuple[Fraction, ...], ...] = (
    (Fraction(1),),
    (Fraction(3, 2), Fraction(-1, 2)),
    (Fraction(23, 12), Fraction(-16, 12), Fraction(5, 12)),
    (Fraction(55, 24), Fraction(-59, 24), Fraction(37, 24), Fraction(-9, 24)),
)

#: Node symbols ``u_1, u_2, u_3`` (past nodes in units of the current step, negative).
NODES = sp.symbols("u1:4", real=True)


@lru_cache(maxsize=None)
def adams_weight_exprs(order: int) -> tuple[sp.Expr, ...]:
    """``(w_0, ..., w_{k-1})``: ``w_j = int_0^1 L_j(u) du`` in the node symbols ``u_1..u_{k-1}``.

    ``L_j(u) = prod_{m != j} (u - u_m)/(u_j - u_m)`` on the nodes ``u_0 = 0, u_1, ...``.
    """
    _check_order(order)
    u = sp.Symbol("u", real=True)
    nodes = (sp.Integer(0),) + NODES[: order - 1]
    out = []
    for j in range(order):
        basis = sp.Integer(1)
        for m in range(order):
            if m != j:
                basis *= (u - nodes[m]) / (nodes[j] - nodes[m])
        out.append(sp.factor(sp.integrate(sp.expand(basis), (u, 0, 1))))
    return tuple(out)


@lru_cache(maxsize=None)
def _compiled_weights(order: int) -> Callable[..., tuple[float, ...]]:
    """The weights of :func:`adams_weight_exprs` as one float64 Python function of ``u_1..u_{k-1}``."""
    function = sp.lambdify(NODES[: order - 1], list(adams_weight_exprs(order)), modules="math")
    return lambda *nodes: tuple(float(w) for w in function(*nodes))


def adams_weights(times: Sequence[float]) -> tuple[float, ...]:
    """Variable-step Adams-Bashforth weights for the step ``times[0] -> times[1]`` (float64).

    ``times = (t_i, t_{i+1}, t_{i-1}, ..., t_{i-k+1})``: the current time, the next one,
    then the past nodes newest first. Returns ``(w_0, ..., w_{k-1})`` with
    ``x_{i+1} = x_i + (t_{i+1} - t_i) sum_j w_j b_{i-j}``.
    """
    if len(times) < 2:
        raise SolverError("the current and next time, then the past nodes", f"{len(times)} times", None)
    current, following, past = float(times[0]), float(times[1]), [float(v) for v in times[2:]]
    h = following - current
    return _compiled_weights(len(past) + 1)(*[(v - current) / h for v in past])


def _check_order(order: object) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
        raise SolverError(f"an integer order in 1..{MAX_ORDER}", repr(order), "e.g. order=4")
    return order


class _AdamsFamily(Solver):
    """Shared program: per step, weights ``h_i w_j`` on the last ``k`` velocities."""

    order = MAX_ORDER

    def __init__(self, order: int = MAX_ORDER):
        self.order = _check_order(order)  # type: ignore[misc]

    def _weights(self, times: list[float], i: int, k: int) -> tuple[float, ...]:
        raise NotImplementedError

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        times, h = grid.values("times"), grid.values("dt")
        d_alpha, d_sigma = grid.values("d_alpha"), grid.values("d_sigma")
        recorded: dict[str, list[float]] = {f"v{j}": [] for j in range(self.order)}
        x, velocities = b.state, []
        for i in range(grid.n_steps):
            k = min(i + 1, self.order)
            x0, eps = b.evaluate(x, i)
            velocities = [b.combine((d_alpha[i], x0), (d_sigma[i], eps))] + velocities[: self.order - 1]
            weights = [h[i] * w for w in self._weights(times, i, k)] + [0.0] * (self.order - k)
            for j, w in enumerate(weights):
                recorded[f"v{j}"].append(w)
            x = b.combine((1.0, x), *zip(weights, velocities))
            b.end_step(x, x0)
        b.record(**recorded)


@register_solver("adams")
class AdamsBashforth(_AdamsFamily):
    """Variable-step Adams-Bashforth of order ``k`` (default 4): weights derived for the actual steps."""

    def _weights(self, times: list[float], i: int, k: int) -> tuple[float, ...]:
        return adams_weights([times[i], times[i + 1]] + [times[i - j] for j in range(1, k)])


@register_solver("ipndm")
class IPNDM(_AdamsFamily):
    """iPNDM: the fixed uniform-step Adams-Bashforth weights (orders 1..4 while the history fills)."""

    def _weights(self, times: list[float], i: int, k: int) -> tuple[float, ...]:
        return tuple(float(w) for w in IPNDM_WEIGHTS[k - 1])
