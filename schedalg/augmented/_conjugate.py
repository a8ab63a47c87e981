"""Conjugate integrators for ``dz/dt = F(t) z + W(t) eps_hat(z, t)`` (Pandey, Rudolph, Mandt, ICLR 2024).

For a user-chosen ``B(t)`` the conjugate variable ``zh = A(t) z`` with

    A(t) = exp(int_0^t (B - F)),      Phi(t) = int A W dt

obeys ``dzh/dt = A B A^{-1} zh + (dPhi/dt) eps_hat`` (because ``A' = A (B - F)`` when the
matrices commute; ``proofs/prove_conjugate.py``). One step from ``t`` to ``t + h`` freezes
``eps_hat`` and takes Euler on the ``B`` part:

    zh(t+h) = zh + h A B A^{-1} zh + (Phi(t+h) - Phi(t)) eps_hat(z_t, t),   z = A^{-1} zh.

``B = 0`` is the exponential integrator (on VP exactly DDIM), ``B = lambda I`` is
lambda-DDIM, ``B = F`` gives ``A = I``: Euler with the ``eps`` weight integrated exactly.
``B`` may be any matrix of expressions in ``t``. ``linear`` replaces ``F`` as the linear
part (e.g. the remainder of an equilibrium splitting, :class:`ConjugateSplitting`).

``A`` is a closed form when ``B - F`` commutes with itself at different times (always
for constant ``B`` and ``F = beta F0`` with constant ``beta``, or ``B = b(t) I``);
otherwise the ordered exponential ``A' = A (B - F)`` is integrated numerically
(:attr:`ConjugateTransform.A_kind`). ``Phi`` is tried in closed form (in the time-change
variable ``u`` when ``B = 0``), else by composite Gauss-Legendre quadrature per step
(:attr:`ConjugateTransform.phi_kind`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import sympy as sp
import torch

from ..symbolic import t
from ._closed_forms import antiderivative, definite, exp_polynomial
from ._compiled import matrix_function
from ._errors import LinearSDEError
from ._linear_sde import LinearSDE, u
from ._quadrature import integrate_intervals
from ._rk4 import integrate_from_zero

__all__ = ["ConjugateTransform", "lambda_identity", "lambda_ones"]

#: Largest number of blocks whose matrix exponential ``A`` is taken in closed form.
MAX_SYMBOLIC_BLOCKS = 3
_t2 = sp.Symbol("t_2", real=True)
_sd = sp.Symbol("s_", real=True)
_CACHE: dict[tuple, tuple] = {}


def _real(matrix: sp.Matrix) -> sp.Matrix:
    """Simplify a real matrix function that SymPy wrote with complex eigenvalues."""
    if matrix.has(sp.I):
        return matrix.applyfunc(lambda e: sp.simplify(sp.re(sp.expand_complex(e))))
    return matrix.applyfunc(sp.simplify)


def lambda_identity(k: int, lam: Any) -> sp.Matrix:
    """``B = lambda I_k`` (lambda-DDIM)."""
    return sp.nsimplify(lam, rational=True) * sp.eye(k)


def lambda_ones(k: int, lam: Any) -> sp.Matrix:
    """``B = lambda 1 1^T``: lambda times the all-ones ``k x k`` block."""
    return sp.nsimplify(lam, rational=True) * sp.ones(k, k)


class ConjugateTransform:
    """``A(t)``, ``Phi(t)`` for ``B(t)`` on the probability-flow ODE of ``sde``.

    ``B`` is ``0``, a number ``lambda`` (meaning ``lambda I``), or a ``k x k`` matrix of
    expressions in :data:`schedalg.t`.
    """

    def __init__(self, sde: LinearSDE, B: Any = 0, linear: Any = None):
        self.sde = sde
        k = sde.k
        self.linear = sde.F if linear is None else sp.Matrix(linear)
        if isinstance(B, (int, float, sp.Number)) or (isinstance(B, sp.Expr) and not isinstance(B, sp.MatrixBase)):
            B = lambda_identity(k, B)
        try:
            B = sp.Matrix(B)
        except (TypeError, ValueError, sp.SympifyError) as exc:
            raise LinearSDEError(f"B as a number or a {k} x {k} matrix", repr(B), "pass e.g. 0.5 or [[a, b], [c, d]]") from exc
        if B.shape != (k, k):
            raise LinearSDEError(f"B of shape {(k, k)}", f"shape {B.shape}", "use one row and column per block")
        if B.free_symbols - {t}:
            raise LinearSDEError("B in schedalg.t only", f"free symbols {sorted(map(str, B.free_symbols - {t}))}",
                                 "substitute numbers for the parameters")
        self.B = B.applyfunc(lambda e: sp.nsimplify(e, rational=True) if e.is_Float else e)
        key = (sde._key, sp.srepr(self.B), sp.srepr(self.linear))
        if key not in _CACHE:
            _CACHE[key] = (self._derive_A(), self._derive_phi_from(self._derive_A()))
        (self.A, self.A_kind), (self.phi, self.phi_kind) = _CACHE[key]

    # ------------------------------------------------------------------ derivations

    @property
    def generator(self) -> sp.Matrix:
        """``B - F``: ``A' = A (B - F)`` (``F`` is :attr:`linear`, the SDE's drift by default)."""
        return self.B - self.linear

    def _derive_A(self) -> tuple[sp.Matrix | None, str]:
        M = self.generator
        commutator = (M * M.subs(t, _t2) - M.subs(t, _t2) * M).applyfunc(sp.simplify)
        if commutator != sp.zeros(*M.shape):
            return None, "numeric"

        # closed form only for exp-polynomial entries (schedalg.augmented._closed_forms): a
        # structural gate, so the outcome is the same on every machine
        if M.shape[0] > MAX_SYMBOLIC_BLOCKS or not all(exp_polynomial(e, t) for e in M):
            return None, "numeric"
        entries = [definite(e.subs(t, _sd), _sd, 0, t) for e in M]
        if any(e is None for e in entries):
            return None, "numeric"
        value = _real(sp.Matrix(*M.shape, entries).exp())
        if value.has(sp.Integral, sp.Piecewise, sp.I):
            return None, "numeric"
        return value, "symbolic"

    def _derive_phi_from(self, derived) -> tuple[sp.Matrix | None, str]:
        A, kind = derived
        if kind != "symbolic" or self.sde.moments_kind != "symbolic":
            return None, "numeric"
        tc = self.sde.time_change
        zero = sp.zeros(*self.B.shape)
        X0 = None if tc is None else (self.linear / tc.rate).applyfunc(sp.simplify)
        if X0 is not None and t not in X0.free_symbols and (self.B == zero or self.generator == zero):
            # A = exp(-U X0) (B = 0) or I (B = F), W = f Q0 L_u^{-T} / 2: integrate in u = U(t)
            A_u = (-u * X0).exp() if self.B == zero else sp.eye(self.sde.k)
            integrand = A_u * tc.Q0 * self.sde._cholesky_u[1] / 2
            symbol, back = u, tc.clock
        else:
            integrand = A * self.sde.ode_weight
            symbol, back = t, t
        # attempted only for the integrand classes of schedalg.augmented._closed_forms (e.g. VP's
        # exp(u) / (2 sqrt(exp(u) - 1))); PSLD's and CLD's Cholesky factors go to quadrature at once
        entries = [antiderivative(e, symbol) for e in integrand]
        if any(e is None for e in entries):
            return None, "numeric"
        return sp.Matrix(*integrand.shape, entries).subs(symbol, back), "symbolic"

    # ------------------------------------------------------------------ torch

    @cached_property
    def _functions(self):
        fns = {"B": matrix_function(self.B, t, "B"), "W": self.sde.compile().ode_weight}
        if self.A_kind == "symbolic":
            fns["A"] = matrix_function(self.A, t, "A")
        if self.phi_kind == "symbolic":
            fns["Phi"] = matrix_function(self.phi, t, "Phi")
        return fns

    def A_of(self, tt: torch.Tensor) -> torch.Tensor:
        """``A(t)`` as ``(*t.shape, k, k)`` (closed form, or RK4 on ``A' = A (B - F)``)."""
        tt = torch.as_tensor(tt, dtype=torch.float64)
        if self.A_kind == "symbolic":
            return self._functions["A"](tt)
        return self._numeric_A(tt)

    def A_inv_of(self, tt: torch.Tensor) -> torch.Tensor:
        """``A(t)^{-1}`` (``k x k`` inverse in torch)."""
        return torch.linalg.inv(self.A_of(tt))

    def B_hat(self, tt: torch.Tensor) -> torch.Tensor:
        """``A B A^{-1}``: the linear part in conjugate coordinates."""
        return self.A_of(tt) @ self._functions["B"](torch.as_tensor(tt, dtype=torch.float64)) @ self.A_inv_of(tt)

    def phi_increment(self, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        """``Phi(t_to) - Phi(t_from) = int_{t_from}^{t_to} A W`` for each pair (``(n, k, k)``)."""
        t_from = torch.as_tensor(t_from, dtype=torch.float64)
        t_to = torch.as_tensor(t_to, dtype=torch.float64)
        if self.phi_kind == "symbolic":
            return self._functions["Phi"](t_to) - self._functions["Phi"](t_from)
        return integrate_intervals(lambda s: self.A_of(s) @ self._functions["W"](s), t_from, t_to)

    def step_matrices(self, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(K_i, P_i)`` with ``z_{i+1} = K_i z_i + P_i eps_hat(z_i, t_i)`` on the grid ``times``.

        ``K = A_{i+1}^{-1} (I + h A B A^{-1}) A_i``, ``P = A_{i+1}^{-1} (Phi_{i+1} - Phi_i)``.
        """
        times = self.sde.compile().check_times(times)
        t0, t1 = times[:-1], times[1:]
        h = (t1 - t0)[:, None, None]
        eye = torch.eye(self.sde.k, dtype=torch.float64)
        A1_inv = self.A_inv_of(t1)
        K = A1_inv @ (eye + h * self.B_hat(t0)) @ self.A_of(t0)
        P = A1_inv @ self.phi_increment(t0, t1)
        return K, P

    numeric_steps = 2000

    def _numeric_A(self, tt: torch.Tensor) -> torch.Tensor:
        """RK4 on ``A' = A (B - F)``, ``A(0) = I`` (ordered exponential), to each ``t``."""
        tt = torch.as_tensor(tt, dtype=torch.float64)
        flat = tt.reshape(-1)
        gen = matrix_function(self.generator, t, "B_minus_F")
        k = self.sde.k
        start = torch.eye(k, dtype=torch.float64).expand(flat.shape + (k, k))
        (A,) = integrate_from_zero(lambda time, y: (y[0] @ gen(time),), (start,), flat, self.numeric_steps)
        return A.reshape(tt.shape + (k, k))

    def __repr__(self) -> str:
        return f"ConjugateTransform({self.sde.name!r}, B={self.B.tolist()}, A={self.A_kind}, Phi={self.phi_kind})"
