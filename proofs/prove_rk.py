"""Order conditions of the explicit Runge-Kutta tableaux in schedalg.sampling.solvers._rk (Butcher trees)."""

from __future__ import annotations

import sympy as sp

from schedalg.sampling.solvers._rk import CLASSICAL_RK4, HEUN3, KUTTA3


def _conditions(tableau, order: int) -> list[sp.Expr]:
    """Residuals of the Butcher order conditions up to ``order`` (trees with at most 4 nodes)."""
    c = sp.Matrix([sp.Rational(v.numerator, v.denominator) for v in tableau.c])
    s = len(c)
    a = sp.zeros(s, s)
    for j, row in enumerate(tableau.a):
        for l, v in enumerate(row):
            a[j, l] = sp.Rational(v.numerator, v.denominator)
    b = sp.Matrix([sp.Rational(v.numerator, v.denominator) for v in tableau.b]).T
    ones = sp.ones(s, 1)
    cc = c.multiply_elementwise(c)
    out = [(a * ones - c)]  # row-sum condition c = A 1
    conditions = [(b * ones)[0] - 1]
    if order >= 2:
        conditions.append((b * c)[0] - sp.Rational(1, 2))
    if order >= 3:
        conditions += [(b * cc)[0] - sp.Rational(1, 3), (b * a * c)[0] - sp.Rational(1, 6)]
    if order >= 4:
        conditions += [(b * cc.multiply_elementwise(c))[0] - sp.Rational(1, 4),
                       (b * c.multiply_elementwise(a * c))[0] - sp.Rational(1, 8),
                       (b * a * cc)[0] - sp.Rational(1, 12), (b * a * a * c)[0] - sp.Rational(1, 24)]
    return list(out[0]) + conditions


def test_heun3_satisfies_the_third_order_conditions():
    """Heun3: sum b = 1, b.c = 1/2, b.c^2 = 1/3, b.A c = 1/6, and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(HEUN3, 3))


def test_kutta3_satisfies_the_third_order_conditions():
    """Kutta's RK3: the four third-order conditions and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(KUTTA3, 3))


def test_classical_rk4_satisfies_the_fourth_order_conditions():
    """Classical RK4: the eight conditions of the trees with at most four nodes, and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(CLASSICAL_RK4, 4))


def test_order_conditions_detect_a_wrong_tableau():
    """Kutta's RK3 is not fourth order: at least one fourth-order condition has a non-zero residual."""
    assert any(sp.simplify(r) != 0 for r in _conditions(KUTTA3, 4))
