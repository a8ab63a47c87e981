"""Proofs that the prediction-type conversions are exact and invert each other.

For a generic schedule (undefined alpha(t), sigma(t)) and symbolic (x0, eps): each
prediction kind is computed directly; converting it to every other kind with the
derived coefficients must reproduce the direct value, and converting back must give
the original (the conversions form a group).
"""

import itertools

import pytest
import sympy as sp

import schedalg as sa
from schedalg.symbolic import PREDICTION_KINDS, prediction_basis, prediction_conversion
from schedalg.symbolic._symbols import t

GENERIC = sa.Schedule(alpha=sp.Function("alpha")(t), sigma=sp.Function("sigma")(t), name="generic")
X0, EPS = sp.symbols("x0 eps")
XT = GENERIC.alpha * X0 + GENERIC.sigma * EPS


def direct(kind: str) -> sp.Expr:
    a, b = prediction_basis(GENERIC, kind)
    return a * X0 + b * EPS


@pytest.mark.parametrize("src,dst", list(itertools.permutations(PREDICTION_KINDS, 2)))
def test_conversion_is_exact(src, dst):
    """dst = c_x x_t + c_p src for every (x0, eps)."""
    c_x, c_p = prediction_conversion(GENERIC, src, dst)
    assert sp.simplify(c_x * XT + c_p * direct(src) - direct(dst)) == 0


@pytest.mark.parametrize("src,dst", list(itertools.combinations(PREDICTION_KINDS, 2)))
def test_conversion_round_trip(src, dst):
    """Converting src -> dst -> src is the identity."""
    c_x, c_p = prediction_conversion(GENERIC, src, dst)
    d_x, d_p = prediction_conversion(GENERIC, dst, src)
    there = c_x * XT + c_p * direct(src)
    back = d_x * XT + d_p * there
    assert sp.simplify(back - direct(src)) == 0


def test_v_and_velocity_on_variance_preserving():
    """On a VP schedule written in angle (alpha = cos, sigma = sin), velocity = (pi/2) v up to sign."""
    cosine = sa.schedules.cosine()
    velocity = sum(c * v for c, v in zip(prediction_basis(cosine, "velocity"), (X0, EPS)))
    v = sum(c * v for c, v in zip(prediction_basis(cosine, "v"), (X0, EPS)))
    assert sp.simplify(velocity - sp.pi / 2 * v) == 0


def test_score_is_minus_eps_over_sigma():
    """score = grad log p_t = -eps_hat / sigma (Tweedie); here as the basis of 'score'."""
    a, b = prediction_basis(GENERIC, "score")
    assert a == 0 and sp.simplify(b + 1 / GENERIC.sigma) == 0
