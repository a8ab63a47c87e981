"""Exact posterior means for Gaussian data: a "perfect network" for tests and oracles.

For data ``x0 ~ N(mu, diag(var))`` and ``x_t = alpha x0 + sigma eps``:

    x0_hat  = mu + alpha var (x - alpha mu) / (alpha^2 var + sigma^2)
    eps_hat = sigma (x - alpha mu) / (alpha^2 var + sigma^2)

(Gaussian conditioning). Both are written without dividing by ``sigma`` or ``alpha``, so
they stay finite at either end of any schedule, point-mass schedules included.
The probability-flow ODE then has the exact flow map (Boffi et al. 2024, Gaussian case)

    X_{s->t}(x) = alpha_t mu + (c_t / c_s) (x - alpha_s mu),  c = sqrt(sigma^2 + alpha^2 var)

per coordinate, which :meth:`GaussianDenoiser.flow` evaluates.
"""

from __future__ import annotations

from typing import Any

import torch

from ..symbolic import Schedule

__all__ = ["GaussianDenoiser"]


class GaussianDenoiser:
    """Exact ``(x0_hat, eps_hat)`` for ``N(mean, diag(variance))`` data under ``schedule``.

    ``mean`` and ``variance`` are tensors of the data's shape (without batch), or
    scalars. Implements :class:`schedalg.models.Denoiser`.
    """

    def __init__(self, schedule: Schedule, mean: Any = 0.0, variance: Any = 1.0):
        self.schedule = schedule
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.variance = torch.as_tensor(variance, dtype=torch.float64)
        if bool((self.variance < 0).any()):
            from ..errors import SchedalgError

            raise SchedalgError("non-negative variances", f"min {float(self.variance.min())}", None)
        self._compiled = schedule.compile()

    def posterior(self, x: torch.Tensor, tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, eps_hat)`` at states ``x`` (B, ...) and times ``tt`` (scalar or (B,))."""
        alpha, sigma = self._compiled.evaluate(torch.as_tensor(tt, dtype=torch.float64), "alpha", "sigma")
        return self._posterior(x, alpha, sigma)

    def _posterior(self, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior means given ``alpha``, ``sigma`` values (no SymPy, no host sync)."""
        shape = (-1,) + (1,) * (x.dim() - 1) if alpha.dim() else ()
        alpha, sigma = alpha.reshape(shape), sigma.reshape(shape)
        mean = self.mean.to(x.device)
        var = self.variance.to(x.device)
        centred = x.to(torch.float64) - alpha * mean
        denominator = alpha**2 * var + sigma**2
        x0 = mean + alpha * var * centred / denominator
        eps = sigma * centred / denominator
        # a point mass (alpha = sigma = 0) tells nothing about x0: E[x0] = mean, and eps_hat = 0
        at_point_mass = denominator == 0
        x0 = torch.where(at_point_mass, mean.expand_as(x0), x0)
        eps = torch.where(at_point_mass, torch.zeros_like(eps), eps)
        return x0.to(x.dtype), eps.to(x.dtype)

    def prepare(self, times: torch.Tensor) -> "_PreparedGaussian":
        return _PreparedGaussian(self, torch.as_tensor(times, dtype=torch.float64))

    def flow(self, x: torch.Tensor, t_from: float, t_to: float) -> torch.Tensor:
        """Exact probability-flow ODE map from time ``t_from`` to ``t_to`` (float64)."""
        tt = torch.tensor([t_from, t_to], dtype=torch.float64)
        alpha, sigma = self._compiled.evaluate(tt, "alpha", "sigma")
        mean = self.mean.to(x.device)
        var = self.variance.to(x.device)
        c_from = torch.sqrt(sigma[0] ** 2 + alpha[0] ** 2 * var)
        c_to = torch.sqrt(sigma[1] ** 2 + alpha[1] ** 2 * var)
        return alpha[1] * mean + (c_to / c_from) * (x.to(torch.float64) - alpha[0] * mean)


class _PreparedGaussian:
    def __init__(self, denoiser: GaussianDenoiser, times: torch.Tensor):
        self.denoiser = denoiser
        self.times = times
        # everything time-dependent once, before any loop (the model contract)
        self.alpha, self.sigma = denoiser._compiled.evaluate(times, "alpha", "sigma")

    def __call__(self, x: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.denoiser._posterior(x, self.alpha[i], self.sigma[i])
