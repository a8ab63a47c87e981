"""The one model contract every sampler uses.

A *denoiser* answers, for a state ``x`` of a schedule at time ``t`` (that schedule's own
time), the pair ``(x0_hat, eps_hat)`` of posterior means ``E[x0 | x_t = x]`` and
``E[eps | x_t = x]``. Every prediction type (eps, x0, v, velocity, score) is a linear
function of this pair given ``x`` (see :mod:`schedalg.symbolic`), so the pair is the
common currency between networks and solvers.

For the sampling loop a denoiser is *prepared* on a fixed time grid once: everything
that depends on time only (network time inputs, input scalings, prediction-conversion
coefficients, schedule conversions) is computed before the loop, in float64, and the
prepared denoiser is then called with a grid index. That is how the loop stays free of
SymPy work and host-device synchronization.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from ..symbolic import Schedule

__all__ = ["Denoiser", "PreparedDenoiser", "broadcast_to_batch"]


@runtime_checkable
class PreparedDenoiser(Protocol):
    """A denoiser bound to a time grid ``t[0..n-1]``.

    ``__call__(x, i, **cond)`` returns ``(x0_hat, eps_hat)`` at grid time ``t[i]`` with
    the shape and dtype of ``x``. ``i`` is a Python int; no host sync happens inside.
    """

    times: torch.Tensor

    def __call__(self, x: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class Denoiser(Protocol):
    """Anything that gives ``(x0_hat, eps_hat)`` in the coordinates of ``schedule``."""

    schedule: Schedule

    def prepare(self, times: torch.Tensor) -> PreparedDenoiser:
        """Precompute everything time-dependent for the grid ``times`` (float64, 1-D)."""
        ...


def broadcast_to_batch(coefficient: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a scalar or per-sample coefficient so it broadcasts against ``like`` (B, ...)."""
    if coefficient.dim() == 0:
        return coefficient.to(like.dtype)
    return coefficient.reshape((-1,) + (1,) * (like.dim() - 1)).to(like.dtype)
