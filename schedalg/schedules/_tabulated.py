"""Schedules given by a table (discrete betas or ``alphas_cumprod``).

A table of ``N`` cumulative products ``abar_i`` (training step ``i = 0..N-1``, data
side first, as in DDPM) has no closed form. It is turned into a schedule in the
continuous time ``t`` = step index (domain ``[0, N-1]``) by interpolating the log-SNR
``Lambda_i = log(abar_i / (1 - abar_i))`` piecewise linearly (``interpolation=
"log_snr"``) or the EDM noise level ``sqrt((1 - abar)/abar)`` piecewise linearly
(``"edm_sigma"``, the convention of k-diffusion's and diffusers' Euler samplers). Then

    alpha = sqrt(sigmoid(Lambda(t))),   sigma = sqrt(sigmoid(-Lambda(t)))

(variance preserving). ``Lambda`` is a :class:`~schedalg.symbolic.NumericFunction`, so
every derivation of :class:`Schedule` applies; values and derivatives are numeric.
"""

from __future__ import annotations

import itertools
import math
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp
import torch

from ..errors import ScheduleError
from ..symbolic import NumericFunction, Schedule, t

__all__ = ["TabulatedSchedule", "tabulated", "from_betas", "discrete_betas"]

_IDS = itertools.count()


class TabulatedSchedule(Schedule):
    """A variance-preserving schedule interpolated from a table of ``alphas_cumprod``.

    ``log_snr`` is ``Lambda(t)`` itself (``log(sigmoid(L) / sigmoid(-L)) = L`` exactly);
    the table is kept as ``alphas_cumprod`` (float64 numpy) for interop. The span is the
    table's ends ``[0, N-1]`` (the first entry is not ``sigma = 0``), or a narrower
    ``domain`` (from :meth:`Schedule.truncate`).
    """

    def __init__(self, alphas_cumprod: Any, interpolation: str = "log_snr", name: str | None = None,
                 domain: tuple[Any, Any] | None = None):
        table = np.asarray(alphas_cumprod, dtype=np.float64).reshape(-1)
        if table.size < 2:
            raise ScheduleError("a table of at least 2 alphas_cumprod values", f"{table.size} values",
                                "pass the full training table")
        if not np.all(np.isfinite(table)) or np.any(table <= 0) or np.any(table >= 1):
            raise ScheduleError("alphas_cumprod strictly inside (0, 1)",
                                f"values in [{np.nanmin(table):.3g}, {np.nanmax(table):.3g}]",
                                "clip the table, e.g. to [1e-12, 1 - 1e-12]")
        if interpolation not in ("log_snr", "edm_sigma"):
            raise ScheduleError("interpolation 'log_snr' or 'edm_sigma'", repr(interpolation), None)
        self.alphas_cumprod = table
        self.interpolation = interpolation
        lam_fn = _make_log_snr_function(table, interpolation)
        self._lam_fn = lam_fn
        lam_t = lam_fn(t)
        super().__init__(alpha=1 / sp.sqrt(1 + sp.exp(-lam_t)), sigma=1 / sp.sqrt(1 + sp.exp(lam_t)),
                         domain=(0, table.size - 1) if domain is None else domain,
                         name=name or f"tabulated[{table.size}]", truncated=True)
        if not (0 <= float(self.domain[0]) and float(self.domain[1]) <= table.size - 1):
            raise ScheduleError(f"a domain inside the table's span [0, {table.size - 1}]", f"{self.domain}",
                                "truncate inside the table")

    @cached_property
    def log_snr(self) -> sp.Expr:  # type: ignore[override]
        """``Lambda(t)``, the interpolated table (exactly ``log(alpha^2/sigma^2)``)."""
        return self._lam_fn(t)

    def _with_domain(self, domain: tuple[sp.Expr, sp.Expr]) -> "TabulatedSchedule":
        return TabulatedSchedule(self.alphas_cumprod, self.interpolation, self.name, domain=domain)

    def bind(self, **values: Any) -> "Schedule":  # pragma: no cover - nothing to bind
        raise ScheduleError("no parameters (a tabulated schedule is fully numeric)", f"{sorted(values)}", None)


def _make_log_snr_function(table: np.ndarray, interpolation: str) -> type[NumericFunction]:
    """NumericFunction classes for ``Lambda(t)`` and its derivative (piecewise constant)."""
    uid = next(_IDS)
    if interpolation == "log_snr":
        knots = torch.as_tensor(np.log(table) - np.log1p(-table))
    else:
        knots = torch.as_tensor(np.sqrt((1 - table) / table))
    n = knots.numel()

    def locate(x: torch.Tensor):
        x = x.to(torch.float64)
        index = torch.clamp(torch.floor(x), 0, n - 2).long()
        weight = x - index.to(x.dtype)
        k = knots.to(x.device)
        return k[index], k[index + 1], weight

    def value(x: torch.Tensor) -> torch.Tensor:
        left, right, w = locate(x)
        v = left + w * (right - left)
        out = v if interpolation == "log_snr" else -2 * torch.log(v)
        return out.to(x.dtype) if x.is_floating_point() else out

    def slope(x: torch.Tensor) -> torch.Tensor:
        left, right, w = locate(x)
        if interpolation == "log_snr":
            out = right - left
        else:
            out = -2 * (right - left) / (left + w * (right - left))
        return out.to(x.dtype) if x.is_floating_point() else out

    def zero(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    zero_cls = type(f"TabLogSnrDD{uid}", (NumericFunction,), {"torch_impl": staticmethod(zero)})
    slope_cls = type(f"TabLogSnrD{uid}", (NumericFunction,),
                     {"torch_impl": staticmethod(slope), "derivative": zero_cls if interpolation == "log_snr" else None})
    return type(f"TabLogSnr{uid}", (NumericFunction,), {"torch_impl": staticmethod(value), "derivative": slope_cls})


def tabulated(alphas_cumprod: Any, interpolation: str = "log_snr", name: str | None = None) -> TabulatedSchedule:
    """A schedule from a table of ``alphas_cumprod`` (see :class:`TabulatedSchedule`)."""
    return TabulatedSchedule(alphas_cumprod, interpolation=interpolation, name=name)


def from_betas(betas: Any, interpolation: str = "log_snr", name: str | None = None) -> TabulatedSchedule:
    """A schedule from discrete DDPM ``betas``: ``alphas_cumprod = cumprod(1 - betas)`` in float64."""
    b = np.asarray(betas, dtype=np.float64).reshape(-1)
    if np.any(b <= 0) or np.any(b >= 1) or not np.all(np.isfinite(b)):
        raise ScheduleError("betas strictly inside (0, 1)", f"values in [{b.min():.3g}, {b.max():.3g}]", None)
    return TabulatedSchedule(np.exp(np.cumsum(np.log1p(-b))), interpolation=interpolation, name=name)


def discrete_betas(kind: str = "linear", n: int = 1000, beta_start: float = 1e-4,
                   beta_end: float = 0.02, max_beta: float = 0.999) -> np.ndarray:
    """The standard DDPM beta tables (float64).

    ``"linear"`` (Ho et al. 2020), ``"scaled_linear"`` (linear in sqrt(beta), latent
    diffusion), ``"squaredcos_cap_v2"`` (Nichol & Dhariwal 2021, betas clipped at
    ``max_beta``).
    """
    if kind == "linear":
        return np.linspace(beta_start, beta_end, n, dtype=np.float64)
    if kind == "scaled_linear":
        return np.linspace(beta_start**0.5, beta_end**0.5, n, dtype=np.float64) ** 2
    if kind == "squaredcos_cap_v2":
        def abar(u: float) -> float:
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        return np.array([min(1 - abar((i + 1) / n) / abar(i / n), max_beta) for i in range(n)], dtype=np.float64)
    raise ScheduleError("kind 'linear', 'scaled_linear' or 'squaredcos_cap_v2'", repr(kind), None)
