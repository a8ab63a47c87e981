"""The torch view of a schedule conversion.

``conversion.compile()`` returns a :class:`CompiledConversion` with ``time(s)``,
``scale(s)``, ``d_time(s)``, ``d_scale(s)`` (float64 math; output in the dtype and
device of ``s``). ``tau = T_src(lambda_dst(s))`` is evaluated first with the source's
:meth:`CompiledSchedule.t_of_log_snr` (its closed-form inverse, or the numeric one) and
Newton polish; then ``c``, ``tau'``, ``c'`` from the two schedules' compiled quantities
through :func:`schedalg.symbolic.conversion_formulas` (derived once by SymPy). At the
destination's ends with infinite log-SNR, where those forms read ``0/0`` or
``inf/inf``, the values of the one end-value rule replace them
(:func:`schedalg.symbolic.conversion_end_values`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from ..errors import DomainError
from ..symbolic import ComposedConversion, Conversion, conversion_end_values, conversion_formulas
from ._compile import CompiledFunction, compile_exprs
from ._inverse import invert_monotone

__all__ = ["CompiledConversion", "compile_conversion", "evaluate_diffusion", "time_changed_increments", "NAMES"]

#: The quantities a compiled conversion evaluates, in :meth:`CompiledConversion.evaluate` order.
NAMES = ("time", "scale", "d_time", "d_scale")


class _Pieces:
    """One schedule's :data:`schedalg.symbolic.PIECES` (in that order) as compiled functions, looked up once.

    Two groups of names, ``(alpha, sigma, d_alpha, d_sigma)`` and ``(log_snr, d_log_snr)``,
    that other code compiles too (the compile cache is per group of names).
    """

    def __init__(self, compiled: Any):
        self.compiled = compiled
        self.values = compiled.function("alpha", "sigma", "d_alpha", "d_sigma")
        self.log_snr = compiled.function("log_snr", "d_log_snr")

    def __call__(self, tt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.values(tt) + self.log_snr(tt)


@lru_cache(maxsize=1)
def _formulas() -> CompiledFunction:
    """The compiled :func:`schedalg.symbolic.conversion_formulas` (one for all conversions)."""
    symbols, exprs = conversion_formulas()
    return compile_exprs(exprs, symbols, name="conversion_formulas")


def compile_conversion(conversion: Any) -> "CompiledConversion":
    """Compile ``conversion`` (cached on the conversion object)."""
    cached = getattr(conversion, "_compiled", None)
    if cached is None:
        cached = CompiledConversion(conversion)
        conversion._compiled = cached
    return cached


def _as_float64(ss: Any) -> torch.Tensor:
    if isinstance(ss, torch.Tensor):
        return ss.to(torch.float64)
    return torch.as_tensor(ss, dtype=torch.float64)


class CompiledConversion:
    """Torch functions of the destination time ``s`` for one conversion ``src -> dst``.

    ``time(s) = tau(s)``, ``scale(s) = c(s)`` (so ``x^dst_s = c(s) x^src_{tau(s)}``),
    ``d_time(s) = tau'(s)``, ``d_scale(s) = c'(s)``; :meth:`evaluate` returns all four.
    With ``check=True`` (default) times outside :attr:`s_range` raise
    :class:`~schedalg.errors.DomainError` (a host-side check: evaluate before a loop).
    :meth:`source` shows the generated code.
    """

    def __init__(self, conversion: Any):
        self.conversion = conversion
        self.src, self.dst = conversion.src, conversion.dst
        self.lam_range = conversion.lam_range
        self.s_range = conversion.s_range
        if isinstance(conversion, ComposedConversion):
            self._first = compile_conversion(conversion.first)
            self._second = compile_conversion(conversion.second)
            symbols, exprs = conversion.chain_rule()
            self._chain = compile_exprs(exprs, symbols, name="compose_conversions")
        else:
            self._first = self._second = None
        self._src_pieces, self._dst_pieces = _Pieces(self.src.compile()), _Pieces(self.dst.compile())
        self._ends = conversion_end_values(conversion) if isinstance(conversion, Conversion) else []

    # ------------------------------------------------------------------ compiled parts

    def _rest(self, s64: torch.Tensor, tau: torch.Tensor) -> list[torch.Tensor]:
        """``(c, tau', c')`` from the two schedules' compiled pieces at ``s`` and ``tau``."""
        if self.conversion.identity:
            return [torch.ones_like(s64), torch.ones_like(s64), torch.zeros_like(s64)]
        pieces = self._dst_pieces(s64) + self._src_pieces(tau)
        return list(_formulas()(*pieces))

    def _polished_tau(self, s64: torch.Tensor) -> torch.Tensor:
        """``tau(s) = T_src(lambda_dst(s))`` by :meth:`CompiledSchedule.t_of_log_snr` (the
        source's closed-form inverse, or its numeric one), then two Newton steps on
        ``lambda_src(tau) = lambda_dst(s)``, each kept only where it lowers the residual.

        Closed forms such as ``sqrt(1 + x) - 1`` lose relative precision near an end;
        the compiled log-SNRs do not, and Newton in ``lambda`` converges quadratically.
        Where the residual stays above ``1e-9 (1 + |lambda|)`` the elements are solved
        again by :func:`invert_monotone` (one host-side check: evaluate before a loop).
        """
        if self.conversion.identity:
            return s64.clone()
        src = self._src_pieces.compiled
        target = self._dst_pieces.log_snr(s64)[0]
        tau = src.t_of_log_snr(target, check=False)
        lo, hi = float(self.src.domain[0]), float(self.src.domain[1])
        lam, slope = self._src_pieces.log_snr(tau)
        residual = (lam - target).abs()
        for _ in range(2):
            candidate = tau - (lam - target) / slope
            ok = torch.isfinite(candidate) & (candidate >= lo) & (candidate <= hi)
            candidate = torch.where(ok, candidate, tau)
            lam_c, slope_c = self._src_pieces.log_snr(candidate)
            better = ok & torch.isfinite(lam_c) & ((lam_c - target).abs() < residual)
            tau = torch.where(better, candidate, tau)
            lam = torch.where(better, lam_c, lam)
            slope = torch.where(better, slope_c, slope)
            residual = torch.where(better, (lam_c - target).abs(), residual)
        # where a closed-form inverse lost its precision (cancellation at large |lambda|),
        # fall back to the safeguarded bisection + Newton inverter on the compiled lambda
        bad = ~(residual <= 1e-9 * (1 + target.abs())) & torch.isfinite(target)
        if bool(bad.any()):
            fixed = invert_monotone(src.log_snr, src.d_log_snr, target[bad], lo, hi,
                                    increasing=self.src.direction > 0)
            tau = tau.clone()
            tau[bad] = fixed
        return tau

    def source(self) -> str:
        """The generated torch source (tau, then c, tau', c' given tau)."""
        if self._first is not None:
            return "\n".join([self._first.source(), self._second.source(), self._chain.source])
        inverse = self.src.compile()._inverse
        parts = [inverse.source if inverse is not None else "# tau: numeric inverse (bisection + Newton)",
                 self.dst.compile().source("log_snr"), _formulas().source]
        return "\n".join(parts)

    # ------------------------------------------------------------------ evaluation

    def check(self, ss: torch.Tensor) -> None:
        """Raise :class:`DomainError` unless every ``s`` lies in :attr:`s_range` (host sync)."""
        lo, hi = self.s_range
        tol = 1e-12 * max(1.0, abs(lo), abs(hi))
        values = ss[~torch.isnan(ss)]
        if values.numel() and (bool((values < lo - tol).any()) or bool((values > hi + tol).any())):
            lo_src, hi_src = self.src.log_snr_range
            lo_dst, hi_dst = self.dst.log_snr_range
            raise DomainError(
                f"destination times s in [{lo:.6g}, {hi:.6g}], where the log-SNR of {self.dst.name!r} "
                f"stays inside the range of {self.src.name!r}",
                f"s in [{float(values.min()):.6g}, {float(values.max()):.6g}]; {self.src.name!r} covers "
                f"lambda in [{lo_src:.6g}, {hi_src:.6g}], {self.dst.name!r} covers [{lo_dst:.6g}, {hi_dst:.6g}]",
                "restrict the time grid to the shared log-SNR range",
            )

    def evaluate(self, ss: Any, *, check: bool = True) -> tuple[torch.Tensor, ...]:
        """``(tau, c, tau', c')`` at ``s`` (float64 internally, output in the dtype of ``s``)."""
        s64 = _as_float64(ss)
        if check:
            self.check(s64)
        if self._first is not None:
            t2, c2, dt2, dc2 = self._second.evaluate(s64, check=False)
            t1, c1, dt1, dc1 = self._first.evaluate(t2, check=False)
            out = self._chain(t1, c1, dt1, dc1, t2, c2, dt2, dc2)
        else:
            tau = self._polished_tau(s64)
            for end, values in self._ends:
                tau = torch.where(s64 == end, torch.full_like(tau, values[0]), tau)
            out = [tau, *self._rest(s64, tau)]
            for end, values in self._ends:
                at_end = s64 == end
                out = [torch.where(at_end, torch.full_like(v, e), v) for v, e in zip(out, values)]
        dtype = ss.dtype if isinstance(ss, torch.Tensor) and ss.is_floating_point() else torch.float64
        return tuple(v.to(dtype) for v in out)

    def time(self, ss: Any, *, check: bool = True) -> torch.Tensor:
        """``tau(s)``: the source time with the same log-SNR."""
        return self.evaluate(ss, check=check)[0]

    def scale(self, ss: Any, *, check: bool = True) -> torch.Tensor:
        """``c(s)``: ``x^dst_s = c(s) x^src_{tau(s)}``."""
        return self.evaluate(ss, check=check)[1]

    def d_time(self, ss: Any, *, check: bool = True) -> torch.Tensor:
        """``tau'(s)``."""
        return self.evaluate(ss, check=check)[2]

    def d_scale(self, ss: Any, *, check: bool = True) -> torch.Tensor:
        """``c'(s)``."""
        return self.evaluate(ss, check=check)[3]

    # ------------------------------------------------------------------ ends

    def __repr__(self) -> str:
        return f"CompiledConversion({self.src.name!r} -> {self.dst.name!r}, kind={self.conversion.kind})"


def evaluate_diffusion(diffusion: Any, tt: Any) -> torch.Tensor:
    """``e(t)`` of a :class:`schedalg.symbolic.Diffusion` in torch (float64 math).

    A coefficient mapped through a conversion (``Diffusion.to``) is evaluated as
    ``c^2 |tau'| e(tau)`` from the compiled conversion, not from its closed form.

    At a point-mass start the one-sided limit replaces the closed form's ``0 * inf``
    (``e*(t0) = L |alpha'(t0)| / 2``, :func:`schedalg.symbolic.point_mass_start`).
    """
    from ..symbolic import point_mass_start, start_limit, t

    t64 = _as_float64(tt)
    if diffusion.mapped_from is not None:
        conversion, source = diffusion.mapped_from
        tau, c, d_tau, _ = compile_conversion(conversion).evaluate(t64, check=False)
        values = c**2 * d_tau.abs() * evaluate_diffusion(source, tau).to(torch.float64)
    else:
        (values,) = compile_exprs([diffusion.expr], [t], name="diffusion")(t64)
    schedule = diffusion.schedule
    if schedule.is_point_mass:
        cache = diffusion.__dict__.setdefault("_start_value", [])
        if not cache:
            if diffusion.kind == "optimal":
                cache.append(point_mass_start(schedule).e_star)
            else:
                cache.append(start_limit(schedule, diffusion.expr))
        values = torch.where(t64 == float(schedule.t_noise), torch.full_like(values, cache[0]), values)
    dtype = tt.dtype if isinstance(tt, torch.Tensor) and tt.is_floating_point() else torch.float64
    return values.to(dtype)


def time_changed_increments(conversion: Any, s_grid: torch.Tensor, d_w_src: torch.Tensor) -> torch.Tensor:
    """Brownian increments of the destination SDE from those of the source path.

    The source path runs on the grid ``tau(s_k)``; ``d_w_src[k]`` (shape ``(n-1, ...)``) is
    its increment over ``[tau(s_k), tau(s_{k+1})]`` (variance ``|tau_{k+1} - tau_k|``). The
    destination Brownian motion is ``dW_dst(s) = |tau'(s)|^{-1/2} dW_src(tau(s))``; over one
    step this is ``d_w_src[k] * sqrt(|ds_k| / |dtau_k|)`` (variance ``|ds_k|``), so the
    converted path ``c(s) X_{tau(s)}`` and the destination path driven by these increments
    agree up to the discretization error of the solver.
    """
    s64 = _as_float64(s_grid)
    tau = compile_conversion(conversion).time(s64)
    ratio = torch.sqrt((s64[1:] - s64[:-1]).abs() / (tau[1:] - tau[:-1]).abs())
    shape = (-1,) + (1,) * (d_w_src.dim() - 1)
    return d_w_src * ratio.reshape(shape).to(d_w_src.dtype)
