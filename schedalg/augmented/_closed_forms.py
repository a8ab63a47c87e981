"""Which integrals the augmented layer hands to SymPy: a structural gate, no time budget.

``sympy.integrate`` can run for minutes on an integrand it cannot do, so it is called only
on integrands of two classes whose antiderivatives are elementary and found by SymPy's
standard algorithms (Risch for exp-polynomials; Euler's substitutions for one square root
of a quadratic), each with bounds on size and degree:

* **exp-polynomials** in ``x``: finite sums of ``c x^n exp(a x) cos(b x)`` or
  ``... sin(b x)`` with numbers ``a, b, c`` and ``n <= MAX_DEGREE`` (polynomials included).
  These are the Lyapunov integrands ``exp(r F0) Q0 exp(r F0)^T`` of constant matrices and
  the integrals of polynomial ``B - F``.
* **rational in one exponential with one square root**: with ``w = exp(g x)`` (``g`` the
  largest rational dividing every exponent of ``x``), ``f(x) dx = R(w, sqrt(P(w))) dw / (g w)``
  with ``R`` rational and ``P`` a polynomial of degree at most 2 (e.g. VP's
  ``exp(u/2) / (2 sqrt(1 - exp(-u)))``, where ``w = exp(u/2)`` and the root is
  ``sqrt(w^2 - 1) / w``).

Everything else goes to the numeric path (quadrature or the ordered exponential) at once.
The decision reads only the expression's structure, so the same declaration derives the
same forms on every machine, whatever its load or hash seed. An accepted antiderivative is
checked: its derivative equals the integrand at :data:`CHECK_POINTS` to 30 digits.
"""

from __future__ import annotations

from typing import Any

import mpmath
import sympy as sp

__all__ = ["exp_polynomial", "rational_in_exp", "integrable", "antiderivative", "MAX_DEGREE", "MAX_OPS"]

#: Largest power of ``x`` in an exp-polynomial term, and of ``w`` in a rational function.
MAX_DEGREE = 6
#: Largest integrand (SymPy operation count, after expansion) handed to ``sympy.integrate``.
MAX_OPS = 120
#: Points (fractions of the integration variable's scale) where antiderivatives are checked.
CHECK_POINTS = (sp.Rational(1, 7), sp.Rational(1, 2), sp.Rational(5, 4))


def _number(expr: sp.Expr) -> bool:
    return bool(expr.is_number) and expr.is_real is not False


def _linear_coefficient(arg: sp.Expr, x: sp.Symbol) -> sp.Expr | None:
    """``a`` when ``arg = a x + b`` with numbers ``a, b``; else ``None``."""
    if not arg.is_polynomial(x) or sp.degree(arg, x) > 1:
        return None
    a, b = sp.Poly(arg, x).all_coeffs() if sp.degree(arg, x) == 1 else (sp.Integer(0), arg)
    return a if _number(a) and _number(b) else None


def exp_polynomial(expr: sp.Expr, x: sp.Symbol) -> bool:
    """True when ``expr`` is a sum of ``c x^n exp(a x) {1, cos(b x), sin(b x)}`` (numbers
    ``a, b, c``; ``n <= MAX_DEGREE``) of at most :data:`MAX_OPS` operations."""
    if sp.count_ops(expr) > MAX_OPS or expr.free_symbols - {x}:
        return False
    expr = sp.expand(expr)
    if sp.count_ops(expr) > MAX_OPS:
        return False
    for term in sp.Add.make_args(expr):
        trig = 0
        for factor in sp.Mul.make_args(term):
            if not factor.has(x):
                if not _number(factor):
                    return False
                continue
            base, power = (factor, sp.Integer(1)) if isinstance(factor, sp.exp) else factor.as_base_exp()
            if base == x:
                if not (power.is_Integer and 0 < power <= MAX_DEGREE):
                    return False
            elif isinstance(base, (sp.exp, sp.sin, sp.cos)) and power.is_Integer and power > 0:
                if _linear_coefficient(base.args[0], x) is None:
                    return False
                if not isinstance(base, sp.exp):
                    trig += int(power)
                    if trig > 1:
                        return False
            else:
                return False
    return True


def rational_in_exp(expr: sp.Expr, x: sp.Symbol) -> bool:
    """True when ``expr dx = R(w, sqrt(P(w))) dw / (g w)`` with ``w = exp(g x)``, ``R``
    rational and ``P`` a polynomial of degree at most 2 (see the module docstring)."""
    if sp.count_ops(expr) > MAX_OPS or expr.free_symbols - {x}:
        return False
    exponentials = [e for e in expr.atoms(sp.exp) if e.has(x)]
    coefficients = {}
    for e in exponentials:
        arg = sp.expand(e.args[0])
        a = arg.coeff(x) if arg.is_polynomial(x) and sp.degree(arg, x) == 1 and arg.coeff(x, 0) == 0 else None
        if a is not None and a.is_Float:  # a float coefficient (vp_linear(0.1, 20)) as the rational it prints as
            a = sp.nsimplify(a, rational=True)
        if a is None or not a.is_Rational or a == 0:
            return False
        coefficients[e] = a
    if not coefficients:
        return False
    g = sp.Integer(0)
    for a in coefficients.values():
        g = sp.gcd(g, a)
    w = sp.Dummy("w", positive=True)
    in_w = expr.xreplace({e: w ** (a / g) for e, a in coefficients.items()})
    if in_w.has(x):
        return False
    roots = {p.base for p in in_w.atoms(sp.Pow) if not p.exp.is_Integer}
    if len(roots) > 1:
        return False
    y = sp.Dummy("y", positive=True)
    for base in roots:
        # sqrt(base) = sqrt(base w^(2m)) / w^m for w > 0: the radicand must become a polynomial
        # of degree <= 2 for some m = 0, 1, 2 (e.g. sqrt(1 - 1/w^2) = sqrt(w^2 - 1) / w)
        if not any(_quadratic(sp.expand(base * w ** (2 * m)), w) for m in range(3)):
            return False
        if not all((p.exp * 2).is_Integer for p in in_w.atoms(sp.Pow) if p.base == base):
            return False
        in_w = in_w.replace(lambda e: e.is_Pow and e.base == base, lambda e: y ** (2 * e.exp))
    if in_w.has(x) or not in_w.is_rational_function(w, y):
        return False
    numerator, denominator = sp.fraction(sp.together(in_w))
    return all(sp.Poly(part, w, y).total_degree() <= MAX_DEGREE for part in (numerator, denominator))


def _quadratic(expr: sp.Expr, w: sp.Symbol) -> bool:
    return bool(expr.is_polynomial(w)) and sp.degree(expr, w) <= 2


def integrable(expr: sp.Expr, x: sp.Symbol) -> bool:
    """Whether ``sympy.integrate(expr, x)`` is attempted: ``expr`` is in one of the two classes."""
    return exp_polynomial(expr, x) or rational_in_exp(expr, x)


def antiderivative(expr: sp.Expr, x: sp.Symbol) -> sp.Expr | None:
    """An antiderivative of ``expr`` in ``x`` when ``expr`` is :func:`integrable` and SymPy
    returns one free of ``Integral`` and ``Piecewise`` whose derivative matches ``expr`` at
    :data:`CHECK_POINTS` (30 digits); else ``None`` (use the numeric path)."""
    if not expr.has(x):
        return expr * x
    if not integrable(expr, x):
        return None
    simpler = sp.simplify(expr)  # bounded: expr has at most MAX_OPS operations
    if integrable(simpler, x):
        expr = simpler
    try:
        value = sp.integrate(expr, x)
    except (NotImplementedError, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return None
    if value.has(sp.Integral, sp.Piecewise) or value.has(sp.I):
        return None
    derivative = sp.lambdify(x, sp.diff(value, x), modules="mpmath")
    reference = sp.lambdify(x, expr, modules="mpmath")
    with mpmath.workdps(40):
        for point in CHECK_POINTS:
            p = mpmath.mpf(sp.N(point, 45))
            try:
                got, want = derivative(p), reference(p)
            except (ValueError, ZeroDivisionError, OverflowError):
                return None
            if abs(got - want) > mpmath.mpf(10) ** -30 * (1 + abs(want)):
                return None
    return value


def definite(expr: sp.Expr, x: sp.Symbol, lower: Any, upper: sp.Expr) -> sp.Expr | None:
    """``int_lower^upper expr dx`` from :func:`antiderivative` (``None`` when there is none)."""
    value = antiderivative(expr, x)
    if value is None:
        return None
    return value.subs(x, upper) - value.subs(x, lower)
