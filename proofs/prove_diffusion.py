"""Proofs for diffusion coefficients under conversion (MATH.md section 1).

Generic source ``(alpha, sigma)`` in time ``t`` and destination ``A = c alpha(tau)``,
``S = c sigma(tau)`` in time ``s``; ``d_src, d_dst = +-1`` are the directions, so that
``tau' = d_src d_dst |tau'|``. In own time the SDE with coefficient ``e`` is
``dX = [b + d e score] dt + sqrt(2 e) dW`` with ``Var(dW) = |dt|``.
"""

import sympy as sp

from schedalg.symbolic import s

t = sp.Symbol("t", real=True)
x0, eps = sp.symbols("x0 eps", real=True)
alpha, sigma = sp.Function("alpha", positive=True), sp.Function("sigma", positive=True)
tau, c = sp.Function("tau", real=True), sp.Function("c", positive=True)
e = sp.Function("e", nonnegative=True)
u = sp.Dummy("u")


def _at_tau(fn):
    return fn(tau(s))


def _d_at_tau(fn):
    return sp.diff(fn(u), u).subs(u, tau(s))


def _log_snr(a, b):
    return 2 * sp.log(a) - 2 * sp.log(b)


def test_optimal_maps_to_optimal():
    """E* = c^2 |tau'| e*(tau): with e* = d sigma^2 lambda'/2, for every pair of directions."""
    big_a, big_s = c(s) * _at_tau(alpha), c(s) * _at_tau(sigma)
    lam_src_prime = sp.diff(_log_snr(alpha(u), sigma(u)), u).subs(u, tau(s))
    lam_dst_prime = sp.diff(_log_snr(big_a, big_s), s)
    for d_src in (1, -1):
        for d_dst in (1, -1):
            abs_tau_prime = d_src * d_dst * sp.diff(tau(s), s)
            e_star_src = d_src * _at_tau(sigma) ** 2 * lam_src_prime / 2
            e_star_dst = d_dst * big_s**2 * lam_dst_prime / 2
            residual = c(s) ** 2 * abs_tau_prime * e_star_src - e_star_dst
            assert sp.simplify(residual.doit()) == 0


def test_ode_maps_to_ode():
    """e = 0 gives E = c^2 |tau'| * 0 = 0."""
    assert sp.simplify(c(s) ** 2 * sp.diff(tau(s), s) * 0) == 0


def test_sde_transfer():
    """Y = c X_tau: drift and noise of the destination SDE with E = c^2 |tau'| e(tau).

    Ito (c is deterministic): dY = c' X ds + c dX_tau, and dX_tau = [b + d_src e s_src] tau' ds
    + sqrt(2 e) dW_src(tau) with Var(dW_src(tau)) = |tau'| ds. So the drift must equal
    b_dst + d_dst E s_dst and the noise variance c^2 2 e |tau'| = 2 E."""
    big_a, big_s = c(s) * _at_tau(alpha), c(s) * _at_tau(sigma)
    x = _at_tau(alpha) * x0 + _at_tau(sigma) * eps  # X_tau given the posterior pair
    b_src = _d_at_tau(alpha) * x0 + _d_at_tau(sigma) * eps
    score_src = -eps / _at_tau(sigma)
    b_dst = sp.diff(big_a, s) * x0 + sp.diff(big_s, s) * eps
    score_dst = -eps / big_s
    for d_src in (1, -1):
        for d_dst in (1, -1):
            abs_tau_prime = d_src * d_dst * sp.diff(tau(s), s)
            big_e = c(s) ** 2 * abs_tau_prime * _at_tau(e)
            ito_drift = sp.diff(c(s), s) * x + c(s) * sp.diff(tau(s), s) * (b_src + d_src * _at_tau(e) * score_src)
            residual = ito_drift - (b_dst + d_dst * big_e * score_dst)
            assert sp.simplify(residual.doit()) == 0
            assert sp.simplify(c(s) ** 2 * 2 * _at_tau(e) * abs_tau_prime - 2 * big_e) == 0


def test_inverse_map():
    """Mapping E back through the inverse conversion (c_inv = 1/c(s), |tau_inv'| = 1/|tau'(s)| at
    the matching times) returns e."""
    c_val, tau_prime, e_val = sp.symbols("c tau_prime e", positive=True)
    big_e = c_val**2 * tau_prime * e_val
    back = (1 / c_val) ** 2 * (1 / tau_prime) * big_e
    assert sp.simplify(back - e_val) == 0


def test_time_changed_brownian_increment():
    """dW_dst = |tau'|^{-1/2} dW_src(tau): variance |tau'|^{-1} |tau'| ds = ds; per step
    dW_src * sqrt(|ds|/|dtau|) has variance |ds|."""
    ds, dtau = sp.symbols("ds dtau", positive=True)
    assert sp.simplify((sp.sqrt(ds / dtau)) ** 2 * dtau - ds) == 0
