"""The torch view of a :class:`~schedalg.Schedule`.

``schedule.compile()`` returns a :class:`CompiledSchedule`: every derived quantity as a
torch function of ``t`` (same dtype and device as the input), generated once from the
SymPy expressions and cached. Evaluation never calls SymPy.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, Callable

import torch

from ..errors import DomainError
from ..symbolic import Schedule, check_prediction_kind, end_values, lam, prediction_conversion, t
from ._compile import CompiledFunction, compile_cached, compile_exprs
from ._inverse import invert_monotone

__all__ = ["CompiledSchedule", "compile_schedule", "convert_prediction", "QUANTITIES"]

#: Names of the derived quantities a compiled schedule evaluates.
QUANTITIES = ("alpha", "sigma", "d_alpha", "d_sigma", "log_snr", "d_log_snr",
              "e_star", "drift_f", "diffusion_g2", "edm_sigma")

_COMPILED: dict[int, "CompiledSchedule"] = {}


def compile_schedule(schedule: Schedule) -> "CompiledSchedule":
    """Compile ``schedule`` (cached on the schedule object)."""
    schedule.require_bound("compile it")
    cached = getattr(schedule, "_compiled", None)
    if cached is None:
        cached = CompiledSchedule(schedule)
        schedule._compiled = cached  # type: ignore[attr-defined]
    return cached


def _unary(name: str) -> Callable[..., torch.Tensor]:
    def method(self: "CompiledSchedule", tt: Any, *, extrapolate: bool = False) -> torch.Tensor:
        return self.evaluate(tt, name, extrapolate=extrapolate)[0]

    method.__name__ = name
    method.__doc__ = (f"``{name}(t)`` in torch (dtype and device of ``t``); times outside the domain raise "
                      ":class:`DomainError` unless ``extrapolate=True``; at the domain's ends the end "
                      "values of :meth:`end_values`.")
    return method


class CompiledSchedule:
    """Torch functions of ``t`` for one schedule.

    ``alpha(t)``, ``sigma(t)``, ``d_alpha``, ``d_sigma``, ``log_snr``, ``d_log_snr``,
    ``e_star``, ``drift_f``, ``diffusion_g2``, ``edm_sigma`` take a tensor and return a
    tensor of its dtype and device; :meth:`evaluate` returns several in one call (one
    generated function, shared subexpressions); :meth:`t_of_log_snr` inverts ``lambda``.

    These public functions are the API boundary: times outside the domain raise
    :class:`~schedalg.errors.DomainError` (``extrapolate=True`` evaluates the formulas
    there anyway) and times on an end of the domain get the end values of the one rule
    (:func:`schedalg.symbolic.end_values`), which costs a host-side check. Loops use the
    raw generated functions of :meth:`function` (no check, no synchronisation) on times
    checked once before the loop (a :class:`~schedalg.sampling.TimeGrid`).
    """

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self.direction = schedule.direction
        self.t_min = float(schedule.domain[0])
        self.t_max = float(schedule.domain[1])
        self.t_data = float(schedule.t_data)
        self.t_noise = float(schedule.t_noise)
        self.log_snr_range = schedule.log_snr_range
        self._functions: dict[tuple[str, ...], CompiledFunction] = {}
        self._check_compiled_ends()

    def _check_compiled_ends(self) -> None:
        """Announce ends where the generated float64 code gives NaN or an infinity that the
        end-value rule repairs (e.g. ``sqrt(1 - alpha^2)`` with ``alpha(0)`` rounded above 1):
        :class:`~schedalg.symbolic.EndValueWarning` names the quantity and the end."""
        ends = torch.tensor([self.t_min, self.t_max], dtype=torch.float64)
        names = ("alpha", "sigma", "log_snr")
        repairs = []
        for name, values in zip(names, self.function(*names)(ends)):
            exact = self.end_values(name)
            for index in (0, 1):
                value = float(values[index])
                if not math.isfinite(value) and value != exact[index] and not math.isnan(exact[index]):
                    repairs.append((name, index, value, exact[index]))
        self.schedule._announce(repairs, stacklevel=5)

    alpha = _unary("alpha")
    sigma = _unary("sigma")
    d_alpha = _unary("d_alpha")
    d_sigma = _unary("d_sigma")
    log_snr = _unary("log_snr")
    d_log_snr = _unary("d_log_snr")
    e_star = _unary("e_star")
    drift_f = _unary("drift_f")
    diffusion_g2 = _unary("diffusion_g2")
    edm_sigma = _unary("edm_sigma")

    def function(self, *names: str) -> CompiledFunction:
        """The raw compiled function returning the named quantities (a tuple) for a tensor ``t``:
        no domain check and no end values (for loops, on times checked beforehand)."""
        cached = self._functions.get(names)
        if cached is not None:  # the hot path: a dict lookup, no SymPy
            return cached
        unknown = [n for n in names if n not in QUANTITIES]
        if unknown:
            raise DomainError(f"quantities among {QUANTITIES}", f"{unknown}", "use one of the listed names")
        compiled = compile_cached(self.schedule, "|".join(names),
                                  lambda: [getattr(self.schedule, n) for n in names], [t], "_".join(names))
        self._functions[names] = compiled
        return compiled

    def evaluate(self, tt: Any, *names: str, extrapolate: bool = False) -> tuple[torch.Tensor, ...]:
        """Several quantities at ``t`` in one call, e.g. ``evaluate(t, 'alpha', 'sigma')``.

        Times outside the domain raise :class:`DomainError` unless ``extrapolate``; times on
        an end get :meth:`end_values` (host-side checks: call it outside loops).
        """
        tt = tt if isinstance(tt, torch.Tensor) else torch.as_tensor(tt, dtype=torch.float64)
        if not extrapolate:
            self.check_times(tt)
        return self.evaluate_grid(tt, *names)

    def check_times(self, tt: torch.Tensor) -> None:
        """Raise :class:`DomainError` unless every (non-NaN) time lies in the domain (host sync)."""
        if tt.numel() == 0:
            return
        outside = (tt < self.t_min) | (tt > self.t_max)
        if bool(outside.any()):
            bad = float(tt[outside].reshape(-1)[0])
            raise DomainError(
                f"times in the domain [{self.t_min!r}, {self.t_max!r}] of {self.schedule.name!r}",
                f"t = {bad!r}",
                "clip the times to the domain, or pass extrapolate=True to evaluate the formulas beyond it")

    def end_values(self, name: str) -> tuple[float, float]:
        """``(value at t_min, value at t_max)`` of a quantity by the one end-value rule
        (:func:`schedalg.symbolic.end_values`: exact substitution, else the one-sided limit)."""
        if name not in QUANTITIES:
            raise DomainError(f"quantities among {QUANTITIES}", repr(name), "use one of the listed names")
        return end_values(self.schedule, name)

    @property
    def exact_end_values(self) -> dict[str, tuple[float, float]]:
        """``name -> (value at t_min, value at t_max)`` for every quantity (:meth:`end_values`)."""
        return {name: self.end_values(name) for name in QUANTITIES}

    def evaluate_grid(self, times: torch.Tensor, *names: str) -> tuple[torch.Tensor, ...]:
        """The raw functions at ``times``, where times equal to a domain end get the end values
        of the one rule (a NaN end value keeps the formula's value). No domain check.

        Meant for time grids computed once before a sampling loop.
        """
        values = self.function(*names)(times)
        at_ends = [(index, bool((times == end).any())) for index, end in enumerate((self.t_min, self.t_max))]
        if not any(hit for _, hit in at_ends):
            return values
        out = []
        for name, value in zip(names, values):
            ends = self.end_values(name)
            for index, hit in at_ends:
                if hit and not math.isnan(ends[index]):
                    end = (self.t_min, self.t_max)[index]
                    value = torch.where(times == end, torch.full_like(value, ends[index]), value)
            out.append(value)
        return tuple(out)

    def source(self, *names: str) -> str:
        """The generated torch source for the named quantities (for inspection)."""
        return self.function(*names).source

    @property
    def inverse_kind(self) -> str:
        """``"symbolic"`` or ``"numeric"``: how :meth:`t_of_log_snr` is computed."""
        return self.schedule.inverse_log_snr.kind

    @cached_property
    def _inverse(self) -> CompiledFunction | None:
        inverse = self.schedule.inverse_log_snr
        if inverse.kind != "symbolic":
            return None
        return compile_cached(self.schedule, "t_of_log_snr", lambda: [inverse.expr], [lam], "t_of_log_snr")

    def t_of_log_snr(self, lam_values: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """The time at which ``lambda(t)`` equals ``lam_values`` (float64 recommended).

        Symbolic inverse when available, else safeguarded bisection + Newton on the
        compiled ``lambda``. Targets beyond :attr:`log_snr_range` raise
        :class:`DomainError` when ``check`` (a host-side check: call it before a loop).
        """
        if not isinstance(lam_values, torch.Tensor):
            lam_values = torch.as_tensor(lam_values, dtype=torch.float64)
        if check:
            low, high = self.log_snr_range
            finite = lam_values[~torch.isnan(lam_values)]
            if finite.numel() and (bool((finite < low - 1e-9 * abs(low)).any())
                                   or bool((finite > high + 1e-9 * abs(high)).any())):
                raise DomainError(
                    f"log-SNR values inside [{low!r}, {high!r}], the range of {self.schedule.name!r}",
                    f"values in [{float(finite.min())!r}, {float(finite.max())!r}]",
                    "choose times whose log-SNR both schedules reach",
                )
        if self._inverse is None:
            raw = self.function("log_snr", "d_log_snr")
            return invert_monotone(lambda x: raw(x)[0], lambda x: raw(x)[1], lam_values,
                                   self.t_min, self.t_max, increasing=self.direction > 0)
        out = self._inverse(lam_values)[0]
        # two safeguarded Newton steps on the compiled lambda remove the closed form's
        # rounding where it is ill-conditioned
        for _ in range(2):
            lam_out, slope = self.function("log_snr", "d_log_snr")(out)
            polished = out - (lam_out - lam_values) / slope
            ok = torch.isfinite(polished) & (polished >= self.t_min) & (polished <= self.t_max)
            out = torch.where(ok, polished, out)
        # exact ends: the closed form may give nan at +-inf
        out = torch.where(lam_values == torch.inf, torch.full_like(out, self.t_data), out)
        return torch.where(lam_values == -torch.inf, torch.full_like(out, self.t_noise), out)

    def prediction_coefficients(self, src: str, dst: str) -> CompiledFunction:
        """Compiled ``(c_x, c_p)`` of ``dst = c_x x_t + c_p src`` (see :mod:`schedalg.symbolic`)."""
        check_prediction_kind(src)
        check_prediction_kind(dst)
        key = ("prediction", src, dst)
        cache = self.__dict__.setdefault("_prediction_cache", {})
        if key not in cache:
            c_x, c_p = prediction_conversion(self.schedule, src, dst)
            cache[key] = compile_exprs([c_x, c_p], [t], name=f"{src}_to_{dst}")
        return cache[key]

    def convert_prediction(self, output: torch.Tensor, x: torch.Tensor, tt: torch.Tensor,
                           src: str, dst: str) -> torch.Tensor:
        """Turn a network ``output`` of kind ``src`` at state ``x``, time ``tt`` into kind ``dst``.

        ``tt`` is a scalar tensor or one value per batch element; coefficients are
        computed in float64 and cast to ``output``'s dtype.
        """
        c_x, c_p = self.prediction_coefficients(src, dst)(tt.to(torch.float64))
        shape = (-1,) + (1,) * (output.dim() - 1) if c_x.dim() else ()
        c_x = c_x.reshape(shape).to(output.dtype)
        c_p = c_p.reshape(shape).to(output.dtype)
        return c_x * x + c_p * output

    def __repr__(self) -> str:
        return f"CompiledSchedule({self.schedule.name!r}, inverse={self.inverse_kind})"


def convert_prediction(schedule: Schedule, output: torch.Tensor, x: torch.Tensor, tt: torch.Tensor,
                       src: str, dst: str) -> torch.Tensor:
    """Convert a network ``output`` of kind ``src`` into kind ``dst`` (torch tensors).

    ``dst = c_x(t) x_t + c_p(t) output`` with coefficients derived by SymPy for
    ``schedule`` (:func:`schedalg.symbolic.prediction_conversion`); see
    :meth:`CompiledSchedule.convert_prediction`.
    """
    return compile_schedule(schedule).convert_prediction(output, x, tt, src, dst)
