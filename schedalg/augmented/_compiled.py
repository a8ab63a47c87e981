"""The torch view of a :class:`LinearSDE`: matrices of ``t`` as ``(..., k, k)`` tensors.

Closed forms are compiled with :func:`schedalg.compile.compile_exprs`. When the SDE has
no closed-form moments (``moments_kind == "numeric"``), the transition and covariance
are integrated from their ODEs ``Psi' = F Psi`` and ``Sigma' = F Sigma + Sigma F^T + G G^T``
with classical RK4 (``numeric_steps`` steps from 0 to each requested time), and the
Cholesky factor is computed by ``torch.linalg.cholesky``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable

import sympy as sp
import torch

from ..compile import compile_exprs
from ..symbolic import t
from ._errors import LinearSDEError
from ._rk4 import integrate_from_zero

__all__ = ["CompiledLinearSDE", "compile_sde"]

MatrixFn = Callable[[torch.Tensor], torch.Tensor]


def compile_sde(sde) -> "CompiledLinearSDE":
    """Compile ``sde`` (a :class:`LinearSDE`; this module does not import it: it is the one that imports
    this) once, cached on the object."""
    cached = getattr(sde, "_compiled", None)
    if cached is None:
        cached = CompiledLinearSDE(sde)
        sde._compiled = cached  # type: ignore[attr-defined]
    return cached


def matrix_function(matrix: sp.Matrix, symbol: sp.Symbol, name: str) -> MatrixFn:
    """Compile a SymPy matrix of ``symbol`` into ``tt -> (*tt.shape, rows, cols)`` (float64)."""
    fn = compile_exprs(list(matrix), [symbol], name=name)
    rows, cols = matrix.shape

    def evaluate(tt: torch.Tensor) -> torch.Tensor:
        tt = torch.as_tensor(tt, dtype=torch.float64)
        return torch.stack(fn(tt), dim=-1).reshape(tt.shape + (rows, cols))

    evaluate.__doc__ = f"``{name}`` at the given times, shape ``(*t.shape, {rows}, {cols})``."
    return evaluate


class CompiledLinearSDE:
    """Torch functions of ``t`` for one :class:`LinearSDE` (float64, shape ``(*t.shape, k, k)``).

    ``drift`` (F), ``diffusion`` (G), ``ggt`` (G G^T), ``transition`` (Psi), ``covariance``
    (Sigma), ``cholesky`` (L), ``cholesky_inv_t`` (L^{-T}), ``ode_weight`` (W = G G^T L^{-T}/2);
    ``mean_coefficient`` has shape ``(*t.shape, k)``.
    """

    numeric_steps = 2000

    def __init__(self, sde):
        self.sde = sde
        self.k = sde.k
        self.T = float(sde.domain[1])
        self.moments_kind = sde.moments_kind
        self.drift = matrix_function(sde.F, t, "F")
        self.diffusion = matrix_function(sde.G, t, "G")
        self.ggt = matrix_function(sde.GGt, t, "GGt")
        self._weight = torch.tensor([float(w) for w in sde.data_weight], dtype=torch.float64)
        if self.moments_kind == "symbolic":
            self._transition = matrix_function(sde.transition, t, "Psi")
            self._covariance = matrix_function(sde.covariance, t, "Sigma")
            self._cholesky = matrix_function(sde.cholesky, t, "L")
            self._cholesky_inv_t = matrix_function(sde.cholesky_inv_t, t, "L_inv_T")

    # ------------------------------------------------------------------ checks

    def check_times(self, tt: torch.Tensor) -> torch.Tensor:
        """Return ``tt`` as float64 after checking ``0 <= t <= T`` (host-side: call before a loop)."""
        tt = torch.as_tensor(tt, dtype=torch.float64)
        if tt.numel() and (bool((tt < 0).any()) or bool((tt > self.T * (1 + 1e-12)).any())
                           or not bool(torch.isfinite(tt).all())):
            raise LinearSDEError(f"times in [0, {self.T}] for {self.sde.name!r}",
                                 f"values in [{float(tt.min()):.6g}, {float(tt.max()):.6g}]",
                                 "choose a grid from T down to a small t_eps > 0")
        return tt

    # ------------------------------------------------------------------ moments

    def transition(self, tt: torch.Tensor) -> torch.Tensor:
        """``Psi(t) = exp(int_0^t F)``."""
        if self.moments_kind == "symbolic":
            return self._transition(tt)
        return self._numeric_moments(tt)[0]

    def transition_between(self, t_to: torch.Tensor, t_from: torch.Tensor) -> torch.Tensor:
        """``Psi(t_to, t_from) = Psi(t_to) Psi(t_from)^{-1}`` (exact linear flow of ``z' = F z``)."""
        return torch.linalg.solve(self.transition(t_from).transpose(-1, -2),
                                  self.transition(t_to).transpose(-1, -2)).transpose(-1, -2)

    def mean_coefficient(self, tt: torch.Tensor) -> torch.Tensor:
        """``a(t) = Psi(t) e``, shape ``(*t.shape, k)``."""
        return self.transition(tt) @ self._weight

    def covariance(self, tt: torch.Tensor) -> torch.Tensor:
        """``Sigma(t)`` of ``z_t | x0``."""
        if self.moments_kind == "symbolic":
            return self._covariance(tt)
        return self._numeric_moments(tt)[1]

    def cholesky(self, tt: torch.Tensor) -> torch.Tensor:
        """``L(t)``, lower triangular, ``Sigma = L L^T``."""
        if self.moments_kind == "symbolic":
            return self._cholesky(tt)
        return torch.linalg.cholesky(self.covariance(tt))

    def cholesky_inv_t(self, tt: torch.Tensor) -> torch.Tensor:
        """``L(t)^{-T}``."""
        if self.moments_kind == "symbolic":
            return self._cholesky_inv_t(tt)
        return torch.linalg.inv(self.cholesky(tt)).transpose(-1, -2)

    def ode_weight(self, tt: torch.Tensor) -> torch.Tensor:
        """``W = G G^T L^{-T} / 2`` of the probability-flow ODE ``dz/dt = F z + W eps_hat``."""
        return self.ggt(tt) @ self.cholesky_inv_t(tt) / 2

    def _numeric_moments(self, tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RK4 on ``Psi' = F Psi``, ``Sigma' = F Sigma + Sigma F^T + G G^T`` from 0 to each ``t``."""
        tt = torch.as_tensor(tt, dtype=torch.float64)
        flat = tt.reshape(-1)
        k = self.k
        psi = torch.eye(k, dtype=torch.float64).expand(flat.shape + (k, k))
        sig = torch.tensor([[float(e) for e in row] for row in self.sde.Sigma0.tolist()],
                           dtype=torch.float64).expand(flat.shape + (k, k))

        def rhs(time, y):
            F, Q = self.drift(time), self.ggt(time)
            return F @ y[0], F @ y[1] + y[1] @ F.transpose(-1, -2) + Q

        psi, sig = integrate_from_zero(rhs, (psi, sig), flat, self.numeric_steps)
        return psi.reshape(tt.shape + (k, k)), sig.reshape(tt.shape + (k, k))

    # ------------------------------------------------------------------ time change

    @cached_property
    def clock(self) -> MatrixFn:
        """``U(t) = int_0^t f`` of the time-change form (shape of ``t``)."""
        tc = self.sde.time_change
        if tc is None:
            raise LinearSDEError("an SDE of time-change form F = f(t) F0, G G^T = f(t) Q0",
                                 f"{self.sde.name!r}", "declare F and G G^T with a common scalar factor")
        fn = compile_exprs([tc.clock], [t], name="clock")
        return lambda tt: fn(torch.as_tensor(tt, dtype=torch.float64))[0]

    def autonomous_exp(self, X0: sp.Matrix) -> MatrixFn:
        """``du -> exp(du X0)`` for a constant matrix ``X0`` (compiled closed form, cached per ``X0``)."""
        cache = self.__dict__.setdefault("_exp_cache", {})
        key = sp.srepr(X0)
        if key not in cache:
            cache[key] = matrix_function(self.sde.autonomous_exp(X0), self.sde.u, "expm")
        return cache[key]

    # ------------------------------------------------------------------ sampling the forward process

    def sample_marginal(self, x0: torch.Tensor, tt: torch.Tensor,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``z_t = a(t) x0 + L(t) eps``; returns ``(z_t, eps)``, shapes ``(B, k, ...)``.

        ``tt`` is a scalar tensor or one time per batch element.
        """
        tt = torch.as_tensor(tt, dtype=torch.float64)
        eps = torch.randn((x0.shape[0], self.k) + tuple(x0.shape[1:]), generator=generator,
                          dtype=torch.float64, device=x0.device)
        a, L = self.mean_coefficient(tt), self.cholesky(tt)
        if tt.dim() == 0:
            a, L = a.expand(x0.shape[0], self.k), L.expand(x0.shape[0], self.k, self.k)
        tail = (1,) * (x0.dim() - 1)
        z = a.reshape(a.shape + tail) * x0.unsqueeze(1).to(torch.float64) + torch.einsum("bij,bj...->bi...", L, eps)
        return z, eps

    def __repr__(self) -> str:
        return f"CompiledLinearSDE({self.sde.name!r}, k={self.k}, moments={self.moments_kind})"
