"""One rule for values at the ends of a schedule's domain.

Floating point misses exact end values: ``cos(pi/2)`` is ``6e-17``, not 0, so a log-SNR
of ``-75`` instead of ``-inf``; ``sqrt(1 - alpha^2)`` with ``alpha(0)`` rounded above 1 is
NaN instead of 0. The value of any quantity ``q(t)`` at an end is decided here, once per
schedule and quantity (cached with the schedule's record, on disk too), and compile,
time grids and models read it through :func:`end_values`, conversions through
:func:`conversion_end_values` (the same steps on their two-argument forms):

1. a numeric (tabulated) function: its float64 value at the end;
2. otherwise the exact substitution ``q(end)`` when SymPy finds it finite and real;
3. otherwise, for a sum or product whose parts' end values (by this rule) decide it, the
   infinity or zero they give (:func:`_by_parts`, also for rational powers); for the log-SNR, at an end where one of
   ``alpha``, ``sigma`` has the value 0 and the other a finite nonzero one, ``+-inf`` (the
   limit; see :func:`_log_snr_end`);
4. otherwise the one-sided limit from inside the domain: SymPy's ``limit`` when ``q``
   has at most :data:`LIMIT_OPS` operations (a work bound, not a time budget), else (or
   when SymPy answers nothing real) the numeric limit of ``q(end +- h_k)`` evaluated at
   60 digits for ``h_k = 10^-4 ... 10^-40`` (:func:`one_sided_limit`).

The result is a float: finite, ``+-inf``, or NaN when no rule gives a value.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ._cache import decode_float, encode_float, CacheFormatError
from ._numeric import NumericFunction, numpy_namespace
from ._record import record_of
from ._symbols import TAU, lam, t
from ._symbols import s as s_symbol

__all__ = ["end_values", "value_at_end", "conversion_end_values", "one_sided_limit", "LIMIT_OPS"]

#: SymPy's ``limit`` runs only on expressions with at most this many operations.
LIMIT_OPS = 120
#: Digits of the numeric limit's evaluations.
_DPS = 60


@functools.lru_cache(maxsize=4096)
def value_at_end(expr: sp.Expr, point: sp.Expr, side: str = "+") -> float:
    """``expr`` at ``t = point`` by the rule of this module (``side`` ``"+"``: from above)."""
    if expr.atoms(NumericFunction):
        (value,) = sp.lambdify(t, [expr], modules=[numpy_namespace(expr), "numpy"])(np.array([float(point)]))
        return float(np.asarray(value).reshape(-1)[0])
    value = _substituted(expr, point)
    if value is not None:
        return value
    value = _by_parts(expr, point, side)
    if value is not None:
        return value
    if sp.count_ops(expr) <= LIMIT_OPS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                limit = sp.limit(expr, t, point, side)
            except (NotImplementedError, ValueError, TypeError, ZeroDivisionError, RecursionError):
                limit = None
        if limit is not None and (limit.is_real or limit in (sp.oo, -sp.oo)):
            return float(limit)
    return _numeric_limit(expr, point, side)


def _by_parts(expr: sp.Expr, point: sp.Expr, side: str) -> float | None:
    """The limit of a sum, product or rational power from its parts' end values (this rule, applied
    to each), where they decide it: a sum with infinite terms of one sign and finite others is that
    infinity; a product with an infinite factor and no zero one is an infinity of the product's
    sign; a product with a zero factor and finite others is 0; ``b^r`` is 0 for ``b -> 0, r > 0``
    and for ``b -> +-inf, r < 0``, and ``+inf`` for ``b -> 0`` and ``r < 0`` with an even
    denominator (a real even root: ``b > 0`` near the end). None otherwise (``0 * inf``,
    ``inf - inf``, all parts finite and nonzero, a part without a value): the whole expression
    goes to ``limit``. The parts are smaller than the whole, and ``limit``'s cost grows fast with
    size (the derivatives of a schedule at its ends were the costliest derivations)."""
    if expr.is_Pow and expr.exp.is_Rational and not expr.exp.has(t):
        base = value_at_end(expr.base, point, side)
        if base == 0 and expr.exp > 0 or math.isinf(base) and expr.exp < 0:
            return 0.0
        if base == 0 and expr.exp < 0 and expr.exp.q % 2 == 0:  # a real even root: base > 0 near the end
            return math.inf
        return None
    if not (expr.is_Add or expr.is_Mul):
        return None
    values = []
    for part in expr.args:
        value = value_at_end(part, point, side) if part.has(t) else _substituted(part, point)
        if value is None or math.isnan(value):
            return None
        values.append(value)
    infinite = [v for v in values if math.isinf(v)]
    if expr.is_Add:
        return infinite[0] if infinite and len(set(infinite)) == 1 else None
    if infinite:
        return None if 0.0 in values else math.copysign(math.inf, math.prod(math.copysign(1.0, v) for v in values))
    return 0.0 if 0.0 in values else None


def _substituted(expr: sp.Expr, point: sp.Expr, tau: sp.Expr | None = None) -> float | None:
    """``expr(point)`` (with ``TAU = tau`` for a conversion's two-argument forms) when SymPy finds
    it finite and real, else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = expr.subs({t: point} if tau is None else {t: point, TAU: tau})
    return float(value) if value.is_finite and value.is_real else None


def _numeric_limit(expr: sp.Expr, point: sp.Expr, side: str, implicit: Any = None) -> float:
    """Step 4 of the rule (numeric part). ``implicit = (symbol, function)``: ``expr`` also reads ``symbol``,
    whose value at ``x`` is ``function(x)`` (mpmath, e.g. a conversion's ``tau(s)``)."""
    if implicit is None:
        fn = sp.lambdify(t, expr, modules="mpmath")
    else:
        two = sp.lambdify((t, implicit[0]), expr, modules="mpmath")

        def fn(x):
            return two(x, implicit[1](x))
    sign = 1 if side == "+" else -1
    values = []
    with mpmath.workdps(_DPS):
        end = mpmath.mpf(sp.N(point, _DPS + 10))
        for k in range(4, 41, 4):
            try:
                value = fn(end + sign * mpmath.mpf(10) ** (-k))
            except (ValueError, ZeroDivisionError, OverflowError):
                value = mpmath.nan
            if isinstance(value, mpmath.mpc):
                value = value.real if abs(value.imag) <= 1e-40 * (1 + abs(value.real)) else mpmath.nan
            values.append(float(value) if mpmath.isfinite(value) else float(value) if mpmath.isinf(value)
                          else float("nan"))
    return one_sided_limit(values)


def end_values(schedule: Any, expr: sp.Expr | str) -> tuple[float, float]:
    """``(q(t_min), q(t_max))`` of a quantity of a bound ``schedule`` by the rule above, computed
    once per schedule and quantity (and remembered on disk).

    ``expr`` is an expression in ``t``, or the name of a schedule attribute (``"log_snr"``):
    by name, a remembered value is found without building the expression.
    """
    memo = schedule.__dict__.setdefault("_end_memo", {})
    if isinstance(expr, str):
        name = "quantity " + expr
    else:
        name = hashlib.sha256(sp.srepr(expr).encode()).hexdigest()[:32]
    if name in memo:
        return memo[name]
    record = record_of(schedule)
    stored = record.get("ends", name)
    result = None
    if isinstance(stored, list) and len(stored) == 2:
        try:
            result = (decode_float(stored[0]), decode_float(stored[1]))
        except CacheFormatError:
            result = None
    if result is None:
        quantity = getattr(schedule, expr) if isinstance(expr, str) else expr
        ends = []
        for index, side in ((0, "+"), (1, "-")):
            point, value = schedule.domain[index], None
            if expr == "log_snr" and record.key is not None:  # not tabulated
                value = _substituted(quantity, point)
                value = value if value is not None else _log_snr_end(schedule, index)
            ends.append(value if value is not None else value_at_end(quantity, point, side))
        result = (ends[0], ends[1])
        record.put("ends", name, [encode_float(result[0]), encode_float(result[1])])
    memo[name] = result
    return result


def conversion_end_values(conversion: Any) -> list[tuple[float, tuple[float, float, float, float]]]:
    """``[(s_end, (tau, c, tau', c'))]`` of a direct conversion at the destination's ends whose
    log-SNR is infinite and shared by the source, by the rule of this module.

    There the compiled forms read ``0/0``, ``inf/inf`` or ``finite/inf``. ``tau`` is the
    source's end with the same infinite log-SNR (``tau`` maps log-SNR to log-SNR). ``c``,
    ``tau'``, ``c'`` are the two-argument forms ``q(s, TAU)`` of :class:`Conversion` with
    ``TAU = tau(s)``: their exact substitution at ``(s_end, tau_end)`` when finite and
    real, otherwise the numeric limit at 60 digits (step 4; SymPy's ``limit`` would need
    ``q(s, tau(s))`` in closed form, which a numeric inverse has not) with ``tau(s)`` from the
    source's verified closed-form inverse, or solved from ``lambda_src(tau) = lambda_dst(s)``
    at 60 digits (:func:`_mp_tau`). Ends with a
    finite log-SNR need nothing: the compiled forms are finite there. Conversions of
    tabulated schedules keep the float64 formula values (step 1 of the rule).
    """
    src, dst = conversion.src, conversion.dst
    if conversion.identity or any(e.atoms(NumericFunction) for e in (src.alpha, src.sigma, dst.alpha, dst.sigma)):
        return []
    memo = conversion.__dict__.get("_end_memo")
    if memo is not None:
        return memo
    out = []
    lam_dst_ends = end_values(dst, "log_snr")
    lam_src_ends = end_values(src, "log_snr")
    lo, hi = conversion.lam_range
    for index, side in ((0, "+"), (1, "-")):
        end_lam = lam_dst_ends[index]
        if abs(end_lam) != float("inf") or not lo <= end_lam <= hi or end_lam not in lam_src_ends:
            continue
        point = dst.domain[index]
        tau_end = src.domain[lam_src_ends.index(end_lam)]
        values = [float(tau_end)]
        tau_of = None
        for form in (conversion.c_of_tau, conversion.d_tau_of_tau, conversion.d_c_of_tau):
            form = form.subs(s_symbol, t)
            exact = _substituted(form, point, tau_end)
            if exact is None:
                tau_of = tau_of or _mp_tau(src, dst)
                exact = _numeric_limit(form, point, side, implicit=(TAU, tau_of))
            values.append(exact)
        out.append((float(point), tuple(values)))
    conversion.__dict__["_end_memo"] = out
    return out


def _mp_tau(src: Any, dst: Any) -> Any:
    """``s -> tau(s)`` at the working precision: the source's closed-form inverse at
    ``lambda_dst(s)`` (verified at 60 digits up to 1e-30 from the ends, ``_derive.py``), else
    ``lambda_src(tau) = lambda_dst(s)`` by bisection on the source's domain (its log-SNR is
    strictly monotone), 240 halvings. Remembers its values (the forms share the points)."""
    lam_dst = sp.lambdify(t, dst.log_snr, modules="mpmath")
    lam_src = sp.lambdify(t, src.log_snr, modules="mpmath")
    inverse = src.inverse_log_snr
    closed = sp.lambdify(lam, inverse.expr, modules="mpmath") if inverse.kind == "symbolic" else None
    increasing = src.direction > 0
    seen: dict = {}

    def real(value):
        if isinstance(value, mpmath.mpc):  # a log of a negative: no real tau (the limit stops here)
            raise ValueError("complex log-SNR")
        return value

    def tau(x):
        if x in seen:
            return seen[x]
        target = real(lam_dst(x))
        if closed is not None:
            seen[x] = real(closed(target))
            return seen[x]
        a, b = mpmath.mpf(sp.N(src.domain[0], _DPS + 10)), mpmath.mpf(sp.N(src.domain[1], _DPS + 10))
        for _ in range(240):
            mid = (a + b) / 2
            if (real(lam_src(mid)) > target) == increasing:
                b = mid
            else:
                a = mid
        seen[x] = (a + b) / 2
        return seen[x]

    return tau


def _log_snr_end(schedule: Any, index: int) -> float | None:
    """``lambda = log(alpha^2 / sigma^2)`` at end ``index`` from the end values of ``alpha`` and ``sigma``
    when they decide it: one of them 0, the other finite and nonzero, so the ratio tends to 0 or to
    ``+inf`` (through positive values: lambda is real inside the domain) and lambda to ``-inf`` or
    ``+inf``. None otherwise (the general rule applies). This is the limit, found without
    ``limit``'s series expansions (the costliest end values of a schedule), and it agrees with the
    end values of alpha and sigma by construction: EDM's rho-time declared with float constants
    ends at a float root where substitution gives sigma = 0 but ``limit`` of lambda a finite 475.5;
    here lambda is +inf there, as for every schedule that reaches the data."""
    alpha, sigma = end_values(schedule, "alpha")[index], end_values(schedule, "sigma")[index]
    if alpha == 0 and sigma != 0 and math.isfinite(sigma):
        return float("-inf")
    if sigma == 0 and alpha != 0 and math.isfinite(alpha):
        return float("inf")
    return None


def one_sided_limit(values: Any) -> float:
    """The limit of a sequence ``f(end + h_k)`` for ``h_k`` shrinking geometrically.

    A sequence diverging (magnitudes growing at least 3x per step over the last three)
    gives ``+-inf``; otherwise the value where successive differences stop shrinking,
    before rounding takes over (a ``nan`` ends the sequence). The accuracy is that of the
    last trusted step: about ``h`` for smooth ends, ``sqrt(h)`` for square-root ones.
    """
    v: list[float] = []
    for x in (float(x) for x in np.asarray(values, dtype=np.float64).reshape(-1)):
        if x != x:
            break
        if abs(x) == float("inf"):
            return x
        v.append(x)
    if len(v) < 2:
        return v[0] if v else float("nan")
    mags = [abs(x) for x in v]
    if len(v) >= 4 and all(mags[k + 1] >= 3 * mags[k] > 0 for k in range(len(v) - 4, len(v) - 1)):
        return float("inf") if v[-1] > 0 else float("-inf")
    best, previous = v[0], float("inf")
    for a, b in zip(v, v[1:]):
        if abs(b - a) > previous:
            break
        previous, best = abs(b - a), b
    return best
