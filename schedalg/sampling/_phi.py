"""The exponential-integrator functions ``phi_k`` in float64, stable for small arguments.

``phi_0(z) = e^z`` and ``phi_{k+1}(z) = (phi_k(z) - 1/k!) / z``, so
``phi_1(z) = (e^z - 1)/z``, ``phi_2(z) = (e^z - 1 - z)/z^2``, ... (Hochbruck & Ostermann
2010). Exponential solvers of the data-prediction ODE (DDIM, DPM-Solver++) step with
``h phi_k(-h)``; near ``z = 0`` the defining differences cancel, so the Taylor series
``phi_k(z) = sum_j z^j / (j + k)!`` is used there (proofs/prove_solvers.py checks both).
"""

from __future__ import annotations

import math

__all__ = ["phi", "h_phi"]

_SERIES_BELOW = 0.05
_SERIES_TERMS = 12


def phi(k: int, z: float) -> float:
    """``phi_k(z)`` for ``k >= 1`` and real ``z`` (``z = -inf`` gives 0)."""
    if z == -math.inf:
        return 0.0
    if abs(z) < _SERIES_BELOW:
        return sum(z**j / math.factorial(j + k) for j in range(_SERIES_TERMS))
    value = math.expm1(z) / z  # phi_1
    for order in range(2, k + 1):
        value = (value - 1.0 / math.factorial(order - 1)) / z
    return value


def h_phi(k: int, h: float) -> float:
    """``h phi_k(-h)`` for a log-SNR step ``h > 0`` (``h = inf`` gives 1 for k = 1, else 0)."""
    if h == math.inf:
        return 1.0 if k == 1 else 0.0
    return h * phi(k, -h)
