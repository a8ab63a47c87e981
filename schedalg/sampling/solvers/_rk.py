"""Explicit single-step Runge-Kutta methods of order 3 and 4 on the probability-flow ODE in own time ``t``.

A Butcher tableau ``(c, A, b)`` (Butcher 2016, *Numerical Methods for ODEs*, section 23)
applied to ``dx/dt = b(x, t) = alpha'(t) x0_hat + sigma'(t) eps_hat``:

    X_j = x_i + h sum_{l<j} A_jl b(X_l, t_i + c_l h),   x_{i+1} = x_i + h sum_j b_j b(X_j, t_i + c_j h).

Every product ``h A_jl alpha'(t_i + c_l h)`` (and with ``sigma'``) is a plan coefficient,
so a stage is one :func:`combine` of the state and earlier predictions. The denoiser is
prepared on the grid with each step's interior nodes inserted (``t_i``, the interior
nodes in order, ``t_{i+1}``, ...). The tableaux' order conditions are proved in
``proofs/prove_rk.py``.

Where the grid ends at ``sigma = 0`` (``eps_hat`` undefined there) a tableau with a node
``c = 1`` replaces its last step by Heun's third-order method (nodes 0, 1/3, 2/3): one
step of local error ``O(h^4)`` keeps the global order of a fourth-order method, as EDM's
final Euler step keeps Heun's order 2.

=========  =====  ======  =============================================================
name       order  evals   tableau
=========  =====  ======  =============================================================
``heun3``  3      3       Heun's third order: c = (0, 1/3, 2/3), b = (1/4, 0, 3/4)
``rk3``    3      3       Kutta's third order: c = (0, 1/2, 1), b = (1/6, 2/3, 1/6)
``rk4``    4      4       classical Runge-Kutta: c = (0, 1/2, 1/2, 1), b = (1, 2, 2, 1)/6
``rk4_38`` 4      4       Kutta's 3/8 rule: c = (0, 1/3, 2/3, 1), b = (1, 3, 3, 1)/8
=========  =====  ======  =============================================================
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import ClassVar, NamedTuple

import torch

from .._grid import TimeGrid
from .._solver import Denoise, Plan, Solver, combine, register_solver

__all__ = ["Tableau", "ExplicitRungeKutta", "Heun3", "RK3", "RK4", "RK4ThreeEighths", "HEUN3", "KUTTA3", "CLASSICAL_RK4",
           "THREE_EIGHTHS"]


class Tableau(NamedTuple):
    """An explicit Butcher tableau: nodes ``c``, strictly lower-triangular ``A`` (rows), weights ``b``."""

    c: tuple[Fraction, ...]
    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]


def _tableau(c, a, b) -> Tableau:
    return Tableau(tuple(Fraction(v) for v in c), tuple(tuple(Fraction(v) for v in row) for row in a),
                   tuple(Fraction(v) for v in b))


F = Fraction
HEUN3 = _tableau((0, F(1, 3), F(2, 3)), ((), (F(1, 3),), (0, F(2, 3))), (F(1, 4), 0, F(3, 4)))
KUTTA3 = _tableau((0, F(1, 2), 1), ((), (F(1, 2),), (-1, 2)), (F(1, 6), F(2, 3), F(1, 6)))
CLASSICAL_RK4 = _tableau((0, F(1, 2), F(1, 2), 1), ((), (F(1, 2),), (0, F(1, 2)), (0, 0, 1)),
                         (F(1, 6), F(1, 3), F(1, 3), F(1, 6)))
THREE_EIGHTHS = _tableau((0, F(1, 3), F(2, 3), 1), ((), (F(1, 3),), (F(-1, 3), 1), (1, -1, 1)),
                         (F(1, 8), F(3, 8), F(3, 8), F(1, 8)))


class ExplicitRungeKutta(Solver):
    """Base of the explicit Runge-Kutta solvers: subclasses set ``name``, ``order`` and ``tableau``.

    ``final_heun3`` (default: when ``sigma`` ends at 0 and the tableau has a node ``c = 1``)
    uses :data:`HEUN3` on the last step so that the end point is never evaluated.
    """

    tableau: ClassVar[Tableau]

    def __init__(self, final_heun3: bool | None = None):
        self.final_heun3 = final_heun3

    def _tableaux(self, grid: TimeGrid) -> list[Tableau]:
        """The tableau of every step."""
        auto = float(grid.sigma[-1]) == 0.0 and self.tableau.c[-1] == 1
        last = auto if self.final_heun3 is None else bool(self.final_heun3)
        return [self.tableau] * (grid.n_steps - 1) + [HEUN3 if last else self.tableau]

    @staticmethod
    def _interior(tableau: Tableau) -> list[Fraction]:
        return sorted({c for c in tableau.c if 0 < c < 1})

    def evaluation_grid(self, grid: TimeGrid) -> TimeGrid:
        times = grid.values("times")
        joined = [times[0]]
        for i, tableau in enumerate(self._tableaux(grid)):
            h = times[i + 1] - times[i]
            joined += [times[i] + float(c) * h for c in self._interior(tableau)] + [times[i + 1]]
        return TimeGrid(grid.schedule, joined, label=f"{grid.label}+{self.name}_nodes")

    def nfe(self, grid: TimeGrid) -> int:
        return sum(len(tableau.c) for tableau in self._tableaux(grid))

    def _stage_indices(self, grid: TimeGrid) -> list[tuple[int, ...]]:
        """Index into the evaluation grid of every stage of every step."""
        out, start = [], 0
        for tableau in self._tableaux(grid):
            interior = self._interior(tableau)
            position = {F(0): start, F(1): start + len(interior) + 1}
            position.update({c: start + 1 + k for k, c in enumerate(interior)})
            out.append(tuple(position[c] for c in tableau.c))
            start += len(interior) + 1
        return out

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        """``x0_{j}_{l}``/``eps_{j}_{l}``: weight of stage ``l``'s prediction in stage ``j`` (``j = s`` is the output)."""
        h = grid.values("dt")
        d_alpha, d_sigma = eval_grid.values("d_alpha"), eval_grid.values("d_sigma")
        stages = max(len(t.c) for t in self._tableaux(grid))
        out: dict[str, list[float]] = {f"{p}_{j}_{l}": [] for j in range(1, stages + 1) for l in range(j)
                                       for p in ("x0", "eps")}
        for i, (tableau, index) in enumerate(zip(self._tableaux(grid), self._stage_indices(grid))):
            s = len(tableau.c)
            rows = {j: tableau.a[j] for j in range(1, s)} | {stages: tableau.b}
            for j in range(1, stages + 1):
                row = rows.get(j, ())
                for l in range(j):
                    weight = float(row[l]) if l < len(row) else 0.0
                    # a zero weight never touches the node's derivatives (they may be infinite at an end)
                    out[f"x0_{j}_{l}"].append(h[i] * weight * d_alpha[index[l]] if weight else 0.0)
                    out[f"eps_{j}_{l}"].append(h[i] * weight * d_sigma[index[l]] if weight else 0.0)
        return out

    def plan(self, grid: TimeGrid) -> Plan:
        plan = super().plan(grid)
        stages = self._stage_indices(grid)
        return dataclasses.replace(plan, extra={"stages": stages, "output": max(len(s) for s in stages)})

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        index = plan.extra["stages"][i]
        predictions: list[tuple[torch.Tensor, torch.Tensor]] = []
        for j, k in enumerate(index):
            state = x if j == 0 else combine((1.0, x), *self._terms(plan, i, j, predictions))
            predictions.append(denoise(state, k))
        return combine((1.0, x), *self._terms(plan, i, plan.extra["output"], predictions)), predictions[0][0], memory

    @staticmethod
    def _terms(plan: Plan, i: int, j: int, predictions: list) -> list[tuple[float, torch.Tensor]]:
        terms = []
        for l, (x0, eps) in enumerate(predictions):
            terms += [(plan[f"x0_{j}_{l}"][i], x0), (plan[f"eps_{j}_{l}"][i], eps)]
        return terms


@register_solver
class Heun3(ExplicitRungeKutta):
    """Heun's third-order method in ``t`` (nodes 0, 1/3, 2/3; never evaluates a step's end)."""

    name = "heun3"
    order = 3
    tableau = HEUN3


@register_solver
class RK3(ExplicitRungeKutta):
    """Kutta's third-order method in ``t`` (nodes 0, 1/2, 1); last step Heun3 where ``sigma`` ends at 0."""

    name = "rk3"
    order = 3
    tableau = KUTTA3


@register_solver
class RK4(ExplicitRungeKutta):
    """The classical fourth-order Runge-Kutta method in ``t``; last step Heun3 where ``sigma`` ends at 0."""

    name = "rk4"
    order = 4
    tableau = CLASSICAL_RK4


@register_solver
class RK4ThreeEighths(ExplicitRungeKutta):
    """Kutta's fourth-order 3/8 rule in ``t`` (nodes 0, 1/3, 2/3, 1); last step Heun3 where ``sigma`` ends at 0."""

    name = "rk4_38"
    order = 4
    tableau = THREE_EIGHTHS
