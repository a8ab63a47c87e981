"""Proofs of the identities of the variance-aware solvers (schedalg.sampling.solvers._variance_ddim).

Generic schedules are undefined functions ``alpha(t)``, ``sigma(t)``; ``v`` is the data
variance the solver assumes and ``c = sqrt(sigma^2 + alpha^2 v)``. The step weights are the
package's own (:func:`eps_weight`, :func:`two_step_weights`), called with SymPy symbols.
"""

import sympy as sp

from _generic import h_phi_symbolic

from schedalg.sampling.solvers._variance_ddim import eps_weight, two_step_weights

t = sp.Symbol("t", real=True)
v = sp.Symbol("v", nonnegative=True)
a_t, s_t, a_n, s_n, h, h0 = sp.symbols("alpha_t sigma_t alpha_n sigma_n h h0", positive=True)
x, mu, m0, m1, l_t = sp.symbols("x mu m0 m1 l_t", real=True)
A = sp.Function("alpha")(t)
S = sp.Function("sigma")(t)
C = sp.sqrt(S**2 + A**2 * v)


def is_zero(residual: sp.Expr) -> bool:
    return sp.simplify(residual) == 0


def _gaussian_posterior(alpha, sigma, variance):
    """Exact (x0_hat, eps_hat) of N(mu, variance) data at state x: the posterior means."""
    c2 = sigma**2 + alpha**2 * variance
    return mu + alpha * variance * (x - alpha * mu) / c2, sigma * (x - alpha * mu) / c2


def _c(alpha, sigma):
    return sp.sqrt(sigma**2 + alpha**2 * v)


def _vddim(alpha_t, sigma_t, alpha_n, sigma_n, x0, eps):
    """The solver's step x_n = alpha_n x0_hat + w eps_hat with the package's eps weight w."""
    w = eps_weight(alpha_t, sigma_t, alpha_n, sigma_n, _c(alpha_t, sigma_t), _c(alpha_n, sigma_n), v)
    return alpha_n * x0 + w * eps


_h_phi = h_phi_symbolic


def test_gaussian_flow_map_solves_the_probability_flow_ode():
    """X(t) = alpha mu + (c/c_0)(x - alpha_0 mu) solves dX/dt = alpha' x0_hat(X) + sigma' eps_hat(X)
    for N(mu, v) data (the exact map the solver is built on)."""
    c0 = sp.Symbol("c_0", positive=True)
    big_x = A * mu + C / c0 * (x - a_t * mu)
    x0, eps = _gaussian_posterior(A, S, v)
    x0, eps = x0.subs(x, big_x), eps.subs(x, big_x)
    assert is_zero(sp.diff(big_x, t) - (sp.diff(A, t) * x0 + sp.diff(S, t) * eps))


def test_step_equals_the_mean_estimate_form():
    """alpha_n x0 + [(c_n c_t - alpha_n alpha_t v)/sigma_t] eps
    = (alpha_n/alpha_t)(x - c_t^2 eps/sigma_t) + c_n c_t eps/sigma_t when x = alpha_t x0 + sigma_t eps."""
    x0, eps = sp.symbols("x0 eps", real=True)
    state = a_t * x0 + s_t * eps
    c_t, c_n = _c(a_t, s_t), _c(a_n, s_n)
    brief = a_n / a_t * (state - c_t**2 * eps / s_t) + c_n * c_t * eps / s_t
    assert is_zero(_vddim(a_t, s_t, a_n, s_n, x0, eps) - brief)


def test_step_is_exact_for_gaussian_data_of_variance_v():
    """One step from (alpha_t, sigma_t) to (alpha_n, sigma_n) with the exact Gaussian denoiser
    gives alpha_n mu + (c_n/c_t)(x - alpha_t mu): the exact flow map."""
    x0, eps = _gaussian_posterior(a_t, s_t, v)
    exact = a_n * mu + _c(a_n, s_n) / _c(a_t, s_t) * (x - a_t * mu)
    assert is_zero(_vddim(a_t, s_t, a_n, s_n, x0, eps) - exact)


def test_v_zero_is_ddim():
    """At v = 0 the eps weight (c_n c_t - 0)/sigma_t is sigma_n: the step is DDIM."""
    x0, eps = sp.symbols("x0 eps", real=True)
    ddim = a_n * x0 + s_n * eps
    assert is_zero(_vddim(a_t, s_t, a_n, s_n, x0, eps).subs(v, 0) - ddim)


def test_eps_weight_cancellation_free_form():
    """The package's weight [sigma_n^2 sigma_t + v (sigma_n^2 alpha_t^2/sigma_t + alpha_n^2 sigma_t)] /
    (c_n c_t + alpha_n alpha_t v) is (c_n c_t - alpha_n alpha_t v)/sigma_t."""
    c_t, c_n = _c(a_t, s_t), _c(a_n, s_n)
    direct = (c_n * c_t - a_n * a_t * v) / s_t
    stable = eps_weight(a_t, s_t, a_n, s_n, c_t, c_n, v)
    assert is_zero(sp.expand((direct - stable) * s_t * (c_n * c_t + a_n * a_t * v)))


def test_noise_end_start_weight_is_c_n():
    """At alpha_t = 0 the package's eps weight is c_n (finite; no 1/alpha_t)."""
    c_n = _c(a_n, s_n)
    assert is_zero(eps_weight(0, s_t, a_n, s_n, _c(0, s_t), c_n, v) - c_n)


def test_ode_in_mean_estimate_coordinates():
    """With r = x0_hat - (alpha v/sigma) eps_hat and x = alpha x0_hat + sigma eps_hat (any data),
    the ODE dx/dt = alpha' x0_hat + sigma' eps_hat is d(x/c)/dt = r d(alpha/c)/dt:
    (alpha' x0 + sigma' eps)/c - x c'/c^2 = r (alpha/c)'."""
    x0, eps = sp.symbols("x0 eps", real=True)
    state = A * x0 + S * eps
    r = x0 - A * v / S * eps
    lhs = (sp.diff(A, t) * x0 + sp.diff(S, t) * eps) / C - state * sp.diff(C, t) / C**2
    assert is_zero(lhs - r * sp.diff(A / C, t))


def test_variation_of_constants_in_l():
    """x_n = (c_n/c_t) x_t + c_n int_{l_t}^{l_n} e^l r(l) dl with l = log(alpha/c) solves d(x/c) = r d(alpha/c):
    d/dt [x/c] = e^l r(l) dl/dt = r d(alpha/c)/dt."""
    f = sp.Function("f")
    u = sp.Symbol("u", real=True)
    l_of_t = sp.log(A / C)
    ct = sp.Symbol("c_t", positive=True)
    big_x = C * x / ct + C * sp.Integral(sp.exp(u) * f(u), (u, l_t, l_of_t))
    lhs = sp.diff(big_x / C, t).doit()
    assert is_zero(lhs - f(l_of_t) * sp.diff(A / C, t))


def test_two_step_weights_are_exact_for_r_linear_in_l():
    """For r linear in l through (l_t - h0, m1) and (l_t, m0), with h = l_n - l_t:
    (c_n/alpha_n) int_{l_t}^{l_n} e^l r dl = h phi_1(-h) m0 + h phi_2(-h) (h/h0) (m0 - m1),
    the weights of vdpmpp_2m (so with the first proof above its step is exact for such r)."""
    u = sp.Symbol("u", real=True)
    r_lin = m0 + (u - l_t) * (m0 - m1) / h0
    integral = sp.integrate(sp.exp(u) * r_lin, (u, l_t, l_t + h)) / sp.exp(l_t + h)
    w0, w1 = two_step_weights(1, h, h0, h_phi=_h_phi)  # the package's weights (alpha_n = 1)
    assert is_zero(integral - (w0 * m0 + w1 * m1))
    first, zero = two_step_weights(1, h, None, h_phi=_h_phi)  # first step: r held constant
    assert is_zero(first - sp.integrate(sp.exp(u), (u, l_t, l_t + h)) / sp.exp(l_t + h)) and zero == 0
