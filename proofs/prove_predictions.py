"""Proofs that the prediction-type conversions are exact and invert each other.

For a generic schedule (undefined alpha(t), sigma(t)) and symbolic (x0, eps): each
prediction kind is written here from its definition (x0; eps; v = alpha eps - sigma x0,
Salimans & Ho 2022; velocity = d x_t/dt; score = -eps/sigma, Tweedie); the package's
coefficients (prediction_conversion) must reproduce it from any other kind, converting back
must give the original, and the compiled conversion must equal the symbolic one.
"""

import itertools

import pytest
import sympy as sp

import schedalg as sa
from schedalg.symbolic import PREDICTION_KINDS, prediction_basis, prediction_conversion

t = sa.t

GENERIC = sa.Schedule(alpha=sp.Function("alpha")(t), sigma=sp.Function("sigma")(t), name="generic")
X0, EPS = sp.symbols("x0 eps")
XT = GENERIC.alpha * X0 + GENERIC.sigma * EPS


def direct(kind: str) -> sp.Expr:
    """The definition of each kind (independent of the package's table)."""
    alpha, sigma = GENERIC.alpha, GENERIC.sigma
    return {"x0": X0, "eps": EPS, "v": alpha * EPS - sigma * X0, "velocity": sp.diff(XT, t),
            "score": -EPS / sigma}[kind]


@pytest.mark.parametrize("kind", PREDICTION_KINDS)
def test_basis_is_the_definition(kind):
    """prediction_basis(kind) = (a, b) with a x0 + b eps the definition of the kind."""
    a, b = prediction_basis(GENERIC, kind)
    assert sp.simplify(a * X0 + b * EPS - direct(kind)) == 0


def test_compiled_conversion_is_the_symbolic_one():
    """convert_prediction (torch) returns c_x x + c_p p with the derived (c_x, c_p), at 30 digits,
    on a library schedule, for every pair of kinds."""
    import mpmath
    import torch

    schedule = sa.schedules.polynomial_convex()
    tt = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    x, p = torch.tensor([0.3, -1.1, 2.0], dtype=torch.float64), torch.tensor([1.5, 0.2, -0.7], dtype=torch.float64)
    for src, dst in itertools.permutations(PREDICTION_KINDS, 2):
        got = sa.convert_prediction(schedule, p, x, tt, src, dst)
        fn = sp.lambdify(t, prediction_conversion(schedule, src, dst), "mpmath")
        with mpmath.workdps(30):
            coefficients = [fn(mpmath.mpf(float(v))) for v in tt]
        want = torch.tensor([float(c_x * float(xi) + c_p * float(pi)) for (c_x, c_p), xi, pi in zip(coefficients, x, p)],
                            dtype=torch.float64)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


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
