"""The end-value rule's shortcuts (issue 11, item 4: cold derivations under a second).

Sums, products and rational powers take their end values from their parts where the parts decide them, and the
log-SNR from alpha and sigma where one of them vanishes; everything else still goes to SymPy's
``limit``. These tests check that the shortcuts give the limit, and that indeterminate forms
(``0 * inf``, ``inf - inf``) are not decided by them.
"""

from __future__ import annotations

import math
import warnings

import pytest
import sympy as sp

import schedalg as sa
from schedalg.symbolic import end_values, value_at_end

from benchmarks._user_schedules import USER

t = sa.t

_CASES = [
    sp.sin(t) / t,                     # 0 * inf: the limit (1), not a shortcut
    1 / t - 1 / sp.sin(t),             # inf - inf: 0
    sp.exp(1 / t) * t,                 # inf * 0: inf
    t * sp.log(t),                     # 0 * (-inf): 0
    sp.log(t) / sp.sqrt(t),            # (-inf) * inf: -inf
    1 / t + sp.cos(t),                 # inf + finite: inf
    -(1 + t) * sp.log(t) - 1 / t,      # inf - inf with products inside: -inf
    (sp.exp(t) - 1) / t**2,            # 0 * inf: inf
    1 / sp.sqrt(1 - sp.cos(t)),        # a real even root of a base tending to 0, negative power: inf
    (1 / t + 1 / sp.sin(t)) ** sp.Rational(-1, 3),  # an infinite base, negative power: 0
    1 / (sp.cos(t) - 1),               # an odd negative power of a base tending to 0 (from below): -inf
]


@pytest.mark.parametrize("expr", _CASES, ids=[str(c) for c in _CASES])
def test_end_values_by_parts_are_the_limit(expr):
    expected = float(sp.limit(expr, t, 0, "+"))
    assert value_at_end(expr, sp.Integer(0), "+") == expected


@pytest.mark.parametrize("name", ["vp_cosine", "vp_linear"])
def test_schedule_derivatives_at_the_ends_are_the_limits(name):
    """The quantities whose end values come by parts (derivatives that blow up at an end) against
    SymPy's limit of the whole expression."""
    schedule = sa.schedules.LIBRARY[name]()
    for quantity in ("d_log_snr", "e_star"):
        expr = getattr(schedule, quantity)
        got = end_values(schedule, quantity)
        for index, side in ((0, "+"), (1, "-")):
            expected = float(sp.limit(expr, t, schedule.domain[index], side))
            assert got[index] == pytest.approx(expected, rel=1e-12), (quantity, index)


def test_log_snr_ends_agree_with_alpha_and_sigma():
    """Where sigma (alpha) has the end value 0 and alpha (sigma) a finite nonzero one, the log-SNR
    is +inf (-inf) there, for every library and user schedule."""
    for make in list(sa.schedules.LIBRARY.values()) + list(USER.values()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schedule = make()
        alpha, sigma, log_snr = (end_values(schedule, q) for q in ("alpha", "sigma", "log_snr"))
        for index in (0, 1):
            if sigma[index] == 0 and alpha[index] != 0 and math.isfinite(alpha[index]):
                assert log_snr[index] == math.inf, (schedule.name, index)
            if alpha[index] == 0 and sigma[index] != 0 and math.isfinite(sigma[index]):
                assert log_snr[index] == -math.inf, (schedule.name, index)
