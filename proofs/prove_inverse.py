"""Proofs that the closed-form inverses the package derives invert its log-SNR.

Starts from what the package computes (``Schedule.inverse_log_snr.expr`` and
``Schedule.log_snr``) and reduces ``lambda(t(lambda)) - lambda`` to 0 symbolically. The
numeric counterpart, on the whole range at 60 digits, is ``tests/test_derivations.py``.
"""

from __future__ import annotations

import pytest
import sympy as sp

import schedalg as sa
from benchmarks._user_schedules import sd3_shift, sigmoid

CASES = {"linear": sa.schedules.linear, "cosine": sa.schedules.cosine, "trigonometric": sa.schedules.trigonometric,
         "edm": sa.schedules.edm, "brownian_bridge": sa.schedules.brownian_bridge, "sigmoid": sigmoid,
         "sd3_shift": lambda: sd3_shift(3)}  # an exact shift: floats would leave 2 log 3 - 2.1972...


@pytest.mark.parametrize("name", sorted(CASES))
def test_inverse_inverts_the_log_snr(name):
    schedule = CASES[name]()
    inverse = schedule.inverse_log_snr
    assert inverse.kind == "symbolic", (name, inverse)
    residual = schedule.log_snr.subs(sa.t, inverse.expr) - sa.lam
    # lambda = log(w), w > 0, runs over every real lambda
    w = sp.Symbol("w", positive=True)
    in_w = sp.expand_log(sp.simplify(residual.subs(sa.lam, sp.log(w))), force=True)
    assert sp.simplify(in_w) == 0, (name, in_w)
