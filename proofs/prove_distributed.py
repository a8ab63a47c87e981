"""Symbolic proof of the identity behind schedalg.denoisers' sharded mixture denoisers.

Each rank ``r`` holds components ``I_r`` and reports ``(M_r, S_r, Y_r)`` with
``S_r = sum_{i in I_r} exp(l_i - M_r)`` and ``Y_r = sum_{i in I_r} exp(l_i - M_r) y_i``.
The package rescales every part to a common ``M`` with
:func:`schedalg.denoisers.combine_log_sum_exp` and sums; the claim is that the ratio is the
softmax-weighted mean over all components, for ANY reference values ``M_r`` and ``M``
(so using the maxima, as the package does for overflow safety, changes nothing exact).
"""

from __future__ import annotations

import sympy as sp

from schedalg.denoisers import combine_log_sum_exp


def test_rescaled_parts_sum_to_the_softmax_mean():
    logits = sp.symbols("l1:6", real=True)
    points = sp.symbols("y1:6", real=True)
    parts = [(0, 1), (2,), (3, 4)]  # uneven, as 5 components on 3 ranks
    global_max = sp.Symbol("M", real=True)
    total, weighted = sp.Integer(0), sp.Integer(0)
    for r, part in enumerate(parts):
        local_max = sp.Symbol(f"M_{r}", real=True)
        local_sum = sum(sp.exp(logits[i] - local_max) for i in part)
        local_weighted = sum(sp.exp(logits[i] - local_max) * points[i] for i in part)
        s, y = combine_log_sum_exp(local_max, local_sum, local_weighted, global_max, exp=sp.exp)
        total, weighted = total + s, weighted + y
    softmax_mean = sum(sp.exp(l) * y for l, y in zip(logits, points)) / sum(sp.exp(l) for l in logits)
    assert sp.simplify(sp.powsimp(sp.expand(weighted / total - softmax_mean), combine="exp")) == 0
    # the parts' rescaled sums are the global sum relative to M (not only the ratio)
    assert sp.simplify(sp.powsimp(sp.expand(total - sum(sp.exp(l - global_max) for l in logits)))) == 0
