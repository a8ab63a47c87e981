"""Proofs of the point-mass start limits (MATH.md section 1).

Local model at the start t = 0: alpha = a1 t + a2 t^2, sigma^2 = L alpha + k t^2 (so
sigma^2/alpha -> L), one-dimensional Gaussian data N(mu, v) with exact posteriors
eps_hat = sigma (y - alpha mu)/(alpha^2 v + sigma^2), x0_hat = mu + alpha v (y - alpha mu)/(...).
At y = 0 and t -> 0:
  x0_hat -> mu = E[x],  eps_hat -> 0,  score = -eps_hat/sigma -> mu/L,
  velocity alpha' x0 + sigma' eps -> a1 mu / 2,  e* = sigma^2 lambda'/2 -> L a1 / 2,
  optimal drift velocity + e* score -> a1 mu = alpha'(0) E[x].
"""

import sympy as sp

import schedalg as sa

t = sp.Symbol("t", positive=True)
a1, big_l, v = sp.symbols("a1 L v", positive=True)
a2, k, mu = sp.symbols("a2 k mu", real=True)

alpha = a1 * t + a2 * t**2
sigma2 = big_l * alpha + k * t**2
sigma = sp.sqrt(sigma2)
y = sp.Integer(0)
den = alpha**2 * v + sigma2
eps_hat = sigma * (y - alpha * mu) / den
x0_hat = mu + alpha * v * (y - alpha * mu) / den
lam_prime = sp.diff(sp.log(alpha**2 / sigma2), t)
e_star = sigma2 * lam_prime / 2


def _limit(expr):
    return sp.limit(sp.simplify(expr), t, 0, "+")


def test_sigma2_over_alpha_limit():
    """sigma^2/alpha -> L."""
    assert sp.simplify(_limit(sigma2 / alpha) - big_l) == 0


def test_posterior_limits():
    """x0_hat -> E[x] = mu and eps_hat -> 0 at y = 0."""
    assert sp.simplify(_limit(x0_hat) - mu) == 0
    assert _limit(eps_hat) == 0


def test_score_limit():
    """score = -eps_hat / sigma -> mu / L."""
    assert sp.simplify(_limit(-eps_hat / sigma) - mu / big_l) == 0


def test_velocity_limit():
    """alpha' x0_hat + sigma' eps_hat -> a1 mu / 2 (the sigma' eps term tends to -a1 mu / 2)."""
    velocity = sp.diff(alpha, t) * x0_hat + sp.diff(sigma, t) * eps_hat
    assert sp.simplify(_limit(velocity) - a1 * mu / 2) == 0


def test_optimal_diffusion_limit():
    """e* = sigma^2 lambda' / 2 -> L a1 / 2: finite, the optimal SDE is regular at the start."""
    assert sp.simplify(_limit(e_star) - big_l * a1 / 2) == 0


def test_optimal_drift_limit():
    """velocity + e* score -> a1 mu = alpha'(0) E[x]."""
    drift = sp.diff(alpha, t) * x0_hat + sp.diff(sigma, t) * eps_hat + e_star * (-eps_hat / sigma)
    assert sp.simplify(_limit(drift) - a1 * mu) == 0


def test_brownian_bridge_values():
    """The Brownian bridge alpha = t, sigma^2 = t (1 - t): L = 1, alpha'(0) = 1, e* = 1/2 everywhere."""
    bridge = sa.schedules.brownian_bridge()
    tt = sa.t
    assert sp.limit(bridge.sigma**2 / bridge.alpha, tt, 0, "+") == 1
    assert sp.simplify(bridge.e_star - sp.Rational(1, 2)) == 0
