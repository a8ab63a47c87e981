"""Splitting and baseline samplers in augmented space: convergence orders, NFE, stochastic marginals, errors.

On Gaussian data the probability-flow ODE is linear; the exact model plus a fourth-order
reference solve (AugmentedGaussianModel.flow) gives every sampler's error against steps.
"""

import math

import pytest
import torch

import schedalg as sa
import schedalg.augmented as aug
from schedalg.augmented import SamplerError



MEAN = torch.tensor([0.5, -0.3, 0.1], dtype=torch.float64)
VAR = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
T, T_EPS = 1.0, 1e-3
SDES = {"psld": aug.psld(), "cld": aug.cld()}
_SETUPS: dict = {}

# solver -> step counts inside its asymptotic regime (measured; see the module docstring)
ORDER_STEPS = {
    "euler": (128, 256, 512), "exponential": (128, 256, 512), "symmetric_splitting": (128, 256, 512),
    "naive_symplectic_euler": (128, 256, 512), "reduced_symplectic_euler": (128, 256, 512),
    "naive_velocity_verlet": (256, 512, 1024), "reduced_velocity_verlet": (128, 256, 512),
    "conjugate_splitting": (128, 256, 512), "heun": (64, 128, 256), "rk4": (32, 64, 128),
}


def _setup(name):
    if name not in _SETUPS:
        model = aug.AugmentedGaussianModel(SDES[name], MEAN, VAR)
        z = model.sample(8, T, torch.Generator().manual_seed(0))
        _SETUPS[name] = (model, z, model.flow(z, T, T_EPS))
    return _SETUPS[name]


def _error(name, solver, steps):
    model, z, reference = _setup(name)
    out = aug.sample_augmented(model, z, aug.time_grid(T, T_EPS, steps), solver)
    return float(((out - reference)[:, 0] ** 2).mean().sqrt())


@pytest.mark.parametrize("solver", sorted(ORDER_STEPS))
def test_fitted_order_matches_the_declared_order_on_psld(solver):
    steps = ORDER_STEPS[solver]
    errors = [_error("psld", solver, n) for n in steps]
    x = torch.log(torch.tensor(steps, dtype=torch.float64))
    y = torch.log(torch.tensor(errors, dtype=torch.float64))
    slope = -float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    declared = aug.get_solver(solver).order
    assert abs(slope - declared) < 0.2, (solver, slope, errors)
    assert abs(math.log2(errors[-2] / errors[-1]) - declared) < 0.15


@pytest.mark.parametrize("solver", ["symmetric_splitting", "heun"])
def test_fitted_order_on_cld(solver):
    steps = ORDER_STEPS[solver]
    errors = [_error("cld", solver, n) for n in steps]
    assert abs(math.log2(errors[-2] / errors[-1]) - aug.get_solver(solver).order) < 0.15


@pytest.mark.parametrize("solver", sorted(aug.SOLVERS))
def test_declared_network_evaluations_per_step(solver):
    model, z, _ = _setup("psld")
    calls = []

    class Counting:
        sde = model.sde

        def prepare(self, times):
            inner = model.prepare(times)

            def call(zz, j):
                calls.append(j)
                return inner(zz, j)

            return call

    steps = 7
    aug.sample_augmented(Counting(), z, aug.time_grid(T, T_EPS, steps), solver,
                         generator=torch.Generator().manual_seed(0))
    assert len(calls) == steps * aug.get_solver(solver).nfe_per_step


def test_hybrid_and_symmetric_splitting_beat_euler_type_schemes_at_20_steps():
    """Measured at 20 steps (PSLD, Gaussian data): the equilibrium splittings are >10x more accurate than
    Euler and the exponential integrator; the hybrid (lam = 0) is within 15% of symmetric_splitting."""
    errors = {s: _error("psld", s, 20) for s in ("euler", "exponential", "symmetric_splitting", "conjugate_splitting")}
    assert errors["symmetric_splitting"] < 0.1 * min(errors["euler"], errors["exponential"])
    assert abs(errors["conjugate_splitting"] / errors["symmetric_splitting"] - 1) < 0.15


@pytest.mark.parametrize("solver", ["euler_maruyama", "stochastic_splitting", "oba"])
def test_stochastic_samplers_reach_the_data_marginal(solver):
    """From z_T ~ N(a mu, C_T), 100 steps of the reverse SDE end near N(a mu, C) at t_eps (4000 samples)."""
    model = aug.AugmentedGaussianModel(SDES["psld"], MEAN, VAR)
    gen = torch.Generator().manual_seed(5)
    z = model.sample(4000, T, gen)
    out = aug.sample_augmented(model, z, aug.time_grid(T, T_EPS, 100), solver, generator=gen)
    C = model.marginal_covariance(torch.tensor(T_EPS, dtype=torch.float64))
    a = SDES["psld"].compile().mean_coefficient(torch.tensor(T_EPS, dtype=torch.float64))
    x = out[:, 0]
    torch.testing.assert_close(x.mean(0), a[0] * MEAN, rtol=0, atol=0.06)
    torch.testing.assert_close(x.var(0), C[:, 0, 0], rtol=0.12, atol=0)


def test_stochastic_samplers_are_reproducible_with_a_generator():
    model, z, _ = _setup("psld")
    times = aug.time_grid(T, T_EPS, 10)
    a = aug.sample_augmented(model, z, times, "oba", generator=torch.Generator().manual_seed(3))
    b = aug.sample_augmented(model, z, times, "oba", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("solver", ["stochastic_splitting", "oba", "euler_maruyama"])
def test_seeded_noise_does_not_depend_on_the_batch(solver):
    model, z, _ = _setup("psld")
    times = aug.time_grid(T, T_EPS, 6)
    full = aug.sample_augmented(model, z, times, solver, seed=11)
    part = aug.sample_augmented(model, z[:3], times, solver, seed=11)
    torch.testing.assert_close(part, full[:3], rtol=0, atol=1e-12)
    assert not torch.equal(full, aug.sample_augmented(model, z, times, solver, seed=12))


def test_symmetric_splitting_on_the_scalar_vp_case():
    """On 1x1 VP the equilibrium linear part vanishes (X = F0 + Q0 S^{-1}/2 = 0): the scheme is Euler with the
    field at the midpoint, and still converges at order 1."""
    sde = aug.LinearSDE.from_schedule(sa.schedules.vp_linear())
    assert float(aug.equilibrium(sde).X_ode[0, 0]) == 0.0
    model = aug.AugmentedGaussianModel(sde, MEAN, VAR)
    z = model.sample(8, T, torch.Generator().manual_seed(0))
    reference = model.flow(z, T, T_EPS)
    errors = [float((aug.sample_augmented(model, z, aug.time_grid(T, T_EPS, n), "symmetric_splitting")
                     - reference).abs().max()) for n in (256, 512)]
    assert abs(math.log2(errors[0] / errors[1]) - 1) < 0.15


def test_bad_sampler_inputs_raise():
    model, z, _ = _setup("psld")
    times = aug.time_grid(T, T_EPS, 5)
    with pytest.raises(SamplerError, match="solver name"):
        aug.sample_augmented(model, z, times, "dpm_solver")
    with pytest.raises(SamplerError, match="decreasing"):
        aug.sample_augmented(model, z, times.flip(0), "euler")
    with pytest.raises(SamplerError, match="state of shape"):
        aug.sample_augmented(model, z[:, :1], times, "euler")
    with pytest.raises(SamplerError, match="steps >= 1"):
        aug.time_grid(1.0, 0.0, 10)
    vp = aug.LinearSDE.from_schedule(sa.schedules.vp_linear())
    vp_model = aug.AugmentedGaussianModel(vp, MEAN, VAR)
    with pytest.raises(SamplerError, match="2 blocks"):
        aug.sample_augmented(vp_model, z[:, :1], times, "reduced_velocity_verlet")
    ve = aug.LinearSDE.from_schedule(sa.schedules.ve())
    ve_model = aug.AugmentedGaussianModel(ve, MEAN, VAR)
    with pytest.raises(SamplerError, match="stationary covariance"):
        aug.sample_augmented(ve_model, z[:, :1], aug.time_grid(1.0, 0.01, 5), "symmetric_splitting")
