"""Classical RK4 from ``t = 0`` to many end times at once (numeric fallbacks for ordered exponentials)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["integrate_from_zero"]

State = Sequence[torch.Tensor]


def integrate_from_zero(rhs: Callable[[torch.Tensor, State], State], state: State, ends: torch.Tensor,
                        steps: int) -> list[torch.Tensor]:
    """Integrate ``y' = rhs(t, y)`` from 0 to each ``ends[i]`` with ``steps`` equal RK4 steps.

    ``state`` is a tuple of tensors ``(n, k, k)`` (one row per end time); ``rhs`` gets the
    times ``(n,)`` and the tuple, and returns the derivatives.
    """
    h = ends / steps
    hh = h[:, None, None]

    def axpy(y, k, c):
        return [a + c * hh * b for a, b in zip(y, k)]

    y = list(state)
    for i in range(steps):
        t0 = h * i
        k1 = rhs(t0, y)
        k2 = rhs(t0 + h / 2, axpy(y, k1, 0.5))
        k3 = rhs(t0 + h / 2, axpy(y, k2, 0.5))
        k4 = rhs(t0 + h, axpy(y, k3, 1.0))
        y = [a + hh / 6 * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4)]
    return y
