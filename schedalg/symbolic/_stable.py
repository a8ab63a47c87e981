"""Float64-stable rewrites of SymPy expressions (pure SymPy; the compile layer prints them)."""

from __future__ import annotations

import sympy as sp
from sympy.codegen import cfunctions

__all__ = ["stabilize"]


def stabilize(expr: sp.Expr) -> sp.Expr:
    """Rewrite ``expr`` into forms that keep float64 precision near schedule endpoints.

    ``k - k exp(z) -> -k expm1(z)`` (any constant ``k``, inside any sum) and
    ``log(1 + z) -> log1p(z)``. A single bottom-up pass: linear in the size of the
    expression (SymPy's own ``expm1_opt`` tries many factorizations and can take
    seconds). The result is mathematically equal to ``expr``.
    """
    if not isinstance(expr, sp.Basic) or expr.is_Number:
        return expr
    expr = expr.replace(lambda e: e.is_Add, _expm1_in_sum)
    return expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].is_Add, _log1p)


def _expm1_in_sum(total: sp.Add) -> sp.Expr:
    constant, rest = total.as_coeff_Add()
    if constant == 0:
        return total
    terms = sp.Add.make_args(rest)
    for term in terms:
        coefficient, factor = term.as_coeff_Mul()
        if isinstance(factor, sp.exp) and coefficient == -constant:
            others = [u for u in terms if u is not term]
            return sp.Add(coefficient * cfunctions.expm1(factor.args[0]), *others, evaluate=False)
    return total


def _log1p(logarithm: sp.log) -> sp.Expr:
    constant, rest = logarithm.args[0].as_coeff_Add()
    if constant == 1 and rest != 0:
        return cfunctions.log1p(rest)
    return logarithm
