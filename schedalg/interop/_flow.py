"""The shifted flow-matching schedule of Stable Diffusion 3 and diffusers' flow schedulers.

Rectified flow written in its noise level ``u``: ``x_u = (1 - u) x0 + u eps``, data at
``u = 0``. "Timestep shifting" (Esser et al. 2024, SD3, eq. 23) reparameterizes the noise
level by

    u = shift(t) = m t / (1 + (m - 1) t),      m = shift > 0,

so uniform steps in ``t`` crowd the steps towards the noise end for ``m > 1``. As a
schedule in ``t``: ``sigma(t) = shift(t)``, ``alpha(t) = 1 - shift(t) = (1 - t)/(1 + (m - 1) t)``
(``m = 1`` is the plain path in ``u``). The shift is applied here, once: a grid uniform in ``t`` gives the
noise levels ``shift(t_i)``, and a network fed ``1000 u`` is fed ``1000 sigma(t)``
(``time_input="noise_level"``), never ``1000 shift(sigma(t))``.
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp

from ..errors import ScheduleError
from ..symbolic import Schedule, t

__all__ = ["flow_match_schedule", "shift_noise_level", "unshift_noise_level"]

_SHIFT = sp.Symbol("shift", positive=True)


def flow_match_schedule(shift: Any = 1.0) -> Schedule:
    """``alpha = 1 - shift(t)``, ``sigma = shift(t)`` on ``[0, 1]``, data at ``t = 0``.

    ``shift`` a positive number (bound) or a SymPy symbol (kept symbolic).
    """
    if not isinstance(shift, sp.Basic):
        if not (isinstance(shift, (int, float)) and math.isfinite(shift) and shift > 0):
            raise ScheduleError("a flow shift > 0", repr(shift), "diffusers' default is shift=1.0; SD3 uses 3.0")
        params = {_SHIFT: shift}
        symbol = _SHIFT
    else:
        params = {shift: None} if isinstance(shift, sp.Symbol) else {}
        symbol = shift
    denominator = 1 + (symbol - 1) * t
    # alpha = 1 - shift(t) written without the cancellation near t = 1 (proofs/prove_models_interop.py)
    return Schedule(alpha=(1 - t) / denominator, sigma=symbol * t / denominator, params=params,
                    name=f"flow_match(shift={shift})")


def shift_noise_level(u: Any, shift: float) -> Any:
    """``shift(u) = m u / (1 + (m - 1) u)`` (numbers, numpy arrays or tensors)."""
    return shift * u / (1 + (shift - 1) * u)


def unshift_noise_level(v: Any, shift: float) -> Any:
    """The inverse map ``u = v / (m - (m - 1) v)`` (so ``shift(unshift(v)) = v``)."""
    return v / (shift - (shift - 1) * v)
