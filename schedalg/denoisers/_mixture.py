"""Exact posterior means for a Gaussian mixture, streamed over its components.

Data ``x0 ~ sum_i w_i N(y_i, v I)`` (``v = s^2 >= 0``; ``v = 0`` is the empirical
distribution of a finite data set) and ``x_t = alpha x0 + sigma eps``. Given component
``i``, ``x_t ~ N(alpha y_i, c^2 I)`` with ``c^2 = alpha^2 v + sigma^2``, so the posterior
responsibilities and means are (Gaussian conditioning, then the law of total expectation)

    r_i(x)  = softmax_i( log w_i - |x - alpha y_i|^2 / (2 c^2) )
    m(x)    = sum_i r_i(x) y_i
    x0_hat  = m + alpha v (x - alpha m) / c^2
    eps_hat = sigma (x - alpha m) / c^2 .

With ``v = 0`` and the EDM view ``x / alpha = x0 + (sigma/alpha) eps`` this is the
optimal denoiser of Chen et al. (arXiv 2305.19947, MATH.md section 4): ``D*(x; s)`` is
one Gaussian mean-shift step with bandwidth ``s = sigma/alpha``. Nothing above divides by
``alpha`` or ``sigma``, so it stays finite at both ends of any schedule (at ``sigma = 0``
and ``v = 0``, ``eps_hat = 0 = E[eps]``: the state carries no information on the noise).

Numerics. The softmax is streamed over chunks of components with an online logsumexp
(running maximum, rescaled running sums), so memory is ``O(batch x chunk)`` whatever the
number of components. The logits are computed in float64 without the ``|x|^2`` term
(it is the same for every ``i`` and cancels in the softmax):
``(alpha <x, y_i> - alpha^2 |y_i|^2 / 2) / c^2``. In float32 the expanded form loses
the small-``sigma`` logits (their scale is ``1/c^2``); in float64 the absolute logit
error is about ``1e-16 |x| |y| / c^2``, negligible down to ``c ~ 1e-4`` for data of unit
scale. ``direct=True`` computes ``|x - alpha y_i|^2`` from differences instead (more
memory, ``batch x chunk x dim``), for checks and for extreme ``c``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import SchedalgError
from ..symbolic import Schedule

__all__ = ["GaussianMixtureDenoiser", "OptimalDenoiser"]

# c^2 is floored here: a logit is then at most ~1e154 * |dx|^2 (finite), and at c = 0 the
# softmax collapses exactly onto the nearest component instead of producing 0/0.
_C2_FLOOR = 1e-150


def _as_batch_scalar(value: torch.Tensor, batch: int) -> torch.Tensor:
    """A float64 scalar or (B,) tensor as a (B, 1) column."""
    return value.reshape(-1, 1).expand(batch, 1) if value.dim() else value.reshape(1, 1).expand(batch, 1)


class GaussianMixtureDenoiser:
    """Exact ``(x0_hat, eps_hat)`` for ``sum_i w_i N(means[i], variance I)`` under ``schedule``.

    ``means``: tensor (N, *data_shape); ``variance``: a scalar ``v = s^2 >= 0``; ``weights``:
    (N,) non-negative with a positive sum (normalised here), uniform by default;
    ``chunk_size``: components processed at once (memory ``batch x chunk_size``);
    ``direct``: compute squared distances from differences instead of inner products.
    Implements :class:`schedalg.models.Denoiser`; works on CPU and CUDA (the components
    are copied once per device, in float64).
    """

    def __init__(self, schedule: Schedule, means: Any, variance: Any = 0.0, weights: Any = None,
                 *, chunk_size: int = 1024, direct: bool = False):
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() < 2 or means.shape[0] == 0:
            raise SchedalgError("means of shape (N, *data_shape) with N >= 1",
                                f"shape {tuple(means.shape)}", "stack the data points along dimension 0")
        if not bool(torch.isfinite(means).all()):
            raise SchedalgError("finite means", "NaN or infinite entries", "clean the data set")
        variance = torch.as_tensor(variance, dtype=torch.float64)
        if variance.dim() != 0 or not bool(torch.isfinite(variance)) or float(variance) < 0:
            raise SchedalgError("a finite scalar variance >= 0", f"{variance.tolist()!r}",
                                "pass s**2 for isotropic components of standard deviation s")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise SchedalgError("a positive integer chunk_size", f"{chunk_size!r}", "e.g. chunk_size=1024")
        if weights is None:
            log_weights = torch.full((means.shape[0],), -torch.log(torch.tensor(float(means.shape[0]),
                                                                                dtype=torch.float64)))
        else:
            weights = torch.as_tensor(weights, dtype=torch.float64)
            if weights.shape != (means.shape[0],) or not bool(torch.isfinite(weights).all()) \
                    or bool((weights < 0).any()) or not float(weights.sum()) > 0:
                raise SchedalgError(f"{means.shape[0]} finite non-negative weights with a positive sum",
                                    f"shape {tuple(weights.shape)}, values {weights.flatten()[:4].tolist()}...",
                                    "pass one weight per component (they are normalised)")
            log_weights = torch.log(weights / weights.sum())
        self.schedule = schedule
        self.data_shape = tuple(means.shape[1:])
        self.means = means.reshape(means.shape[0], -1)
        self.variance = variance
        self.log_weights = log_weights
        self.chunk_size = chunk_size
        self.direct = direct
        self._compiled = schedule.compile()
        self._device_cache: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    @property
    def num_components(self) -> int:
        """Number of mixture components ``N`` (data points)."""
        return int(self.means.shape[0])

    def _components(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(means, |means|^2 / 2, log weights, variance) on ``device``, copied once and cached."""
        cached = self._device_cache.get(device)
        if cached is None:
            means = self.means.to(device)
            cached = (means, 0.5 * (means**2).sum(-1), self.log_weights.to(device), self.variance.to(device))
            if not torch.compiler.is_compiling():  # values made while tracing are placeholders, not tensors
                self._device_cache[device] = cached
        return cached

    def _check_state(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise SchedalgError(f"states of shape (B, {', '.join(map(str, self.data_shape))})",
                                f"shape {tuple(x.shape)}", "pass a batch of states shaped like the data")

    def responsibility_mean(self, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``m(x) = sum_i r_i(x) y_i`` (float64, (B, dim)) for flat states ``x`` (B, dim).

        ``alpha``, ``sigma``: float64 scalars or (B,) tensors. Streamed over chunks of
        components with an online logsumexp; no host synchronization.
        """
        _, running_sum, running_mean = self.log_sum_exp_statistics(x, alpha, sigma)
        return running_mean / running_sum

    def log_sum_exp_statistics(self, x: torch.Tensor, alpha: torch.Tensor,
                               sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(M, S, Y)`` over this denoiser's components, for flat states ``x`` (B, dim):
        ``M = max_i l_i`` (B, 1), ``S = sum_i exp(l_i - M)`` (B, 1) and
        ``Y = sum_i exp(l_i - M) y_i`` (B, dim), with ``l_i`` the logits above, so that
        ``m(x) = Y / S``. Statistics of disjoint sets of components combine exactly
        (:func:`schedalg.denoisers.combine_log_sum_exp`).
        """
        batch = x.shape[0]
        means, half_norms, log_weights, variance = self._components(x.device)
        alpha = _as_batch_scalar(alpha.to(x.device), batch)
        c2 = (alpha**2 * variance + _as_batch_scalar(sigma.to(x.device), batch) ** 2)
        inv_c2 = 1.0 / c2.clamp_min(_C2_FLOOR)
        running_max = torch.full((batch, 1), -torch.inf, dtype=torch.float64, device=x.device)
        running_sum = torch.zeros((batch, 1), dtype=torch.float64, device=x.device)
        running_mean = torch.zeros_like(x)
        for start in range(0, means.shape[0], self.chunk_size):
            y = means[start:start + self.chunk_size]
            if self.direct:
                distance = ((x[:, None, :] - alpha[:, :, None] * y[None]) ** 2).sum(-1)
                logits = log_weights[start:start + self.chunk_size] - 0.5 * distance * inv_c2
            else:
                logits = (alpha * (x @ y.T) - alpha**2 * half_norms[start:start + self.chunk_size]) * inv_c2
                logits = logits + log_weights[start:start + self.chunk_size]
            new_max = torch.maximum(running_max, logits.amax(dim=1, keepdim=True))
            # a zero-weight chunk leaves new_max = -inf; keep the (empty) sums at 0 then
            rescale = torch.where(running_max == -torch.inf, torch.zeros_like(running_max),
                                  torch.exp(running_max - new_max))
            weights = torch.exp(logits - torch.where(new_max == -torch.inf, torch.zeros_like(new_max), new_max))
            running_sum = running_sum * rescale + weights.sum(dim=1, keepdim=True)
            running_mean = running_mean * rescale + weights @ y
            running_max = new_max
        return running_max, running_sum, running_mean

    def denoise(self, x: torch.Tensor, alpha: Any, sigma: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, eps_hat)`` at states ``x`` (B, *data_shape) for given ``alpha``, ``sigma``.

        ``alpha``, ``sigma`` are scalars or (B,) tensors (any schedule, any parameterization);
        the result has the dtype of ``x``.
        """
        self._check_state(x)
        alpha = torch.as_tensor(alpha, dtype=torch.float64, device=x.device)
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)
        batch = x.shape[0]
        flat = x.reshape(batch, -1).to(torch.float64)
        m = self.responsibility_mean(flat, alpha, sigma)
        a = _as_batch_scalar(alpha, batch)
        s = _as_batch_scalar(sigma, batch)
        variance = self._components(x.device)[3]
        inv_c2 = 1.0 / (a**2 * variance + s**2).clamp_min(_C2_FLOOR)
        residual = flat - a * m
        x0 = m + a * variance * residual * inv_c2
        eps = s * residual * inv_c2
        return x0.reshape(x.shape).to(x.dtype), eps.reshape(x.shape).to(x.dtype)

    def posterior(self, x: torch.Tensor, tt: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, eps_hat)`` at states ``x`` and schedule times ``tt`` (scalar or (B,))."""
        tt = torch.as_tensor(tt, dtype=torch.float64, device=x.device)
        alpha, sigma = self._compiled.evaluate(tt, "alpha", "sigma")
        return self.denoise(x, alpha, sigma)

    def edm_denoiser(self, x: torch.Tensor, edm_sigma: Any) -> torch.Tensor:
        """``D(x; s)`` in the EDM view ``x = x0 + s eps`` (alpha = 1, sigma = s)."""
        return self.denoise(x, 1.0, edm_sigma)[0]

    def prepare(self, times: torch.Tensor) -> "_PreparedMixture":
        """Precompute ``alpha``, ``sigma`` on the grid ``times``; call the result ``(x, i)``."""
        return _PreparedMixture(self, torch.as_tensor(times, dtype=torch.float64))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.schedule.name!r}, components={self.num_components}, "
                f"dim={self.means.shape[1]}, variance={float(self.variance):.3g})")


class OptimalDenoiser(GaussianMixtureDenoiser):
    """The exact posterior means for the empirical distribution of ``data`` (N, *shape).

    ``D*(x; s) = sum_i softmax_i(-|x - y_i|^2 / (2 s^2)) y_i`` in the EDM view (Chen et al.,
    arXiv 2305.19947): the ``variance = 0``, uniform-weight case of
    :class:`GaussianMixtureDenoiser`, for any schedule.
    """

    def __init__(self, schedule: Schedule, data: Any, *, chunk_size: int = 1024, direct: bool = False):
        super().__init__(schedule, data, 0.0, None, chunk_size=chunk_size, direct=direct)


class _PreparedMixture:
    """A mixture denoiser with ``alpha``, ``sigma`` precomputed on a time grid."""

    def __init__(self, denoiser: GaussianMixtureDenoiser, times: torch.Tensor):
        self.denoiser = denoiser
        self.times = times
        self.alpha, self.sigma = denoiser._compiled.evaluate(times, "alpha", "sigma")
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        coefficients = self._on_device.get(x.device)
        if coefficients is None:  # one copy per device, not one per call
            coefficients = (self.alpha.to(x.device), self.sigma.to(x.device))
            self._on_device[x.device] = coefficients
        return self.denoiser.denoise(x, coefficients[0][i], coefficients[1][i])
