"""Conversion between two schedules: a time change and a scale.

Every schedule with a strictly monotone log-SNR describes the same process up to a
change of time and a scale (Damsholt et al. 2026, arXiv 2602.03789; MATH.md section 1).
For a source ``(alpha, sigma)`` in time ``t`` and a destination ``(A, S)`` in time ``s``:

    tau(s) = lambda_src^{-1}(lambda_dst(s))                 (time map)
    c(s)   = (A(s) + S(s)) / (alpha(tau) + sigma(tau))      (scale; = A/alpha(tau) = S/sigma(tau))
    x^dst_s = c(s) * x^src_{tau(s)}                         (same data, same noise)
    tau'(s) = lambda_dst'(s) / lambda_src'(tau(s))

``c'`` is derived by SymPy by differentiating ``c`` through ``tau`` (a placeholder
function whose derivative is ``tau'``). The sum form of ``c`` stays finite at both ends
(where ``alpha`` or ``sigma`` alone vanish). Identities: ``proofs/prove_convert.py``.

``tau`` is a closed form when the source's log-SNR inverse is one
(:attr:`Schedule.inverse_log_snr`; SymPy then simplifies the substitution when it is
small, :func:`simplify_within`); otherwise ``tau = T_src(lambda_dst(s))`` with ``T_src`` a numeric SymPy
function evaluated by :meth:`CompiledSchedule.t_of_log_snr`. The torch view
(:mod:`schedalg.compile._conversion`) evaluates ``tau`` as ``t_of_log_snr(lambda_dst(s))``
with Newton polish and builds ``c``, ``tau'``, ``c'`` from ``tau`` as a value through
:func:`conversion_formulas`, so it stays accurate whether or not a closed form exists.
"""

from __future__ import annotations

import itertools
import time
import warnings
from functools import cached_property
from typing import Any

import sympy as sp

from ..errors import DomainError
from ._derive import mp_points, verify_equal
from ._ends import one_sided_limit
from ._hooks import compiler
from ._numeric import NumericFunction
from ._schedule import Schedule
from ._symbols import TAU, lam, s, t

__all__ = ["Conversion", "ComposedConversion", "convert", "TAU", "schedule_key", "clear_conversion_cache",
           "one_sided_limit", "conversion_formulas", "PIECES"]


#: ``sp.simplify`` runs only on expressions with at most this many operations (a work bound).
SIMPLIFY_OPS = 40

_CONVERSIONS: dict[tuple, "Conversion"] = {}
_INVERSE_FUNCTIONS: dict[tuple, type[NumericFunction]] = {}
_IDS = itertools.count()


def schedule_key(schedule: Schedule) -> tuple:
    """A hashable identity of a bound schedule (its expressions and domain)."""
    return (sp.srepr(schedule.alpha), sp.srepr(schedule.sigma), sp.srepr(schedule.domain))


def clear_conversion_cache() -> None:
    """Forget derived conversions (for cold-start timings)."""
    _CONVERSIONS.clear()


# ---------------------------------------------------------------------- placeholders


def _placeholder(name: str) -> type[sp.Function]:
    """An undefined function ``F`` of one argument whose derivative is the function ``F.d``.

    Differentiating an expression containing ``F(g(s))`` then gives ``F.d(g(s)) * g.d(s)``
    by SymPy's chain rule (no ``Subs`` objects), ready for substitution of values.
    """
    d_cls = type(f"{name}_d", (sp.Function,), {"nargs": 1})

    def fdiff(self, argindex=1):
        return d_cls(self.args[0])

    return type(name, (sp.Function,), {"nargs": 1, "fdiff": fdiff, "d": d_cls})


#: Names of the schedule quantities the conversion formulas read, at s (destination) and tau (source).
PIECES = ("alpha", "sigma", "d_alpha", "d_sigma", "log_snr", "d_log_snr")


def conversion_formulas() -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
    """``(symbols, (c, tau', c'))`` for any pair of schedules, in the values of their pieces.

    ``symbols`` are the destination's :data:`PIECES` at ``s`` followed by the source's at
    ``tau(s)``. ``c = (A + S)/(alpha + sigma)``, ``tau' = lambda_dst' / lambda_src'``, and
    ``c'`` by SymPy's chain rule on ``(A(s) + S(s)) / (alpha(tau(s)) + sigma(tau(s)))`` with
    placeholder functions. Compiled once and shared by every conversion.
    """
    dst_sym = sp.symbols(" ".join(f"dst_{n}" for n in PIECES), real=True)
    src_sym = sp.symbols(" ".join(f"src_{n}" for n in PIECES), real=True)
    a_fn, s_fn, al_fn, sg_fn, tau_fn = (_placeholder(n) for n in ("A", "S", "alpha", "sigma", "tau"))
    d_tau = dst_sym[5] / src_sym[5]
    scale = (a_fn(s) + s_fn(s)) / (al_fn(tau_fn(s)) + sg_fn(tau_fn(s)))
    values = {a_fn(s): dst_sym[0], s_fn(s): dst_sym[1], a_fn.d(s): dst_sym[2], s_fn.d(s): dst_sym[3],
              al_fn(tau_fn(s)): src_sym[0], sg_fn(tau_fn(s)): src_sym[1],
              al_fn.d(tau_fn(s)): src_sym[2], sg_fn.d(tau_fn(s)): src_sym[3], tau_fn.d(s): d_tau}
    exprs = (scale.xreplace(values), d_tau, sp.diff(scale, s).xreplace(values))
    return dst_sym + src_sym, exprs


def _in_s(expr: sp.Expr) -> sp.Expr:
    return expr.subs(t, s)


def _at(expr: sp.Expr, value: sp.Expr) -> sp.Expr:
    return expr.subs(t, value)


# ---------------------------------------------------------------------- numeric inverse


def inverse_function(schedule: Schedule) -> type[NumericFunction]:
    """``T(lambda)``: the schedule's inverse log-SNR as a numeric SymPy function.

    Evaluated by :meth:`CompiledSchedule.t_of_log_snr` (closed form + polish, or
    safeguarded bisection/Newton); its derivative is ``1 / lambda'(T(lambda))``.
    """
    key = schedule_key(schedule)
    cls = _INVERSE_FUNCTIONS.get(key)
    if cls is not None:
        return cls
    uid = next(_IDS)
    label = "".join(ch if ch.isalnum() else "_" for ch in schedule.name)

    def value(lam_values):
        return schedule.compile().t_of_log_snr(lam_values, check=False)

    def slope(lam_values):
        compiled = schedule.compile()
        return 1 / compiled.d_log_snr(compiled.t_of_log_snr(lam_values, check=False))

    d_cls = type(f"d_t_of_log_snr_{label}{uid}", (NumericFunction,), {"torch_impl": staticmethod(slope)})
    cls = type(f"t_of_log_snr_{label}{uid}", (NumericFunction,),
               {"torch_impl": staticmethod(value), "derivative": d_cls})
    _INVERSE_FUNCTIONS[key] = cls
    return cls


# ---------------------------------------------------------------------- simplification


def simplify_within(expr: sp.Expr, check_points: list) -> sp.Expr:
    """``sp.simplify(expr)`` if ``expr`` has at most :data:`SIMPLIFY_OPS` operations, the result
    is no larger, and it agrees with ``expr`` at ``check_points`` (values of ``s``, at 60
    digits, real: :func:`schedalg.symbolic._derive.verify_equal`); else ``expr``.

    Bounded by the size of the input, never by time: the same expression simplifies the
    same way on every machine.
    """
    if sp.count_ops(expr) > SIMPLIFY_OPS or expr.atoms(NumericFunction):
        return expr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            simple = sp.simplify(expr)
        except (NotImplementedError, ValueError, TypeError, RecursionError):
            return expr
    if simple == expr or sp.count_ops(simple) > sp.count_ops(expr) or simple.has(sp.I):
        return expr
    return simple if verify_equal(expr, simple, s, check_points) else expr


# ---------------------------------------------------------------------- conversions


class _ConversionAlgebra:
    """What direct and composed conversions share: the torch view and the algebra."""

    src: Schedule
    dst: Schedule
    kind: str
    lam_range: tuple[float, float]

    def compile(self):
        """The torch view (:class:`schedalg.compile.CompiledConversion`), cached."""
        return compiler("conversion")(self)

    def time(self, ss: Any, *, check: bool = True):
        """``tau(s)`` as a torch tensor (float64 for Python numbers)."""
        return self.compile().time(ss, check=check)

    def scale(self, ss: Any, *, check: bool = True):
        """``c(s)`` as a torch tensor: ``x^dst_s = c(s) x^src_{tau(s)}``."""
        return self.compile().scale(ss, check=check)

    def d_time(self, ss: Any, *, check: bool = True):
        """``tau'(s)`` as a torch tensor."""
        return self.compile().d_time(ss, check=check)

    def d_scale(self, ss: Any, *, check: bool = True):
        """``c'(s)`` as a torch tensor."""
        return self.compile().d_scale(ss, check=check)

    def then(self, other: "_ConversionAlgebra") -> "ComposedConversion":
        """``self`` (A -> B) followed by ``other`` (B -> C): a conversion A -> C.

        ``tau = tau_1(tau_2(s))``, ``c = c_2(s) c_1(tau_2(s))``; derivatives by SymPy's
        chain rule. Equals ``convert(A, C)`` (tested, ``tests/test_convert.py``).
        """
        if schedule_key(self.dst) != schedule_key(other.src):
            raise DomainError("conversions A -> B and B -> C (the first one's destination is the second's source)",
                              f"{self.src.name!r} -> {self.dst.name!r} then {other.src.name!r} -> {other.dst.name!r}",
                              "compose conversions that share the middle schedule")
        return ComposedConversion(self, other)

    def inverse(self) -> "Conversion":
        """The conversion back, ``dst -> src`` (``tau^{-1}``, ``1 / c(tau^{-1})``)."""
        return convert(self.dst, self.src)

    @cached_property
    def s_range(self) -> tuple[float, float]:
        """``(s_lo, s_hi)``: the destination times whose log-SNR the source reaches."""
        lo, hi = self.lam_range
        ends = self.dst.compile().t_of_log_snr([lo, hi], check=False)
        a, b = sorted(float(v) for v in ends)
        return a, b


class Conversion(_ConversionAlgebra):
    """The time change and scale taking schedule ``src`` (time ``t``) to ``dst`` (time ``s``).

    Symbolic attributes (SymPy, in :data:`schedalg.symbolic.s`): :attr:`tau`, :attr:`c`,
    :attr:`d_tau`, :attr:`d_c`; and the same as functions of ``s`` and the value
    ``TAU = tau(s)`` (:attr:`c_of_tau`, :attr:`d_tau_of_tau`, :attr:`d_c_of_tau`), which
    are what gets compiled. :attr:`kind` is ``"identity"``, ``"symbolic"`` (tau in closed
    form) or ``"numeric"`` (tau by numeric inversion); :attr:`seconds` is how long the
    derivation took (the source's inverse included, when it was not cached). Torch: :meth:`time`, :meth:`scale`, :meth:`d_time`,
    :meth:`d_scale` (see :class:`schedalg.compile.CompiledConversion`).
    """

    def __init__(self, src: Schedule, dst: Schedule):
        start = time.perf_counter()
        src.require_bound("convert from it")
        dst.require_bound("convert to it")
        self.src, self.dst = src, dst
        self.lam_range = _overlap(src, dst)
        self.identity = schedule_key(src) == schedule_key(dst)
        self._lam_dst = _in_s(dst.log_snr)
        if self.identity:
            self.kind, self.method = "identity", "same schedule"
        else:
            inverse = src.inverse_log_snr
            self.kind, self.method = inverse.kind, inverse.method
        # two-argument forms: functions of s and of the value TAU = tau(s)
        a_plus_s = _in_s(dst.alpha + dst.sigma)
        self.c_of_tau: sp.Expr = a_plus_s / _at(src.alpha + src.sigma, TAU)
        self.d_tau_of_tau: sp.Expr = _in_s(dst.d_log_snr) / _at(src.d_log_snr, TAU)
        tau_fn = _placeholder("tau_of_s")
        derivative = sp.diff(a_plus_s / _at(src.alpha + src.sigma, tau_fn(s)), s)
        self.d_c_of_tau: sp.Expr = derivative.xreplace({tau_fn.d(s): self.d_tau_of_tau}).xreplace({tau_fn(s): TAU})
        if self.identity:
            self.c_of_tau, self.d_tau_of_tau, self.d_c_of_tau = sp.Integer(1), sp.Integer(1), sp.Integer(0)
        self.seconds = time.perf_counter() - start

    @cached_property
    def tau(self) -> sp.Expr:
        """``tau(s)``: the source's closed-form inverse at ``lambda_dst(s)``, simplified when
        small (:func:`simplify_within`; :attr:`tau_seconds` says how long that took); for a numeric inverse,
        ``T_src(lambda_dst(s))`` with ``T_src`` a numeric SymPy function. The compiled
        :meth:`time` evaluates the same map as ``t_of_log_snr(lambda_dst(s))`` plus Newton
        polish, so it does not wait for this simplification."""
        start = time.perf_counter()
        if self.identity:
            value: sp.Expr = s
        elif self.kind == "symbolic":
            raw = self.src.inverse_log_snr.expr.subs(lam, self._lam_dst)
            value = simplify_within(raw, self.check_grid)
        else:
            value = inverse_function(self.src)(self._lam_dst)
        self.tau_seconds = time.perf_counter() - start
        return value

    @cached_property
    def check_grid(self) -> list:
        """Destination times (mpmath, 60 digits) where simplifications are checked: the
        whole domain, points ``10^-k`` from both ends included."""
        return mp_points(*self.dst.domain, interior=9, ends=range(2, 25, 4))

    def _closed(self, expr: sp.Expr) -> sp.Expr:
        return simplify_within(expr.subs(TAU, self.tau), self.check_grid)

    @cached_property
    def c(self) -> sp.Expr:
        """``c(s) = (A + S)(s) / (alpha + sigma)(tau(s))``, simplified when SymPy manages."""
        return self._closed(self.c_of_tau)

    @cached_property
    def d_tau(self) -> sp.Expr:
        """``tau'(s) = lambda_dst'(s) / lambda_src'(tau(s))``."""
        return self._closed(self.d_tau_of_tau)

    @cached_property
    def d_c(self) -> sp.Expr:
        """``c'(s)``, derived by SymPy through the chain rule."""
        return self._closed(self.d_c_of_tau)

    def __repr__(self) -> str:
        return f"Conversion({self.src.name!r} -> {self.dst.name!r}, kind={self.kind}, {self.seconds:.3g}s)"


class ComposedConversion(_ConversionAlgebra):
    """``first`` (A -> B) then ``second`` (B -> C), as one conversion A -> C.

    Symbolic forms by substitution, ``tau = tau_1(tau_2(s))``, ``c = c_2(s) c_1(tau_2(s))``,
    with ``tau'`` and ``c'`` from SymPy's chain rule (:attr:`chain_rule`).
    """

    def __init__(self, first: _ConversionAlgebra, second: _ConversionAlgebra):
        self.first, self.second = first, second
        self.src, self.dst = first.src, second.dst
        self.lam_range = (max(first.lam_range[0], second.lam_range[0]),
                          min(first.lam_range[1], second.lam_range[1]))
        self.kind = "composed"

    @staticmethod
    def chain_rule() -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
        """``(symbols, (tau, c, tau', c'))`` of a composition, in the symbols
        ``(T1, C1, DT1, DC1, T2, C2, DT2, DC2)``: the values of the first conversion at
        ``u = tau_2(s)`` and of the second at ``s``. Derived by differentiating
        ``F1(G2(s))`` and ``C2(s) K1(G2(s))`` with placeholder functions."""
        names = ("T1", "C1", "DT1", "DC1", "T2", "C2", "DT2", "DC2")
        sym = dict(zip(names, sp.symbols(" ".join(names), real=True)))
        f1, k1, g2, c2 = (_placeholder(n) for n in ("F1", "K1", "G2", "C2"))
        tau_expr = f1(g2(s))
        c_expr = c2(s) * k1(g2(s))
        values = {f1(g2(s)): sym["T1"], k1(g2(s)): sym["C1"], f1.d(g2(s)): sym["DT1"], k1.d(g2(s)): sym["DC1"],
                  g2(s): sym["T2"], c2(s): sym["C2"], g2.d(s): sym["DT2"], c2.d(s): sym["DC2"]}
        exprs = (tau_expr, c_expr, sp.diff(tau_expr, s), sp.diff(c_expr, s))
        return tuple(sym[n] for n in names), tuple(e.xreplace(values) for e in exprs)

    def _substituted(self, name: str) -> sp.Expr:
        symbols, exprs = self.chain_rule()
        index = {"tau": 0, "c": 1, "d_tau": 2, "d_c": 3}[name]
        first = [getattr(self.first, a).subs(s, self.second.tau) for a in ("tau", "c", "d_tau", "d_c")]
        second = [getattr(self.second, a) for a in ("tau", "c", "d_tau", "d_c")]
        return exprs[index].subs(dict(zip(symbols, first + second)), simultaneous=True)

    @cached_property
    def tau(self) -> sp.Expr:
        """``tau_1(tau_2(s))``."""
        return self._substituted("tau")

    @cached_property
    def c(self) -> sp.Expr:
        """``c_2(s) c_1(tau_2(s))``."""
        return self._substituted("c")

    @cached_property
    def d_tau(self) -> sp.Expr:
        """``tau_1'(tau_2(s)) tau_2'(s)``."""
        return self._substituted("d_tau")

    @cached_property
    def d_c(self) -> sp.Expr:
        """``c_2'(s) c_1(tau_2) + c_2(s) c_1'(tau_2) tau_2'(s)``."""
        return self._substituted("d_c")

    def __repr__(self) -> str:
        return f"ComposedConversion({self.first!r} then {self.second!r})"


def _overlap(src: Schedule, dst: Schedule) -> tuple[float, float]:
    """The log-SNR interval both schedules reach, or a :class:`DomainError`."""
    lo_src, hi_src = src.log_snr_range
    lo_dst, hi_dst = dst.log_snr_range
    lo, hi = max(lo_src, lo_dst), min(hi_src, hi_dst)
    if not lo < hi:
        raise DomainError(
            "two schedules whose log-SNR ranges overlap",
            f"{src.name!r} covers lambda in [{lo_src:.6g}, {hi_src:.6g}] and "
            f"{dst.name!r} covers [{lo_dst:.6g}, {hi_dst:.6g}]",
            "pick schedules that share noise levels (e.g. widen sigma_min/sigma_max)",
        )
    return lo, hi


def convert(src: Schedule, dst: Schedule) -> Conversion:
    """The conversion from ``src`` to ``dst``: ``x^dst_s = c(s) x^src_{tau(s)}`` (cached).

    Raises :class:`~schedalg.errors.DomainError` if the log-SNR ranges do not overlap,
    :class:`~schedalg.errors.UnboundSymbolError` for schedules with unbound parameters.
    """
    key = (schedule_key(src), schedule_key(dst))
    cached = _CONVERSIONS.get(key)
    if cached is None:
        cached = Conversion(src, dst)
        _CONVERSIONS[key] = cached
    return cached
