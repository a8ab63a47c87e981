"""Order conditions of the explicit Runge-Kutta tableaux in schedalg.sampling.solvers._rk (Butcher trees),
and the weights of the single-step DPM-Solver-3 (schedalg.sampling.solvers._dpm_single)."""

from __future__ import annotations

import sympy as sp

from schedalg.sampling.solvers._rk import CLASSICAL_RK4, HEUN3, KUTTA3, THREE_EIGHTHS


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
    conditions = list(a * ones - c)  # row-sum condition c = A 1
    conditions.append((b * ones)[0] - 1)
    if order >= 2:
        conditions.append((b * c)[0] - sp.Rational(1, 2))
    if order >= 3:
        conditions += [(b * cc)[0] - sp.Rational(1, 3), (b * a * c)[0] - sp.Rational(1, 6)]
    if order >= 4:
        conditions += [(b * cc.multiply_elementwise(c))[0] - sp.Rational(1, 4),
                       (b * c.multiply_elementwise(a * c))[0] - sp.Rational(1, 8),
                       (b * a * cc)[0] - sp.Rational(1, 12), (b * a * a * c)[0] - sp.Rational(1, 24)]
    return conditions


def test_heun3_satisfies_the_third_order_conditions():
    """Heun3: sum b = 1, b.c = 1/2, b.c^2 = 1/3, b.A c = 1/6, and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(HEUN3, 3))


def test_kutta3_satisfies_the_third_order_conditions():
    """Kutta's RK3: the four third-order conditions and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(KUTTA3, 3))


def test_classical_rk4_satisfies_the_fourth_order_conditions():
    """Classical RK4: the eight conditions of the trees with at most four nodes, and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(CLASSICAL_RK4, 4))


def test_three_eighths_rule_satisfies_the_fourth_order_conditions():
    """Kutta's 3/8 rule: the eight conditions of the trees with at most four nodes, and A 1 = c."""
    assert all(sp.simplify(r) == 0 for r in _conditions(THREE_EIGHTHS, 4))


def test_order_conditions_detect_a_wrong_tableau():
    """Kutta's RK3 is not fourth order: at least one fourth-order condition has a non-zero residual."""
    assert any(sp.simplify(r) != 0 for r in _conditions(KUTTA3, 4))


def test_dpm_3s_weights_integrate_a_linear_prediction_exactly():
    """int_0^h e^{u-h} (D0 + D1 u) du = h phi_1(-h) D0 + h^2 phi_2(-h) D1, phi_1(z) = (e^z-1)/z, phi_2(z) = (e^z-1-z)/z^2."""
    u, h, d0, d1 = sp.symbols("u h D0 D1", positive=True)
    z = -h
    phi1, phi2 = (sp.exp(z) - 1) / z, (sp.exp(z) - 1 - z) / z**2
    integral = sp.integrate(sp.exp(u - h) * (d0 + d1 * u), (u, 0, h))
    assert sp.simplify(integral - (h * phi1 * d0 + h**2 * phi2 * d1)) == 0


def test_dpm_3s_stage_two_weight_matches_the_published_form():
    """(r2 h)^2 phi_2(-r2 h)/(r1 h) = (r2/r1) (expm1(-r2 h)/(r2 h) + 1): the D(x_1) - D0 weight of stage 2."""
    h, r1, r2 = sp.symbols("h r1 r2", positive=True)
    z = -r2 * h
    phi2 = (sp.exp(z) - 1 - z) / z**2
    published = r2 / r1 * ((sp.exp(-r2 * h) - 1) / (r2 * h) + 1)
    assert sp.simplify((r2 * h) ** 2 * phi2 / (r1 * h) - published) == 0
