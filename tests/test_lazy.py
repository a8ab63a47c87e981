"""Numeric tests of the lazy families and samplers (schedalg.lazy; proofs in proofs/prove_lazy.py)."""

import math

import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.errors import SchedalgError
from schedalg.lazy import (LazyDenoiser, LazyGridError, Standardization, StandardizationError, derive_lazy_family,
                           lazy_nfe, lazy_ode_sample, natural_schedule, point_mass_sample)

F64 = torch.float64


def _gaussian(dim=6, seed=0, schedule=None):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(dim, generator=g, dtype=F64)
    var = 0.2 + 3 * torch.rand(dim, generator=g, dtype=F64)
    return GaussianDenoiser(schedule or sa.schedules.linear(), mean, var), mean, var


# ---------------------------------------------------------------- the families, numerically


@given(st.floats(0.01, math.pi / 2 - 0.01))
def test_ode_family_is_variance_preserving_and_lazy(u):
    sched = natural_schedule("ode").compile()
    uu = torch.tensor([u], dtype=F64)
    alpha, sigma, d_alpha, d_sigma = sched.evaluate(uu, "alpha", "sigma", "d_alpha", "d_sigma")
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(alpha))
    y = torch.linspace(-3, 3, 7, dtype=F64)[:, None]
    x0, eps = GaussianDenoiser(natural_schedule("ode")).posterior(y, uu[0])
    torch.testing.assert_close(d_alpha * x0 + d_sigma * eps, torch.zeros_like(y), atol=1e-14, rtol=0)


@given(st.floats(0.01, 0.99))
def test_point_mass_family_has_e_star_half_alpha_prime_and_zero_drift(a):
    sched = natural_schedule("optimal_sde")
    num = sched.compile()
    aa = torch.tensor([a], dtype=F64)
    alpha, sigma, d_alpha, d_sigma, e_star = num.evaluate(aa, "alpha", "sigma", "d_alpha", "d_sigma", "e_star")
    torch.testing.assert_close(sigma**2, alpha * (1 - alpha))
    torch.testing.assert_close(e_star, d_alpha / 2)
    y = torch.linspace(-3, 3, 7, dtype=F64)[:, None]
    x0, eps = GaussianDenoiser(sched).posterior(y, aa[0])
    drift = d_alpha * x0 + d_sigma * eps - e_star * eps / sigma
    torch.testing.assert_close(drift, torch.zeros_like(y), atol=1e-12, rtol=0)


def test_family_members_match_the_library():
    """Default free functions give the trigonometric interpolant and the Brownian bridge."""
    tt = torch.linspace(0.05, 0.95, 11, dtype=F64)
    pairs = [(derive_lazy_family("ode").schedule(), sa.schedules.trigonometric()),
             (derive_lazy_family("optimal_sde").schedule(), sa.schedules.brownian_bridge())]
    for ours, library in pairs:
        torch.testing.assert_close(ours.compile().evaluate(tt, "alpha", "sigma"),
                                   library.compile().evaluate(tt, "alpha", "sigma"))
    member = derive_lazy_family("optimal_sde").schedule(free=sa.t**2)
    assert member.is_point_mass and member.direction == 1


def test_family_schedule_rejects_a_free_function_with_wrong_ends():
    with pytest.raises(SchedalgError, match="free function"):
        derive_lazy_family("ode").schedule(free=sa.t)  # ends at 1, not pi/2
    with pytest.raises(SchedalgError, match="lazy family kind"):
        derive_lazy_family("sde")


# ---------------------------------------------------------------- standardization


def test_standardization_estimate_scalar_and_per_channel():
    g = torch.Generator().manual_seed(1)
    scale = torch.tensor([0.5, 2.0, 4.0], dtype=F64)[:, None, None]
    data = 3.0 + scale * torch.randn(4000, 3, 2, 2, generator=g, dtype=F64)
    scalar = Standardization.estimate(data)
    assert scalar.is_scalar
    torch.testing.assert_close(scalar.mean, torch.full((3, 2, 2), 3.0, dtype=F64), atol=0.2, rtol=0)
    torch.testing.assert_close(scalar.std, scale.square().mean().sqrt(), atol=0.05, rtol=0.02)
    channel = Standardization.estimate(data, channel_dim=1)
    assert channel.std.shape == (3, 1, 1)
    torch.testing.assert_close(channel.std, scale, rtol=0.05, atol=0)
    x = torch.randn(5, 3, 2, 2, dtype=F64)
    torch.testing.assert_close(channel.invert(channel.apply(x)), x)


@pytest.mark.parametrize("call, match", [
    (lambda: Standardization.given(0.0, 0.0), "finite and > 0"),
    (lambda: Standardization.given(float("nan"), 1.0), "finite mean"),
    (lambda: Standardization.estimate(torch.zeros(1, 4)), "at least 2 samples"),
    (lambda: Standardization.estimate(torch.randn(5, 3, 2), channel_dim=3), "channel dimension"),
    (lambda: Standardization.given(torch.zeros(3), 1.0).check_shape(torch.Size([4])), "broadcasts"),
])
def test_standardization_bad_input(call, match):
    with pytest.raises(StandardizationError, match=match):
        call()


# ---------------------------------------------------------------- exactness on Gaussian data


@pytest.mark.parametrize("solver", ["euler", "heun", "midpoint"])
def test_one_lazy_ode_step_is_the_exact_flow_map(solver):
    den, mean, var = _gaussian()
    noise = torch.randn(50, 6, generator=torch.Generator().manual_seed(2), dtype=F64)
    out = lazy_ode_sample(den, noise, Standardization.given(mean, var.sqrt()), steps=1, solver=solver)
    torch.testing.assert_close(out, den.flow(noise, 0.0, 1.0))


@given(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6), st.sampled_from(["euler", "heun", "midpoint"]))
def test_lazy_ode_is_exact_on_any_grid(increments, solver):
    den, mean, var = _gaussian(seed=3, schedule=sa.schedules.cosine())
    cumulative = torch.tensor(increments, dtype=F64).cumsum(0)
    grid = torch.cat([torch.zeros(1, dtype=F64), cumulative / cumulative[-1] * (math.pi / 2)])
    noise = torch.randn(8, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    out = lazy_ode_sample(den, noise, Standardization.given(mean, var.sqrt()), grid=grid, solver=solver)
    torch.testing.assert_close(out, den.flow(noise, 1.0, 0.0))


def test_one_point_mass_step_is_exact_in_law():
    """One Euler-Maruyama step from the point mass maps xi to mean + std xi, i.e. N(mean, var)."""
    den, mean, var = _gaussian()
    xi = torch.randn(1, 20000, 6, generator=torch.Generator().manual_seed(5), dtype=F64)
    out = point_mass_sample(den, xi, Standardization.given(mean, var.sqrt()))
    torch.testing.assert_close(out, mean + var.sqrt() * xi[0])
    torch.testing.assert_close(out.mean(0), mean, atol=4 * (var.max() / 20000) ** 0.5, rtol=0)
    cov = torch.cov(out.T)
    torch.testing.assert_close(cov, torch.diag(var), atol=0.08 * float(var.max()), rtol=0)


@given(st.integers(2, 6))
def test_point_mass_sde_has_zero_drift_for_gaussian_data(steps):
    """Zero drift: after N steps y = sum_i sqrt(h_i) xi_i exactly, a N(0, 1) variable (sum of h_i = 1)."""
    _, mean, _ = _gaussian(seed=6)
    den = GaussianDenoiser(sa.schedules.linear(), mean, 2.5)  # one variance: a scalar std is exact
    xi = torch.randn(steps, 16, 6, generator=torch.Generator().manual_seed(steps), dtype=F64)
    out = point_mass_sample(den, xi, Standardization.given(mean, 2.5**0.5))
    expected = xi.sum(0) / math.sqrt(steps)  # uniform grid: h_i = 1/N
    torch.testing.assert_close(out, mean + 2.5**0.5 * expected)


# ---------------------------------------------------------------- non-lazy data: convergence


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("midpoint", 2)])
def test_lazy_ode_converges_at_its_order_when_not_lazy(solver, order):
    """A scalar std on anisotropic Gaussian data leaves a drift: the error falls like h^order."""
    den, mean, var = _gaussian(seed=7)
    std = Standardization.given(mean, var.mean().sqrt())
    noise = torch.randn(20, 6, generator=torch.Generator().manual_seed(8), dtype=F64)
    exact = den.flow(noise, 0.0, 1.0)
    errors = [float((lazy_ode_sample(den, noise, std, steps=n, solver=solver) - exact).abs().max())
              for n in (16, 32, 64)]
    slopes = [math.log2(errors[k] / errors[k + 1]) for k in range(2)]
    assert all(order - 0.3 < s < order + 0.4 for s in slopes), (errors, slopes)


def test_network_evaluations_are_as_declared():
    den, mean, var = _gaussian()
    calls = []

    class Counting:
        schedule = den.schedule

        def prepare(self, times):
            inner = den.prepare(times)

            def call(x, i, **cond):
                calls.append(i)
                return inner(x, i, **cond)
            return call

    std = Standardization.given(mean, var.sqrt())
    for solver in ("euler", "heun", "midpoint"):
        calls.clear()
        lazy_ode_sample(Counting(), torch.zeros(2, 6, dtype=F64), std, steps=5, solver=solver)
        assert len(calls) == lazy_nfe(solver, 5)
    calls.clear()
    point_mass_sample(Counting(), torch.zeros(5, 2, 6, dtype=F64), std)
    assert len(calls) == 5


# ---------------------------------------------------------------- bad input


def test_lazy_sampler_bad_input():
    den, mean, var = _gaussian()
    std = Standardization.given(mean, var.sqrt())
    noise = torch.zeros(2, 6, dtype=F64)
    with pytest.raises(SchedalgError, match="lazy ODE solver"):
        lazy_ode_sample(den, noise, std, steps=2, solver="dpmpp_2m")  # not a tableau
    with pytest.raises(SchedalgError, match="exactly one of"):
        lazy_ode_sample(den, noise, std)
    with pytest.raises(LazyGridError, match="noise end"):
        lazy_ode_sample(den, noise, std, grid=[0.1, math.pi / 2])
    with pytest.raises(LazyGridError, match="strictly increasing"):
        lazy_ode_sample(den, noise, std, grid=[0.0, 1.0, 0.5, math.pi / 2])
    with pytest.raises(LazyGridError, match="positive integer"):
        lazy_ode_sample(den, noise, std, steps=0)
    with pytest.raises(StandardizationError, match="broadcasts"):
        lazy_ode_sample(den, torch.zeros(2, 5, dtype=F64), std, steps=2)
    with pytest.raises(SchedalgError, match="steps, B"):
        point_mass_sample(den, noise[0], std)
    with pytest.raises(SchedalgError, match="steps \\+ 1"):
        point_mass_sample(den, torch.zeros(3, 2, 6, dtype=F64), std, grid=[0.0, 1.0])
    with pytest.raises(LazyGridError, match="scalar std"):
        LazyDenoiser(den, std).time_grid([0.0, math.pi / 2])
    with pytest.raises(SchedalgError, match="Denoiser"):
        LazyDenoiser(object(), std)
    with pytest.raises(SchedalgError, match="Standardization"):
        LazyDenoiser(den, (mean, var))


def test_symbolic_family_has_no_torch_dependency():
    family = derive_lazy_family("ode")
    assert isinstance(family.sigma_squared, sp.Expr)


# ---------------------------------------------------------------- the lazy view with schedalg.sampling


def test_named_solvers_run_on_the_lazy_view():
    """Euler of schedalg.sampling on the lazy view is the lazy Euler; DPM-Solver++(2M) there equals
    DPM-Solver++(2M) on the model's own schedule at the same log-SNRs (it is invariant under
    standardization and schedule conversion), which needs the exact data end of time_grid."""
    from schedalg.denoisers import GaussianMixtureDenoiser
    from schedalg.sampling import TimeGrid, sample

    g = torch.Generator().manual_seed(9)
    centres = torch.randn(5, 4, generator=g, dtype=F64)
    linear = sa.schedules.linear()
    den = GaussianMixtureDenoiser(linear, centres, 0.05)
    std = Standardization.given(centres.mean(0), 0.8)
    view = LazyDenoiser(den, std, "ode")
    noise = torch.randn(6, 4, generator=g, dtype=F64)
    for steps in (2, 5):
        grid = view.time_grid(view.uniform_grid(steps))
        assert float(grid.sigma[-1]) == 0.0 and float(grid.log_snr[-1]) == math.inf
        torch.testing.assert_close(std.invert(sample(view, noise, grid, "euler")),
                                   lazy_ode_sample(den, noise, std, steps=steps))
        source = TimeGrid.from_times(linear, view.prepare(view.uniform_grid(steps)).source_times)
        torch.testing.assert_close(std.invert(sample(view, noise, grid, "dpmpp_2m")),
                                   sample(den, noise, source, "dpmpp_2m"))


def test_lazy_loops_make_no_host_sync_and_no_sympy_call(monkeypatch):
    """After prepare (and the coefficient tables), the loops read nothing back to the host."""
    from schedalg.lazy import integrate_lazy_ode, integrate_point_mass
    from schedalg.models import NetworkDenoiser

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.SiLU(), torch.nn.Linear(16, 3)).double()
    den = NetworkDenoiser(lambda x, t: net(torch.cat([x, t.reshape(-1, 1).expand(x.shape[0], 1).to(x)], 1)),
                          sa.schedules.linear(), "velocity", "t", check_finite="off")
    std = Standardization.given(torch.zeros(3, dtype=F64), 0.7)
    runs = []
    for kind, solver in (("ode", "euler"), ("ode", "heun"), ("ode", "midpoint"), ("optimal_sde", None)):
        lazy = LazyDenoiser(den, std, kind)
        grid = lazy.uniform_grid(4 if solver != "midpoint" else 8)
        prepared = lazy.prepare(grid)
        noise = torch.randn(4, 5, 3, dtype=F64) if solver is None else torch.randn(5, 3, dtype=F64)
        prepared.tables(noise)
        runs.append((prepared, noise, solver))
    calls = []
    for name in ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _n=name, _o=original, **k: (calls.append(_n),
                                                                                                 _o(self, *a, **k))[1])
    for name in ("sympify", "simplify", "lambdify", "diff", "solve"):
        original = getattr(sp, name)
        monkeypatch.setattr(sp, name, lambda *a, _n=name, _o=original, **k: (calls.append(_n), _o(*a, **k))[1])
    for prepared, noise, solver in runs:
        out = integrate_point_mass(prepared, noise) if solver is None else integrate_lazy_ode(prepared, noise, solver)
        assert out.shape == noise.shape[-2:]
    monkeypatch.undo()
    assert calls == []


def test_point_mass_per_channel_std_is_exact_pathwise():
    """Per-channel std: each channel runs on its own alpha grid a_ij (shared network times); with
    zero drift y_j = sum_i sqrt(a_(i+1)j - a_ij) xi_ij, and sum_i h_ij = 1, so N(0, 1) per channel."""
    den, mean, var = _gaussian(seed=10)
    std = Standardization.given(mean, var.sqrt())
    xi = torch.randn(5, 8, 6, generator=torch.Generator().manual_seed(11), dtype=F64)
    out = point_mass_sample(den, xi, std)
    a = LazyDenoiser(den, std, "optimal_sde").prepare(torch.linspace(0, 1, 6, dtype=F64)).u
    h = a.diff(dim=0)
    torch.testing.assert_close(h.sum(0), torch.ones(6, dtype=F64))
    assert float((h - 0.2).abs().max()) > 1e-3  # the channels' grids do differ
    torch.testing.assert_close(out, mean + var.sqrt() * (h.sqrt()[:, None, :] * xi).sum(0))


@pytest.mark.parametrize("kind", ["ode", "optimal_sde"])
def test_lazy_view_agrees_with_the_converted_denoiser(kind):
    """With the identity standardization the lazy view is schedalg.models.ConvertedDenoiser on the family."""
    from schedalg.denoisers import GaussianMixtureDenoiser
    from schedalg.models import ConvertedDenoiser

    g = torch.Generator().manual_seed(12)
    den = GaussianMixtureDenoiser(sa.schedules.linear(), torch.randn(4, 3, generator=g, dtype=F64), 0.1)
    view = LazyDenoiser(den, Standardization.given(0.0, 1.0), kind)
    grid = view.uniform_grid(6)[1:-1]
    grid = torch.cat([grid.new_tensor([view.free_range[0]]), grid, grid.new_tensor([view.free_range[1]])])
    ours = view.prepare(grid)
    theirs = ConvertedDenoiser(den, view.schedule).prepare(grid)
    y = torch.randn(5, 3, generator=g, dtype=F64)
    for i in range(1, len(grid) - 1):
        for a, b in zip(ours(y, i), theirs(y, i)):
            torch.testing.assert_close(a, b)


def test_euler_maruyama_of_schedalg_sampling_on_the_point_mass_view():
    """schedalg.sampling's Euler-Maruyama (e = e* = a'/2) on the point-mass view, with the same draws,
    is point_mass_sample path by path (the view feeds the point mass the source's noise-end state)."""
    from schedalg.sampling import sample

    _, mean, _ = _gaussian(seed=13)
    den = GaussianDenoiser(sa.schedules.linear(), mean, 2.0)
    std = Standardization.given(mean, 2.0**0.5)
    view = LazyDenoiser(den, std, "optimal_sde")
    xi = torch.randn(4, 7, 6, generator=torch.Generator().manual_seed(14), dtype=F64)
    grid = view.time_grid(view.uniform_grid(4))
    theirs = std.invert(sample(view, torch.zeros(7, 6, dtype=F64), grid, "euler_maruyama", draws=xi))
    torch.testing.assert_close(theirs, point_mass_sample(den, xi, std))


def test_grid_from_a_member_parameterization():
    """A member's own uniform time is the free-coordinate grid free(t_i); exactness holds on it."""
    den, mean, var = _gaussian(seed=15)
    std = Standardization.given(mean, var.sqrt())
    view = LazyDenoiser(den, std, "ode")
    grid = view.grid_from(sp.pi * sa.t**2 / 2, 5)
    torch.testing.assert_close(grid, math.pi / 2 * torch.linspace(0, 1, 6, dtype=F64) ** 2)
    noise = torch.randn(4, 6, generator=torch.Generator().manual_seed(16), dtype=F64)
    torch.testing.assert_close(lazy_ode_sample(den, noise, std, grid=grid, solver="heun"), den.flow(noise, 0.0, 1.0))
    with pytest.raises(SchedalgError, match="free function"):
        view.grid_from(sa.t**2, 5)  # ends at 1, not pi/2
