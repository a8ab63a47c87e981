"""Proofs of the identities behind schedalg.denoisers (the exact mixture and optimal denoisers).

Setting: ``x_t = alpha x0 + sigma eps`` with ``x0 ~ sum_i w_i N(y_i, v)`` (one coordinate
suffices: the components are isotropic, so every identity holds coordinate-wise with
the squared distance summed), ``c^2 = alpha^2 v + sigma^2``.

Each proof reduces the paper's identity to 0 with SymPy and then checks that what the
package computes (:class:`schedalg.denoisers.GaussianMixtureDenoiser`,
:class:`schedalg.denoisers.OptimalDenoiser`, float64 torch code) equals the proved formula,
evaluated at 30 digits at the same numbers.
"""

from __future__ import annotations

import mpmath
import sympy as sp
import torch

import schedalg as sa
from schedalg.denoisers import GaussianMixtureDenoiser, OptimalDenoiser

a, s, v = sp.symbols("alpha sigma v", positive=True)
x, x0, y, y1, y2, w1, w2 = sp.symbols("x x0 y y1 y2 w1 w2", real=True)
c2 = a**2 * v + s**2


def _component_posterior_mean(y_: sp.Expr) -> sp.Expr:
    return y_ + a * v * (x - a * y_) / c2


#: numbers the package is evaluated at (two components, a state per row)
NUMBERS = {a: sp.Rational(3, 5), s: sp.Rational(4, 5), v: sp.Rational(1, 10), y1: sp.Rational(-3, 2),
           y2: sp.Rational(1, 1), w1: sp.Rational(3, 10), w2: sp.Rational(7, 10)}
STATES = (-1.3, -0.2, 0.4, 1.1)


def _package(means=(-1.5, 1.0), weights=(0.3, 0.7), variance=0.1, alpha=0.6, sigma=0.8, direct=False):
    """The package's (x0_hat, eps_hat) for the mixture at STATES."""
    den = GaussianMixtureDenoiser(sa.schedules.linear(), torch.tensor(means, dtype=torch.float64).reshape(-1, 1),
                                  variance=variance, weights=torch.tensor(weights, dtype=torch.float64), direct=direct)
    states = torch.tensor(STATES, dtype=torch.float64).reshape(-1, 1)
    x0_hat, eps_hat = den.denoise(states, torch.tensor(alpha, dtype=torch.float64),
                                  torch.tensor(sigma, dtype=torch.float64))
    return x0_hat.reshape(-1), eps_hat.reshape(-1)


def _at_states(expr: sp.Expr, numbers=None) -> torch.Tensor:
    """``expr`` (in x) at STATES, 30 digits, with NUMBERS substituted."""
    fn = sp.lambdify(x, expr.subs(numbers or NUMBERS), "mpmath")
    with mpmath.workdps(30):
        return torch.tensor([float(fn(mpmath.mpf(state))) for state in STATES], dtype=torch.float64)


def _close(got, want):
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


def test_component_posterior_mean_is_the_posterior_mode():
    """For one component, ``x0_hat = y + alpha v (x - alpha y)/c^2`` maximises
    ``log N(x0; y, v) + log N(x; alpha x0, sigma^2)`` (a Gaussian posterior: mean = mode)."""
    log_post = -(x0 - y) ** 2 / (2 * v) - (x - a * x0) ** 2 / (2 * s**2)
    stationary = sp.solve(sp.diff(log_post, x0), x0)
    assert len(stationary) == 1
    assert sp.simplify(stationary[0] - _component_posterior_mean(y)) == 0
    assert sp.simplify(sp.diff(log_post, x0, 2)) != 0  # strictly concave: unique mode
    got, _ = _package(means=(1.0,), weights=(1.0,))
    _close(got, _at_states(stationary[0].subs(y, y2)))


def test_x0_and_eps_decompose_the_state():
    """``alpha x0_hat + sigma eps_hat = x`` with ``x0_hat = m + alpha v (x - alpha m)/c^2``,
    ``eps_hat = sigma (x - alpha m)/c^2``, for any responsibility mean ``m``."""
    m = sp.Symbol("m", real=True)
    x0_hat = m + a * v * (x - a * m) / c2
    eps_hat = s * (x - a * m) / c2
    assert sp.simplify(a * x0_hat + s * eps_hat - x) == 0
    x0_pkg, eps_pkg = _package()
    _close(0.6 * x0_pkg + 0.8 * eps_pkg, torch.tensor(STATES, dtype=torch.float64))


def test_mixture_posterior_mean_is_responsibility_weighted():
    """``sum_i r_i (y_i + alpha v (x - alpha y_i)/c^2) = m + alpha v (x - alpha m)/c^2``
    with ``m = sum_i r_i y_i`` (linearity in ``y_i``, responsibilities summing to 1)."""
    r1 = sp.Symbol("r1", positive=True)
    r2 = 1 - r1
    lhs = r1 * _component_posterior_mean(y1) + r2 * _component_posterior_mean(y2)
    m = r1 * y1 + r2 * y2
    assert sp.simplify(lhs - (m + a * v * (x - a * m) / c2)) == 0
    # the package's eps_hat is sigma (x - alpha m)/c^2 with m from Bayes' responsibilities
    k1, k2 = (w * sp.exp(-(x - a * yy) ** 2 / (2 * c2)) for w, yy in ((w1, y1), (w2, y2)))
    m_bayes = (k1 * y1 + k2 * y2) / (k1 + k2)
    _, eps_pkg = _package()
    _close(eps_pkg, _at_states(s * (x - a * m_bayes) / c2))


def test_tweedie_for_the_mixture():
    """``E[x0 | x] = (x + sigma^2 d/dx log p(x)) / alpha`` where
    ``p = w1 N(x; alpha y1, c^2) + w2 N(x; alpha y2, c^2)``, with ``E[x0|x]`` the
    responsibility-weighted component means (so the streamed formula is Bayes' rule)."""
    k1 = w1 * sp.exp(-(x - a * y1) ** 2 / (2 * c2))
    k2 = w2 * sp.exp(-(x - a * y2) ** 2 / (2 * c2))
    p = k1 + k2
    r1, r2 = k1 / p, k2 / p
    posterior = r1 * _component_posterior_mean(y1) + r2 * _component_posterior_mean(y2)
    tweedie = (x + s**2 * sp.diff(sp.log(p), x)) / a
    assert sp.simplify(sp.together(posterior - tweedie)) == 0
    x0_pkg, _ = _package()
    _close(x0_pkg, _at_states(tweedie))


def test_optimal_denoiser_is_a_mean_shift_step():
    """v = 0, EDM view (alpha = 1): ``D*(x; s) = x + s^2 d/dx log p_s(x)`` equals the
    Gaussian mean-shift update ``sum_i K_i y_i / sum_i K_i`` with ``K_i = exp(-(x-y_i)^2/(2 s^2))``."""
    k1 = sp.exp(-(x - y1) ** 2 / (2 * s**2))
    k2 = sp.exp(-(x - y2) ** 2 / (2 * s**2))
    mean_shift = (k1 * y1 + k2 * y2) / (k1 + k2)
    denoiser = x + s**2 * sp.diff(sp.log(k1 + k2), x)
    assert sp.simplify(sp.together(denoiser - mean_shift)) == 0
    data = torch.tensor([[-1.5], [1.0]], dtype=torch.float64)
    states = torch.tensor(STATES, dtype=torch.float64).reshape(-1, 1)
    got = OptimalDenoiser(sa.schedules.edm(), data).edm_denoiser(states, torch.tensor(0.8, dtype=torch.float64))
    _close(got.reshape(-1), _at_states(mean_shift))


def test_logits_without_the_common_norm():
    """``-|x - alpha y_i|^2/(2c^2) = (alpha <x,y_i> - alpha^2 |y_i|^2/2)/c^2 - |x|^2/(2c^2)``:
    the dropped term does not depend on ``i``, so the softmax is unchanged (3 coordinates)."""
    xs = sp.symbols("x_1:4", real=True)
    ys = sp.symbols("y_1:4", real=True)
    full = -sum((xi - a * yi) ** 2 for xi, yi in zip(xs, ys)) / (2 * c2)
    reduced = (a * sum(xi * yi for xi, yi in zip(xs, ys)) - a**2 * sum(yi**2 for yi in ys) / 2) / c2
    common = -sum(xi**2 for xi in xs) / (2 * c2)
    assert sp.simplify(full - reduced - common) == 0
    assert not (common.free_symbols & set(ys))
    # the package's reduced-logit path equals the direct-difference path (the full logits)
    for sigma in (0.8, 1e-3):
        reduced_pkg, direct_pkg = _package(sigma=sigma), _package(sigma=sigma, direct=True)
        _close(reduced_pkg[0], direct_pkg[0])


def test_edm_view_invariance():
    """The logit and both predictions at ``(alpha, sigma, x)`` equal those at
    ``(1, sigma/alpha, x/alpha)``: a mixture denoiser serves every schedule via the EDM view."""
    def parts(alpha, sigma, state):
        cc = alpha**2 * v + sigma**2
        return (-(state - alpha * y) ** 2 / (2 * cc),
                _component_posterior_mean(y).subs({a: alpha, s: sigma, x: state}, simultaneous=True),
                sigma * (state - alpha * y) / cc)

    lhs = parts(a, s, x)
    rhs = parts(sp.Integer(1), s / a, x / a)
    assert sp.simplify(lhs[0] - rhs[0]) == 0
    assert sp.simplify(lhs[1] - rhs[1]) == 0
    # eps_hat is the same random variable's estimate in both views
    assert sp.simplify(lhs[2] - rhs[2]) == 0
    schedule_view = _package(alpha=0.6, sigma=0.8)
    states = torch.tensor(STATES, dtype=torch.float64)
    den = GaussianMixtureDenoiser(sa.schedules.edm(), torch.tensor([[-1.5], [1.0]], dtype=torch.float64), variance=0.1,
                                  weights=torch.tensor([0.3, 0.7], dtype=torch.float64))
    edm_view = den.posterior((states / 0.6).reshape(-1, 1), torch.tensor(0.8 / 0.6, dtype=torch.float64))
    _close(schedule_view[0], edm_view[0].reshape(-1))
    _close(schedule_view[1], edm_view[1].reshape(-1))
