"""Hypothesis strategies for schedules, times, prediction types, pairs and diffusion coefficients.

hypothesis is optional: it is imported when a strategy is built, with a clear error when
it is missing. Schedules come from a small grammar:

* the library (:data:`schedalg.schedules.LIBRARY`, default parameters and a few others);
* user-style interpolants ``alpha = f(t)``, ``sigma = g(1 - t)`` with ``f``, ``g`` increasing
  from 0 to 1, each a building block (``t^p``, ``sin(pi t/2)``, ``(e^{k t} - 1)/(e^k - 1)``,
  ``log(1 + k t)/log(1 + k)``) or a convex combination of two;
* variance-preserving schedules declared by their log-SNR, ``alpha^2 = sigmoid(lambda(t))``,
  ``sigma^2 = sigmoid(-lambda(t))`` with ``lambda = k (1/2 - t)`` (a sigmoid schedule);
* a library schedule with its time warped by an increasing map of [0, 1] onto itself, or
  both coefficients scaled by a positive constant (same log-SNR, different scale).

Every schedule drawn is valid (``lambda`` strictly monotone); each costs a SymPy
derivation (up to about a second), so tests draw few examples (see the ``thorough``
hypothesis profile in ``conftest.py`` for long runs).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from .._optional import require
from ..symbolic import PREDICTION_KINDS, Diffusion, Schedule, t

__all__ = ["schedules", "library_schedules", "user_schedules", "times", "prediction_kinds", "schedule_pairs",
           "diffusions", "SIGMOID_SLOPES", "LOAD_DEPENDENT"]

#: Library schedules left out by default (none: derivations no longer depend on machine load).
LOAD_DEPENDENT: tuple[str, ...] = ()

#: Slopes ``k`` of the sigmoid schedules drawn by default (12 once got a complex closed-form inverse).
SIGMOID_SLOPES = (2, 4, 8, 12)


def _st():
    require("hypothesis", "the property-test strategies of schedalg.testing")
    from hypothesis import strategies

    return strategies


def _blocks(x: sp.Expr) -> list[sp.Expr]:
    """Increasing maps of [0, 1] onto itself, in ``x``."""
    return [x, x**2, x**3, sp.sqrt(x), sp.sin(sp.pi * x / 2), (sp.exp(2 * x) - 1) / (sp.exp(2) - 1),
            sp.log(1 + 4 * x) / sp.log(5), 1 - (1 - x)**2]


def library_schedules(exclude: tuple[str, ...] = LOAD_DEPENDENT):
    """Schedules of :data:`schedalg.schedules.LIBRARY` (default parameters, plus a few others),
    except the names in ``exclude``."""
    from .. import schedules as lib

    st = _st()
    variants = [st.sampled_from(sorted(set(lib.LIBRARY) - set(exclude))).map(lambda name: lib.LIBRARY[name]()),
                st.sampled_from([1.5, 3.0]).map(lambda n: lib.polynomial_convex(n)),
                st.sampled_from([(0.05, 10.0), (0.1, 5.0)]).map(lambda b: lib.vp_linear(*b)),
                st.sampled_from([(0.02, 20.0), (0.002, 80.0)]).map(lambda s: lib.ve(*s))]
    return st.one_of(*variants)


def _interpolant(f: sp.Expr, g: sp.Expr) -> Schedule:
    return Schedule(alpha=f, sigma=g.subs(t, 1 - t), name=f"user({f}, {g})")


def user_schedules(sigmoid_slopes: tuple[Any, ...] = SIGMOID_SLOPES):
    """User-style schedules from the grammar in the module docstring (all valid)."""
    from .. import schedules as lib

    st = _st()
    block = st.sampled_from(_blocks(t))
    mixed = st.tuples(block, block, st.sampled_from([sp.Rational(1, 4), sp.Rational(1, 2)])).map(
        lambda b: b[2] * b[0] + (1 - b[2]) * b[1])
    increasing = st.one_of(block, mixed)
    interpolants = st.tuples(increasing, increasing).map(lambda fg: _interpolant(*fg))
    sigmoid = st.sampled_from(sigmoid_slopes).map(lambda k: Schedule(
        alpha=sp.sqrt(1 / (1 + sp.exp(-k * (sp.Rational(1, 2) - t)))),
        sigma=sp.sqrt(1 / (1 + sp.exp(k * (sp.Rational(1, 2) - t)))), name=f"sigmoid(k={k})"))
    warps = st.tuples(st.sampled_from(["linear", "vp_linear", "polynomial_convex"]),
                      st.sampled_from(_blocks(t)[1:6])).map(
        lambda nw: _warped(lib.LIBRARY[nw[0]](), nw[1]))
    scaled = st.tuples(st.sampled_from(["linear", "edm", "brownian_bridge"]),
                       st.sampled_from([sp.Rational(1, 2), 3])).map(
        lambda nk: _scaled(lib.LIBRARY[nk[0]](), nk[1]))
    return st.one_of(interpolants, sigmoid, warps, scaled)


def _warped(schedule: Schedule, warp: sp.Expr) -> Schedule:
    return Schedule(alpha=schedule.alpha.subs(t, warp), sigma=schedule.sigma.subs(t, warp),
                    domain=schedule.domain, name=f"{schedule.name}(t -> {warp})")


def _scaled(schedule: Schedule, k: sp.Expr) -> Schedule:
    return Schedule(alpha=k * schedule.alpha, sigma=k * schedule.sigma, domain=schedule.domain,
                    name=f"{k} * {schedule.name}")


def schedules(sigmoid_slopes: tuple[Any, ...] = SIGMOID_SLOPES, exclude: tuple[str, ...] = LOAD_DEPENDENT):
    """Library or user-style schedules (:func:`library_schedules` or :func:`user_schedules`)."""
    return _st().one_of(library_schedules(exclude), user_schedules(sigmoid_slopes))


def times(schedule: Schedule, *, near_ends: bool = True):
    """Floats strictly inside the domain of ``schedule``; with ``near_ends`` also values
    ``10^-k`` (width) from either end, k = 1..12."""
    st = _st()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    inside = st.floats(lo, hi, exclude_min=True, exclude_max=True, allow_nan=False)
    if not near_ends:
        return inside
    width = hi - lo
    near = st.tuples(st.integers(1, 12), st.booleans()).map(
        lambda kb: lo + width * 10.0 ** -kb[0] if kb[1] else hi - width * 10.0 ** -kb[0])
    return st.one_of(inside, near).filter(lambda v: lo < v < hi)


def prediction_kinds():
    """One of :data:`schedalg.PREDICTION_KINDS`."""
    return _st().sampled_from(PREDICTION_KINDS)


def schedule_pairs(sigmoid_slopes: tuple[Any, ...] = SIGMOID_SLOPES, exclude: tuple[str, ...] = LOAD_DEPENDENT):
    """``(src, dst)``: two schedules (either may be user-style) whose log-SNR ranges overlap."""
    st = _st()
    both = st.tuples(schedules(sigmoid_slopes, exclude), schedules(sigmoid_slopes, exclude))

    def overlap(pair: tuple[Schedule, Schedule]) -> bool:
        (lo1, hi1), (lo2, hi2) = pair[0].log_snr_range, pair[1].log_snr_range
        return max(lo1, lo2) < min(hi1, hi2)

    return both.filter(overlap)


def diffusions(schedule: Schedule):
    """Diffusion coefficients ``e(t) >= 0`` on ``schedule``: the ODE, ``e*``, constants, and
    expressions (``k e*``, ``k sigma^2``, ``k alpha sigma``)."""
    st = _st()
    k = st.sampled_from([sp.Rational(1, 10), sp.Rational(1, 2), 2])
    return st.one_of(
        st.just(Diffusion.ode(schedule)), st.just(Diffusion.optimal(schedule)),
        k.map(lambda v: Diffusion.constant(schedule, v)),
        k.map(lambda v: Diffusion(schedule, v * schedule.e_star, name=f"{v} e*")),
        k.map(lambda v: Diffusion(schedule, v * schedule.sigma**2, name=f"{v} sigma^2")),
        k.map(lambda v: Diffusion(schedule, v * schedule.alpha * schedule.sigma, name=f"{v} alpha sigma")))
