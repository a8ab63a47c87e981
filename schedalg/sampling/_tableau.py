"""Explicit Runge-Kutta methods as data: a Butcher tableau, written into a program by one function.

A tableau ``(c, A, b)`` (Butcher 2016, *Numerical Methods for ODEs*, section 23) applied to
``dx/dt = v(x, t)`` over a step ``t -> t + h``:

    X_j = x + h sum_{l<j} A_jl v(X_l, t + c_l h),   x_next = x + h sum_j b_j v(X_j, t + c_j h).

Every stack of schedalg has a velocity that is linear in the state and the predictions at
an evaluation ``k``:

    v = P_k X + Q_k x0_hat(X) + R_k eps_hat(X)

(the probability-flow ODE: ``P = 0``, ``Q = alpha'``, ``R = sigma'``; the lazy ODE: the same
with per-channel tensors; the augmented ODE ``dz/dt = F z + W eps``: ``P = F``, ``R = W`` as
block matrices). :func:`write_tableau_step` writes one step as combinations with the products
``h A_jl P_l`` etc. as weights; a zero entry of the tableau never touches the velocity
weights of its node (they may be infinite at an end of the schedule).

:class:`RungeKutta` is the schedule solver of a tableau: the denoiser is prepared on the
grid with each step's interior nodes inserted (``t_i``, interior nodes in order,
``t_{i+1}``, ...). Where the grid ends at ``sigma = 0`` (``eps_hat`` undefined there) a
tableau with a node ``c = 1`` takes another tableau on its last step: Euler for methods of
order 2 (EDM's final step), Heun's third-order method for orders 3 and 4 (one step of local
error ``O(h^{p+1})`` with ``p + 1`` at least the method's order keeps the global order).
The option ``final_<name of that tableau>`` (``final_euler``, ``final_heun3``; None: when
``sigma`` ends at 0) sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence

import torch

from ._errors import SolverError
from ._grid import TimeGrid
from ._program import ProgramBuilder, Weight, _product
from ._solver import Solver

__all__ = ["Tableau", "RungeKutta", "write_tableau_step", "tableau_nodes", "EULER", "HEUN3"]

Number = Any  # Fraction (exact) or float


def _number(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction, str)):
        raise SolverError("tableau entries as numbers (int, float, Fraction or a string like '1/3')", repr(value),
                          None)
    if isinstance(value, float):
        return value
    return Fraction(value)


@dataclass(frozen=True)
class Tableau:
    """An explicit Butcher tableau: nodes ``c``, strictly lower-triangular rows ``a`` (row ``j`` has ``j``
    entries), weights ``b``. Entries are Fractions (exact: ints, Fractions, strings like ``"1/3"``) or floats.

    ``Tableau(c=(0, "1/2"), a=((), ("1/2",)), b=(0, 1))`` is the explicit midpoint rule.
    """

    c: tuple
    a: tuple
    b: tuple
    label: str = ""

    def __post_init__(self) -> None:
        c = tuple(_number(v) for v in self.c)
        a = tuple(tuple(_number(v) for v in row) for row in self.a)
        b = tuple(_number(v) for v in self.b)
        s = len(b)
        if not s or len(c) != s or len(a) != s or any(len(row) != j for j, row in enumerate(a)):
            raise SolverError("s nodes c, s weights b and s rows a with row j holding j entries (explicit method)",
                              f"c {len(c)}, b {s}, row lengths {[len(row) for row in a]}",
                              "e.g. Tableau(c=(0, 1), a=((), (1,)), b=('1/2', '1/2'))")
        if c[0] != 0 or any(abs(float(sum(row, Fraction(0))) - float(cj)) > 1e-12 for row, cj in zip(a, c)):
            raise SolverError("c_1 = 0 and each node the sum of its row of a (c = A 1)", f"c = {list(map(str, c))}",
                              "set c_j = sum_l a_jl")
        if not all(0 <= float(cj) <= 1 for cj in c):
            raise SolverError("nodes in [0, 1] (inside the step)", f"c = {list(map(str, c))}", None)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def order(self) -> int:
        """The highest order ``p <= 4`` whose Butcher conditions (trees with at most 4 nodes) hold."""
        s, c, b = self.stages, [float(v) for v in self.c], [float(v) for v in self.b]
        a = [[float(row[l]) if l < len(row) else 0.0 for l in range(s)] for row in self.a]
        ac = [sum(a[j][l] * c[l] for l in range(s)) for j in range(s)]
        acc = [sum(a[j][l] * c[l] ** 2 for l in range(s)) for j in range(s)]
        aac = [sum(a[j][l] * ac[l] for l in range(s)) for j in range(s)]

        def dot(u: list[float], v: list[float]) -> float:
            return sum(x * y for x, y in zip(u, v))

        conditions = {1: [sum(b) - 1], 2: [dot(b, c) - 1 / 2],
                      3: [dot(b, [x * x for x in c]) - 1 / 3, dot(b, ac) - 1 / 6],
                      4: [dot(b, [x ** 3 for x in c]) - 1 / 4, dot(b, [x * y for x, y in zip(c, ac)]) - 1 / 8,
                          dot(b, acc) - 1 / 12, dot(b, aac) - 1 / 24]}
        order = 0
        for p in (1, 2, 3, 4):
            if any(abs(r) > 1e-12 for r in conditions[p]):
                break
            order = p
        return order

    def interior(self) -> list[Number]:
        """The distinct nodes strictly inside the step, in order."""
        return sorted({v for v in self.c if 0 < v < 1})

    def solver_class(self, name: str, order: int | None = None) -> type["RungeKutta"]:
        """A :class:`RungeKutta` subclass for this tableau (what :func:`register_solver` registers)."""
        declared = self.order if order is None else order
        if declared < 1:
            raise SolverError("a consistent tableau (sum b = 1)", f"b = {list(map(str, self.b))}", None)
        last = _last_tableau(self, declared)
        doc = (f"Explicit Runge-Kutta method {self.label or name!r} in ``t`` ({self.stages} evaluations per step, "
               f"order {declared}).")
        return type(name, (RungeKutta,), {"__doc__": doc, "tableau": self, "order": declared, "last": last,
                                          "__module__": __name__})


def tableau_nodes(times: Sequence[float], tableaux: Sequence[Tableau]) -> tuple[list[float], list[tuple[int, ...]]]:
    """The evaluation times (each step's interior nodes inserted) and each step's stage indices into them."""
    joined, stages, start = [times[0]], [], 0
    for i, tableau in enumerate(tableaux):
        interior = tableau.interior()
        h = times[i + 1] - times[i]
        joined += [times[i] + float(c) * h for c in interior] + [times[i + 1]]
        position = {Fraction(0): start, Fraction(1): start + len(interior) + 1}
        position.update({c: start + 1 + k for k, c in enumerate(interior)})
        stages.append(tuple(position[c] for c in tableau.c))
        start += len(interior) + 1
    return joined, stages


def write_tableau_step(b: ProgramBuilder, tableau: Tableau, x: int, h: Weight, stages: Sequence[int],
                       velocity: Callable[[int], tuple[Weight, Weight, Weight]]) -> tuple[int, int]:
    """Write one step of ``tableau`` from register ``x``; returns ``(x_next, x0_hat of the first stage)``.

    ``velocity(k) = (P_k, Q_k, R_k)`` are the velocity's weights on the state, ``x0_hat`` and
    ``eps_hat`` at evaluation index ``k`` (the float 0.0 where a term is absent).
    """
    inputs: list[tuple[int, int, int]] = []  # (state, x0, eps) registers of each stage

    def terms(row: Sequence[Number]) -> list[tuple[Weight, int]]:
        out: list[tuple[Weight, int]] = [(1.0, x)]
        for coefficient, (state, x0, eps), k in zip(row, inputs, stages):
            if coefficient == 0:
                continue
            # float entries for numbers and tensors; the exact entry for a symbolic step (the proofs)
            scale = _product(h, float(coefficient)) if isinstance(h, (int, float, torch.Tensor)) else h * coefficient
            for weight, register in zip(velocity(k), (state, x0, eps)):
                if not (type(weight) is float and weight == 0.0):
                    out.append((_product(scale, weight), register))
        return out

    for j, k in enumerate(stages):
        state = x if j == 0 else b.combine(*terms(tableau.a[j]))
        inputs.append((state,) + b.evaluate(state, k))
    return b.combine(*terms(tableau.b)), inputs[0][1]


F = Fraction
#: Explicit Euler (one stage).
EULER = Tableau((0,), ((),), (1,), "euler")
#: Heun's third-order method: c = (0, 1/3, 2/3), b = (1/4, 0, 3/4); it never evaluates a step's end.
HEUN3 = Tableau((0, F(1, 3), F(2, 3)), ((), (F(1, 3),), (0, F(2, 3))), (F(1, 4), 0, F(3, 4)), "heun3")


def _last_tableau(tableau: Tableau, order: int) -> Tableau | None:
    """The tableau of the last step where the grid ends at ``sigma = 0`` (None: no node at the end)."""
    if 1 not in tableau.c:
        return None
    return EULER if order <= 2 else HEUN3


class RungeKutta(Solver):
    """A schedule solver from a :class:`Tableau` (``tableau``; ``last``: the tableau of a last step ending at
    ``sigma = 0``, see the module docstring)."""

    tableau: Tableau
    last: Tableau | None = None

    def __init__(self, **options: Any):
        key = f"final_{self.last.label}" if self.last is not None else None
        unknown = set(options) - {key}
        if unknown:
            raise TypeError(f"unexpected options {sorted(unknown)}" + (f" (this solver takes {key}=)" if key else ""))
        self.final = options.get(key) if key else None
        if key:
            setattr(self, key, self.final)

    def tableaux(self, grid: TimeGrid) -> list[Tableau]:
        """The tableau of every step."""
        if self.last is None or self.final is False:
            return [self.tableau] * grid.n_steps
        use = float(grid.sigma[-1]) == 0.0 if self.final is None else bool(self.final)
        return [self.tableau] * (grid.n_steps - 1) + [self.last if use else self.tableau]

    def evaluation_grid(self, grid: TimeGrid) -> TimeGrid:
        if all(not t.interior() for t in self.tableaux(grid)):
            return grid
        joined, _ = tableau_nodes(grid.values("times"), self.tableaux(grid))
        return TimeGrid(grid.schedule, joined, label=f"{grid.label}+{self.name}_nodes")

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        tableaux = self.tableaux(grid)
        _, stages = tableau_nodes(grid.values("times"), tableaux)
        h, d_alpha, d_sigma = grid.values("dt"), eval_grid.values("d_alpha"), eval_grid.values("d_sigma")
        x = b.state
        for i, tableau in enumerate(tableaux):
            x, x0 = write_tableau_step(b, tableau, x, h[i], stages[i], lambda k: (0.0, d_alpha[k], d_sigma[k]))
            b.end_step(x, x0)
