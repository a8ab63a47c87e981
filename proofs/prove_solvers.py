"""Proofs of the identities the solvers rely on (schedalg.sampling.solvers).

Each test states an identity in its docstring, builds ``lhs - rhs`` with SymPy and checks
that it simplifies to 0. Generic schedules are undefined functions ``alpha(t)``,
``sigma(t)``; ``l = log(alpha/sigma)`` is DPM-Solver's half log-SNR.
"""

import sympy as sp

import schedalg as sa
from schedalg.sampling._phi import phi
from schedalg.sampling.solvers._euler_maruyama import drift_coefficients

t, s, h, h0, h1, u = sp.symbols("t s h h0 h1 u", positive=True)
x0, eps, c, X = sp.symbols("x0 eps c X", real=True)
A = sp.Function("alpha")(t)
S = sp.Function("sigma")(t)


def is_zero(residual: sp.Expr) -> bool:
    return sp.simplify(residual) == 0


def test_ddim_step_solves_the_ode_with_x0_frozen():
    """x(t) = alpha(t) x0 + sigma(t) c solves dx/dt = alpha' x0 + sigma' (x - alpha x0)/sigma.

    So ``x_{i+1} = alpha_{i+1} x0_hat + sigma_{i+1} eps_hat`` (DDIM) is the exact flow over a
    step when x0_hat is held constant: the first-order exponential integrator.
    """
    x = A * x0 + S * c
    residual = sp.diff(x, t) - (sp.diff(A, t) * x0 + sp.diff(S, t) * (x - A * x0) / S)
    assert is_zero(residual)


def test_data_prediction_variation_of_constants():
    """X(s) = sigma_s/sigma_t x_t + sigma_s int_{l_t}^{l_s} e^u f(u) du solves
    dX/ds = (sigma'/sigma) X + alpha l' f(l), the probability-flow ODE in data prediction
    (alpha l' = alpha' - alpha sigma'/sigma), for any x0_hat = f(l) (Lu et al. 2022)."""
    f = sp.Function("f")
    a_s, s_s = sp.Function("alpha")(s), sp.Function("sigma")(s)
    l_s = sp.log(a_s / s_s)
    xt, lt = sp.symbols("x_t l_t", real=True)
    integral = sp.Integral(sp.exp(u) * f(u), (u, lt, l_s))
    big_x = s_s * xt / sp.Symbol("sigma_t", positive=True) + s_s * integral
    ode = sp.diff(s_s, s) / s_s * big_x + (sp.diff(a_s, s) - a_s * sp.diff(s_s, s) / s_s) * f(l_s)
    assert is_zero(sp.diff(big_x, s).doit() - ode)


def _exact_weights(order_two_term: sp.Expr):
    """Weights on (m0, m1, m2) of the 3M update (alpha_s factored out), D2 weighted by ``order_two_term``."""
    r0, r1 = h0 / h, h1 / h
    m0, m1, m2 = sp.symbols("m0 m1 m2")
    d10, d11 = (m0 - m1) / r0, (m1 - m2) / r1
    d1 = d10 + r0 / (r0 + r1) * (d10 - d11)
    d2 = (d10 - d11) / (r0 + r1)
    p1 = 1 - sp.exp(-h)
    p2 = 1 - p1 / h
    return (m0, m1, m2), p1 * m0 + p2 * d1 + order_two_term * d2


def _phi3_h() -> sp.Expr:
    """h phi_3(-h) = 1/2 - (h - 1 + e^-h)/h^2."""
    return sp.Rational(1, 2) - (h - 1 + sp.exp(-h)) / h**2


def test_dpmpp_3m_is_exact_for_quadratic_predictions():
    """With D1 = D1_0 + r0/(r0+r1)(D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0+r1), the update
    h[phi_1 m0 + phi_2 D1 + 2 phi_3 D2](-h) equals int_0^h e^(u-h) P(u) du for every quadratic
    P with P(0) = m0, P(-h0) = m1, P(-h0-h1) = m2 (u = l - l_i)."""
    k0, k1, k2 = sp.symbols("k0 k1 k2", real=True)
    poly = k0 + k1 * u + k2 * u**2
    (m0, m1, m2), update = _exact_weights(2 * _phi3_h())
    values = {m0: poly.subs(u, 0), m1: poly.subs(u, -h0), m2: poly.subs(u, -h0 - h1)}
    exact = sp.integrate(sp.exp(u - h) * poly, (u, 0, h))
    assert is_zero(update.subs(values) - exact)


def test_published_3m_weight_misses_half_the_curvature_term():
    """The reference implementations' weight phi_3 on D2 leaves exactly -h phi_3(-h) k2 h^2
    on a quadratic x0 = k0 + k1 u + k2 u^2, a local error of order h^3 (k2 h^3 / 6)."""
    k0, k1, k2 = sp.symbols("k0 k1 k2", real=True)
    poly = k0 + k1 * u + k2 * u**2
    (m0, m1, m2), update = _exact_weights(_phi3_h())
    values = {m0: poly.subs(u, 0), m1: poly.subs(u, -h0), m2: poly.subs(u, -h0 - h1)}
    exact = sp.integrate(sp.exp(u - h) * poly, (u, 0, h))
    residual = update.subs(values) - exact
    assert is_zero(residual + _phi3_h() * k2 * h**2)
    assert is_zero(sp.series(_phi3_h(), h, 0, 2).removeO() - h / 6)


def test_dpmpp_2m_local_error_is_third_order():
    """2M: h phi_1(-h) [(1 + 1/(2r)) m0 - m1/(2r)] minus the exact integral for a linear x0 is O(h^3)."""
    r = sp.Symbol("r", positive=True)
    k0, k1 = sp.symbols("k0 k1", real=True)
    poly = k0 + k1 * u
    m0, m1 = poly.subs(u, 0), poly.subs(u, -r * h)
    update = (1 - sp.exp(-h)) * ((1 + 1 / (2 * r)) * m0 - m1 / (2 * r))
    exact = sp.integrate(sp.exp(u - h) * poly, (u, 0, h))
    series = sp.series(update - exact, h, 0, 3).removeO()
    assert is_zero(series)


def test_phi_series_and_recurrence():
    """phi_k(z) = sum_j z^j/(j+k)! near 0 and phi_{k+1} = (phi_k - 1/k!)/z (the two branches of _phi.phi)."""
    z = sp.Symbol("z")
    phis = [sp.exp(z)]
    for k in range(1, 4):
        phis.append((phis[-1] - 1 / sp.factorial(k - 1)) / z)
    for k in (1, 2, 3):
        series = sp.series(phis[k], z, 0, 6).removeO()
        assert is_zero(series - sum(z**j / sp.factorial(j + k) for j in range(6)))
        for value in (-3.0, -0.3, -0.01, 0.02):  # the float branches of _phi.phi against 30-digit SymPy
            reference = float(phis[k].subs(z, sp.Float(value, 40)).evalf(30))
            assert abs(reference - phi(k, value)) < 1e-15


def test_ancestral_step_is_the_ddpm_posterior():
    """For x_t | x_s ~ N((alpha_t/alpha_s) x_s, sigma_t^2 - (alpha_t/alpha_s)^2 sigma_s^2) and
    x_s ~ N(alpha_s x0, sigma_s^2): E[x_s | x_t, x0] = alpha_s x0 + sigma_s e^(-d/2) eps_hat and
    Var = sigma_s^2 (1 - e^-d), with e^-d = e^(lambda_t - lambda_s), eps_hat = (x_t - alpha_t x0)/sigma_t."""
    a_s, a_t, s_s, s_t, xt = sp.symbols("a_s a_t s_s s_t x_t", positive=True)
    cov = (a_t / a_s) * s_s**2
    mean = a_s * x0 + cov / s_t**2 * (xt - a_t * x0)
    var = s_s**2 - cov**2 / s_t**2
    e_minus_d = (a_t**2 / s_t**2) / (a_s**2 / s_s**2)
    eps_hat = (xt - a_t * x0) / s_t
    assert is_zero(mean - (a_s * x0 + s_s * sp.sqrt(e_minus_d) * eps_hat))
    assert is_zero(var - s_s**2 * (1 - e_minus_d))


def test_euler_maruyama_drift_is_linear_in_state_and_x0():
    """b + e s = A X + B x0 in generation time, with b = dir(alpha' x0 + sigma' eps), s = -eps/sigma,
    eps = (X - alpha x0)/sigma, A = dir sigma'/sigma - e/sigma^2, B = dir(alpha' - alpha sigma'/sigma) + e alpha/sigma^2."""
    for schedule in (sa.schedules.linear(), sa.schedules.cosine(), sa.schedules.brownian_bridge()):
        e = sp.Function("e")(sa.t)
        a_coef, b_coef = drift_coefficients(schedule, e)
        alpha, sigma, d = schedule.alpha, schedule.sigma, schedule.direction
        noise = (X - alpha * x0) / sigma
        drift = d * (schedule.d_alpha * x0 + schedule.d_sigma * noise) - e * noise / sigma
        assert is_zero(drift - (a_coef * X + b_coef * x0))


def test_euler_maruyama_on_the_bridge_with_e_star_is_lazy():
    """Bridge alpha = t, sigma = sqrt(t(1-t)) with e*: A = -1/(1-t), B = 1/(1-t), e* = 1/2 (MATH.md section 2)."""
    bridge = sa.schedules.brownian_bridge()
    a_coef, b_coef = drift_coefficients(bridge, bridge.e_star)
    assert is_zero(a_coef + 1 / (1 - sa.t))
    assert is_zero(b_coef - 1 / (1 - sa.t))
    assert is_zero(bridge.e_star - sp.Rational(1, 2))


def test_euler_is_ddim_for_affine_alpha_and_sigma():
    """alpha = a0 + a1 t, sigma = b0 + b1 t: x + h(alpha' x0 + sigma' eps) = alpha(t+h) x0 + sigma(t+h) eps."""
    a0, a1, b0, b1 = sp.symbols("a0 a1 b0 b1", real=True)
    alpha, sigma = a0 + a1 * t, b0 + b1 * t
    x = alpha * x0 + sigma * eps
    euler = x + h * (sp.diff(alpha, t) * x0 + sp.diff(sigma, t) * eps)
    assert is_zero(euler - (alpha.subs(t, t + h) * x0 + sigma.subs(t, t + h) * eps))
