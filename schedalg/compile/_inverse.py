"""Numeric inversion of a strictly monotone scalar function, vectorized in torch.

Used when SymPy finds no verified closed-form inverse (e.g. ``t(lambda)`` of a
schedule). Bisection on the bracket brings every element to float64 resolution of the
bracket; a few safeguarded Newton steps then give full relative precision near the
ends, where ``t`` is tiny and the bracket-relative resolution is not enough.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["invert_monotone"]


def invert_monotone(
    fn: Callable[[torch.Tensor], torch.Tensor],
    dfn: Callable[[torch.Tensor], torch.Tensor] | None,
    target: torch.Tensor,
    lo: float,
    hi: float,
    increasing: bool,
    bisection_steps: int = 64,
    newton_steps: int = 4,
) -> torch.Tensor:
    """Solve ``fn(x) = target`` for ``x`` in ``[lo, hi]`` elementwise (float64).

    ``fn`` must be strictly monotone on ``(lo, hi)``; ``increasing`` says which way.
    Targets beyond the range of ``fn`` return the end of the bracket they lie beyond
    (``+inf``/``-inf`` targets thus map to the ends). ``dfn`` (the derivative) enables
    the Newton polish; without it only bisection is used.
    """
    target64 = target.to(torch.float64)
    a = torch.full_like(target64, float(lo))
    b = torch.full_like(target64, float(hi))
    sign = 1.0 if increasing else -1.0
    for _ in range(bisection_steps):
        mid = 0.5 * (a + b)
        above = sign * (fn(mid) - target64) > 0
        b = torch.where(above, mid, b)
        a = torch.where(above, a, mid)
    x = 0.5 * (a + b)
    if dfn is not None:
        for _ in range(newton_steps):
            step = (fn(x) - target64) / dfn(x)
            candidate = x - step
            inside = (candidate > a) & (candidate < b) & torch.isfinite(candidate)
            x = torch.where(inside, candidate, x)
    x = torch.where(target64 == sign * torch.inf, torch.full_like(x, float(hi)), x)
    x = torch.where(target64 == -sign * torch.inf, torch.full_like(x, float(lo)), x)
    return x.to(target.dtype) if target.is_floating_point() else x
