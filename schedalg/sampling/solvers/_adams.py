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
Every weight times ``alpha'``/``sigma'`` at its node is a plan coefficient, so a step is
one :func:`combine` of the state and the remembered predictions.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Callable, Sequence

import sympy as sp
import torch

from .._grid import TimeGrid
from .._solver import Denoise, Plan, Solver, SolverError, combine, register_solver

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
    """Shared plan and loop: per step, weights ``w_j`` on the last ``k`` velocities."""

    order = MAX_ORDER

    def __init__(self, order: int = MAX_ORDER):
        self.order = _check_order(order)  # type: ignore[misc]

    def _weights(self, times: list[float], i: int, k: int) -> tuple[float, ...]:
        raise NotImplementedError

    def nfe(self, grid: TimeGrid) -> int:
        return grid.n_steps

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        """``x0_j``/``eps_j``: ``h_i w_j alpha'(t_{i-j})`` and ``h_i w_j sigma'(t_{i-j})`` (0 beyond the history)."""
        times, h = grid.values("times"), grid.values("dt")
        d_alpha, d_sigma = grid.values("d_alpha"), grid.values("d_sigma")
        out: dict[str, list[float]] = {f"{p}_{j}": [] for j in range(self.order) for p in ("x0", "eps")}
        for i in range(grid.n_steps):
            k = min(i + 1, self.order)
            weights = self._weights(times, i, k)
            for j in range(self.order):
                w = h[i] * weights[j] if j < k else 0.0
                out[f"x0_{j}"].append(w * d_alpha[i - j] if w else 0.0)
                out[f"eps_{j}"].append(w * d_sigma[i - j] if w else 0.0)
        return out

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        x0, eps = denoise(x, i)
        history = ((x0, eps),) + memory
        terms = [(1.0, x)]
        for j, (m0, e0) in enumerate(history):
            terms += [(plan[f"x0_{j}"][i], m0), (plan[f"eps_{j}"][i], e0)]
        return combine(*terms), x0, history[: self.order - 1]


@register_solver
class AdamsBashforth(_AdamsFamily):
    """Variable-step Adams-Bashforth of order ``k`` (default 4): weights derived for the actual steps."""

    name = "adams"

    def _weights(self, times: list[float], i: int, k: int) -> tuple[float, ...]:
        return adams_weights([times[i], times[i + 1]] + [times[i - j] for j in range(1, k)])


@register_solver
class IPNDM(_AdamsFamily):
    """iPNDM: the fixed uniform-step Adams-Bashforth weights (orders 1..4 while the history fills)."""

    name = "ipndm"

    def _weights(self, times: list[float], i: int, k: int) -> tuple[float, ...]:
        return tuple(float(w) for w in IPNDM_WEIGHTS[k - 1])
