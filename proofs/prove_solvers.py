"""Proofs of the identities the solvers rely on (schedalg.sampling.solvers).

Each test states an identity in its docstring, builds ``lhs - rhs`` with SymPy and checks
that it simplifies to 0. The left side is what the package computes: a solver's program
(written by the package with SymPy symbols as weights and run by :meth:`Program.trace`), or
its per-step weight function called with SymPy symbols. Generic schedules are undefined
functions ``alpha(t)``, ``sigma(t)``; ``l = log(alpha/sigma)`` is DPM-Solver's half log-SNR.
"""

import sympy as sp

from _generic import h_phi_symbolic

import schedalg as sa
from schedalg.sampling import ProgramBuilder, write_tableau_step
from schedalg.sampling._phi import phi
from schedalg.sampling.solvers import CLASSICAL_RK4, EULER, HEUN, HEUN3, KUTTA3, MIDPOINT, THREE_EIGHTHS
from schedalg.sampling.solvers._ancestral import step_weights as ancestral_weights
from schedalg.sampling.solvers._ddim import write_one_evaluation_steps
from schedalg.sampling.solvers._dpmpp import step_weights as multistep_step_weights
from schedalg.sampling.solvers._euler_maruyama import drift_coefficients

t, s, h, h0, h1, u = sp.symbols("t s h h0 h1 u", positive=True)
x0, eps, c, X = sp.symbols("x0 eps c X", real=True)
A = sp.Function("alpha")(t)
S = sp.Function("sigma")(t)


def is_zero(residual: sp.Expr) -> bool:
    return sp.simplify(residual) == 0


_h_phi = h_phi_symbolic


class _Frozen:
    """A denoiser with constant predictions (x0_hat, eps_hat) = (x0, (x - alpha_k x0)/sigma_k)."""

    def __init__(self, alphas, sigmas):
        self.alphas, self.sigmas = alphas, sigmas

    def __call__(self, state, k):
        return x0, (state - self.alphas[k] * x0) / self.sigmas[k]


def _tableau_step(tableau, velocity):
    """One step of the package's program for ``tableau`` from the state X with step h (SymPy weights)."""
    b = ProgramBuilder(1, None)
    out, first = write_tableau_step(b, tableau, b.state, h, range(tableau.stages), velocity)
    b.end_step(out, first)
    return b.build()


def test_ddim_step_solves_the_ode_with_x0_frozen():
    """x(t) = alpha(t) x0 + sigma(t) c solves dx/dt = alpha' x0 + sigma' (x - alpha x0)/sigma, and the
    package's DDIM program (weights alpha_{i+1}, sigma_{i+1}) lands on it: the exact flow over a step
    when x0_hat is held constant (the first-order exponential integrator)."""
    x = A * x0 + S * c
    residual = sp.diff(x, t) - (sp.diff(A, t) * x0 + sp.diff(S, t) * (x - A * x0) / S)
    assert is_zero(residual)
    b = ProgramBuilder(1, None)
    write_one_evaluation_steps(b, [A.subs(t, s)], [S.subs(t, s)])
    stepped = b.build().trace(x, _Frozen([A], [S]))
    assert is_zero(stepped - x.subs(t, s))


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


def _exact_weights(published: bool):
    """The package's 3M update on (m0, m1, m2) with alpha_s = 1 (steps h, h0, h1 in l)."""
    m0, m1, m2 = sp.symbols("m0 m1 m2")
    w = multistep_step_weights(3, 1, h, h0, h1, published, h_phi=_h_phi)
    return (m0, m1, m2), w[0] * m0 + w[1] * m1 + w[2] * m2


def _phi3_h() -> sp.Expr:
    """h phi_3(-h) = 1/2 - (h - 1 + e^-h)/h^2."""
    return sp.Rational(1, 2) - (h - 1 + sp.exp(-h)) / h**2


def test_dpmpp_3m_is_exact_for_quadratic_predictions():
    """With D1 = D1_0 + r0/(r0+r1)(D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0+r1), the update
    h[phi_1 m0 + phi_2 D1 + 2 phi_3 D2](-h) equals int_0^h e^(u-h) P(u) du for every quadratic
    P with P(0) = m0, P(-h0) = m1, P(-h0-h1) = m2 (u = l - l_i)."""
    k0, k1, k2 = sp.symbols("k0 k1 k2", real=True)
    poly = k0 + k1 * u + k2 * u**2
    (m0, m1, m2), update = _exact_weights(published=False)
    values = {m0: poly.subs(u, 0), m1: poly.subs(u, -h0), m2: poly.subs(u, -h0 - h1)}
    exact = sp.integrate(sp.exp(u - h) * poly, (u, 0, h))
    assert is_zero(update.subs(values) - exact)


def test_published_3m_weight_misses_half_the_curvature_term():
    """The reference implementations' weight phi_3 on D2 leaves exactly -h phi_3(-h) k2 h^2
    on a quadratic x0 = k0 + k1 u + k2 u^2, a local error of order h^3 (k2 h^3 / 6)."""
    k0, k1, k2 = sp.symbols("k0 k1 k2", real=True)
    poly = k0 + k1 * u + k2 * u**2
    (m0, m1, m2), update = _exact_weights(published=True)
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
    w0, w1, w2 = multistep_step_weights(2, 1, h, r * h, h_phi=_h_phi)  # the package's 2M weights
    update = w0 * m0 + w1 * m1
    assert w2 == 0
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
    d = sp.log(1 / e_minus_d)  # the log-SNR gain lambda_s - lambda_t
    eps_w, noise_w = ancestral_weights(d, s_s, 1, exp=sp.exp, expm1=lambda z: sp.exp(z) - 1, sqrt=sp.sqrt)
    assert is_zero(mean - (a_s * x0 + eps_w * eps_hat))  # the package's eta = 1 weights
    assert is_zero(var - noise_w**2)
    eta = sp.Symbol("eta", positive=True)  # any eta: the step keeps the marginal variance sigma_s^2
    eps_w, noise_w = ancestral_weights(d, s_s, eta, exp=sp.exp, expm1=lambda z: sp.exp(z) - 1, sqrt=sp.sqrt)
    assert is_zero(eps_w**2 + noise_w**2 - s_s**2)


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
    """alpha = a0 + a1 t, sigma = b0 + b1 t: the package's Euler program gives x + h(alpha' x0 + sigma' eps)
    = alpha(t+h) x0 + sigma(t+h) eps."""
    a0, a1, b0, b1 = sp.symbols("a0 a1 b0 b1", real=True)
    alpha, sigma = a0 + a1 * t, b0 + b1 * t
    x = alpha * x0 + sigma * eps
    euler = _tableau_step(EULER, lambda k: (0.0, a1, b1)).trace(x, lambda state, k: (x0, eps))
    assert is_zero(euler - (alpha.subs(t, t + h) * x0 + sigma.subs(t, t + h) * eps))


def test_tableau_programs_have_the_stability_polynomials_of_their_order():
    """On dx/dt = mu x (velocity weights (mu, 0, 0)) the package's program for a tableau of order p gives
    R(h mu) x with R(z) - sum_{j<=p} z^j/j! = O(z^{p+1}) (and = 0 for s = p <= 4 stages)."""
    mu = sp.Symbol("mu", real=True)
    for tableau, order in ((EULER, 1), (HEUN, 2), (MIDPOINT, 2), (HEUN3, 3), (KUTTA3, 3), (CLASSICAL_RK4, 4),
                           (THREE_EIGHTHS, 4)):
        stepped = _tableau_step(tableau, lambda k: (mu, 0.0, 0.0)).trace(X, lambda state, k: (0, 0))
        taylor = sum((h * mu) ** j / sp.factorial(j) for j in range(order + 1)) * X
        assert is_zero(sp.expand(stepped - taylor)), tableau.label
