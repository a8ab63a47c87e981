"""Point-mass schedules: the base measure collapses to a point (Damsholt et al. 2026).

A schedule is a *point-mass schedule* when ``alpha = sigma = 0`` at its noise end
``t0``: every ``x_t`` starts at 0. The conditions used by schedalg (MATH.md section 1):

1. ``alpha = sigma = 0`` at ``t0``, ``alpha, sigma > 0`` inside, ``lambda`` strictly
   monotone (the last two are checked by :class:`Schedule` itself);
2. ``L = lim sigma^2 / alpha`` is finite and positive at ``t0`` (so ``e*`` stays finite);
3. ``a1 = alpha'(t0)`` (own time) is finite.

Start limits at ``y = 0`` (proved in ``proofs/prove_pointmass.py``), with ``x0_hat = E[x]``:

    eps_hat -> 0,     score -> E[x] / L,     velocity -> a1 E[x] / 2,
    e*(t0) = L |a1| / 2,  so the optimal-SDE drift (own time) -> a1 E[x] = alpha'(t0) E[x].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..errors import ScheduleError
from ._ends import end_values
from ._schedule import Schedule
from ._symbols import t

__all__ = ["PointMassError", "PointMassStart", "point_mass_start", "start_limit"]


class PointMassError(ScheduleError):
    """A schedule used as a point-mass schedule that violates one of its conditions."""


@dataclass(frozen=True)
class PointMassStart:
    """The limits of a point-mass schedule at its start ``t0`` (own time).

    ``d_alpha = alpha'(t0)``, ``sigma2_over_alpha = L = lim sigma^2/alpha``,
    ``e_star = lim e*(t) = L |alpha'(t0)| / 2``, ``direction`` of the schedule.
    """

    t0: float
    d_alpha: float
    sigma2_over_alpha: float
    e_star: float
    direction: int


def start_limit(schedule: Schedule, expr: sp.Expr, point: float | None = None) -> float:
    """``expr`` (in ``t``) at the noise end from inside the domain, by the one end-value rule
    (:func:`schedalg.symbolic._ends.end_values`); ``point`` another end of the domain."""
    t0 = float(schedule.t_noise) if point is None else point
    lo, hi = (float(v) for v in schedule.domain)
    if t0 not in (lo, hi):
        raise ValueError(f"start_limit at an end of the domain ({lo!r} or {hi!r}); got {t0!r}")
    return end_values(schedule, expr)[0 if t0 == lo else 1]


def point_mass_start(schedule: Schedule) -> PointMassStart:
    """Check the point-mass conditions of ``schedule`` and return its start limits.

    Raises :class:`PointMassError` naming the condition that fails.
    """
    schedule.require_bound("check it as a point-mass schedule")
    if not schedule.is_point_mass:
        key = "hi" if schedule.direction < 0 else "lo"
        a, sg = schedule._end_values[key]
        raise PointMassError(
            f"alpha = sigma = 0 at the noise end t = {float(schedule.t_noise):.6g} of {schedule.name!r}",
            f"alpha = {a:.6g}, sigma = {sg:.6g} there",
            "use a schedule whose alpha and sigma both vanish at the noise end, e.g. "
            "sa.schedules.brownian_bridge()",
        )
    ratio = start_limit(schedule, schedule.sigma**2 / schedule.alpha)
    if not np.isfinite(ratio) or ratio <= 0:
        raise PointMassError(
            f"a finite positive limit of sigma^2/alpha at the start of {schedule.name!r} "
            "(otherwise the optimal diffusion e* diverges there)",
            f"lim sigma^2/alpha = {ratio}",
            "make sigma^2 vanish like alpha at the start, e.g. sigma = sqrt(alpha (1 - alpha))",
        )
    d_alpha = start_limit(schedule, schedule.d_alpha)
    if not np.isfinite(d_alpha):
        raise PointMassError(
            f"a finite alpha'(t) at the start of {schedule.name!r}",
            f"alpha' -> {d_alpha}",
            "use an alpha that starts linearly (or faster), e.g. alpha = t",
        )
    return PointMassStart(t0=float(schedule.t_noise), d_alpha=d_alpha, sigma2_over_alpha=ratio,
                          e_star=ratio * abs(d_alpha) / 2, direction=schedule.direction)
