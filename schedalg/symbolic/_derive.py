"""Closed-form inverses of the log-SNR, found by bounded work and verified at high precision.

``t(lambda)`` solves ``lambda(t) = lambda``. The search is a fixed, ordered list of
structural strategies, each bounded by the size of the expression it works on (never
by a clock), so the same declaration gives the same form on every machine, under any
load and any ``PYTHONHASHSEED``:

1. *peeling* ``R(t) = v`` for ``R`` one of ``sigma^2/alpha^2 = e^-lambda``,
   ``sigma/alpha = e^(-lambda/2)``, ``alpha^2/sigma^2 = e^lambda``, ``alpha/sigma =
   e^(lambda/2)`` (and ``alpha = 1/sqrt(1 + e^-lambda)`` for variance-preserving
   schedules): invertible outer functions (constants, powers, ``exp``, ``log``, the
   principal branches of ``tan``, ``cot``, ``sin``, ``cos``) are stripped one by one;
   where the unknown occurs more than once, the equation is made polynomial in one
   generator (``t``, ``exp(k t)``, ``t^(1/n)``) of degree at most :data:`ROOT_DEGREE`
   and solved by radicals;
   each candidate also in a rationalized form (``sqrt(1 + x) - 1 -> x / (sqrt(1 + x) + 1)``).

SymPy's general ``solve`` is not used: its work on transcendental equations has no
bound (it ran for minutes on VP-linear's ``sigma/alpha``).

Every candidate is then *verified* (:func:`verify_inverse`): it must contain no ``I``,
SymPy must show it real for real ``lambda`` (a float cast is no evidence), it must map
``lambda(t_i)`` back to ``t_i`` at 60 significant digits (mpmath) on the whole domain,
points ``10^-k`` from both ends and extreme log-SNR included, and it must be accurate in
float64 there too. Among the verified candidates the smallest (operation count, then
SymPy's canonical sort key) wins; with none, the inverse is numeric (safeguarded
bisection + Newton, verified by the same reference in the tests).
"""

from __future__ import annotations

import keyword
import warnings
from typing import Any, Callable, Iterable

import mpmath
import numpy as np
import sympy as sp

from ._numeric import NumericFunction
from ._stable import stabilize
from ._symbols import lam, t

__all__ = ["Reference", "derive_inverse", "rational_declaration", "real_zeros", "verify_inverse", "verify_equal", "mp_points", "ROOT_DEGREE"]

#: Highest degree of a general polynomial solved by radicals. Cubic and quartic formulas in a
#: symbolic right-hand side are large, nearly always complex in form (casus irreducibilis),
#: and slow to verify; binomials ``a g^n + b`` of degree up to :data:`BINOMIAL_DEGREE` are
#: solved by the real n-th root instead.
ROOT_DEGREE = 2
BINOMIAL_DEGREE = 8
#: Candidates with more operations than this are not verified (never float64-stable in practice).
MAX_OPS = 200
#: Work bounds of the peeling: nesting depth, and candidates kept per strategy.
MAX_DEPTH = 16
MAX_CANDIDATES = 16
#: Working precision (digits) of the verification.
DPS = 60
#: Relative error (to the distance from the nearest end) allowed at DPS digits. The forms
#: lose at most ~|lambda|/(2 ln 10) <= 30 digits to cancellation at |lambda| <= 140 (the most
#: the near-end points reach), so 1e-20 leaves a margin of 10 digits; a wrong branch or a
#: wrong form is off by O(1).
MP_TOLERANCE = sp.Rational(1, 10**20)
#: Error allowed in float64 where |lambda| <= 60, relative to the distance from the nearest end,
#: on top of the error no float64 form can avoid: the rounding of the output, ``eps |t|``, and
#: of the input, ``eps |lambda| / |lambda'(t)|`` (both counted 16 times: a form of a few
#: dozen operations accumulates a few ulps). At 1e-8 one Newton step (done after every
#: closed-form evaluation) restores full precision (quadratic convergence: 1e-8 -> ~1e-16),
#: while a form that cancels catastrophically (NaN or O(1) errors beyond |lambda| ~ 20) is refused.
FLOAT_TOLERANCE = 1e-8
_EPS = float(np.finfo(np.float64).eps)
#: |lambda| up to which float64 accuracy is required.
FLOAT_LAMBDA_MAX = 60.0


# ---------------------------------------------------------------------- sample points


def mp_points(lo: Any, hi: Any, interior: int = 17, ends: Iterable[int] = range(2, 31, 2)) -> list[mpmath.mpf]:
    """Sample times in ``(lo, hi)`` at :data:`DPS` digits: Chebyshev-like interior points and
    points ``(hi - lo) 10^-k`` from both ends (sorted, distinct)."""
    with mpmath.workdps(DPS):
        a, b = mpmath.mpf(sp.N(lo, DPS + 10)), mpmath.mpf(sp.N(hi, DPS + 10))
        width = b - a
        points = [a + width * (1 - mpmath.cos(mpmath.pi * (k + mpmath.mpf(1) / 2) / interior)) / 2
                  for k in range(interior)]
        for k in ends:
            h = width * mpmath.mpf(10) ** (-k)
            points += [a + h, b - h]
        return sorted(set(points))


def _lambdify(symbol: sp.Symbol, expr: sp.Expr, modules: str) -> Callable[[Any], Any]:
    """``lambdify`` in ``symbol``, without its renaming of an argument that is a Python keyword.

    ``lambda`` is a keyword, and ``lambdify`` renames such an argument by rebuilding the whole
    expression (``xreplace`` with a dummy): most of its cost on candidate inverses. Its printers
    already spell the symbol ``lambda_`` inside the body, so a same-named argument is all it needs.
    """
    if keyword.iskeyword(symbol.name):
        symbol = sp.Symbol(symbol.name + "_")
        if symbol in expr.free_symbols:  # pragma: no cover - no such symbol in derivations
            raise ValueError(f"{symbol} is both an argument alias and a symbol of {expr}")
    return sp.lambdify(symbol, expr, modules=modules)


def _mp_function(expr: sp.Expr, symbol: sp.Symbol) -> Callable[[Any], Any]:
    return _lambdify(symbol, expr, "mpmath")


def _mp_real(value: Any) -> mpmath.mpf | None:
    """``value`` as a finite real mpf, or None (complex results are not real, whatever their size)."""
    if isinstance(value, mpmath.mpc) or isinstance(value, complex):
        return None
    try:
        value = mpmath.mpf(value)
    except (TypeError, ValueError):
        return None
    return value if mpmath.isfinite(value) else None


def shown_real(expr: sp.Expr) -> bool:
    """True when SymPy can show ``expr`` (in the real symbol ``lambda``) is real: no ``I``, and
    ``is_real`` is True (``sqrt`` of something SymPy cannot show non-negative is not)."""
    if expr.has(sp.I) or expr.has(sp.zoo) or expr.has(sp.nan):
        return False
    if expr.is_real:
        return True
    # lambda = +-log(w) with w > 0 runs over all real lambda: real for every w > 0 is real for
    # every lambda, and in w the logarithms of products expand into sums SymPy can sign
    w = sp.Symbol("w", positive=True)
    for sign in (1, -1):
        in_w = sp.powsimp(expr.subs(lam, sign * sp.log(w)), force=True)
        in_w = in_w.replace(lambda e: isinstance(e, sp.log),
                            lambda e: sp.log(sp.expand(sp.powsimp(e.args[0], force=True))))
        in_w = sp.expand_log(in_w, force=True)
        if in_w.is_real:
            return True
    return False


# ---------------------------------------------------------------------- verification


class Reference:
    """A schedule's log-SNR at :func:`mp_points`, at :data:`DPS` digits: the reference every
    candidate inverse is checked against (built once per derivation).

    The declaration's floats are read as the decimals they print as (0.1 is 1/10), the
    same reading the search uses; the doubles differ from those by <= 1e-16 relative,
    far below :data:`FLOAT_TOLERANCE`.
    """

    def __init__(self, schedule: Any, points: list | None = None):
        lo, hi = schedule.domain
        points = points if points is not None else mp_points(lo, hi)
        alpha, sigma = rational_declaration(schedule)
        exact_log_snr = sp.expand_log(2 * sp.log(alpha) - 2 * sp.log(sigma), force=True)
        forward = _mp_function(exact_log_snr, t)
        slope = _mp_function(sp.diff(exact_log_snr, t), t)
        # a declaration with floats (0.01, log(5000.0) evaluated) is defined to ~15 digits only:
        # lambda is known to ~1e-15 (1 + |lambda|), which moves t by that over |lambda'(t)|
        declared = 1e-14 if (schedule.alpha.has(sp.Float) or schedule.sigma.has(sp.Float)) else 0
        #: (t, lambda(t), allowed mp error, allowed float64 error or None where |lambda| > 60)
        self.rows: list[tuple[Any, Any, Any, float | None]] = []
        with mpmath.workdps(DPS):
            a, b = mpmath.mpf(sp.N(lo, DPS + 10)), mpmath.mpf(sp.N(hi, DPS + 10))
            for point in points:
                try:
                    lam_value = _mp_real(forward(point))
                except (ValueError, ZeroDivisionError, OverflowError):
                    lam_value = None
                if lam_value is None:
                    continue
                dist = min(point - a, b - point)
                try:
                    moved = (1 + abs(lam_value)) / abs(slope(point))
                except (ValueError, ZeroDivisionError):
                    moved = mpmath.mpf(0)
                allowed = None
                if abs(lam_value) <= FLOAT_LAMBDA_MAX:
                    allowed = float(FLOAT_TOLERANCE * dist + 16 * _EPS * (abs(point) + moved))
                self.rows.append((point, lam_value, MP_TOLERANCE * dist + declared * moved, allowed))


def verify_inverse(schedule: Any, candidate: sp.Expr, reference: Reference | None = None) -> str | None:
    """None when ``candidate`` is a right inverse ``t(lambda)`` on the whole domain, else why not.

    See the module docstring for the checks and :data:`MP_TOLERANCE`, :data:`FLOAT_TOLERANCE`.
    """
    if candidate.free_symbols - {lam}:
        return "free symbols other than lambda"
    if candidate.has(sp.I) or candidate.has(sp.zoo) or candidate.has(sp.nan):
        return "contains I"
    reference = reference if reference is not None else Reference(schedule)
    if not reference.rows:
        return "no sample point inside the domain"
    # float64 first (cheap, and where most candidates fail), as the compile layer evaluates it:
    # log(1 + z) -> log1p(z), k - k exp(z) -> -k expm1(z)
    rows = [(float(lam_value), float(point), allowed) for point, lam_value, _, allowed in reference.rows
            if allowed is not None]
    if not rows:
        return "no sample point with |lambda| <= 60"
    lams, ts, allowed = (np.asarray(c) for c in zip(*rows))
    float_inverse = _lambdify(lam, stabilize(candidate), "numpy")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = np.broadcast_to(np.asarray(float_inverse(lams), dtype=np.complex128), lams.shape)
    error = np.abs(got - ts) / allowed
    if not np.all(np.isfinite(got)) or not np.all(error <= 1):
        where = int(np.argmax(np.where(np.isfinite(error), error, np.inf)))
        return (f"inaccurate in float64 at lambda = {float(lams[where])!r}: gives {complex(got[where])!r} "
                f"for t = {float(ts[where])!r}")
    backward = _mp_function(candidate, lam)
    with mpmath.workdps(DPS):
        for point, lam_value, allowed_mp, _ in reference.rows:
            try:
                back = _mp_real(backward(lam_value))
            except (ValueError, ZeroDivisionError, OverflowError):
                back = None
            if back is None:
                return f"not real or not finite at lambda = {mpmath.nstr(lam_value, 17)}"
            if abs(back - point) > allowed_mp:
                return (f"wrong at t = {mpmath.nstr(point, 17)}: gives {mpmath.nstr(back, 17)} "
                        f"(lambda = {mpmath.nstr(lam_value, 17)})")
    if not shown_real(candidate):  # last: the most expensive check
        return "not shown real (a root or logarithm SymPy cannot show real for real lambda)"
    return None


def verify_equal(a: sp.Expr, b: sp.Expr, symbol: sp.Symbol, points: list) -> bool:
    """True when ``a`` and ``b`` agree to :data:`MP_TOLERANCE` (relative) at ``points`` (mpmath),
    where ``a`` is finite; ``b`` must be real there."""
    fa, fb = _mp_function(a, symbol), _mp_function(b, symbol)
    with mpmath.workdps(DPS):
        for point in points:
            try:
                va = _mp_real(fa(point))
                if va is None:
                    continue
                vb = _mp_real(fb(point))
            except (ValueError, ZeroDivisionError, OverflowError):
                return False
            if vb is None or abs(va - vb) > MP_TOLERANCE * (1 + abs(va)):
                return False
    return True


# ---------------------------------------------------------------------- peeling


def rational_declaration(schedule: Any) -> tuple[sp.Expr, sp.Expr]:
    """``(alpha, sigma)`` with every float read as the decimal it prints as (``nsimplify``; 0.1 is
    1/10), made once per schedule: the search, its reference and the validation all start from it
    (``nsimplify`` of a large expression rebuilds it, trigonometric evaluation included, and
    was the costliest step of a derivation when repeated per equation)."""
    found = schedule.__dict__.get("_rational_declaration")
    if found is None:
        found = tuple(sp.nsimplify(e, rational=True) if e.has(sp.Float) else e
                      for e in (schedule.alpha, schedule.sigma))
        schedule.__dict__["_rational_declaration"] = found
    return found


def _normal(expr: sp.Expr) -> sp.Expr:
    """Exact rationals for floats, powers combined, ``sin/cos`` ratios as ``tan`` (all
    deterministic rewrites, linear in the size of the expression)."""
    from sympy.simplify.fu import TR2i

    if expr.has(sp.Float):
        expr = sp.nsimplify(expr, rational=True)
    expr = sp.powsimp(sp.powdenest(expr, force=True), force=True)
    expr = sp.powsimp(sp.expand(expr, log=False, multinomial=False), force=True)
    return TR2i(expr, half=False)


def _peel(expr: sp.Expr, value: sp.Expr, depth: int = 0) -> list[sp.Expr]:
    """Solutions ``t`` of ``expr(t) = value``, stripping one invertible outer function per level."""
    if depth > MAX_DEPTH or not expr.has(t):
        return []
    if expr == t:
        return [value]
    if expr.is_Add:
        const, rest = expr.as_independent(t, as_Add=True)
        if const != 0:
            return _peel(rest, value - const, depth + 1)
    if expr.is_Mul:
        const, rest = expr.as_independent(t, as_Add=False)
        if const != 1:
            return _peel(rest, value / const, depth + 1)
        combined = _common_power(expr)  # a^(2n) b^(-2n) -> (a b^-1)^(2n)
        if combined is not None:
            return _peel(combined, value, depth + 1)
    if expr.is_Pow:
        base, exponent = expr.as_base_exp()
        if not exponent.has(t) and base.has(t):
            root = value ** (1 / exponent)
            out = _peel(base, root, depth + 1)
            if exponent.is_Rational and sp.Rational(exponent).p % 2 == 0:  # even power: both signs
                out += _peel(base, -root, depth + 1)
            return out
        if exponent.has(t) and not base.has(t) and base.is_positive:
            return _peel(exponent, sp.log(value) / sp.log(base), depth + 1)
    inverses = {sp.exp: lambda v: [sp.log(v)], sp.log: lambda v: [sp.exp(v)],
                sp.tan: lambda v: [sp.atan(v)], sp.cot: lambda v: [sp.acot(v)],
                sp.sin: lambda v: [sp.asin(v), sp.pi - sp.asin(v)],
                sp.cos: lambda v: [sp.acos(v), -sp.acos(v)]}
    for function, inverse in inverses.items():
        if isinstance(expr, function):
            return [c for v in inverse(value) for c in _peel(expr.args[0], v, depth + 1)]
    return _algebraic(expr, value, depth)


def _common_power(product: sp.Mul) -> sp.Expr | None:
    """``prod b_i^(g m_i)`` as ``(prod b_i^m_i)^g`` for the largest rational ``g`` dividing all
    exponents, when ``g != 1`` (unevaluated, so that the power can be peeled)."""
    pairs = [f.as_base_exp() for f in product.args]
    if not all(e.is_Rational for _, e in pairs):
        return None
    numerator = sp.igcd(*[sp.Rational(e).p for _, e in pairs])
    denominator = sp.ilcm(*[sp.Rational(e).q for _, e in pairs])
    g = sp.Rational(numerator, denominator)
    if g in (1, -1) or g == 0:
        return None
    return sp.Pow(sp.Mul(*[b ** (e / g) for b, e in pairs]), g, evaluate=False)


def _algebraic(expr: sp.Expr, value: sp.Expr, depth: int) -> list[sp.Expr]:
    """``expr = value`` with the unknown in several places: cleared of denominators, a
    polynomial in one generator ``g(t)`` of degree <= :data:`ROOT_DEGREE` is solved by
    radicals, then ``g(t) = root`` is peeled."""
    expr, generator_exp = _in_one_exponential(expr)
    numerator, denominator = sp.fraction(sp.together(expr))
    helper = sp.Dummy("v")
    equation = sp.expand(numerator - helper * denominator)
    try:
        unknowns = {g for g in sp.Poly(equation).gens
                    if g.has(t) or (generator_exp is not None and g.has(generator_exp[0]))}
        poly = sp.Poly(equation, *sorted(unknowns, key=sp.default_sort_key))
    except (sp.PolynomialError, sp.GeneratorsNeeded, ValueError):
        return []
    if len(poly.gens) != 1 or any(c.has(t) for c in poly.coeffs()):
        return []
    (generator,) = poly.gens
    degree = poly.degree()
    terms = poly.terms()
    if 1 <= degree <= ROOT_DEGREE:
        roots = _low_degree_roots(sp.Poly(poly.as_expr(), generator))
    elif degree <= BINOMIAL_DEGREE and len(terms) == 2 and terms[1][0] == (0,):  # a g^n + b = 0
        ratio = -terms[1][1] / terms[0][1]
        roots = [ratio ** sp.Rational(1, degree)] + ([-(ratio ** sp.Rational(1, degree))] if degree % 2 == 0 else [])
    else:
        return []
    out = []
    for root in sorted(set(roots), key=sp.default_sort_key):
        root = root.subs(helper, value)
        if generator_exp is not None and generator == generator_exp[0]:
            out += _peel(generator_exp[1], root, depth + 1)
        else:
            out += [root] if generator == t else _peel(generator, root, depth + 1)
    return out


def _low_degree_roots(poly: sp.Poly) -> list[sp.Expr]:
    """Roots of a polynomial of degree 1 or 2 (with multiplicity).

    SymPy's ``roots`` normalises symbolic coefficients with ``factor`` over polynomial rings but
    with ``simplify`` over its expression domain ``EX`` (coefficients with ``pi``, ``cos(c)``, ...),
    whose work has no useful bound (a second of the whole derivation of the iDDPM cosine). Over
    ``EX`` the same formulas are written here with ``factor``; elsewhere SymPy's ``roots`` is used.
    """
    if poly.get_domain() != sp.EX:
        return sp.roots(poly, multiple=True)
    coefficients = poly.all_coeffs()
    if poly.degree() == 1:
        b, c = coefficients
        return [sp.factor(-c / b)]
    a, b, c = coefficients
    root = sp.factor_terms(sp.sqrt(sp.factor(b**2 - 4 * a * c)) / (2 * a))
    middle = sp.factor(-b / (2 * a))
    return [middle - root, middle + root]


def _in_one_exponential(expr: sp.Expr) -> tuple[sp.Expr, tuple[sp.Symbol, sp.Expr] | None]:
    """``expr`` with every ``exp(k u(t))`` (``k`` rational) written as ``g^(k n)`` for one
    symbol ``g = exp(u/n)``; ``(expr, None)`` when the exponents are not all rational
    multiples of one another."""
    expr = sp.powsimp(expr, combine="exp", force=True, deep=True)
    expr = expr.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.expand(e.args[0])))
    atoms = sorted((e for e in expr.atoms(sp.exp) if e.has(t)), key=sp.default_sort_key)
    if len(atoms) < 2:
        return expr, None
    base = atoms[0].args[0]
    ratios = [sp.cancel(a.args[0] / base) for a in atoms]
    if not all(r.is_Rational for r in ratios):
        return expr, None
    n = sp.ilcm(*[sp.Rational(r).q for r in ratios])
    g = sp.Dummy("g", positive=True)
    replaced = expr.xreplace({a: g ** (r * n) for a, r in zip(atoms, ratios)})
    if replaced.has(t):
        return expr, None
    return replaced, (g, sp.exp(base / n))


def _tidy_in_lambda(candidate: sp.Expr) -> sp.Expr:
    """Cancel a candidate as a rational function of ``u = exp(lambda/2)``.

    Closed forms from the solvers often read ``(e^lambda - e^(lambda/2))/(e^lambda - 1)``,
    a 0/0 at ``lambda = 0``; cancelling in ``u`` gives ``u/(u + 1)`` instead.
    """
    if sp.count_ops(candidate) > MAX_OPS // 2:
        return candidate
    u = sp.Symbol("u", positive=True)
    # u = exp(lambda/k) with k the least common denominator of the exponents' lambda-coefficients
    coefficients = [sp.expand(e.args[0]).coeff(lam) for e in candidate.atoms(sp.exp) if e.has(lam)]
    k = sp.ilcm(2, *[sp.Rational(c).q for c in coefficients if c.is_Rational]) if coefficients else 2
    in_u = sp.powsimp(sp.expand_power_exp(candidate.subs(lam, k * sp.log(u))), force=True)
    if in_u.has(lam):
        return candidate
    tidy = in_u.replace(lambda e: isinstance(e, sp.Expr) and not e.is_Atom and e.has(u)
                        and e.is_rational_function(u),
                        lambda e: sp.factor(sp.cancel(e)))
    return tidy.subs(u, sp.exp(lam / k))


def _expand_logs(candidate: sp.Expr) -> sp.Expr:
    """``log(e^6 e^-lambda) -> 6 - lambda`` (a variant; verification decides if it is right)."""
    return sp.expand(sp.expand_log(candidate, force=True), log=False, multinomial=False)


def _rationalized(candidate: sp.Expr) -> sp.Expr:
    """``a sqrt(X) + b -> (a^2 X - b^2) / (a sqrt(X) - b)`` (``b`` free of square roots): the same
    value without the cancellation of ``sqrt(1 + x) - 1`` at small ``x`` (accuracy near an end)."""

    def rooted(term: sp.Expr) -> bool:
        return any(p.is_Pow and p.exp == sp.S.Half and p.has(lam) for p in sp.Mul.make_args(term))

    def match(e: sp.Expr) -> bool:
        return e.is_Add and sum(1 for a in e.args if rooted(a)) == 1

    def rewrite(e: sp.Expr) -> sp.Expr:
        (root,) = [a for a in e.args if rooted(a)]
        rest = e - root
        return sp.expand(root**2 - rest**2, log=False, power_exp=False) / (root - rest)

    return candidate.replace(match, rewrite)


def _variance_preserving(schedule: Any) -> bool:
    """``alpha^2 + sigma^2 = 1`` at 17 points to 40 digits (this only chooses which equations
    are tried; the verification decides)."""
    alpha, sigma = rational_declaration(schedule)
    fn = _mp_function(alpha**2 + sigma**2 - 1, t)
    with mpmath.workdps(DPS):
        try:
            return all(abs(fn(p)) < mpmath.mpf(10) ** -40 for p in mp_points(*schedule.domain, ends=()))
        except (TypeError, ValueError, ZeroDivisionError):
            return False


def _equations(schedule: Any) -> list[tuple[str, sp.Expr, sp.Expr]]:
    """The equations ``R(t) = v(lambda)`` tried, in order."""
    alpha, sigma = rational_declaration(schedule)
    out = [("peel sigma^2/alpha^2 = exp(-lambda)", sigma**2 / alpha**2, sp.exp(-lam)),
           ("peel sigma/alpha = exp(-lambda/2)", sigma / alpha, sp.exp(-lam / 2)),
           ("peel alpha^2/sigma^2 = exp(lambda)", alpha**2 / sigma**2, sp.exp(lam)),
           ("peel alpha/sigma = exp(lambda/2)", alpha / sigma, sp.exp(lam / 2))]
    if _variance_preserving(schedule):
        out.append(("peel alpha = 1/sqrt(1 + exp(-lambda)) (variance preserving)", alpha,
                    1 / sp.sqrt(1 + sp.exp(-lam))))
    return out


def real_zeros(expr: sp.Expr) -> list[float]:
    """Real zeros of ``expr`` in ``t`` found by peeling ``expr = 0`` (bounded work; possibly not
    all of them), each confirmed by evaluating ``expr`` there at :data:`DPS` digits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = _peel(_normal(expr), sp.Integer(0))
        except (ValueError, TypeError, NotImplementedError, sp.PolynomialError):
            return []
    fn = _mp_function(expr, t)
    out = set()
    with mpmath.workdps(DPS):
        for root in raw:
            if root.free_symbols or not shown_real(root) and not root.is_real:
                continue
            try:
                point = mpmath.mpf(sp.N(root, DPS + 10))
                value = fn(point)
            except (TypeError, ValueError, ZeroDivisionError):
                continue
            if abs(value) <= mpmath.mpf(10) ** (-DPS // 2) * (1 + abs(point)):
                out.add(float(point))
    return sorted(out)


def derive_inverse(schedule: Any) -> tuple[str, sp.Expr | None, str]:
    """``(kind, expr, method)`` of ``t(lambda)`` for a bound schedule (see the module docstring)."""
    if schedule.alpha.atoms(NumericFunction) or schedule.sigma.atoms(NumericFunction):
        return "numeric", None, "tabulated"
    equations = [(label, _normal(ratio), value) for label, ratio, value in _equations(schedule)]
    reference = Reference(schedule)
    verified: list[tuple[int, Any, sp.Expr, str]] = []
    rejected = 0
    for label, ratio, value in equations:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                raw = _peel(ratio, value)
            except (ValueError, TypeError, NotImplementedError, sp.PolynomialError):
                raw = []
        tidy = {f(sp.sympify(c)) for c in raw for f in (_tidy_in_lambda, lambda e: e, _expand_logs)}
        candidates = sorted((c for c in tidy | {_rationalized(c) for c in tidy} if sp.count_ops(c) <= MAX_OPS),
                            key=sp.default_sort_key)
        for candidate in candidates[:MAX_CANDIDATES]:
            if verify_inverse(schedule, candidate, reference) is None:
                verified.append((sp.count_ops(candidate), sp.default_sort_key(candidate), candidate, label))
            else:
                rejected += 1
    if not verified:
        return "numeric", None, f"no verified closed form ({rejected} candidates rejected)"
    _, _, best, label = min(verified, key=lambda v: (v[0], v[1]))
    return "symbolic", best, label
