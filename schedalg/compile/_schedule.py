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
from ..symbolic._predictions import check_prediction_kind, prediction_conversion
from ..symbolic._schedule import Schedule, value_at_end
from ..symbolic._symbols import lam, t
from ._compile import CompiledFunction, compile_exprs
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


def _unary(name: str) -> Callable[["CompiledSchedule", torch.Tensor], torch.Tensor]:
    def method(self: "CompiledSchedule", tt: torch.Tensor) -> torch.Tensor:
        return self.function(name)(tt)[0]

    method.__name__ = name
    method.__doc__ = f"``{name}(t)`` evaluated in torch (dtype and device of ``t``)."
    return method


class CompiledSchedule:
    """Torch functions of ``t`` for one schedule.

    ``alpha(t)``, ``sigma(t)``, ``d_alpha``, ``d_sigma``, ``log_snr``, ``d_log_snr``,
    ``e_star``, ``drift_f``, ``diffusion_g2``, ``edm_sigma`` take a tensor and return a
    tensor of its dtype and device; :meth:`evaluate` returns several in one call (one
    generated function, shared subexpressions); :meth:`t_of_log_snr` inverts ``lambda``.
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
        """The compiled function returning the named quantities (a tuple) for a tensor ``t``."""
        cached = self._functions.get(names)
        if cached is not None:  # the hot path: a dict lookup, no SymPy
            return cached
        unknown = [n for n in names if n not in QUANTITIES]
        if unknown:
            raise DomainError(f"quantities among {QUANTITIES}", f"{unknown}", "use one of the listed names")
        exprs = [getattr(self.schedule, n) for n in names]
        compiled = compile_exprs(exprs, [t], name="_".join(names))
        self._functions[names] = compiled
        return compiled

    def evaluate(self, tt: torch.Tensor, *names: str) -> tuple[torch.Tensor, ...]:
        """Several quantities at ``t`` in one call, e.g. ``evaluate(t, 'alpha', 'sigma')``."""
        return self.function(*names)(tt)

    @cached_property
    def exact_end_values(self) -> dict[str, tuple[float, float]]:
        """``name -> (value at t_min, value at t_max)`` from SymPy limits, for the quantities
        whose floating-point evaluation at an end can miss the exact value (``cos(pi/2)``
        is ``6e-17``, not 0, so a log-SNR of ``-75`` instead of ``-inf``)."""
        ends = self.schedule._end_values
        (a_lo, s_lo), (a_hi, s_hi) = ends["lo"], ends["hi"]
        lam_noise, lam_data = self.log_snr_range
        lam_lo, lam_hi = (lam_noise, lam_data) if self.direction > 0 else (lam_data, lam_noise)

        def ratio(s_value: float, a_value: float, end: Any, side: str) -> float:
            if a_value == 0.0 and s_value == 0.0:  # point mass: the limit decides
                return value_at_end(self.schedule.edm_sigma, end, side)
            return math.inf if a_value == 0.0 else s_value / a_value

        lo, hi = self.schedule.domain
        return {"alpha": (a_lo, a_hi), "sigma": (s_lo, s_hi), "log_snr": (lam_lo, lam_hi),
                "edm_sigma": (ratio(s_lo, a_lo, lo, "+"), ratio(s_hi, a_hi, hi, "-"))}

    def evaluate_grid(self, times: torch.Tensor, *names: str) -> tuple[torch.Tensor, ...]:
        """Like :meth:`evaluate`, but times equal to a domain end get the exact end values.

        Meant for time grids computed once before a sampling loop.
        """
        values = self.evaluate(times, *names)
        exact = self.exact_end_values
        out = []
        for name, value in zip(names, values):
            if name in exact:
                lo_value, hi_value = exact[name]
                if not math.isnan(lo_value):
                    value = torch.where(times == self.t_min, torch.full_like(value, lo_value), value)
                if not math.isnan(hi_value):
                    value = torch.where(times == self.t_max, torch.full_like(value, hi_value), value)
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
        return compile_exprs([inverse.expr], [lam], name="t_of_log_snr")

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
                    f"log-SNR values inside [{low:.6g}, {high:.6g}], the range of {self.schedule.name!r}",
                    f"values in [{float(finite.min()):.6g}, {float(finite.max()):.6g}]",
                    "choose times whose log-SNR both schedules reach",
                )
        if self._inverse is None:
            return invert_monotone(self.log_snr, self.d_log_snr, lam_values,
                                   self.t_min, self.t_max, increasing=self.direction > 0)
        out = self._inverse(lam_values)[0]
        # two safeguarded Newton steps on the compiled lambda remove the closed form's
        # rounding where it is ill-conditioned (e.g. acos near 1)
        for _ in range(2):
            lam_out, slope = self.evaluate(out, "log_snr", "d_log_snr")
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
