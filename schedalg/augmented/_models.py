"""Models in augmented space: ``eps_hat`` over the whole state, score ``s = -L^{-T} eps_hat``.

A network for an augmented diffusion predicts the noise ``eps`` of
``z_t = a(t) x0 + L(t) eps`` over all ``k`` blocks (Dockhorn et al. 2022 predict only the
momentum block for CLD; PSLD, Pandey & Mandt 2023, the whole state). The contract mirrors
:class:`schedalg.models.Denoiser`: ``model.prepare(times)`` precomputes everything
time-dependent; the prepared model is called ``(z, i) -> (x0_hat, eps_hat)`` at grid
index ``i``, with ``z`` and ``eps_hat`` of shape ``(B, k, *data_shape)`` and ``x0_hat`` of
shape ``(B, *data_shape)``.

Exact models (no training) for Gaussian and Gaussian-mixture data: since ``z_t`` given
``x0`` is Gaussian, ``z_t`` given a component ``N(m_j, v I)`` is
``N(a m_j, C)`` per data coordinate with ``C = v a a^T + Sigma`` (a ``k x k`` matrix), so

    score = -C^{-1} (z - a mbar),   eps_hat = L^T C^{-1} (z - a mbar),
    x0_hat = mbar + v a^T C^{-1} (z - a mbar),

with ``mbar = sum_j r_j m_j`` and responsibilities ``r = softmax_j(log w_j + <m_j, a^T C^{-1} z>
- |m_j|^2 a^T C^{-1} a / 2)`` (the ``C`` shared by all components cancels elsewhere).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import torch

from ._compiled import CompiledLinearSDE
from ._errors import SamplerError
from ._linear_sde import LinearSDE

__all__ = ["AugmentedDenoiser", "PreparedAugmented", "AugmentedGaussianModel", "AugmentedMixtureModel",
           "AugmentedEpsModel"]


@runtime_checkable
class PreparedAugmented(Protocol):
    """An augmented model bound to a time grid: ``(z, i) -> (x0_hat, eps_hat)``."""

    times: torch.Tensor

    def __call__(self, z: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class AugmentedDenoiser(Protocol):
    """Anything that predicts ``eps`` over the whole state of ``sde``."""

    sde: LinearSDE

    def prepare(self, times: torch.Tensor) -> PreparedAugmented: ...


def _check_state(z: torch.Tensor, k: int, data_shape: tuple[int, ...] | None) -> None:
    if z.dim() < 2 or z.shape[1] != k or (data_shape is not None and tuple(z.shape[2:]) != data_shape):
        expected = f"(B, {k}, {', '.join(map(str, data_shape))})" if data_shape is not None else f"(B, {k}, ...)"
        raise SamplerError(f"an augmented state of shape {expected}", f"shape {tuple(z.shape)}",
                           "stack the blocks on axis 1: z = torch.stack([x, m], dim=1)")


class AugmentedGaussianModel:
    """Exact model for data ``N(mean, diag(variance))`` under an augmented ``sde``.

    ``mean`` and ``variance`` have the data shape. :meth:`flow` integrates the (linear)
    probability-flow ODE to high accuracy, for reference solutions.
    """

    def __init__(self, sde: LinearSDE, mean: Any, variance: Any):
        self.sde = sde
        self.csde: CompiledLinearSDE = sde.compile()
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.variance = torch.as_tensor(variance, dtype=torch.float64).expand_as(self.mean).clone()
        if bool((self.variance <= 0).any()):
            raise SamplerError("positive data variances", f"min {float(self.variance.min())}",
                               "use a small positive variance for degenerate coordinates")

    def marginal_covariance(self, tt: torch.Tensor) -> torch.Tensor:
        """``C_d(t) = v_d a a^T + Sigma``, shape ``(*t.shape, *data_shape, k, k)``."""
        tt = torch.as_tensor(tt, dtype=torch.float64)
        a, sigma = self.csde.mean_coefficient(tt), self.csde.covariance(tt)
        extra = (1,) * self.mean.dim()
        aat = (a[..., :, None] * a[..., None, :]).reshape(tt.shape + extra + (self.sde.k, self.sde.k))
        return self.variance[..., None, None] * aat + sigma.reshape(tt.shape + extra + sigma.shape[-2:])

    def prepare(self, times: torch.Tensor) -> "_PreparedGaussian":
        """Precompute ``L^T C^{-1}`` and ``v a^T C^{-1}`` on the grid ``times``."""
        return _PreparedGaussian(self, self.csde.check_times(times))

    def sample(self, batch: int, tt: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``z_t ~ N(a(t) mean, C(t))`` exactly: ``(batch, k, *data_shape)`` (float64)."""
        tt = self.csde.check_times(torch.tensor(float(tt), dtype=torch.float64))
        factor = torch.linalg.cholesky(self.marginal_covariance(tt))
        noise = torch.randn((batch, self.sde.k) + tuple(self.mean.shape), generator=generator, dtype=torch.float64)
        return torch.einsum("...ij,bj...->bi...", factor, noise) + _outer(self.csde.mean_coefficient(tt), self.mean)

    def flow(self, z: torch.Tensor, t_from: float, t_to: float, steps: int = 4000) -> torch.Tensor:
        """Probability-flow ODE from ``t_from`` to ``t_to`` (classical RK4, float64).

        The ODE is linear, ``(z - a mu)' = (F + G G^T C^{-1} / 2)(z - a mu)``, per data
        coordinate; its fundamental matrix is integrated with ``steps`` RK4 steps on a
        grid quadratic towards ``t_to`` (no closed form for the ordered exponential).
        """
        k = self.sde.k
        s = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
        nodes = t_to + (t_from - t_to) * (1 - s) ** 2           # quadratic towards t_to
        grid = torch.empty(2 * steps + 1, dtype=torch.float64)
        grid[0::2], grid[1::2] = nodes, (nodes[:-1] + nodes[1:]) / 2
        C = self.marginal_covariance(grid)
        F, Q = self.csde.drift(grid), self.csde.ggt(grid)
        extra = (None,) * self.mean.dim()
        A = F[(slice(None),) + extra] + Q[(slice(None),) + extra] @ torch.linalg.inv(C) / 2
        R = torch.eye(k, dtype=torch.float64).expand(self.mean.shape + (k, k)).clone()
        for j in range(steps):
            h = grid[2 * j + 2] - grid[2 * j]
            a0, am, a1 = A[2 * j], A[2 * j + 1], A[2 * j + 2]
            k1 = a0 @ R
            k2 = am @ (R + h / 2 * k1)
            k3 = am @ (R + h / 2 * k2)
            k4 = a1 @ (R + h * k3)
            R = R + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        a_from = self.csde.mean_coefficient(torch.tensor(t_from, dtype=torch.float64))
        a_to = self.csde.mean_coefficient(torch.tensor(t_to, dtype=torch.float64))
        centred = z.to(torch.float64) - _outer(a_from, self.mean)
        moved = torch.einsum("...ij,bj...->bi...", R, centred)
        return moved + _outer(a_to, self.mean)


def _outer(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a (x) x`` for ``a`` ``(k,)`` and ``x`` of the data shape -> ``(1, k, *data_shape)``."""
    return (a.reshape((-1,) + (1,) * x.dim()) * x).unsqueeze(0)


class _PreparedGaussian:
    def __init__(self, model: AugmentedGaussianModel, times: torch.Tensor):
        self.model, self.times = model, times
        csde = model.csde
        self.a = csde.mean_coefficient(times)                                  # (n, k)
        precision = torch.linalg.inv(model.marginal_covariance(times))         # (n, *data, k, k)
        L_t = csde.cholesky(times).transpose(-1, -2)                           # (n, k, k)
        extra = (None,) * model.mean.dim()
        self.eps_matrix = L_t[(slice(None),) + extra] @ precision              # L^T C^{-1}
        self.x0_row = model.variance[..., None] * (self.a[(slice(None),) + extra + (None, slice(None))]
                                                   @ precision)[..., 0, :]    # v a^T C^{-1}
        self.k = model.sde.k

    def __call__(self, z: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        _check_state(z, self.k, tuple(self.model.mean.shape))
        centred = z - _outer(self.a[i], self.model.mean).to(z.dtype)
        eps = torch.einsum("...ij,bj...->bi...", self.eps_matrix[i].to(z.dtype), centred)
        x0 = self.model.mean.to(z.dtype) + torch.einsum("...j,bj...->b...", self.x0_row[i].to(z.dtype), centred)
        return x0, eps


class AugmentedMixtureModel:
    """Exact model for the mixture ``sum_j w_j N(means[j], variance I)`` under ``sde``.

    ``means`` is ``(K, *data_shape)``; ``variance`` a positive scalar (the smoothing);
    ``weights`` (K,) default uniform. Computed in float64 with a log-sum-exp softmax.
    """

    def __init__(self, sde: LinearSDE, means: Any, variance: float, weights: Any = None):
        self.sde = sde
        self.csde = sde.compile()
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.dim() < 2:
            raise SamplerError("means of shape (K, *data_shape)", f"shape {tuple(self.means.shape)}",
                               "stack the component means on axis 0")
        self.variance = float(variance)
        if not self.variance > 0:
            raise SamplerError("a positive smoothing variance", repr(variance), "pass e.g. variance=1e-2")
        K = self.means.shape[0]
        w = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else torch.as_tensor(
            weights, dtype=torch.float64)
        if w.shape != (K,) or bool((w <= 0).any()):
            raise SamplerError(f"{K} positive weights", f"{tuple(w.shape)} with min {float(w.min())}",
                               "pass one positive weight per component")
        self.log_weights = torch.log(w / w.sum())
        self._flat = self.means.reshape(K, -1)
        self._norms = (self._flat**2).sum(-1)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.means.shape[1:])

    def prepare(self, times: torch.Tensor) -> "_PreparedMixture":
        """Precompute ``a^T C^{-1}``, ``a^T C^{-1} a`` and ``L^T C^{-1}`` on the grid ``times``."""
        return _PreparedMixture(self, self.csde.check_times(times))


class _PreparedMixture:
    def __init__(self, model: AugmentedMixtureModel, times: torch.Tensor):
        self.model, self.times = model, times
        csde = model.csde
        self.a = csde.mean_coefficient(times)                                   # (n, k)
        aat = self.a[:, :, None] * self.a[:, None, :]
        precision = torch.linalg.inv(model.variance * aat + csde.covariance(times))  # (n, k, k)
        self.aP = (self.a[:, None, :] @ precision)[:, 0, :]                    # a^T C^{-1}  (n, k)
        self.aPa = (self.aP * self.a).sum(-1)                                  # (n,)
        self.eps_matrix = csde.cholesky(times).transpose(-1, -2) @ precision    # L^T C^{-1}
        self.k = model.sde.k

    def __call__(self, z: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        _check_state(z, self.k, model.data_shape)
        z64 = z.to(torch.float64).reshape(z.shape[0], self.k, -1)
        proj = torch.einsum("j,bjd->bd", self.aP[i], z64)                      # a^T C^{-1} z
        logits = model.log_weights + proj @ model._flat.T - 0.5 * self.aPa[i] * model._norms
        mbar = torch.softmax(logits, dim=-1) @ model._flat                    # (B, D)
        centred = z64 - self.a[i][None, :, None] * mbar[:, None, :]
        eps = torch.einsum("ij,bjd->bid", self.eps_matrix[i], centred)
        x0 = mbar + model.variance * torch.einsum("j,bjd->bd", self.aP[i], centred)
        return (x0.reshape((z.shape[0],) + model.data_shape).to(z.dtype),
                eps.reshape(z.shape).to(z.dtype))


class AugmentedEpsModel:
    """Wrap a network ``net(z, t) -> eps_hat`` (``z``, ``eps_hat``: ``(B, k, ...)``) for ``sde``.

    ``time_input`` maps the SDE time to the network's time input (default identity);
    it is applied once per grid in :meth:`prepare`. ``x0_hat`` is the least-squares
    solution of ``a x0 = z - L eps_hat``.
    """

    def __init__(self, sde: LinearSDE, network: Callable[..., torch.Tensor],
                 time_input: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.sde, self.network = sde, network
        self.csde = sde.compile()
        self.time_input = time_input or (lambda tt: tt)

    def prepare(self, times: torch.Tensor) -> "_PreparedNetwork":
        """Precompute the network's time inputs, ``a`` and ``L`` on the grid ``times``."""
        return _PreparedNetwork(self, self.csde.check_times(times))


class _PreparedNetwork:
    def __init__(self, model: AugmentedEpsModel, times: torch.Tensor):
        self.model, self.times = model, times
        self.net_times = model.time_input(times)
        self.a = model.csde.mean_coefficient(times)
        self.L = model.csde.cholesky(times)
        self.k = model.sde.k

    def __call__(self, z: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        _check_state(z, self.k, None)
        eps = self.model.network(z, self.net_times[i].to(z.dtype), **cond)
        if eps.shape != z.shape:
            raise SamplerError(f"a network output of the state's shape {tuple(z.shape)}",
                               f"shape {tuple(eps.shape)}", "predict eps for every block of the state")
        residual = z - torch.einsum("ij,bj...->bi...", self.L[i].to(z.dtype), eps)
        a = self.a[i].to(z.dtype)
        x0 = torch.einsum("j,bj...->b...", a, residual) / (a * a).sum()
        return x0, eps
