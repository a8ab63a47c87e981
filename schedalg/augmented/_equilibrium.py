"""The equilibrium-referenced linear parts that splitting samplers solve exactly.

For a time-change SDE (``F = f F0``, ``G G^T = f Q0``) with stationary covariance
``S`` (``F0 S + S F0^T + Q0 = 0``) the score splits as ``s = -S^{-1} z + (s + S^{-1} z)``.
The first term is linear, so the linear part of the reverse dynamics is solvable in
closed form (Dockhorn et al. 2022's SSCS idea; the remainder vanishes where the data
distribution has relaxed to equilibrium):

* ODE, forward time: ``z' = f (F0 + Q0 S^{-1} / 2) z`` -> ``z(t_b) = exp((U_b - U_a) X) z(t_a)``;
* reverse SDE, reverse time: an Ornstein-Uhlenbeck process with drift matrix
  ``N = -(F0 + Q0 S^{-1})`` in the clock ``u``; it keeps ``S`` stationary, so over a clock
  span ``du`` its transition is ``exp(du N)`` with noise covariance ``S - e^{du N} S e^{du N^T}``.

The remainders are ``W eps - G G^T S^{-1} z / 2`` (ODE) and ``2 W eps - G G^T S^{-1} z`` (SDE).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
import torch

from ._errors import SamplerError
from ._linear_sde import LinearSDE

__all__ = ["Equilibrium", "equilibrium", "symmetric_sqrt"]


@dataclass
class Equilibrium:
    """Compiled pieces: ``ode_flow(u_from, u_to)``, ``ou_flow(du)``, ``ou_noise(du)``, ``S^{-1}``."""

    sde: LinearSDE
    S: torch.Tensor
    S_inv: torch.Tensor
    X_ode: sp.Matrix
    N_sde: sp.Matrix

    def clock(self, tt: torch.Tensor) -> torch.Tensor:
        return self.sde.compile().clock(tt)

    def ode_flow(self, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        """``exp((U(t_to) - U(t_from)) X_ode)``: exact flow of the ODE's linear part."""
        fn = self.sde.compile().autonomous_exp(self.X_ode)
        return fn(self.clock(t_to) - self.clock(t_from))

    def ou(self, t_from: torch.Tensor, t_to: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reverse-time OU from ``t_from`` down to ``t_to``: ``(transition, noise factor)``."""
        fn = self.sde.compile().autonomous_exp(self.N_sde)
        E = fn(self.clock(t_from) - self.clock(t_to))
        cov = self.S - E @ self.S @ E.transpose(-1, -2)
        return E, symmetric_sqrt(cov)


def symmetric_sqrt(cov: torch.Tensor) -> torch.Tensor:
    """``V sqrt(max(Lambda, 0)) V^T``: a square root that tolerates rank-deficient covariances."""
    cov = (cov + cov.transpose(-1, -2)) / 2
    values, vectors = torch.linalg.eigh(cov)
    return vectors @ torch.diag_embed(values.clamp_min(0).sqrt()) @ vectors.transpose(-1, -2)


@cache
def _equilibrium(sde: LinearSDE) -> Equilibrium:
    tc, S = sde.time_change, sde.stationary_covariance
    if tc is None or S is None:
        raise SamplerError("an SDE of time-change form with a stationary covariance (VP, CLD, PSLD)",
                           f"{sde.name!r}", "use euler, heun, rk4 or a conjugate sampler for this SDE")
    S_inv = S.inv()
    X = (tc.F0 + tc.Q0 * S_inv / 2).applyfunc(sp.nsimplify)
    N = (-(tc.F0 + tc.Q0 * S_inv)).applyfunc(sp.nsimplify)
    to_t = lambda m: torch.tensor([[float(e) for e in row] for row in m.tolist()], dtype=torch.float64)  # noqa: E731
    return Equilibrium(sde, to_t(S), to_t(S_inv), X, N)


def equilibrium(sde: LinearSDE) -> Equilibrium:
    """The (cached) equilibrium pieces of ``sde``; :class:`SamplerError` if it has none."""
    return _equilibrium(sde)
