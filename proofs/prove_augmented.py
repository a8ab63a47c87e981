"""Proofs of the linear (augmented) SDE derivations (MATH.md section 3; schedalg.augmented).

Each test states an identity the code relies on and reduces a residual to 0 with SymPy,
for CLD, PSLD and the 1x1 VP case.
"""

import pytest
import sympy as sp

import schedalg as sa
from schedalg.augmented import LinearSDE, cld, equilibrium, psld
from schedalg.augmented._linear_sde import u
from schedalg.symbolic import t


def _zero(matrix) -> bool:
    return sp.Matrix(matrix).applyfunc(sp.simplify) == sp.zeros(*sp.Matrix(matrix).shape)


SDES = {"psld": psld, "cld": cld, "vp": lambda: LinearSDE.from_schedule(sa.schedules.vp_linear(sp.Rational(1, 10), 20))}


@pytest.mark.parametrize("name", sorted(SDES))
def test_transition_solves_its_ode(name):
    """Psi(t) = exp(int_0^t F) satisfies Psi' = F Psi and Psi(0) = I."""
    sde = SDES[name]()
    psi = sde.transition
    assert _zero(psi.diff(t) - sde.F * psi)
    assert _zero(psi.subs(t, 0) - sp.eye(sde.k))


@pytest.mark.parametrize("name", sorted(SDES))
def test_covariance_solves_the_lyapunov_equation(name):
    """Sigma(t) (the Lyapunov integral) satisfies Sigma' = F Sigma + Sigma F^T + G G^T, Sigma(0) = Sigma0."""
    sde = SDES[name]()
    S = sde.covariance
    assert _zero(S.diff(t) - sde.F * S - S * sde.F.T - sde.G * sde.G.T)
    assert _zero(S.subs(t, 0) - sde.Sigma0)


@pytest.mark.parametrize("name", ["psld", "cld"])
def test_cholesky_factor_and_inverse_transpose(name):
    """L L^T = Sigma and L^{-T} L^T = I (checked in the clock variable u, then Sigma(t) = Sigma_u(U(t)))."""
    sde = SDES[name]()
    L, L_inv_t = sde._cholesky_u
    sigma_u = sde._autonomous[1]
    assert _zero(L * L.T - sigma_u)
    assert _zero(L_inv_t * L.T - sp.eye(sde.k))
    assert L[0, 1] == 0
    assert _zero(sde.covariance - sigma_u.subs(u, sde.time_change.clock))


def test_vp_schedule_is_the_1x1_case():
    """dx = f x dt + g dW with f, g^2 of vp_linear: mean coefficient = alpha, variance = sigma^2."""
    schedule = sa.schedules.vp_linear(sp.Rational(1, 10), 20)
    sde = LinearSDE.from_schedule(schedule)
    assert sp.simplify(sde.mean_coefficient[0] - schedule.alpha) == 0
    residual = sp.nsimplify(sp.expand(sde.covariance[0, 0] - schedule.sigma**2), rational=True)
    assert sp.simplify(residual) == 0


@pytest.mark.parametrize("name", ["psld", "cld"])
def test_critical_damping_gives_a_double_eigenvalue(name):
    """Under critical damping the drift F has a single eigenvalue of multiplicity 2 (Jordan block)."""
    sde = SDES[name]()
    eigenvalues = sde.F.eigenvals()
    assert len(eigenvalues) == 1 and list(eigenvalues.values()) == [2]
    assert not sde.F.is_diagonalizable()


def test_psld_and_cld_match_their_papers():
    """PSLD: F = (beta/2)[[-Gamma, 1/M], [-1, -nu]], G = diag(sqrt(Gamma beta), sqrt(M nu beta)),
    1/M = 4, nu = Gamma + 4, beta = 8, Sigma0 = diag(0, gamma M); CLD: dx = beta v/M, dv = -beta x -
    Gamma beta v/M + sqrt(2 Gamma beta) dW with 1/M = 4, Gamma = 1, beta = 4."""
    Gam, beta, M = sp.Rational(1, 100), 8, sp.Rational(1, 4)
    nu = Gam + 4
    p = psld()
    assert _zero(p.F - beta / sp.Integer(2) * sp.Matrix([[-Gam, 1 / M], [-1, -nu]]))
    assert _zero(p.G - sp.diag(sp.sqrt(Gam * beta), sp.sqrt(M * nu * beta)))
    assert _zero(p.Sigma0 - sp.diag(0, sp.Rational(1, 25) * M))
    c = cld()
    assert _zero(c.F - sp.Matrix([[0, 4 * 4], [-4, -1 * 4 * 4]]))
    assert _zero(c.G - sp.diag(0, sp.sqrt(2 * 1 * 4)))


@pytest.mark.parametrize("name", ["psld", "cld", "vp"])
def test_stationary_covariance_and_reverse_ou(name):
    """S solves F0 S + S F0^T + Q0 = 0; the reverse OU drift N = -(F0 + Q0 S^{-1}) keeps S stationary
    (N S + S N^T + Q0 = 0), so its noise covariance over a clock span u is S - e^{uN} S e^{uN^T}
    (it solves C' = N C + C N^T + Q0 with C(0) = 0)."""
    sde = SDES[name]()
    tc, S = sde.time_change, sde.stationary_covariance
    assert _zero(tc.F0 * S + S * tc.F0.T + tc.Q0)
    N = equilibrium(sde).N_sde
    assert _zero(N * S + S * N.T + tc.Q0)
    E = sde.autonomous_exp(N)
    C = S - E * S * E.T
    assert _zero(C.diff(u) - N * C - C * N.T - tc.Q0)
    assert _zero(C.subs(u, 0))


@pytest.mark.parametrize("name", ["psld", "cld"])
def test_equilibrium_split_of_the_ode(name):
    """F z - G G^T s / 2 = f X z + (W eps - G G^T S^{-1} z / 2) with s = -L^{-T} eps, W = G G^T L^{-T}/2,
    X = F0 + Q0 S^{-1} / 2: the exactly solved linear part plus the remainder is the probability-flow ODE."""
    sde = SDES[name]()
    tc, S = sde.time_change, sde.stationary_covariance
    z = sp.Matrix(sp.symbols("z0:2"))
    eps = sp.Matrix(sp.symbols("e0:2"))
    L_inv_t = sp.Matrix(2, 2, sp.symbols("l0:4"))
    score = -L_inv_t * eps
    W = sde.GGt * L_inv_t / 2
    X = equilibrium(sde).X_ode
    lhs = sde.F * z - sde.GGt * score / 2
    rhs = tc.rate * X * z + (W * eps - sde.GGt * S.inv() * z / 2)
    assert _zero(lhs - rhs)


@pytest.mark.parametrize("name", ["psld", "cld"])
def test_gaussian_data_marginal_covariance_is_transported_by_the_ode(name):
    """For x0 ~ N(m, v): C = v a a^T + Sigma satisfies C' = A C + C A^T with A = F + G G^T C^{-1} / 2,
    so the linear ODE z' = A (z - a m) (+ a' m) transports N(a m, C): the exact flow for Gaussian data."""
    sde = SDES[name]()
    v = sp.Symbol("v", positive=True)
    a = sde.mean_coefficient
    C = v * a * a.T + sde.covariance
    # C' = F C + C F^T + G G^T is equivalent to C' = A C + C A^T for A = F + G G^T C^{-1} / 2
    assert _zero(C.diff(t) - sde.F * C - C * sde.F.T - sde.GGt)
    assert _zero(a.diff(t) - sde.F * a)
