"""Linear SDEs with matrix coefficients, ``dz = F(t) z dt + G(t) dW``, derived by SymPy.

The state ``z`` has ``k`` blocks (``k = 1`` for the scalar schedules, ``k = 2`` for
position/momentum in CLD and PSLD); ``F`` and ``G`` are ``k x k`` matrices acting on the
blocks, i.e. ``F (x) I_D`` on ``R^{k D}``: they are never expanded to the data dimension.
Time ``t`` runs forward, data at ``t = 0`` (Song et al. 2021; Dockhorn et al. 2022;
Pandey & Mandt 2023). Given the data ``x0``, the initial state is
``z0 = e x0 + n0`` with ``e`` the data weight (default ``(1, 0, ...)``) and
``n0 ~ N(0, Sigma0)`` (e.g. PSLD's initial momentum ``N(0, gamma M)``).

Derived quantities (SymPy):

* transition ``Psi(t) = exp(int_0^t F)`` (``Psi' = F Psi``, ``Psi(0) = I``);
* perturbation kernel ``z_t | x0 ~ N(a(t) x0, Sigma(t))`` with ``a = Psi e`` and the
  Lyapunov integral ``Sigma = Psi Sigma0 Psi^T + int_0^t Psi(t,s) G G^T(s) Psi(t,s)^T ds``,
  which solves ``Sigma' = F Sigma + Sigma F^T + G G^T``;
* its Cholesky factor ``L`` (``Sigma = L L^T``) and ``L^{-T}``, so that the score is
  ``s = -L^{-T} eps_hat`` for a network predicting the noise ``eps`` of
  ``z_t = a x0 + L eps``;
* the probability-flow ODE ``dz/dt = F z + W eps_hat`` with ``W = G G^T L^{-T} / 2``.

Closed forms exist when the SDE is a *time change* of an autonomous one,
``F = f(t) F0`` and ``G G^T = f(t) Q0`` with constant ``F0, Q0`` (VP, CLD, PSLD with any
``beta(t)``): then ``Psi = exp(U F0)`` with ``U = int_0^t f``, and the Lyapunov integral is
done in ``u = U`` with constant matrices. Otherwise the moments are computed by
numerical integration of the moment ODEs, and :attr:`LinearSDE.moments_kind` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import sympy as sp

from ..symbolic import t
from ._closed_forms import definite, exp_polynomial
from ._compiled import CompiledLinearSDE, compile_sde
from ._errors import LinearSDEError

__all__ = ["LinearSDE", "TimeChange", "u"]

#: The time-change variable ``u = int_0^t f``.
u = sp.Symbol("u", nonnegative=True)
_r = sp.Symbol("r", nonnegative=True)
_s = sp.Symbol("s_", real=True)

# derivations shared by equal SDEs (psld() twice derives once)
_DERIVATIONS: dict[tuple, Any] = {}


@dataclass(frozen=True)
class TimeChange:
    """``F = rate(t) F0``, ``G G^T = rate(t) Q0``; ``clock(t) = int_0^t rate``."""

    rate: sp.Expr
    clock: sp.Expr
    F0: sp.Matrix
    Q0: sp.Matrix


def _matrix(value: Any, what: str) -> sp.Matrix:
    try:
        matrix = sp.Matrix(value) if not isinstance(value, sp.MatrixBase) else sp.Matrix(value)
    except (TypeError, ValueError, sp.SympifyError) as exc:
        raise LinearSDEError(f"{what} as a square SymPy matrix (list of rows)", repr(value),
                             "pass e.g. [[a, b], [c, d]] or sympy.Matrix(...)") from exc
    if matrix.rows != matrix.cols:
        raise LinearSDEError(f"{what} square (k x k)", f"shape {matrix.shape}",
                             "give one row and one column per block of the state")
    return matrix.applyfunc(lambda e: sp.nsimplify(e, rational=True) if e.is_Float else e)


def _simplify(matrix: sp.Matrix) -> sp.Matrix:
    return matrix.applyfunc(sp.simplify)


class LinearSDE:
    """``dz = F(t) z dt + G(t) dW`` on ``k`` blocks, data at ``t = 0``, declared with SymPy.

    Parameters
    ----------
    drift, diffusion:
        ``F`` and ``G``: ``k x k`` matrices of expressions in :data:`schedalg.t`.
    initial_covariance:
        ``Sigma0`` of the initial state given the data (default 0).
    data_weight:
        ``e`` in ``z0 = e x0 + n0`` (default ``(1, 0, ..., 0)``).
    domain:
        ``(0, T)``.
    block_names:
        Names of the blocks, for messages (``("x", "m")`` for phase space).
    """

    #: the elapsed-time symbol of :meth:`autonomous_exp`
    u = u

    def __init__(
        self,
        drift: Any,
        diffusion: Any,
        *,
        initial_covariance: Any = None,
        data_weight: Sequence[Any] | None = None,
        domain: tuple[Any, Any] = (0, 1),
        block_names: Sequence[str] | None = None,
        name: str = "linear_sde",
    ):
        self.name = name
        self.F = _matrix(drift, "the drift F")
        self.G = _matrix(diffusion, "the diffusion G")
        k = self.F.rows
        if self.G.shape != (k, k):
            raise LinearSDEError(f"G of the same shape as F, {(k, k)}", f"shape {self.G.shape}",
                                 "use one row and column per block for both matrices")
        self.k = k
        sigma0 = sp.zeros(k, k) if initial_covariance is None else _matrix(initial_covariance, "Sigma0")
        if sigma0.shape != (k, k) or sigma0 != sigma0.T:
            raise LinearSDEError(f"a symmetric {k} x {k} initial covariance", f"{sigma0.tolist()}",
                                 "pass a symmetric matrix, e.g. diag(0, gamma * M)")
        self.Sigma0 = sigma0
        weight = [1] + [0] * (k - 1) if data_weight is None else list(data_weight)
        if len(weight) != k:
            raise LinearSDEError(f"a data weight with {k} entries", f"{len(weight)} entries",
                                 "give one weight per block, e.g. (1, 0)")
        self.data_weight = sp.Matrix(weight).applyfunc(sp.nsimplify)
        self.domain = (sp.nsimplify(domain[0]), sp.nsimplify(domain[1]))
        if self.domain[0] != 0:
            raise LinearSDEError("a domain starting at the data, t = 0", f"t_min = {self.domain[0]}",
                                 "shift time so the data is at t = 0")
        if not self.domain[1].is_positive:
            raise LinearSDEError("a positive end time T", f"T = {self.domain[1]}", "pass domain=(0, T) with T > 0")
        self.block_names = tuple(block_names) if block_names else tuple(f"z{i}" for i in range(k))
        free = (self.F.free_symbols | self.G.free_symbols | sigma0.free_symbols
                | self.data_weight.free_symbols) - {t}
        if free:
            raise LinearSDEError("F, G, Sigma0 in schedalg.t only", f"free symbols {sorted(map(str, free))}",
                                 "substitute numbers for the parameters (use exact rationals)")

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_schedule(cls, schedule) -> "LinearSDE":
        """The 1x1 SDE ``dx = f x dt + g dW`` of a data-at-``t_min`` scalar schedule.

        ``f = drift_f``, ``g^2 = diffusion_g2`` of :class:`~schedalg.Schedule`; its
        mean coefficient and variance are the schedule's ``alpha`` and ``sigma^2``.
        """
        schedule.require_bound("turn it into a linear SDE")
        if schedule.direction != -1 or schedule.domain[0] != 0:
            raise LinearSDEError("a schedule with the data at t = 0 (VP, VE, cosine ...)",
                                 f"{schedule.name!r} with domain {schedule.domain}, direction {schedule.direction}",
                                 "use a schedule written data -> noise starting at t = 0")
        g2 = sp.simplify(schedule.diffusion_g2)
        return cls([[sp.simplify(schedule.drift_f)]], [[sp.sqrt(g2)]], domain=schedule.domain,
                   name=f"sde[{schedule.name}]")

    # ------------------------------------------------------------------ structure

    @cached_property
    def GGt(self) -> sp.Matrix:
        """``G G^T``."""
        return _simplify(self.G * self.G.T)

    @cached_property
    def time_change(self) -> TimeChange | None:
        """The time-change form ``F = f F0``, ``G G^T = f Q0`` with the clock ``u(t) = int_0^t f``
        in closed form, or ``None`` (no such form, or a rate outside the structural gate of
        :mod:`schedalg.augmented._closed_forms`: the numeric path is used)."""
        candidates = [e for e in list(self.GGt.diagonal()) + list(self.F) if e != 0]
        if not candidates:
            return None
        rate = candidates[0]
        F0 = _simplify(self.F / rate)
        Q0 = _simplify(self.GGt / rate)
        if (F0.free_symbols | Q0.free_symbols) & {t}:
            return None
        clock = definite(rate.subs(t, _s), _s, 0, t)
        if clock is None:
            return None
        return TimeChange(rate=rate, clock=sp.simplify(clock), F0=F0, Q0=Q0)

    @cached_property
    def _key(self) -> tuple:
        return tuple(sp.srepr(m) for m in (self.F, self.G, self.Sigma0, self.data_weight, sp.Tuple(*self.domain)))

    @cached_property
    def _autonomous(self) -> tuple[sp.Matrix, sp.Matrix] | None:
        """``(exp(u F0), Sigma_aut(u))`` in the time-change variable, or ``None``."""
        key = ("autonomous",) + self._key
        if key not in _DERIVATIONS:
            _DERIVATIONS[key] = self._derive_autonomous()
        return _DERIVATIONS[key]

    def _derive_autonomous(self) -> tuple[sp.Matrix, sp.Matrix] | None:
        tc = self.time_change
        if tc is None:
            return None

        # exp(r F0) of a constant matrix has exp-polynomial entries (cos/sin for complex
        # eigenvalues), whose Lyapunov integrals SymPy finds; anything else (a structural
        # gate, schedalg.augmented._closed_forms) is integrated numerically
        E = _simplify((_r * tc.F0).exp())
        integrand = (E * tc.Q0 * E.T).applyfunc(sp.expand)
        if not all(exp_polynomial(e, _r) for e in integrand):
            return None
        entries = [definite(e, _r, 0, u) for e in integrand]
        if any(e is None for e in entries):
            return None
        integral = sp.Matrix(*integrand.shape, entries)
        Eu = E.subs(_r, u)
        return Eu, _simplify(Eu * self.Sigma0 * Eu.T + integral)

    @property
    def moments_kind(self) -> str:
        """``"symbolic"`` (closed-form mean and covariance) or ``"numeric"`` (ODE quadrature)."""
        return "symbolic" if self._autonomous is not None else "numeric"

    # ------------------------------------------------------------------ derived (symbolic)

    def _require_symbolic(self, what: str) -> None:
        if self._autonomous is None:
            raise LinearSDEError(f"an SDE with closed-form moments to give {what} symbolically",
                                 f"{self.name!r}: moments_kind = 'numeric' (no time-change form F = f F0, "
                                 "G G^T = f Q0, or SymPy found no closed-form Lyapunov integral)",
                                 "use the compiled SDE (sde.compile()), which integrates the moments numerically")

    @cached_property
    def transition(self) -> sp.Matrix:
        """``Psi(t) = exp(int_0^t F)``: ``Psi' = F Psi``, ``Psi(0) = I``."""
        self._require_symbolic("the transition matrix")
        return self._autonomous[0].subs(u, self.time_change.clock)

    @cached_property
    def mean_coefficient(self) -> sp.Matrix:
        """``a(t) = Psi(t) e``: ``E[z_t | x0] = a(t) x0`` (a ``k x 1`` matrix)."""
        return self.transition * self.data_weight

    @cached_property
    def covariance(self) -> sp.Matrix:
        """``Sigma(t)`` of ``z_t | x0`` (Lyapunov integral, closed form)."""
        self._require_symbolic("the covariance")
        return self._autonomous[1].subs(u, self.time_change.clock)

    @cached_property
    def _cholesky_u(self) -> tuple[sp.Matrix, sp.Matrix]:
        key = ("cholesky",) + self._key
        if key not in _DERIVATIONS:
            L = self._autonomous[1].cholesky(hermitian=False)
            _DERIVATIONS[key] = (L, L.lower_triangular_solve(sp.eye(self.k)).T)
        return _DERIVATIONS[key]

    @cached_property
    def cholesky(self) -> sp.Matrix:
        """Lower-triangular ``L(t)`` with ``Sigma = L L^T``."""
        self._require_symbolic("the Cholesky factor")
        return self._cholesky_u[0].subs(u, self.time_change.clock)

    @cached_property
    def cholesky_inv_t(self) -> sp.Matrix:
        """``L^{-T}``: the score of ``z_t | x0`` is ``-L^{-T} eps``."""
        self._require_symbolic("L^{-T}")
        return self._cholesky_u[1].subs(u, self.time_change.clock)

    @cached_property
    def ode_weight(self) -> sp.Matrix:
        """``W = G G^T L^{-T} / 2``: probability-flow ODE ``dz/dt = F z + W eps_hat``."""
        return self.GGt * self.cholesky_inv_t / 2

    @cached_property
    def stationary_covariance(self) -> sp.Matrix | None:
        """``Sigma_inf`` solving ``F0 S + S F0^T + Q0 = 0`` (time-change form), else ``None``."""
        tc = self.time_change
        if tc is None:
            return None
        symbols = sp.symbols(f"q0:{self.k * self.k}")
        S = sp.Matrix(self.k, self.k, symbols)
        S = (S + S.T) / 2
        solution = sp.solve(list(tc.F0 * S + S * tc.F0.T + tc.Q0), symbols, dict=True)
        if len(solution) != 1:
            return None
        value = S.subs(solution[0])
        if value.free_symbols or not all(ev.is_positive for ev in value.eigenvals()):
            return None
        return value

    def autonomous_exp(self, X0: sp.Matrix) -> sp.Matrix:
        """``exp(u X0)`` for a constant ``k x k`` matrix ``X0`` (in the symbol :data:`u`)."""
        return _simplify((u * X0).exp())

    def compile(self) -> "CompiledLinearSDE":
        """The torch view (see :class:`schedalg.augmented.CompiledLinearSDE`), made once."""
        return compile_sde(self)

    def __repr__(self) -> str:
        return f"LinearSDE({self.name!r}, k={self.k}, F={self.F.tolist()}, G={self.G.tolist()})"
