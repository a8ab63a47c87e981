"""Proofs of the point-mass start limits (MATH.md section 1), from the package's own expressions.

Local model at the start t = 0, declared as a package :class:`schedalg.Schedule` with
symbolic parameters: alpha = a1 t + a2 t^2, sigma^2 = L alpha + k t^2 (so sigma^2/alpha -> L);
one-dimensional Gaussian data N(mu, v) with the package's posterior means
(:func:`schedalg.lazy.gaussian_posterior`). The velocity and score are the package's
prediction conversions (x0 -> velocity, x0 -> score) of that x0 prediction, e* the schedule's
derived ``e_star``. At y = 0 and t -> 0:
  x0_hat -> mu = E[x],  eps_hat -> 0,  score -> mu/L,  velocity -> a1 mu / 2,
  e* -> L a1 / 2,  optimal drift velocity + e* score -> a1 mu = alpha'(0) E[x].
The numeric start limits the samplers use (:func:`schedalg.symbolic.point_mass_start`) are
checked against these limits on a bound member of the model.
"""

import sympy as sp

import schedalg as sa
from schedalg.lazy import gaussian_posterior
from schedalg.symbolic import DIRECTION, point_mass_start, prediction_conversion

t = sa.t
a1, big_l, v = sp.symbols("a1 L v", positive=True)
a2, k, mu = sp.symbols("a2 k mu", real=True)
LOCAL = sa.Schedule(alpha=a1 * t + a2 * t**2, sigma=sp.sqrt(big_l * (a1 * t + a2 * t**2) + k * t**2),
                    params={a1: None, a2: None, big_l: None, k: None}, name="local")
Y = sp.Integer(0)
X0_HAT, EPS_HAT = gaussian_posterior(LOCAL.alpha, LOCAL.sigma, Y, mu, v)


def _apply(kind):
    """The package's conversion of the x0 prediction X0_HAT into ``kind`` at y = 0."""
    c_x, c_p = prediction_conversion(LOCAL, "x0", kind)
    return c_x * Y + c_p * X0_HAT


def _limit(expr):
    return sp.limit(sp.simplify(expr.subs(DIRECTION, 1)), t, 0, "+")


def test_sigma2_over_alpha_limit():
    """sigma^2/alpha -> L."""
    assert sp.simplify(_limit(LOCAL.sigma**2 / LOCAL.alpha) - big_l) == 0


def test_posterior_limits():
    """x0_hat -> E[x] = mu and eps_hat -> 0 at y = 0; the package's x0 -> eps conversion agrees."""
    assert sp.simplify(_limit(X0_HAT) - mu) == 0
    assert _limit(EPS_HAT) == 0
    assert _limit(_apply("eps")) == 0


def test_score_limit():
    """score (package: x0 -> score) -> mu / L."""
    assert sp.simplify(_limit(_apply("score")) - mu / big_l) == 0


def test_velocity_limit():
    """velocity (package: x0 -> velocity) -> a1 mu / 2 (the sigma' eps term tends to -a1 mu / 2):
    the value PreparedConverted.velocity uses at a point-mass start."""
    assert sp.simplify(_limit(_apply("velocity")) - a1 * mu / 2) == 0


def test_optimal_diffusion_limit():
    """The schedule's e* -> L a1 / 2: finite, the optimal SDE is regular at the start."""
    assert LOCAL.direction in (1, DIRECTION)
    assert sp.simplify(_limit(LOCAL.e_star) - big_l * a1 / 2) == 0


def test_optimal_drift_limit():
    """velocity + e* score -> a1 mu = alpha'(0) E[x] (all three from the package)."""
    drift = _apply("velocity") + LOCAL.e_star * _apply("score")
    assert sp.simplify(_limit(drift) - a1 * mu) == 0


def test_numeric_start_limits_match():
    """point_mass_start on a bound member (a1 = 2, a2 = -1, L = 1/2, k = -1/2: alpha = 2t - t^2,
    sigma^2 = t(1 - t), data at t = 1) gives alpha'(0) = a1, sigma^2/alpha -> L, e* -> L a1/2."""
    member = sa.Schedule(alpha=2 * t - t**2, sigma=sp.sqrt(t * (1 - t)), name="member")
    start = point_mass_start(member)
    assert abs(start.d_alpha - 2) < 1e-6 and abs(start.sigma2_over_alpha - 0.5) < 1e-6
    assert abs(start.e_star - 0.5 * 2 / 2) < 1e-6


def test_brownian_bridge_values():
    """The Brownian bridge alpha = t, sigma^2 = t (1 - t): L = 1, alpha'(0) = 1, e* = 1/2 everywhere."""
    bridge = sa.schedules.brownian_bridge()
    assert sp.limit(bridge.sigma**2 / bridge.alpha, t, 0, "+") == 1
    assert sp.simplify(bridge.e_star - sp.Rational(1, 2)) == 0


def test_the_sampler_start_values_are_these_limits():
    """What the samplers evaluate at a point-mass start (PreparedConverted.velocity, .score and
    .drift at y = 0, linear -> Brownian bridge, Gaussian data N(mu, v)) equals the limits proved
    above with a1 = 1, L = 1 (bound numerically: these are torch values)."""
    import torch

    from schedalg.denoisers import GaussianDenoiser
    from schedalg.models import ConvertedDenoiser

    bridge = sa.schedules.brownian_bridge()
    mean, var = 0.7, 0.3
    prepared = ConvertedDenoiser(GaussianDenoiser(sa.schedules.linear(), mean, var), bridge).prepare(
        torch.tensor([0.0, 0.5], dtype=torch.float64), sa.Diffusion.optimal(bridge))
    y = torch.zeros(2, 1, dtype=torch.float64)
    limits = {a1: 1, big_l: 1, mu: mean}
    expected = {"velocity": a1 * mu / 2, "score": mu / big_l, "drift": a1 * mu}
    for name, value in expected.items():
        got = getattr(prepared, name)(y, 0)
        torch.testing.assert_close(got, torch.full_like(got, float(value.subs(limits))), rtol=1e-12, atol=1e-12)
