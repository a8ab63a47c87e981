"""Phase-space diffusions, each a few lines on top of :class:`LinearSDE`.

``z = (x, m)``: data ``x`` and an auxiliary momentum/velocity ``m``. Parameters are
exact rationals so SymPy keeps the critical-damping double eigenvalue exact.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ._errors import LinearSDEError
from ._linear_sde import LinearSDE

__all__ = ["psld", "cld"]


def _rational(value: Any) -> sp.Expr:
    return sp.nsimplify(value, rational=True)


def psld(gamma_friction: Any = "1/100", inverse_mass: Any = 4, nu: Any = None, beta: Any = 8,
         gamma: Any = "1/25", T: Any = 1) -> LinearSDE:
    """Phase Space Langevin Diffusion (Pandey & Mandt 2023; Pandey et al. ICLR 2024).

    ``F = (beta/2) [[-Gamma, 1/M], [-1, -nu]]``, ``G = diag(sqrt(Gamma beta), sqrt(M nu beta))``,
    critical damping ``(Gamma - nu)^2 = 4/M`` (default ``nu = Gamma + 2/sqrt(M)``, i.e.
    ``Gamma + 4`` for ``1/M = 4``), initial momentum ``m0 ~ N(0, gamma M)``.
    ``beta`` may be an expression in :data:`schedalg.t` (moments stay closed-form: time-change form).
    """
    Gam, Minv, b, g = (_rational(v) for v in (gamma_friction, inverse_mass, beta, gamma))
    M = 1 / Minv
    nu_value = Gam + 2 * sp.sqrt(Minv) if nu is None else _rational(nu)
    if sp.simplify((Gam - nu_value) ** 2 - 4 * Minv) != 0:
        raise LinearSDEError("critically damped PSLD parameters, (Gamma - nu)^2 = 4/M",
                             f"Gamma={Gam}, nu={nu_value}, 1/M={Minv}", "leave nu=None to derive it")
    F = b / 2 * sp.Matrix([[-Gam, Minv], [-1, -nu_value]])
    G = sp.diag(sp.sqrt(Gam * b), sp.sqrt(M * nu_value * b))
    return LinearSDE(F, G, initial_covariance=sp.diag(0, g * M), domain=(0, T),
                     block_names=("x", "m"), name=f"psld(Gamma={Gam})")


def cld(gamma_friction: Any = 1, inverse_mass: Any = 4, beta: Any = 4, gamma: Any = "1/25",
        T: Any = 1) -> LinearSDE:
    """Critically damped Langevin diffusion (Dockhorn, Vahdat, Kreis, ICLR 2022).

    ``dx = beta v / M dt``, ``dv = (-beta x - Gamma beta v / M) dt + sqrt(2 Gamma beta) dW``;
    critical damping ``Gamma^2 = 4 M`` (``1/M = 4``, ``Gamma = 1``); ``v0 ~ N(0, gamma M)``.
    """
    Gam, Minv, b, g = (_rational(v) for v in (gamma_friction, inverse_mass, beta, gamma))
    if sp.simplify(Gam**2 - 4 / Minv) != 0:
        raise LinearSDEError("critically damped CLD parameters, Gamma^2 = 4 M", f"Gamma={Gam}, 1/M={Minv}",
                             "use Gamma = 2 sqrt(M), e.g. Gamma = 1 with 1/M = 4")
    F = sp.Matrix([[0, b * Minv], [-b, -Gam * b * Minv]])
    G = sp.diag(0, sp.sqrt(2 * Gam * b))
    return LinearSDE(F, G, initial_covariance=sp.diag(0, g / Minv), domain=(0, T),
                     block_names=("x", "v"), name=f"cld(Gamma={Gam})")

