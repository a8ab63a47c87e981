"""Conjugate integrators: DDIM on VP, Euler for B = F, numeric fallbacks, lambda-DDIM at few steps."""

import pytest
import sympy as sp
import torch

import schedalg as sa
import schedalg.augmented as aug
from _hash_seeds import outputs_under_hash_seeds
from schedalg.augmented import ConjugateTransform, LinearSDEError
from schedalg.denoisers import GaussianDenoiser
from schedalg.symbolic import t



VP = sa.schedules.vp_linear()
VP_SDE = aug.LinearSDE.from_schedule(VP)
PSLD = aug.psld()
MEAN = torch.tensor([0.5, -0.3, 0.1], dtype=torch.float64)
VAR = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)


def test_exponential_integrator_on_vp_is_ddim():
    """The B = 0 sampler on the 1x1 VP SDE reproduces DDIM run with the foundation's Gaussian denoiser."""
    times = aug.time_grid(1.0, 1e-3, 12, power=1.0)
    K, P = ConjugateTransform(VP_SDE, 0).step_matrices(times)
    alpha, sigma = VP.compile().evaluate(times, "alpha", "sigma")
    torch.testing.assert_close(K[:, 0, 0], alpha[1:] / alpha[:-1])
    torch.testing.assert_close(P[:, 0, 0], sigma[1:] - alpha[1:] * sigma[:-1] / alpha[:-1])
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = aug.sample_augmented(aug.AugmentedGaussianModel(VP_SDE, MEAN, VAR), x[:, None], times, "exponential")
    prepared = GaussianDenoiser(VP, MEAN, VAR).prepare(times)
    for i in range(len(times) - 1):
        x0_hat, eps_hat = prepared(x, i)
        x = alpha[i + 1] * x0_hat + sigma[i + 1] * eps_hat
    torch.testing.assert_close(ours[:, 0], x, rtol=1e-10, atol=1e-10)


def test_B_equal_F_is_euler_up_to_the_eps_weight():
    """B = F: K = I + h F exactly and P - h W(t) = O(h^2)."""
    ct = ConjugateTransform(PSLD, PSLD.F)
    c = PSLD.compile()
    gaps = []
    for h in (0.02, 0.01):
        times = torch.tensor([0.5, 0.5 - h], dtype=torch.float64)
        K, P = ct.step_matrices(times)
        torch.testing.assert_close(K[0], torch.eye(2, dtype=torch.float64) - h * c.drift(times[0]))
        gaps.append(float((P[0] + h * c.ode_weight(times[0])).abs().max()))
    assert 3.5 < gaps[0] / gaps[1] < 4.5


def test_numeric_and_symbolic_A_and_phi_agree():
    ct = ConjugateTransform(VP_SDE, 0)
    assert (ct.A_kind, ct.phi_kind) == ("symbolic", "symbolic")
    tt = torch.tensor([0.01, 0.3, 0.9], dtype=torch.float64)
    ct.numeric_steps = 500
    torch.testing.assert_close(ct._numeric_A(tt), ct.A_of(tt), rtol=1e-9, atol=0)
    lo, hi = torch.tensor([0.9, 0.3, 0.01], dtype=torch.float64), torch.tensor([0.8, 0.1, 0.001], dtype=torch.float64)
    symbolic = ct.phi_increment(lo, hi)
    numeric = aug._quadrature.integrate_intervals(lambda s: ct.A_of(s) @ VP_SDE.compile().ode_weight(s), lo, hi)
    torch.testing.assert_close(numeric, symbolic, rtol=1e-9, atol=1e-12)


def test_non_commuting_B_uses_the_ordered_exponential():
    """B = t [[0, 1], [0, 0]] does not commute with itself minus F at other times: A is integrated numerically
    and satisfies A' = A (B - F)."""
    B = sp.Matrix([[0, t], [0, 0]])
    ct = ConjugateTransform(PSLD, B)
    assert ct.A_kind == "numeric" and ct.phi_kind == "numeric"
    ct.numeric_steps = 400
    tt = torch.tensor([0.3 - 1e-4, 0.3, 0.3 + 1e-4], dtype=torch.float64)
    A = ct.A_of(tt)
    derivative = (A[2] - A[0]) / 2e-4
    generator = torch.tensor([[float(e.subs(t, 0.3)) for e in row] for row in (B - PSLD.F).tolist()],
                             dtype=torch.float64)
    torch.testing.assert_close(derivative, A[1] @ generator, rtol=1e-5, atol=1e-6)


def _rms(model, z, times, solver, reference):
    out = aug.sample_augmented(model, z, times, solver)
    return float(((out - reference)[:, 0] ** 2).mean().sqrt())


def test_lambda_ddim_at_few_steps_on_vp():
    """Measured (Gaussian data, VP, 5 uniform steps): in schedalg's forward-time convention lambda < 0
    (lambda > 0 in generation time) beats lambda = 0 by far; lambda > 0 makes DDIM worse."""
    model = aug.AugmentedGaussianModel(VP_SDE, MEAN, VAR)
    z = model.sample(64, 1.0, torch.Generator().manual_seed(0))
    reference = model.flow(z, 1.0, 1e-3)
    times = aug.time_grid(1.0, 1e-3, 5, power=1.0)
    errors = {lam: _rms(model, z, times, aug.Conjugate(lam), reference) for lam in (0.0, -0.25, 0.5)}
    assert errors[-0.25] < 0.5 * errors[0.0]
    assert errors[0.5] > errors[0.0]


def test_lambda_ddim_at_few_steps_on_psld():
    """Measured (Gaussian data, PSLD, 20 quadratic steps): B = 2 I beats B = 0."""
    model = aug.AugmentedGaussianModel(PSLD, MEAN, VAR)
    z = model.sample(16, 1.0, torch.Generator().manual_seed(0))
    reference = model.flow(z, 1.0, 1e-3)
    times = aug.time_grid(1.0, 1e-3, 20)
    assert _rms(model, z, times, aug.Conjugate(2.0), reference) < 0.8 * _rms(model, z, times, aug.Conjugate(0), reference)


def test_bad_B_raises():
    with pytest.raises(LinearSDEError, match="B of shape"):
        ConjugateTransform(PSLD, sp.eye(3))
    with pytest.raises(LinearSDEError, match="free symbols"):
        ConjugateTransform(PSLD, sp.Symbol("lam") * sp.eye(2))
    with pytest.raises(LinearSDEError, match="B as a number"):
        ConjugateTransform(PSLD, "not a matrix")


# ---------------------------------------------------------------------- deterministic closed forms

_DERIVE = """
import json, sys
import sympy as sp
import schedalg as sa
import schedalg.augmented as aug
from schedalg.augmented._conjugate import lambda_identity, lambda_ones
out = {}
vp = aug.LinearSDE.from_schedule(sa.schedules.vp_linear())
for name, sde in (("vp", vp), ("psld", aug.psld()), ("psld_beta", aug.psld(beta=sp.Rational(1, 2) + 8 * sa.t))):
    out[name] = [sde.moments_kind, sp.srepr(sde.covariance)]
    for label, B in (("0", 0), ("F", sde.F), ("I", lambda_identity(sde.k, sp.Rational(1, 2))),
                     ("ones", lambda_ones(sde.k, sp.Rational(3, 10)))):
        ct = aug.ConjugateTransform(sde, B)
        out[name + "/" + label] = [ct.A_kind, ct.phi_kind, sp.srepr(ct.A), sp.srepr(ct.phi)]
print(json.dumps(out, sort_keys=True))
"""


def test_same_closed_forms_under_any_hash_seed_and_load(tmp_path):
    """The augmented derivations (moments, A, Phi) decide closed form vs numeric by the
    integrand's structure, not by time: three hash seeds, beside a busy process, give the
    same kinds and the same srepr of every form."""
    script = tmp_path / "derive_augmented.py"
    script.write_text(_DERIVE)
    outputs = outputs_under_hash_seeds(script)
    assert outputs[0] == outputs[1] == outputs[2]
    kinds = {name: value[:2] for name, value in outputs[0].items() if "/" in name}
    assert kinds["vp/0"] == kinds["vp/F"] == ["symbolic", "symbolic"]
    assert kinds["psld/0"] == ["symbolic", "numeric"] and kinds["psld_beta/ones"] == ["numeric", "numeric"]
    assert outputs[0]["psld"][0] == "symbolic"


def test_sympy_integrate_is_called_only_on_the_gated_classes(monkeypatch):
    """Integrands outside the two classes (PSLD's Cholesky factor, VP with lambda-DDIM's
    exp(t^2) under a root) go to the numeric path without calling sympy.integrate."""
    from schedalg.augmented import _closed_forms as cf
    from schedalg.augmented._conjugate import _CACHE, lambda_identity

    u = sp.Symbol("u", positive=True)
    assert cf.exp_polynomial(4 * u**2 * sp.exp(-2 * u) - 2 * u * sp.exp(-2 * u) * sp.cos(3 * u), u)
    assert not cf.exp_polynomial(sp.exp(u**2), u) and not cf.exp_polynomial(u**9 * sp.exp(u), u)
    assert cf.rational_in_exp(sp.exp(u / 2) / (2 * sp.sqrt(1 - sp.exp(-u))), u)
    assert not cf.rational_in_exp(sp.exp(u) / sp.sqrt(u**2 + sp.exp(u)), u)
    assert not cf.rational_in_exp(sp.exp(u) / sp.sqrt(sp.exp(3 * u) + 1), u)  # cubic radicand: elliptic
    calls = []
    real_integrate = sp.integrate
    monkeypatch.setattr(cf.sp, "integrate", lambda *a, **k: calls.append(a[0]) or real_integrate(*a, **k))
    _CACHE.clear()
    vp_lambda = ConjugateTransform(VP_SDE, lambda_identity(1, sp.Rational(1, 2)))
    psld = ConjugateTransform(PSLD, 0)
    assert vp_lambda.phi_kind == psld.phi_kind == "numeric"
    assert all(cf.integrable(e, next(iter(e.free_symbols))) for e in calls if e.free_symbols)
    assert vp_lambda.A_kind == psld.A_kind == "symbolic"
