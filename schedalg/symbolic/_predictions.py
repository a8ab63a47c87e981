"""What a network predicts, as linear combinations of (x0, eps).

With ``x_t = alpha x0 + sigma eps`` every supported target is ``a(t) x0 + b(t) eps``:

=========  ===========================  ================================
kind       a                            b
=========  ===========================  ================================
x0         1                            0
eps        0                            1
v          -sigma                       alpha     (Salimans & Ho 2022)
velocity   alpha'                       sigma'    (d x_t / dt, own t)
score      0                            -1/sigma  (grad log p_t)
=========  ===========================  ================================

Given ``x_t`` and one prediction, the pair ``(x0, eps)`` solves a 2x2 linear system,
so any prediction converts into any other: ``dst = c_x(t) x_t + c_p(t) src``. The
coefficients are derived here by SymPy for any schedule (proved in
``proofs/test_predictions.py``).
"""

from __future__ import annotations

import sympy as sp

from ..errors import PredictionError

__all__ = ["PREDICTION_KINDS", "prediction_basis", "prediction_conversion", "check_prediction_kind"]

PREDICTION_KINDS = ("x0", "eps", "v", "velocity", "score")


def check_prediction_kind(kind: str) -> str:
    """Return ``kind`` if it is a known prediction type, else raise :class:`PredictionError`."""
    if kind not in PREDICTION_KINDS:
        raise PredictionError(
            f"a prediction type, one of {PREDICTION_KINDS}",
            repr(kind),
            "diffusers' 'epsilon' is 'eps', 'sample' is 'x0', 'v_prediction' is 'v', "
            "'flow_prediction' is 'velocity'",
        )
    return kind


def prediction_basis(schedule, kind: str) -> tuple[sp.Expr, sp.Expr]:
    """``(a, b)`` with ``prediction = a * x0 + b * eps`` under ``schedule``."""
    check_prediction_kind(kind)
    if kind == "x0":
        return sp.Integer(1), sp.Integer(0)
    if kind == "eps":
        return sp.Integer(0), sp.Integer(1)
    if kind == "v":
        return -schedule.sigma, schedule.alpha
    if kind == "velocity":
        return schedule.d_alpha, schedule.d_sigma
    return sp.Integer(0), -1 / schedule.sigma


def prediction_conversion(schedule, src: str, dst: str) -> tuple[sp.Expr, sp.Expr]:
    """``(c_x, c_p)`` with ``dst = c_x * x_t + c_p * src`` for every ``x_t``.

    Derived by inverting ``[[alpha, sigma], [a_src, b_src]]``; the determinant
    ``alpha b_src - sigma a_src`` is nonzero inside the domain for every kind.
    """
    check_prediction_kind(src)
    check_prediction_kind(dst)
    if src == dst:
        return sp.Integer(0), sp.Integer(1)
    a_src, b_src = prediction_basis(schedule, src)
    a_dst, b_dst = prediction_basis(schedule, dst)
    # Cramer's rule on [[alpha, sigma], [a_src, b_src]]; no simplification here (it can
    # take seconds on trigonometric schedules): the compile layer shares subexpressions
    det = schedule.alpha * b_src - schedule.sigma * a_src
    c_x = (a_dst * b_src - b_dst * a_src) / det
    c_p = (b_dst * schedule.alpha - a_dst * schedule.sigma) / det
    return c_x, c_p
