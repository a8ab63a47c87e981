"""Diffusion coefficients ``e(t) >= 0`` of the stochastic interpolant SDE family.

For a schedule with predictors ``b`` (velocity, own time) and ``s`` (score), every
``e >= 0`` gives an SDE with the same marginals (Damsholt et al. 2026; MATH.md section 1).
In the schedule's own time ``t`` (direction ``d = +-1``, generation runs with ``d dt > 0``):

    dX = [b(t, X) + d e(t) s(t, X)] dt + sqrt(2 e(t)) dW,     Var(dW) = |dt|.

``e = 0`` is the probability-flow ODE, ``e* = sigma^2 |lambda'| / 2`` the optimal one.
Under a conversion ``x^dst_s = c(s) x^src_{tau(s)}`` the coefficient maps as

    E(s) = c(s)^2 |tau'(s)| e(tau(s)),

the ODE to the ODE and ``e*`` to ``E*`` (``proofs/prove_diffusion.py``); the inverse map is
the same map through the inverse conversion.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import sympy as sp

from ..errors import SchedalgError
from ._convert import TAU, simplify_within
from ._hooks import compiler
from ._numeric import numpy_namespace
from ._schedule import Schedule
from ._symbols import s, t

__all__ = ["Diffusion", "DiffusionError", "map_diffusion"]

KINDS = ("ode", "optimal", "constant", "expression")


class DiffusionError(SchedalgError):
    """A diffusion coefficient that is negative, complex or not finite inside the domain."""


class Diffusion:
    """A diffusion coefficient ``e(t) >= 0`` (generation-time rate) for ``schedule``.

    Build with :meth:`ode`, :meth:`optimal`, :meth:`constant`, or ``Diffusion(schedule, expr)``
    for any SymPy expression in :data:`schedalg.t`. ``expr`` is the symbolic coefficient,
    ``kind`` one of ``"ode"``, ``"optimal"``, ``"constant"``, ``"expression"``.
    :meth:`to` maps it through a conversion; :meth:`evaluate` gives torch values.

    Raises :class:`DiffusionError` when ``e`` is negative, complex or not finite inside
    the domain.
    """

    def __init__(self, schedule: Schedule, expr: Any, *, kind: str = "expression", name: str | None = None):
        schedule.require_bound("declare a diffusion coefficient on it")
        try:
            self.expr: sp.Expr = sp.sympify(expr)
        except (sp.SympifyError, TypeError) as exc:
            raise DiffusionError("a SymPy expression in schedalg.t", repr(expr), "build it from sa.t") from exc
        extra = self.expr.free_symbols - {t}
        if extra:
            raise DiffusionError("an expression in schedalg.t only", f"free symbols {sorted(map(str, extra))}",
                                 "substitute numbers for the other symbols")
        if kind not in KINDS:
            raise DiffusionError(f"kind in {KINDS}", repr(kind), None)
        self.schedule = schedule
        self.kind = kind
        #: ``(conversion, source diffusion)`` when made by :meth:`to`: evaluated numerically as
        #: ``c^2 |tau'| e(tau)`` from the compiled conversion (the closed form is for reading).
        self.mapped_from: tuple[Any, "Diffusion"] | None = None
        self.name = name or kind
        self._validate()

    @classmethod
    def ode(cls, schedule: Schedule) -> "Diffusion":
        """``e = 0``: the probability-flow ODE."""
        return cls(schedule, sp.Integer(0), kind="ode")

    @classmethod
    def optimal(cls, schedule: Schedule) -> "Diffusion":
        """``e* = sigma^2 |lambda'| / 2`` (:attr:`Schedule.e_star`)."""
        return cls(schedule, schedule.e_star, kind="optimal")

    @classmethod
    def constant(cls, schedule: Schedule, value: Any) -> "Diffusion":
        """``e = value``, a number ``>= 0``."""
        return cls(schedule, sp.sympify(value), kind="constant")

    def to(self, conversion: Any) -> "Diffusion":
        """The coefficient ``E`` of the converted SDE on ``conversion.dst``.

        ``E = c^2 |tau'| e(tau)``; the ODE maps to the ODE and ``e*`` to ``E*`` (those two
        use the proved identities, anything else the map itself).
        """
        if sp.srepr(conversion.src.alpha) != sp.srepr(self.schedule.alpha) or \
                sp.srepr(conversion.src.sigma) != sp.srepr(self.schedule.sigma):
            raise DiffusionError(f"a conversion from {self.schedule.name!r}",
                                 f"a conversion from {conversion.src.name!r}",
                                 "use convert(diffusion.schedule, destination)")
        dst = conversion.dst
        if self.kind == "ode":
            return Diffusion.ode(dst)
        if self.kind == "optimal":
            return Diffusion.optimal(dst)
        mapped = Diffusion(dst, map_diffusion(self.expr, conversion), kind="expression", name=f"{self.name}->{dst.name}")
        mapped.mapped_from = (conversion, self)
        return mapped

    def evaluate(self, tt: Any):
        """``e(t)`` as a torch tensor (dtype and device of ``tt``; float64 for numbers).

        At a point-mass start, where the closed form may read ``0 * inf``, the one-sided
        limit is used.
        """
        return compiler("diffusion")(self, tt)

    def _validate(self) -> None:
        if self.kind in ("ode", "optimal"):
            return  # 0, and sigma^2 |lambda'| / 2 > 0 for every valid schedule
        grid = self.schedule._grid(129)[1:-1]
        fn = sp.lambdify(t, self.expr, modules=[numpy_namespace(self.expr), "numpy"])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.broadcast_to(np.asarray(fn(grid.astype(np.complex128)), dtype=np.complex128), grid.shape)
        bad = ~np.isfinite(values) | (np.abs(values.imag) > 1e-12 * (1 + np.abs(values.real)))
        if bad.any():
            where = grid[bad][0]
            raise DiffusionError(f"a real, finite diffusion coefficient e(t) inside the domain of {self.schedule.name!r}",
                                 f"e({where:.6g}) = {complex(values[bad][0]):.6g}", "check the expression")
        negative = values.real < -1e-12 * (1 + np.max(np.abs(values.real)))
        if negative.any():
            where = grid[negative][0]
            raise DiffusionError(
                f"a diffusion coefficient e(t) >= 0 on the domain of {self.schedule.name!r} "
                "(it is a variance rate: the noise is sqrt(2 e) dW)",
                f"e({where:.6g}) = {values.real[negative][0]:.6g}",
                "use e >= 0, e.g. Diffusion.optimal(schedule) or Diffusion.constant(schedule, 0.5)",
            )

    def __repr__(self) -> str:
        return f"Diffusion({self.schedule.name!r}, {self.kind}, e(t)={self.expr})"


def map_diffusion(expr: sp.Expr, conversion: Any, *, simplify: bool = True) -> sp.Expr:
    """``E(t) = c^2 |tau'| e(tau)`` for ``e = expr`` (in ``t``, source time), in destination ``t``.

    ``|tau'| = d_src d_dst tau'`` (the sign of ``tau'`` is the product of the directions).
    """
    sign = conversion.src.direction * conversion.dst.direction
    if hasattr(conversion, "c_of_tau"):
        mapped = sign * conversion.c_of_tau**2 * conversion.d_tau_of_tau * expr.subs(t, TAU)
        mapped = mapped.subs(TAU, conversion.tau)
    else:
        mapped = sign * conversion.c**2 * conversion.d_tau * expr.subs(t, conversion.tau)
    if simplify:
        mapped = simplify_within(mapped, conversion.check_grid)
    return mapped.subs(s, t)
