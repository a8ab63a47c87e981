"""Generic schedules for the conversion proofs, built with the package's own objects.

Source ``(alpha(t), sigma(t))`` and destination ``A = c(t) alpha(tau(t))``, ``S = c(t) sigma(tau(t))``
(undefined functions: every pair with equal log-SNR at ``tau`` has this form) as
:class:`schedalg.Schedule` objects, and the conversion pieces ``(c, tau', c')`` that
:func:`schedalg.symbolic.conversion_formulas` gives for them, in ``s``.
"""

import sympy as sp

import schedalg as sa
from schedalg.symbolic import PIECES, conversion_formulas, s

t = sa.t
alpha, sigma = sp.Function("alpha", positive=True), sp.Function("sigma", positive=True)
tau, c = sp.Function("tau", real=True), sp.Function("c", positive=True)
_u = sp.Dummy("u")
q = sp.Symbol("q", positive=True)


def at_tau(expr: sp.Expr) -> sp.Expr:
    """A source quantity (in t) at t = tau(s)."""
    return expr.subs(t, _u).subs(_u, tau(s))


def in_s(expr: sp.Expr) -> sp.Expr:
    """A destination quantity (in t) at t = s."""
    return expr.subs(t, s)


def generic_pair():
    """``(src, dst, (c, tau', c'))``: package schedules and the package's conversion pieces."""
    src = sa.Schedule(alpha=alpha(t), sigma=sigma(t), name="src")
    dst = sa.Schedule(alpha=c(t) * alpha(tau(t)), sigma=c(t) * sigma(tau(t)), name="dst")
    symbols, exprs = conversion_formulas()
    values = [in_s(getattr(dst, n)) for n in PIECES] + [at_tau(getattr(src, n)) for n in PIECES]
    subs = dict(zip(symbols, values))
    return src, dst, tuple(e.xreplace(subs) for e in exprs)


def zero_inside(residual: sp.Expr, schedule: sa.Schedule, symbol: sp.Symbol = t) -> bool:
    """``residual == 0`` inside the domain ``(0, hi)``: directly, or with ``symbol = hi q/(1 + q)``,
    ``q > 0`` (which tells SymPy the signs of ``symbol`` and ``hi - symbol``)."""
    hi = schedule.domain[1]
    return sp.simplify(residual) == 0 or sp.simplify(residual.subs(symbol, hi * q / (1 + q))) == 0


def h_phi_symbolic(k, step):
    """h phi_k(-h) in SymPy: phi_1(z) = (e^z - 1)/z, phi_{k+1}(z) = (phi_k(z) - 1/k!)/z."""
    z = -step
    value = (sp.exp(z) - 1) / z
    for j in range(2, k + 1):
        value = (value - 1 / sp.factorial(j - 1)) / z
    return step * value
