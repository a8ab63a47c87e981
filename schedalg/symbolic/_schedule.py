"""The symbolic noise schedule.

A schedule is a pair of SymPy expressions in the time symbol ``t``::

    x_t = alpha(t) * x0 + sigma(t) * eps,      eps ~ N(0, I)

written the way its paper writes it: ``t`` may run data -> noise (DDPM, VP, VE, EDM)
or noise -> data (flow matching, stochastic interpolants). Everything else is derived:
the log-SNR ``lambda = log(alpha^2 / sigma^2)``, its derivative and inverse, the
direction of time (the sign of ``d lambda / dt``), the forward SDE ``dx = f x dt + g dW``,
the optimal diffusion coefficient ``e* = sigma^2 |lambda'| / 2`` of the stochastic
interpolant SDE family (Damsholt et al. 2026, arXiv 2602.03789), and the EDM view
``x / alpha = x0 + (sigma / alpha) eps`` (Karras et al. 2022).

Every schedule with a strictly monotone ``lambda`` is the same process up to a time
change and a scale; a schedule whose ``lambda`` is not strictly monotone on its domain
is rejected with the interval where it fails.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ..errors import DomainError, NotMonotoneError, ScheduleError, UnboundSymbolError
from ._cache import CacheFormatError, decode_float, encode_float
from ._derive import derive_inverse, rational_declaration, real_zeros
from ._ends import end_values, value_at_end
from ._hooks import compiler
from ._numeric import NumericFunction, numpy_namespace
from ._symbols import lam, t

__all__ = ["Schedule", "LogSnrInverse", "value_at_end", "EndValueWarning", "SuspiciousScheduleWarning"]


class EndValueWarning(UserWarning):
    """A quantity whose float64 value at an end of the domain is NaN or infinite where the
    end-value rule gives another value (which is then used there)."""


class SuspiciousScheduleWarning(UserWarning):
    """A declaration that is valid but probably not what was meant (e.g. alpha > 1)."""

_INVERSE_CACHE: dict[Any, "LogSnrInverse"] = {}
#: Digits of the validator's second look at grid points that float64 would refuse (underflow).
_CHECK_DPS = 60

#: The direction of a symbolic schedule whose sign SymPy cannot decide (+1 or -1).
DIRECTION = sp.Symbol("direction", nonzero=True)


@dataclass(frozen=True)
class LogSnrInverse:
    """``t(lambda)``: the inverse of a schedule's log-SNR.

    ``kind`` is ``"symbolic"`` when SymPy found a closed form whose substitution back
    into ``lambda(t)`` was verified on the domain (``expr`` is then that form, in the
    symbol ``lambda``), and ``"numeric"`` otherwise (``expr`` is ``None``; compiled
    schedules invert by safeguarded bisection/Newton in float64). ``seconds`` is the
    time the derivation took, ``method`` how the closed form was found.
    """

    kind: str
    expr: sp.Expr | None
    seconds: float
    method: str


class Schedule:
    """A noise schedule ``x_t = alpha(t) x0 + sigma(t) eps`` declared with SymPy.

    Parameters
    ----------
    alpha, sigma:
        SymPy expressions in :data:`schedalg.t`, or numbers. Strings are refused (parsing
        one can run code): build expressions from ``sa.t``.
    domain:
        ``(t_min, t_max)``; ends where ``alpha`` or ``sigma`` vanish are open
        (``lambda`` is infinite there) and are reported by :attr:`open_ends`.
    truncated:
        True declares the domain as a model's *span* that may stop short of the point
        where ``sigma`` reaches 0 (EDM's ``sigma in [0.002, 80]``); grids, conversions,
        samplers and plans then start and stop at its ends. See :meth:`truncate`.
    params:
        ``{symbol_or_name: value}``. A number binds the parameter; ``None`` declares it
        symbolic (derivations work, numerics ask for :meth:`bind` first).
    name:
        A label for tables and error messages.

    Raises
    ------
    UnboundSymbolError
        A free symbol that is neither ``t`` nor declared in ``params``.
    ScheduleError, NotMonotoneError, DomainError
        (for bound schedules) ``alpha``/``sigma`` negative, complex or not finite inside
        the domain, ``lambda`` not strictly monotone, or a domain that stops short of
        the point where ``sigma`` reaches 0.
    """

    def __init__(
        self,
        alpha: Any,
        sigma: Any,
        *,
        domain: tuple[Any, Any] = (0, 1),
        params: Mapping[Any, Any] | None = None,
        name: str | None = None,
        truncated: bool = False,
    ):
        for label, value in (("alpha", alpha), ("sigma", sigma)):
            if isinstance(value, (str, bytes)):
                raise ScheduleError(f"{label} as a SymPy expression of schedalg.t",
                                    f"the string {value!r}",
                                    "build it from sa.t with sympy functions, e.g. sp.cos(sp.pi * sa.t / 2); "
                                    "strings are not parsed (parsing a string can run code)")
        try:
            alpha_expr = _strict(alpha, "alpha")
            sigma_expr = _strict(sigma, "sigma")
        except (sp.SympifyError, TypeError) as exc:
            raise ScheduleError("alpha and sigma as SymPy expressions of schedalg.t",
                                f"{alpha!r}, {sigma!r}", "build them from sa.t with sympy functions") from exc
        self.name = name or "schedule"
        self.truncated = bool(truncated)
        self._declared: dict[sp.Symbol, Any] = {}
        for key, value in (params or {}).items():
            symbol = key if isinstance(key, sp.Symbol) else _find_symbol(str(key), alpha_expr, sigma_expr)
            self._declared[symbol] = value
        bound = {k: _strict(v, str(k)) for k, v in self._declared.items() if v is not None}
        self.alpha: sp.Expr = alpha_expr.subs(bound)
        self.sigma: sp.Expr = sigma_expr.subs(bound)
        self._template = (alpha_expr, sigma_expr)
        try:
            lo, hi = (_strict(domain[0], "domain"), _strict(domain[1], "domain"))
        except (TypeError, IndexError, sp.SympifyError) as exc:
            raise ScheduleError("domain=(t_min, t_max)", repr(domain), "pass two numbers") from exc
        self.domain: tuple[sp.Expr, sp.Expr] = (lo.subs(bound), hi.subs(bound))

        generic = self.alpha.atoms(AppliedUndef) | self.sigma.atoms(AppliedUndef)
        unknown = self.free_parameters - generic - {k for k, v in self._declared.items() if v is None}
        if unknown:
            names = sorted(map(str, unknown))
            raise UnboundSymbolError(
                f"expressions in schedalg.t and declared parameters only (schedule {self.name!r})",
                f"the undeclared symbols {names}",
                f"bind them, e.g. Schedule(..., params={{'{names[0]}': 0.1}}), "
                f"or declare them symbolic with params={{'{names[0]}': None}}",
            )
        if self.is_bound:
            self._validate_once()

    # ------------------------------------------------------------------ parameters

    @property
    def free_parameters(self) -> set[sp.Symbol]:
        """Symbols other than ``t`` left in ``alpha``, ``sigma`` or the domain."""
        found = self.__dict__.get("_free_parameters")
        if found is None or found[0] != (self.alpha, self.sigma, self.domain):
            symbols = self.alpha.free_symbols | self.sigma.free_symbols
            for end in self.domain:
                symbols |= end.free_symbols
            # undefined functions alpha(t), sigma(t): a generic schedule, for proofs
            symbols |= self.alpha.atoms(AppliedUndef) | self.sigma.atoms(AppliedUndef)
            found = self.__dict__["_free_parameters"] = ((self.alpha, self.sigma, self.domain),
                                                         frozenset(symbols) - {t})
        return set(found[1])

    @property
    def is_bound(self) -> bool:
        """True when every parameter has a value, so the schedule can be evaluated."""
        return not self.free_parameters

    def bind(self, **values: Any) -> "Schedule":
        """A copy with the named symbolic parameters set to ``values``."""
        params = {str(k): v for k, v in self._declared.items()}
        unknown = set(values) - set(params)
        if unknown:
            raise UnboundSymbolError(f"parameters among {sorted(params)}", f"{sorted(unknown)}",
                                     "bind only parameters the schedule declares")
        params.update(values)
        return Schedule(self._template[0], self._template[1], domain=self.domain,
                        params={_find_symbol(k, *self._template, *self.domain): v for k, v in params.items()},
                        name=self.name, truncated=self.truncated)

    def require_bound(self, what: str) -> None:
        """Raise :class:`UnboundSymbolError` unless every parameter is bound."""
        if not self.is_bound:
            names = sorted(map(str, self.free_parameters))
            raise UnboundSymbolError(
                f"a schedule with every parameter bound, to {what}",
                f"schedule {self.name!r} with symbolic parameters {names}",
                f"call .bind({', '.join(f'{n}=...' for n in names)}) first",
            )

    # ------------------------------------------------------------------ derived quantities

    @cached_property
    def d_alpha(self) -> sp.Expr:
        """``d alpha / dt``."""
        return sp.diff(self.alpha, t)

    @cached_property
    def d_sigma(self) -> sp.Expr:
        """``d sigma / dt``."""
        return sp.diff(self.sigma, t)

    @cached_property
    def snr(self) -> sp.Expr:
        """Signal-to-noise ratio ``alpha^2 / sigma^2``."""
        return self.alpha**2 / self.sigma**2

    @cached_property
    def log_snr(self) -> sp.Expr:
        """``lambda = log(alpha^2 / sigma^2) = 2 log alpha - 2 log sigma`` (logs expanded).

        Expanding the logarithms (valid since alpha, sigma > 0 inside the domain) keeps
        it finite and accurate where the ratio itself under- or overflows.
        """
        return sp.expand_log(2 * sp.log(self.alpha) - 2 * sp.log(self.sigma), force=True)

    @cached_property
    def d_log_snr(self) -> sp.Expr:
        """``d lambda / dt``; its sign is :attr:`direction`."""
        return sp.diff(self.log_snr, t)

    @cached_property
    def direction(self) -> Any:
        """``+1`` if ``lambda`` increases with ``t`` (data at ``t_max``), ``-1`` otherwise.

        Derived, never declared: for a bound schedule from the sign of ``lambda'`` on
        the domain (validated to be constant), for a symbolic one from SymPy's sign at
        the midpoint under the parameters' assumptions. When SymPy cannot decide (a
        generic ``alpha(t)``), it is the symbol :data:`DIRECTION` (standing for +-1), so
        that identities can still be proved for both directions at once.
        """
        if self.is_bound:
            return self._numeric_direction
        mid = (self.domain[0] + self.domain[1]) / 2
        value = self.d_log_snr.subs(t, mid)
        if value.is_positive:
            return 1
        if value.is_negative:
            return -1
        return DIRECTION

    @property
    def t_data(self) -> sp.Expr:
        """The high-SNR end of the domain (where sampling ends)."""
        self._require_direction()
        return self.domain[1] if self.direction > 0 else self.domain[0]

    @property
    def t_noise(self) -> sp.Expr:
        """The low-SNR end of the domain (where sampling starts)."""
        self._require_direction()
        return self.domain[0] if self.direction > 0 else self.domain[1]

    def _require_direction(self) -> None:
        if self.direction is DIRECTION:
            self.require_bound("decide which end of the domain holds the data")

    @cached_property
    def e_star(self) -> sp.Expr:
        """Optimal diffusion coefficient ``e*(t) = sigma^2 |lambda'| / 2`` in generation time.

        The stochastic interpolant SDE ``dX = [b + e s] dt + sqrt(2 e) dW`` has the same
        marginals for every ``e >= 0``; ``e*`` is the statistically optimal choice
        (Damsholt et al. 2026). Equals ``sigma^2 alpha'/alpha - sigma sigma'`` up to the
        direction sign (``proofs/test_schedule_identities.py``).
        """
        return self.direction * self.sigma**2 * self.d_log_snr / 2

    @cached_property
    def drift_f(self) -> sp.Expr:
        """``f`` of the forward SDE ``dx = f x dt + g dW`` in forward (data -> noise) time.

        ``f = d log alpha / dt_fwd``; with ``t_fwd = -direction * t``.
        """
        return -self.direction * self.d_alpha / self.alpha

    @cached_property
    def diffusion_g2(self) -> sp.Expr:
        """``g^2`` of the forward SDE: ``g^2 = d sigma^2/dt_fwd - 2 f sigma^2 = sigma^2 |lambda'|``."""
        return self.direction * self.sigma**2 * self.d_log_snr

    @cached_property
    def edm_sigma(self) -> sp.Expr:
        """EDM noise level ``sigma / alpha``: ``x_t / alpha = x0 + (sigma/alpha) eps``."""
        return self.sigma / self.alpha

    @property
    def edm_scale(self) -> sp.Expr:
        """EDM scale ``s(t) = alpha(t)``."""
        return self.alpha

    # ------------------------------------------------------------------ ends and ranges

    @cached_property
    def _end_values(self) -> dict[str, tuple[float, float]]:
        """``{'lo': (alpha, sigma), 'hi': (alpha, sigma)}`` at the domain's ends (limits)."""
        self.require_bound("evaluate it at its ends")
        (a_lo, a_hi), (s_lo, s_hi) = end_values(self, "alpha"), end_values(self, "sigma")
        return {"lo": (a_lo, s_lo), "hi": (a_hi, s_hi)}

    @property
    def open_ends(self) -> tuple[bool, bool]:
        """Whether ``lambda`` is infinite at ``(t_min, t_max)`` (alpha or sigma vanish)."""
        return tuple(0.0 in self._end_values[k] for k in ("lo", "hi"))  # type: ignore[return-value]

    @property
    def is_point_mass(self) -> bool:
        """True when ``alpha = sigma = 0`` at the noise end: the base measure is a point mass."""
        key = "hi" if self.direction < 0 else "lo"
        a, s = self._end_values[key]
        return a == 0.0 and s == 0.0

    @property
    def reaches_data(self) -> bool:
        """True when ``sigma = 0`` at the data end (not truncated like VE's ``sigma_min``)."""
        key = "hi" if self.direction > 0 else "lo"
        return self._end_values[key][1] == 0.0

    @cached_property
    def log_snr_range(self) -> tuple[float, float]:
        """``(lambda at the noise end, lambda at the data end)``, possibly infinite."""
        lo, hi = end_values(self, "log_snr")  # the one end-value rule
        return (lo, hi) if self.direction > 0 else (hi, lo)

    # ------------------------------------------------------------------ spans

    def truncate(self, t_noise: Any = None, t_data: Any = None, *, sigma_max: float | None = None,
                 sigma_min: float | None = None, log_snr: tuple[float, float] | None = None) -> "Schedule":
        """This schedule on a narrower span (a model's training span), ``truncated=True``.

        Each end is given at most one way, else kept: as a time (``t_noise``, ``t_data``),
        as an EDM noise level ``sigma/alpha`` (``sigma_max`` at the noise end, ``sigma_min``
        at the data end), or both as the log-SNR interval ``log_snr = (lambda_noise,
        lambda_data)``; levels are mapped to times by the inverse log-SNR. The span of a
        model on another schedule is ``schedule.truncate(log_snr=model_schedule.log_snr_range)``
        (a conversion maps spans: EDM ``sigma in [0.002, 80]`` is linear ``t in [1/81, 500/501]``).
        """
        self.require_bound("truncate it")
        noise_lam = data_lam = None
        if log_snr is not None:
            if sigma_max is not None or sigma_min is not None:
                raise ScheduleError("each end given one way", "log_snr= together with sigma_max/sigma_min",
                                    "pass either the log-SNR interval or the noise levels")
            try:
                noise_lam, data_lam = (float(v) for v in log_snr)
            except (TypeError, ValueError) as exc:
                raise ScheduleError("log_snr=(lambda_noise, lambda_data)", repr(log_snr), None) from exc
        for level, label in ((sigma_max, "sigma_max"), (sigma_min, "sigma_min")):
            if level is not None and not (isinstance(level, (int, float)) and np.isfinite(level) and level > 0):
                raise ScheduleError(f"{label} > 0 (a noise level sigma/alpha)", repr(level), None)
        if sigma_max is not None:
            noise_lam = -2.0 * float(np.log(sigma_max))
        if sigma_min is not None:
            data_lam = -2.0 * float(np.log(sigma_min))
        own_noise, own_data = self.log_snr_range
        noise_lam = None if noise_lam == own_noise else noise_lam  # an end kept as it is stays exact
        data_lam = None if data_lam == own_data else data_lam
        ends = []
        for given, target, current, label in ((t_noise, noise_lam, self.t_noise, "noise"),
                                             (t_data, data_lam, self.t_data, "data")):
            if given is not None and target is not None:
                raise ScheduleError(f"the {label} end given one way", "a time and a noise level", None)
            if given is not None:
                ends.append(sp.sympify(given))
            elif target is not None:
                ends.append(sp.Float(self._time_of_log_snr(target, label)))
            else:
                ends.append(current)
        lo, hi = (ends[0], ends[1]) if self.direction > 0 else (ends[1], ends[0])
        d_lo, d_hi = float(self.domain[0]), float(self.domain[1])
        if not (d_lo <= float(lo) < float(hi) <= d_hi):
            raise DomainError(f"a span inside the domain [{d_lo:.6g}, {d_hi:.6g}] of {self.name!r}, "
                              "noise end before data end",
                              f"t_noise = {float(ends[0]):.6g}, t_data = {float(ends[1]):.6g}",
                              "pick ends inside the domain (noise levels between those of its ends)")
        return self._with_domain((lo, hi))

    def _time_of_log_snr(self, target: float, label: str) -> float:
        """``t(lambda = target)`` in float64 without torch: the closed-form inverse at 30 digits,
        else a bracketed root of the float64 log-SNR (Brent, to a few ulps of ``t``)."""
        low, high = self.log_snr_range
        if not low <= target <= high:
            raise DomainError(f"a {label}-end log-SNR inside [{low:.6g}, {high:.6g}] of {self.name!r}",
                              f"lambda = {target!r}", "pick a noise level the schedule reaches")
        inverse = self.inverse_log_snr
        if inverse.expr is not None:
            return float(inverse.expr.subs(lam, sp.Float(target, 30)).evalf(30))
        from scipy.optimize import brentq

        (log_snr,) = (self.numpy_function(self.log_snr),)
        lo, hi = float(self.domain[0]), float(self.domain[1])

        def gap(time: float) -> float:
            with np.errstate(all="ignore"):
                (value,) = log_snr(np.array([time]))
            return float(np.asarray(value).reshape(-1)[0]) - target

        inner = lambda a, b: (a + (b - a) * 1e-12, b - (b - a) * 1e-12)  # noqa: E731 - the ends may be +-inf
        a, b = inner(lo, hi)
        if target in (low, high):
            return float(self.t_noise if target == (low if self.direction > 0 else high) else self.t_data)
        return float(brentq(gap, a, b, xtol=4 * np.finfo(float).eps * max(abs(a), abs(b), 1.0), rtol=8.9e-16))

    def _with_domain(self, domain: tuple[sp.Expr, sp.Expr]) -> "Schedule":
        """A copy of this schedule declared on ``domain`` as a truncated span."""
        return Schedule(self._template[0], self._template[1], domain=domain, params=dict(self._declared),
                        name=self.name, truncated=True)

    # ------------------------------------------------------------------ inverse

    @property
    def inverse_log_snr(self) -> LogSnrInverse:
        """``t(lambda)``, symbolic when SymPy finds a verified real branch, else numeric."""
        found = self.__dict__.get("_inverse_memo")
        if found is not None:
            return found
        self.require_bound("invert its log-SNR")
        from ._record import canonical_key

        key = canonical_key(self)
        if key is None:  # tabulated functions (not written to disk)
            key = (sp.srepr(self.alpha), sp.srepr(self.sigma), sp.srepr(self.domain))
        cached = _INVERSE_CACHE.get(key)
        if cached is None:
            cached = _stored_inverse(self)
            _INVERSE_CACHE[key] = cached
        self.__dict__["_inverse_memo"] = cached
        return cached

    # ------------------------------------------------------------------ numerics

    def compile(self):
        """The torch view of this schedule (see :class:`schedalg.compile.CompiledSchedule`)."""
        return compiler("schedule")(self)

    def numpy_function(self, *exprs: sp.Expr):
        """``lambdify`` of ``exprs`` in ``t`` with numpy (for checks, not for sampling)."""
        return sp.lambdify(t, list(exprs), modules=[numpy_namespace(*exprs), "numpy"])

    def __repr__(self) -> str:
        return (f"Schedule(name={self.name!r}, alpha={self.alpha}, sigma={self.sigma}, "
                f"domain=({self.domain[0]}, {self.domain[1]}))")

    # ------------------------------------------------------------------ validation

    def _grid(self, n: int = 513) -> np.ndarray:
        lo, hi = (float(self.domain[0]), float(self.domain[1]))
        u = 0.5 * (1 - np.cos(np.pi * (np.arange(n) + 0.5) / n))  # clustered at the ends
        return lo + (hi - lo) * u

    def _validate_once(self) -> None:
        """:meth:`_validate`, or its recorded outcome (direction, end repairs) from the
        derivation record when this declaration was validated before (on disk too)."""
        from ._record import record_of

        record = record_of(self)
        stored = record.get("validation", "outcome")
        if (isinstance(stored, dict) and stored.get("direction") in (1, -1)
                and isinstance(stored.get("repairs"), list)):
            try:
                repairs = [(str(label), int(index), decode_float(raw), decode_float(exact))
                           for label, index, raw, exact in stored["repairs"]]
            except (CacheFormatError, TypeError, ValueError):
                repairs = None
            if repairs is not None and all(label in ("alpha", "sigma", "log_snr") and index in (0, 1)
                                           for label, index, _, _ in repairs):
                self._numeric_direction = stored["direction"]
                self._announce(repairs)
                return
        self._validate()
        record.put("validation", "outcome", {
            "direction": self._numeric_direction,
            "repairs": [[label, index, encode_float(raw), encode_float(exact)]
                        for label, index, raw, exact in self._repairs]})

    def _announce(self, repairs: list[tuple[str, int, float, float]], stacklevel: int = 4) -> None:
        """Warn (:class:`EndValueWarning`) about each ``(quantity, end index, float64 value, rule value)``."""
        for label, index, raw, exact in repairs:
            end = float(self.domain[index])
            warnings.warn(
                f"{label}(t = {end!r}) of schedule {self.name!r} evaluates to {raw!r} in float64; the "
                f"end-value rule (exact substitution, else the one-sided limit) gives {exact!r}, and compiled "
                f"functions, time grids, models and conversions use that value at this end",
                EndValueWarning, stacklevel=stacklevel)

    def _check_ends(self) -> None:
        """Refuse ends where alpha or sigma has no value by the end-value rule (neither the
        substitution nor a one-sided limit gives one)."""
        lo, hi = float(self.domain[0]), float(self.domain[1])
        fn = self.numpy_function(self.alpha, self.sigma, self.log_snr)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = [np.broadcast_to(np.asarray(v, dtype=np.complex128), (2,)) for v in fn(np.array([lo, hi]))]
        self._repairs = []
        for label, values in zip(("alpha", "sigma", "log_snr"), raw):
            exact = end_values(self, label)
            for index in (0, 1):
                value = complex(values[index])
                as_float = value.real if value.imag == 0 else float("nan")
                if label != "log_snr" and math.isnan(exact[index]):
                    raise ScheduleError(f"{label}(t) with a value at the end t = {(lo, hi)[index]!r} of {self.name!r}",
                                        f"no finite value or limit there (float64 gives {value!r})",
                                        "check the expression at the end, or end the domain before it")
                if label != "log_snr" and exact[index] < 0:
                    raise ScheduleError(f"{label}(t) >= 0 at the end t = {(lo, hi)[index]!r} of {self.name!r}",
                                        f"{label} = {exact[index]!r} there (by the end-value rule)",
                                        "alpha and sigma must be positive inside the domain and may reach 0 "
                                        "only at its ends")
        # repairs of the float64 values are announced when compiling, where the generated code
        # (not this numpy check) shows what float64 gives at the ends
        self._repairs = []

    def _check_alpha_at_most_one(self, grid: np.ndarray, alpha: np.ndarray) -> None:
        above = alpha > 1 + 1e-12  # beyond rounding of a value that should be 1
        if above.any():
            where = int(np.argmax(above))
            warnings.warn(f"alpha({float(grid[where])!r}) = {float(alpha[where])!r} > 1 in schedule {self.name!r}: "
                          "alpha scales the data, and alpha > 1 amplifies it (a typo in the declaration?)",
                          SuspiciousScheduleWarning, stacklevel=4)

    def _validate(self) -> None:
        try:
            lo, hi = float(self.domain[0]), float(self.domain[1])
        except TypeError as exc:
            raise ScheduleError("a finite real domain (t_min, t_max)", f"{self.domain}",
                                "pass two real numbers") from exc
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ScheduleError("a finite domain with t_min < t_max", f"({lo}, {hi})",
                                "pass domain=(t_min, t_max) with t_min < t_max")
        grid = self._grid()
        has_numeric = bool(self.alpha.atoms(NumericFunction) or self.sigma.atoms(NumericFunction))
        values = self.numpy_function(self.alpha, self.sigma)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = values(grid if has_numeric else grid.astype(np.complex128))
        for label, array in zip(("alpha", "sigma"), raw):
            array = np.broadcast_to(np.asarray(array), grid.shape)
            if not has_numeric:
                array = self._confirmed(getattr(self, label), grid, array)
            bad = ~np.isfinite(array)
            if bad.any():
                where = grid[bad][0]
                raise ScheduleError(f"{label}(t) finite inside the domain",
                                    f"{label}({where:.6g}) = {array[bad][0]}",
                                    "check the expression and the domain")
            if np.iscomplexobj(array):
                imaginary = np.abs(array.imag) > 1e-12 * (1 + np.abs(array.real))
                if imaginary.any():
                    where = grid[imaginary][0]
                    raise ScheduleError(f"{label}(t) real inside the domain",
                                        f"{label}({where:.6g}) = {complex(array[imaginary][0]):.6g}",
                                        "restrict the domain or fix the expression (a sqrt or log of a negative)")
                array = array.real
            if label == "alpha":
                self._check_alpha_at_most_one(grid, array)
            if (array <= 0).any():
                where = grid[array <= 0][0]
                raise ScheduleError(f"{label}(t) > 0 inside the domain",
                                    f"{label}({where:.6g}) = {array[array <= 0][0]:.6g}",
                                    "alpha multiplies the data and sigma the noise; both must be positive "
                                    "inside the domain (zeros only at its ends)")
        if not has_numeric:
            self._check_singularities(lo, hi)
        self._check_monotone(grid)
        self._check_data_end()
        if not has_numeric:
            self._check_ends()
        else:
            self._repairs = []

    def _confirmed(self, expr: sp.Expr, grid: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` (float64 or complex128 evaluations of ``expr`` on ``grid``) with every
        entry the checks would refuse (non-finite, <= 0, not real) evaluated again at
        :data:`_CHECK_DPS` digits (:func:`_reevaluated`): float64 underflow
        (``sqrt(1 - exp(-1e-17))`` is 0 in float64, about 3e-9 in fact) must not refuse a
        valid schedule."""
        suspect = ~np.isfinite(values)
        if np.iscomplexobj(values):
            suspect |= np.abs(values.imag) > 1e-12 * (1 + np.abs(values.real))
            suspect |= values.real <= 0
        else:
            suspect |= values <= 0
        return _reevaluated(expr, grid, values, suspect, keep_zero=True)

    def _confirmed_finite(self, expr: sp.Expr, grid: np.ndarray, values: np.ndarray,
                          nonzero: bool = False) -> np.ndarray:
        """``values`` with non-finite (and, with ``nonzero``, zero) float64 entries evaluated
        again at :data:`_CHECK_DPS` digits (:func:`_reevaluated`; log-SNR and its slope near
        an end where float64 underflows; a true zero or pole stays as float64 gives it)."""
        suspect = ~np.isfinite(values) | ((values == 0) if nonzero else False)
        return _reevaluated(expr, grid, values, suspect, keep_zero=not nonzero)

    def _check_singularities(self, lo: float, hi: float) -> None:
        """Poles strictly inside the domain (a grid can step over them).

        Bounded work: the real roots of denominators that are polynomials in ``t`` of
        degree at most 8 (exact real-root isolation); other denominators are covered by
        the grid check of :meth:`_validate` only.
        """
        for label, expr in zip(("alpha", "sigma"), rational_declaration(self)):
            for node in sp.preorder_traversal(expr):
                if not (node.is_Pow and node.exp.is_negative and node.base.has(t)):
                    continue
                if not node.base.is_polynomial(t) or sp.degree(node.base, t) > 8:
                    continue
                poles = [float(r) for r in sp.Poly(node.base, t).real_roots() if lo < float(r) < hi]
                if poles:
                    raise ScheduleError(f"{label}(t) finite inside the domain",
                                        f"a singularity of {label} at t = {min(poles)!r}",
                                        "check the expression and the domain")

    def _check_monotone(self, grid: np.ndarray) -> None:
        """lambda' must keep one strict sign on the grid; report where it vanishes or flips."""
        fn = self.numpy_function(self.log_snr, self.d_log_snr)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lam_values, slope = (np.broadcast_to(np.asarray(a, dtype=float), grid.shape) for a in fn(grid))
        if not (self.alpha.atoms(NumericFunction) or self.sigma.atoms(NumericFunction)):
            lam_values = self._confirmed_finite(self.log_snr, grid, lam_values)
            slope = self._confirmed_finite(self.d_log_snr, grid, slope, nonzero=True)
        signs = np.where(np.isfinite(slope), np.sign(slope), 0.0)
        zeros = np.flatnonzero(signs == 0)
        nonzero = np.flatnonzero(signs != 0)
        flips = nonzero[:-1][np.diff(signs[nonzero]) != 0] if nonzero.size > 1 else nonzero[:0]
        majority = np.sign(np.sum(signs)) or 1.0
        bad = np.concatenate([zeros, flips, flips + 1])
        if not bad.size:  # one sign of lambda': lambda itself must move that way between points
            against = np.flatnonzero(np.sign(np.diff(lam_values)) != majority)
            bad = np.concatenate([against, against + 1])
        if bad.size:
            a = grid[max(int(bad.min()) - 1, 0)]
            b = grid[min(int(bad.max()) + 1, len(grid) - 1)]
            raise NotMonotoneError(
                f"a strictly monotone log-SNR lambda(t) = log(alpha^2/sigma^2) on the domain of {self.name!r}",
                f"lambda'(t) changes sign or vanishes on [{a:.6g}, {b:.6g}]",
                "restrict the domain to an interval where lambda is monotone, or fix alpha/sigma",
                interval=(float(a), float(b)),
            )
        self._numeric_direction = int(majority)

    def _check_data_end(self) -> None:
        """Refuse a domain that stops short of a zero of ``sigma`` beyond the data end (unless truncated).

        Bounded work: the zeros come from :func:`schedalg.symbolic._derive.real_zeros`
        (peeling and polynomial roots, no general ``solve``).
        """
        if self.truncated or self.alpha.atoms(NumericFunction) or self.sigma.atoms(NumericFunction):
            return
        t_data = float(self.t_data)
        if end_values(self, "sigma")[1 if self.direction > 0 else 0] == 0.0:
            return
        for r in real_zeros(self.sigma):
            beyond = r > t_data if self.direction > 0 else r < t_data
            if beyond:
                raise DomainError(
                    f"a domain that reaches the data end of {self.name!r} (where sigma = 0)",
                    f"a domain ending at t = {t_data!r} while sigma reaches 0 at t = {r!r}",
                    f"extend the domain to t = {r!r}, or declare a model's span with truncated=True "
                    "(or schedule.truncate(...))",
                )


# ---------------------------------------------------------------------- helpers


def _strict(value: Any, label: str) -> sp.Expr:
    """A number or SymPy object as a SymPy expression; strings are refused (no parsing)."""
    if isinstance(value, (str, bytes)):
        raise ScheduleError(f"{label} as a number or SymPy expression", f"the string {value!r}",
                            "pass a number (strings are not parsed: parsing a string can run code)")
    try:
        return sp.sympify(value, strict=True)
    except sp.SympifyError:
        pass
    try:  # a number of another library (a 0-d tensor, a Decimal): its float value, no parsing
        return sp.Float(float(value))
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"{label} as a number or SymPy expression", f"{type(value).__name__} {value!r}",
                            "pass a number or an expression built from sa.t") from exc


def _find_symbol(name: str, *exprs: sp.Expr) -> sp.Symbol:
    for expr in exprs:
        for symbol in sp.sympify(expr, strict=True).free_symbols:
            if symbol.name == name:
                return symbol
    return sp.Symbol(name, real=True)


def _derive_inverse(schedule: Schedule) -> LogSnrInverse:
    """The inverse by :func:`schedalg.symbolic._derive.derive_inverse` (bounded work, verified)."""
    start = time.perf_counter()
    kind, expr, method = derive_inverse(schedule)
    return LogSnrInverse(kind, expr, time.perf_counter() - start, method)


def _stored_inverse(schedule: Schedule) -> LogSnrInverse:
    """The inverse from the schedule's record (disk cache), else derived and recorded."""
    from . import _cache
    from ._record import record_of

    record = record_of(schedule)
    stored = record.get("inverse", "t_of_lambda")
    if isinstance(stored, dict) and stored.get("kind") in ("symbolic", "numeric"):
        try:
            expr = _cache.decode(stored["expr"]) if stored["kind"] == "symbolic" else None
            if expr is None or not expr.free_symbols - {lam}:
                return LogSnrInverse(stored["kind"], expr, _cache.decode_float(stored["seconds"]),
                                     str(stored["method"])[:200])
        except (_cache.CacheFormatError, KeyError, TypeError):
            pass
    inverse = _derive_inverse(schedule)
    if record.key is not None:
        try:
            tree = _cache.encode(inverse.expr) if inverse.expr is not None else None
        except _cache.CacheFormatError:
            return inverse
        record.put("inverse", "t_of_lambda", {"kind": inverse.kind, "expr": tree, "method": inverse.method,
                                              "seconds": _cache.encode_float(inverse.seconds)})
    return inverse


def _reevaluated(expr: sp.Expr, grid: np.ndarray, values: np.ndarray, suspect: np.ndarray,
                 keep_zero: bool) -> np.ndarray:
    """``values`` with the ``suspect`` entries replaced by ``expr`` at :data:`_CHECK_DPS` digits,
    rounded to the sign-preserving double (the smallest one of its sign for a value that
    underflows). An entry stays as it was where the high-precision value is truly complex
    (imaginary part above ``10^-(dps/2)`` of its size), not finite, raises, or is exactly 0
    without ``keep_zero``: the float64 evaluation then shows what the checks refuse."""
    if not suspect.any():
        return values
    out = np.array(values, dtype=values.dtype, copy=True)
    fn = sp.lambdify(t, expr, modules="mpmath")
    tiny = np.nextafter(0.0, 1.0)
    with mpmath.workdps(_CHECK_DPS):
        for index in np.flatnonzero(suspect):
            try:
                value = fn(mpmath.mpf(float(grid[index])))
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            real, imag = (value.real, value.imag) if isinstance(value, mpmath.mpc) else (value, mpmath.mpf(0))
            if (abs(imag) > mpmath.mpf(10) ** (-_CHECK_DPS // 2) * (1 + abs(real)) or not mpmath.isfinite(real)
                    or (real == 0 and not keep_zero)):
                continue
            as_double = float(real)
            if as_double == 0.0 and real != 0:
                as_double = math.copysign(tiny, float(mpmath.sign(real)))
            out[index] = as_double
    return out
