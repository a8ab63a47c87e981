"""Proofs of the conjugate integrators (Pandey, Rudolph, Mandt 2024; MATH.md section 3)."""

import pytest
import sympy as sp

import schedalg as sa
from schedalg.augmented import ConjugateTransform, LinearSDE, lambda_identity, lambda_ones, psld
from schedalg.symbolic import t


def _zero(matrix) -> bool:
    matrix = sp.Matrix(matrix)
    return matrix.applyfunc(sp.simplify) == sp.zeros(*matrix.shape)


def _vp():
    return LinearSDE.from_schedule(sa.schedules.vp_linear(sp.Rational(1, 10), 20))


def test_conjugate_variable_obeys_the_transformed_ode():
    """If z' = F z + W e and A' = A (B - F), then zh = A z obeys zh' = (A B A^{-1}) zh + A W e
    (generic 2x2 matrices)."""
    A, F, B, W = (sp.Matrix(2, 2, sp.symbols(f"{n}0:4")) for n in "AFBW")
    z, e = sp.Matrix(sp.symbols("z0:2")), sp.Matrix(sp.symbols("e0:2"))
    z_dot = F * z + W * e
    A_dot = A * (B - F)
    zh_dot = A_dot * z + A * z_dot
    assert _zero(zh_dot - (A * B * A.inv() * (A * z) + A * W * e))


@pytest.mark.parametrize("B", ["zero", "lambda_I", "lambda_ones"])
def test_derived_A_solves_its_ode_for_psld(B):
    """A(t) = exp(int_0^t (B - F)) satisfies A' = A (B - F), A(0) = I, for B = 0, lambda I, lambda 1 1^T."""
    sde = psld()
    matrix = {"zero": sp.zeros(2, 2), "lambda_I": lambda_identity(2, sp.Rational(1, 2)),
              "lambda_ones": lambda_ones(2, sp.Rational(3, 10))}[B]
    ct = ConjugateTransform(sde, matrix)
    assert ct.A_kind == "symbolic"
    assert _zero(ct.A.diff(t) - ct.A * (matrix - sde.F))
    assert _zero(ct.A.subs(t, 0) - sp.eye(2))


def test_B_zero_on_vp_is_ddim():
    """VP, B = 0: A = 1/alpha and Phi = sigma/alpha + const, so the step
    x_{n+1} = A_{n+1}^{-1} (A_n x + (Phi_{n+1} - Phi_n) eps) equals DDIM's
    alpha_{n+1} (x - sigma_n eps)/alpha_n + sigma_{n+1} eps."""
    schedule = sa.schedules.vp_linear(sp.Rational(1, 10), 20)
    ct = ConjugateTransform(_vp(), 0)
    assert ct.phi_kind == "symbolic"
    assert sp.simplify(ct.A[0, 0] * schedule.alpha - 1) == 0
    difference = sp.nsimplify(ct.phi[0, 0] - schedule.sigma / schedule.alpha, rational=True)
    assert sp.simplify(difference.diff(t)) == 0
    x, e, a0, a1, s0, s1 = sp.symbols("x e alpha_n alpha_n1 sigma_n sigma_n1", positive=True)
    step = a1 * (x / a0 + (s1 / a1 - s0 / a0) * e)
    ddim = a1 * (x - s0 * e) / a0 + s1 * e
    assert sp.simplify(step - ddim) == 0


def test_B_equal_F_gives_euler():
    """B = F: A = I, the step is z + h F z + (Phi(t+h) - Phi(t)) eps with
    Phi(t+h) - Phi(t) = h W(t) + O(h^2): Euler, with the eps weight integrated exactly."""
    sde = _vp()
    ct = ConjugateTransform(sde, sde.F)
    assert _zero(ct.A - sp.eye(1))
    assert ct.phi_kind == "symbolic"
    h = sp.Symbol("h", real=True)
    t0 = sp.Rational(1, 2)
    increment = ct.phi[0, 0].subs(t, t0 + h) - ct.phi[0, 0].subs(t, t0)
    series = sp.series(increment, h, 0, 2).removeO()
    euler_weight = h * sde.ode_weight[0, 0].subs(t, t0)
    assert sp.simplify(sp.nsimplify(series - euler_weight, rational=True)) == 0 or abs(
        sp.N(series - euler_weight, 30).subs(h, 1)) < 1e-25


def test_exponential_integrator_for_a_general_linear_drift():
    """B = 0 (PSLD): A = Psi^{-1}, and z(t) = Psi(t) c(t) with c = Psi(t_n)^{-1} z_n + int_{t_n}^t A(s) W(s) ds e
    solves z' = F z + W(t) e for any W: z' - F z - W e = (Psi' - F Psi) c + (Psi A - I) W e = 0.
    So the B = 0 step is exact for frozen eps (the exponential integrator)."""
    sde = psld()
    ct = ConjugateTransform(sde, 0)
    psi = sde.transition
    assert _zero(ct.A * psi - sp.eye(2))
    assert _zero(psi.diff(t) - sde.F * psi)
    # the decomposition, for generic matrices and the Leibniz rule c' = A(t) W(t) e
    s, tn = sp.symbols("s t_n", real=True)
    g = sp.Function("g")
    assert sp.Integral(g(s), (s, tn, t)).diff(t) == g(t)
    P, Pd, F, A, W = (sp.Matrix(2, 2, sp.symbols(f"{n}0:4")) for n in ("P", "Pd", "F", "A", "W"))
    c, e = sp.Matrix(sp.symbols("c0:2")), sp.Matrix(sp.symbols("e0:2"))
    residual = (Pd * c + P * (A * W * e)) - F * (P * c) - W * e
    assert _zero(residual - ((Pd - F * P) * c + (P * A - sp.eye(2)) * W * e))
