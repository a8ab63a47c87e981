"""Linear matrix SDEs (CLD, PSLD, scalar 1x1): compiled moments, Monte Carlo, numeric fallback, errors."""

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.augmented import LinearSDE, LinearSDEError, cld, psld
from schedalg.symbolic import t



SDES = {"psld": psld(), "cld": cld()}
_LAMBDIFIED: dict = {}


def _mpmath(matrix: sp.Matrix):
    """The symbolic matrix evaluated by mpmath at 30 digits (an independent path from the torch printer)."""
    key = sp.srepr(matrix)
    if key not in _LAMBDIFIED:
        fn = sp.lambdify(t, matrix, "mpmath")
        _LAMBDIFIED[key] = lambda x: sp.Matrix(fn(sp.Float(x, 30))).evalf(30)
    return _LAMBDIFIED[key]


@pytest.mark.parametrize("name", sorted(SDES))
@settings(max_examples=15)
@given(tt=st.floats(1e-3, 1.0))
def test_compiled_moments_match_symbolic(name, tt):
    sde = SDES[name]
    c = sde.compile()
    x = torch.tensor(tt, dtype=torch.float64)
    for symbolic, compiled in ((sde.covariance, c.covariance), (sde.transition, c.transition),
                               (sde.cholesky, c.cholesky)):
        expected = torch.tensor(_mpmath(symbolic)(tt).tolist(), dtype=torch.float64)
        torch.testing.assert_close(compiled(x), expected, rtol=1e-9, atol=1e-12)
    L = c.cholesky(x)
    torch.testing.assert_close(L @ L.T, c.covariance(x), rtol=1e-10, atol=1e-13)
    # CLD's Sigma_xx ~ t^3 is a difference of O(t) terms: about 8 digits survive at t = 1e-3
    torch.testing.assert_close(c.cholesky_inv_t(x) @ L.T, torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-6)


def test_scalar_schedule_is_the_1x1_case():
    schedule = sa.schedules.vp_linear()
    sde = LinearSDE.from_schedule(schedule)
    c, s = sde.compile(), schedule.compile()
    tt = torch.linspace(1e-4, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(c.mean_coefficient(tt)[:, 0], s.alpha(tt))
    torch.testing.assert_close(c.covariance(tt)[:, 0, 0], s.sigma(tt) ** 2)
    torch.testing.assert_close(c.cholesky(tt)[:, 0, 0], s.sigma(tt))


@pytest.mark.parametrize("name", sorted(SDES))
def test_forward_marginals_match_monte_carlo(name):
    """Euler-Maruyama paths of dz = F z dt + G dW from z0 = (x0, m0) vs the symbolic mean/covariance."""
    sde = SDES[name]
    c = sde.compile()
    gen = torch.Generator().manual_seed(1)
    n, steps, t_end, x0 = 10000, 200, 0.3, 0.7
    z = torch.zeros(n, 2, dtype=torch.float64)
    z[:, 0] = x0
    z[:, 1] = torch.randn(n, generator=gen, dtype=torch.float64) * float(sde.Sigma0[1, 1]) ** 0.5
    h = t_end / steps
    times = torch.arange(steps, dtype=torch.float64) * h
    drifts, diffusions = c.drift(times), c.diffusion(times)
    for i in range(steps):
        z = z + h * z @ drifts[i].T + h**0.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64) @ diffusions[i].T
    te = torch.tensor(t_end, dtype=torch.float64)
    cov = c.covariance(te)
    # 5 standard errors of the Monte Carlo estimates (+1% for the Euler-Maruyama bias)
    se_mean = (cov.diagonal() / n).sqrt()
    se_cov = (cov.diagonal()[:, None] * cov.diagonal()[None, :] / n).sqrt() * 2**0.5
    assert bool(((z.mean(0) - c.mean_coefficient(te) * x0).abs() <= 5 * se_mean + 0.01 * x0).all())
    assert bool(((torch.cov(z.T) - cov).abs() <= 5 * se_cov + 0.01 * cov.abs()).all())


def test_sample_marginal_uses_the_perturbation_kernel():
    sde = SDES["psld"]
    c = sde.compile()
    x0 = torch.full((30000, 1), -0.4, dtype=torch.float64)
    z, eps = c.sample_marginal(x0, torch.tensor(0.2, dtype=torch.float64), torch.Generator().manual_seed(0))
    te = torch.tensor(0.2, dtype=torch.float64)
    torch.testing.assert_close(z[:, :, 0].mean(0), c.mean_coefficient(te) * -0.4, rtol=0, atol=0.02)
    torch.testing.assert_close(torch.cov(z[:, :, 0].T), c.covariance(te), rtol=0.05, atol=2e-3)
    # the score of z_t | x0 is -L^{-T} eps = -Sigma^{-1} (z - a x0)
    centred = z[:, :, 0] + 0.4 * c.mean_coefficient(te)
    score = -(torch.linalg.inv(c.covariance(te)) @ centred.T).T
    torch.testing.assert_close(score, -(c.cholesky_inv_t(te) @ eps[:, :, 0].T).T)


def test_numeric_moments_fallback_matches_closed_form():
    sde = SDES["psld"]
    closed = sde.compile()
    numeric = type(closed)(sde)
    numeric.moments_kind = "numeric"
    numeric.numeric_steps = 400
    tt = torch.tensor([0.05, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(numeric.covariance(tt), closed.covariance(tt), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(numeric.transition(tt), closed.transition(tt), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(numeric.cholesky_inv_t(tt), closed.cholesky_inv_t(tt), rtol=1e-6, atol=1e-8)


def test_sde_without_time_change_form_is_numeric():
    sde = LinearSDE([[-1 - t, 1], [0, -1]], [[1, 0], [0, 2]], name="no_time_change")
    assert sde.time_change is None and sde.moments_kind == "numeric"
    c = sde.compile()
    c.numeric_steps = 200
    cov = c.covariance(torch.tensor([0.5], dtype=torch.float64))
    assert cov.shape == (1, 2, 2) and bool((torch.linalg.eigvalsh(cov) > 0).all())
    with pytest.raises(LinearSDEError, match="numeric"):
        sde.covariance


def test_rate_outside_the_gate_takes_the_numeric_path_and_stays_right():
    """A time-change form whose clock the structural gate does not hand to SymPy (rate 1/(1 + t):
    a logarithm, neither an exp-polynomial nor rational in one exponential) gives no time change,
    and the numeric moments equal the exact ones of dx = -r/2 x dt + sqrt(r) dW, x(0) = x0:
    mean coefficient (1 + t)^(-1/2), variance 1 - 1/(1 + t)."""
    rate = 1 / (1 + t)
    sde = LinearSDE([[-rate / 2]], [[sp.sqrt(rate)]], name="log_clock")
    assert sde.time_change is None and sde.moments_kind == "numeric"
    c = sde.compile()
    c.numeric_steps = 400
    tt = torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(c.mean_coefficient(tt).reshape(-1), (1 + tt) ** -0.5, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(c.covariance(tt).reshape(-1), 1 - 1 / (1 + tt), rtol=1e-8, atol=1e-10)
    polynomial = LinearSDE([[-(1 + t) / 2]], [[sp.sqrt(1 + t)]], name="polynomial_rate")
    assert polynomial.time_change is not None and sp.simplify(polynomial.time_change.clock - t - t**2 / 2) == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(drift=[[1, 2, 3]], diffusion=[[1]]), "square"),
    (dict(drift=[[1, 0], [0, 1]], diffusion=[[1]]), "same shape"),
    (dict(drift=[[1]], diffusion=[[1]], domain=(1, 2)), "t = 0"),
    (dict(drift=[[1]], diffusion=[[1]], domain=(0, -1)), "positive end"),
    (dict(drift=[[sp.Symbol("beta")]], diffusion=[[1]]), "free symbols"),
    (dict(drift=[[1, 0], [0, 1]], diffusion=[[1, 0], [0, 1]], initial_covariance=[[1, 2], [3, 1]]), "symmetric"),
    (dict(drift=[[1, 0], [0, 1]], diffusion=[[1, 0], [0, 1]], data_weight=(1,)), "data weight"),
])
def test_bad_declarations_raise(kwargs, match):
    with pytest.raises(LinearSDEError, match=match):
        LinearSDE(**kwargs)


def test_bad_parameters_and_times_raise():
    with pytest.raises(LinearSDEError, match="critically damped"):
        psld(nu=5)
    with pytest.raises(LinearSDEError, match="critically damped"):
        cld(gamma_friction=2)
    with pytest.raises(LinearSDEError, match="data at t = 0"):
        LinearSDE.from_schedule(sa.schedules.linear())
    with pytest.raises(LinearSDEError, match="times in"):
        SDES["psld"].compile().check_times(torch.tensor([0.5, 1.5]))


def test_time_dependent_beta_keeps_closed_forms():
    """PSLD with beta(t) = 1/2 + 8 t is still of time-change form: closed-form moments equal the ODE moments."""
    sde = psld(beta=sp.Rational(1, 2) + 8 * t)
    assert sde.moments_kind == "symbolic"
    closed = sde.compile()
    numeric = type(closed)(sde)
    numeric.moments_kind, numeric.numeric_steps = "numeric", 400
    tt = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(numeric.covariance(tt), closed.covariance(tt), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(numeric.mean_coefficient(tt), closed.mean_coefficient(tt), rtol=1e-8, atol=1e-10)
