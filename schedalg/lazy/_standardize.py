"""Standardization of the data for lazy sampling (MATH.md section 2).

The lazy families make the drift vanish for *standardized* Gaussian data. For data
``x`` with mean ``mu`` and standard deviation ``sd``, ``x' = (x - mu) / sd``; a state
``x_t = alpha x + sigma eps`` of any schedule becomes

    x'_t = (x_t - alpha mu) / sd = alpha x' + (sigma / sd) eps,

the state of the *standardized schedule* ``(alpha, sigma / sd)``, whose log-SNR is
``lambda + 2 log sd``. Predictions carry over as ``x0' = (x0_hat - mu) / sd`` and
``eps' = eps_hat`` (``proofs/prove_lazy.py``). ``mu`` may have any shape that
broadcasts against one sample (a mean image is usual); ``sd`` is a scalar or one value
per channel. With one value per channel each channel has its own standardized
schedule; the lazy samplers then give every channel its own family coordinate at a
shared network time (a diagonal version of the conversion, exact for Gaussian data
with per-channel variances).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import SchedalgError

__all__ = ["Standardization", "StandardizationError"]


class StandardizationError(SchedalgError):
    """A mean or standard deviation that cannot standardize the data (shape, sign, finiteness)."""


@dataclass(frozen=True, eq=False)
class Standardization:
    """``x' = (x - mean) / std`` for samples ``x`` of shape ``(B, *sample_shape)``.

    ``mean`` and ``std`` are float64 tensors that broadcast against ``sample_shape``
    (no batch dimension); ``std > 0``. Build it from known statistics with
    :meth:`given` or estimate it from data with :meth:`estimate`.
    """

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def given(cls, mean: Any = 0.0, std: Any = 1.0) -> "Standardization":
        """From user-supplied statistics (numbers or tensors broadcastable to one sample)."""
        mean_t = torch.as_tensor(mean, dtype=torch.float64)
        std_t = torch.as_tensor(std, dtype=torch.float64)
        if not bool(torch.isfinite(mean_t).all()):
            raise StandardizationError("a finite mean", f"{mean_t}", "pass finite statistics")
        if not bool(torch.isfinite(std_t).all()) or bool((std_t <= 0).any()):
            raise StandardizationError("standard deviations that are finite and > 0",
                                       f"values in [{float(std_t.min()):.4g}, {float(std_t.max()):.4g}]",
                                       "pass a positive std (a constant channel has none: use a scalar std)")
        return cls(mean_t, std_t)

    @classmethod
    def estimate(cls, samples: torch.Tensor, *, channel_dim: int | None = None) -> "Standardization":
        """Estimate from data ``samples`` of shape ``(N, *sample_shape)``, ``N >= 2``.

        ``mean`` is the per-element mean (shape ``sample_shape``). ``std`` is the root of
        the average per-element variance: one scalar when ``channel_dim`` is None (the
        total variance is preserved), else one value per channel, where ``channel_dim``
        indexes ``samples`` (1 for ``(N, C, H, W)``).
        """
        if not isinstance(samples, torch.Tensor) or samples.dim() < 2 or samples.shape[0] < 2:
            got = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
            raise StandardizationError("a tensor of at least 2 samples, shape (N, *sample_shape)", f"{got}",
                                       "stack the data samples along dimension 0")
        x = samples.to(torch.float64)
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=True)
        if channel_dim is None:
            return cls.given(mean, var.mean().sqrt())
        if not 1 <= channel_dim < samples.dim():
            raise StandardizationError(f"a channel dimension in [1, {samples.dim() - 1}]", f"{channel_dim}",
                                       "index the channel in the samples' shape, e.g. 1 for (N, C, H, W)")
        dims = [d for d in range(var.dim()) if d != channel_dim - 1]
        std = var.mean(dim=dims, keepdim=True).sqrt() if dims else var.sqrt()
        return cls.given(mean, std)

    @property
    def is_scalar(self) -> bool:
        """True when one standard deviation serves every element."""
        return self.std.numel() == 1

    @property
    def reference_std(self) -> torch.Tensor:
        """The scalar std that places the sampling grid: the root mean square of ``std``."""
        return self.std.square().mean().sqrt()

    def check_shape(self, sample_shape: torch.Size) -> None:
        """Raise :class:`StandardizationError` unless mean and std broadcast to ``sample_shape``."""
        for label, value in (("mean", self.mean), ("std", self.std)):
            try:
                shape = torch.broadcast_shapes(value.shape, sample_shape)
            except RuntimeError:
                shape = None
            if shape != sample_shape:
                raise StandardizationError(f"a {label} that broadcasts to one sample of shape {tuple(sample_shape)}",
                                           f"shape {tuple(value.shape)}",
                                           "give one value per element or channel, without a batch dimension")

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` for data samples ``x`` (B, ...)."""
        return ((x.to(torch.float64) - self.mean.to(x.device)) / self.std.to(x.device)).to(x.dtype)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """``mean + std x``: back from standardized to data coordinates."""
        return (self.mean.to(x.device) + self.std.to(x.device) * x.to(torch.float64)).to(x.dtype)
