"""The standard schedule families, each a few lines on top of :class:`~schedalg.Schedule`.

Each function returns a :class:`Schedule` in its paper's own time direction. Numbers
bind a parameter; SymPy symbols keep it symbolic (for proofs and derivations).
"""

from __future__ import annotations

from typing import Any, Callable

import sympy as sp

from ..symbolic import Schedule, t

__all__ = ["linear", "trigonometric", "cosine", "vp_linear", "vp_cosine", "sub_vp", "ve", "edm",
           "polynomial_convex", "brownian_bridge", "LIBRARY"]


def _params(**values: Any) -> tuple[dict[sp.Symbol, Any], dict[str, sp.Expr]]:
    """Symbols for the named parameters, and the values to bind (None for symbolic ones)."""
    symbols, exprs = {}, {}
    for name, value in values.items():
        if isinstance(value, sp.Symbol):
            symbols[value] = None
            exprs[name] = value
        else:
            symbol = sp.Symbol(name, positive=True)
            symbols[symbol] = value
            exprs[name] = symbol
    return symbols, exprs


def linear() -> Schedule:
    """Linear / rectified-flow path ``x_t = t x0 + (1 - t) eps``, data at ``t = 1``.

    Lipman et al. 2023 (flow matching, CondOT path); Liu et al. 2023 (rectified flow).
    """
    return Schedule(alpha=t, sigma=1 - t, name="linear")


def trigonometric() -> Schedule:
    """Trigonometric interpolant ``alpha = sin(pi t/2)``, ``sigma = cos(pi t/2)``, data at ``t = 1``.

    Albergo & Vanden-Eijnden 2023 (stochastic interpolants); variance preserving.
    """
    return Schedule(alpha=sp.sin(sp.pi * t / 2), sigma=sp.cos(sp.pi * t / 2), name="trigonometric")


def cosine() -> Schedule:
    """Cosine schedule ``alpha = cos(pi t/2)``, ``sigma = sin(pi t/2)``, data at ``t = 0``.

    The continuous-time cosine schedule of Nichol & Dhariwal 2021 without offset, as
    used in diffusion papers (time runs data -> noise).
    """
    return Schedule(alpha=sp.cos(sp.pi * t / 2), sigma=sp.sin(sp.pi * t / 2), name="cosine")


def vp_linear(beta_min: Any = 0.1, beta_max: Any = 20.0) -> Schedule:
    """Variance-preserving SDE with linear ``beta(t)`` (continuous DDPM), data at ``t = 0``.

    Song et al. 2021: ``alpha = exp(-int_0^t beta / 2)``, ``sigma = sqrt(1 - alpha^2)``,
    ``beta(t) = beta_min + t (beta_max - beta_min)``.
    """
    params, p = _params(beta_min=beta_min, beta_max=beta_max)
    integral = p["beta_min"] * t / 2 + (p["beta_max"] - p["beta_min"]) * t**2 / 4
    alpha = sp.exp(-integral)
    return Schedule(alpha=alpha, sigma=sp.sqrt(1 - sp.exp(-2 * integral)), params=params, name="vp_linear")


def vp_cosine(s: Any = 0.008) -> Schedule:
    """Improved-DDPM cosine schedule, data at ``t = 0`` (Nichol & Dhariwal 2021).

    ``alpha = cos(pi/2 (t + s)/(1 + s)) / cos(pi/2 s/(1 + s))``, ``sigma = sqrt(1 - alpha^2)``;
    ``alpha = 0`` at ``t = 1`` (the continuous form, without the discrete beta clipping).
    """
    # a decimal offset as the exact rational it denotes (0.008 -> 1/125): with a float, the
    # angle at t = 1 is pi/2 only to 15 digits and alpha changes sign just before t = 1
    params, p = _params(s=sp.nsimplify(s, rational=True) if isinstance(s, (float, sp.Float)) else s)
    # every angle is pi times one factor, so that SymPy does not shift a rational multiple of
    # pi out of an argument (sin(x - pi/2) -> -cos(x)), which puts log(-1) into the log-SNR
    angle = sp.pi * ((t + p["s"]) / (2 * (1 + p["s"])))
    offset = sp.pi * (p["s"] / (2 * (1 + p["s"])))
    alpha = sp.cos(angle) / sp.cos(offset)
    # sqrt(1 - alpha^2) as a product (cos^2 c - cos^2 x = sin(x - c) sin(x + c)), exactly 0 at
    # t = 0 in floating point; the equality is proved in proofs/prove_schedule.py
    below = sp.pi * (t / (2 * (1 + p["s"])))  # angle - offset
    above = sp.pi * ((t + 2 * p["s"]) / (2 * (1 + p["s"])))  # angle + offset
    sigma = sp.sqrt(sp.sin(below) * sp.sin(above)) / sp.cos(offset)
    return Schedule(alpha=alpha, sigma=sigma, params=params, name="vp_cosine")


def sub_vp(beta_min: Any = 0.1, beta_max: Any = 20.0) -> Schedule:
    """Sub-VP SDE (Song et al. 2021): VP's ``alpha``, ``sigma = 1 - alpha^2``, data at ``t = 0``."""
    params, p = _params(beta_min=beta_min, beta_max=beta_max)
    integral = p["beta_min"] * t / 2 + (p["beta_max"] - p["beta_min"]) * t**2 / 4
    return Schedule(alpha=sp.exp(-integral), sigma=1 - sp.exp(-2 * integral), params=params, name="sub_vp")


def ve(sigma_min: Any = 0.01, sigma_max: Any = 50.0) -> Schedule:
    """Variance-exploding SDE with geometric noise (Song et al. 2021), data at ``t = 0``.

    ``alpha = 1``, ``sigma = sigma_min (sigma_max / sigma_min)^t``; truncated at
    ``sigma_min`` (it does not reach ``sigma = 0``: :attr:`Schedule.reaches_data` is False).
    """
    params, p = _params(sigma_min=sigma_min, sigma_max=sigma_max)
    sigma = p["sigma_min"] * (p["sigma_max"] / p["sigma_min"]) ** t
    return Schedule(alpha=sp.Integer(1), sigma=sigma, params=params, name="ve")


def edm(sigma_max: Any = 80.0, sigma_min: Any = 0) -> Schedule:
    """EDM (Karras et al. 2022): ``alpha = 1``, ``sigma = t`` on ``[sigma_min, sigma_max]``, data at ``t = 0``.

    ``sigma_min = 0`` (default) reaches the data; ``sigma_min > 0`` declares the model's
    truncated span (EDM's networks: ``edm(sigma_max=80.0, sigma_min=0.002)``), where
    samplers start at ``sigma_max * noise`` and return ``x0 + sigma_min eps``-distributed states.
    """
    if isinstance(sigma_min, (int, float)) and sigma_min == 0:
        params, p = _params(sigma_max=sigma_max)
        return Schedule(alpha=sp.Integer(1), sigma=t, domain=(0, p["sigma_max"]), params=params, name="edm")
    params, p = _params(sigma_max=sigma_max, sigma_min=sigma_min)
    return Schedule(alpha=sp.Integer(1), sigma=t, domain=(p["sigma_min"], p["sigma_max"]), params=params,
                    name="edm", truncated=True)


def polynomial_convex(n: Any = 2) -> Schedule:
    """Polynomial convex path ``alpha = t^n``, ``sigma = 1 - t^n``, data at ``t = 1``.

    The polynomial convex scheduler of the ``flow_matching`` library (Lipman et al. 2024).
    """
    params, p = _params(n=n)
    return Schedule(alpha=t ** p["n"], sigma=1 - t ** p["n"], params=params, name="polynomial_convex")


def brownian_bridge() -> Schedule:
    """Brownian-bridge point-mass schedule ``alpha = t``, ``sigma = sqrt(t (1 - t))``, data at ``t = 1``.

    ``alpha = sigma = 0`` at ``t = 0``: the base measure is a point mass at 0. It is the
    lazy schedule of the optimal SDE for standardized Gaussian data (Damsholt et al. 2026).
    """
    return Schedule(alpha=t, sigma=sp.sqrt(t * (1 - t)), name="brownian_bridge")


#: Name -> constructor (default parameters) of every analytic library schedule.
LIBRARY: dict[str, Callable[[], Schedule]] = {
    f.__name__: f
    for f in (linear, trigonometric, cosine, vp_linear, vp_cosine, sub_vp, ve, edm, polynomial_convex,
              brownian_bridge)
}
