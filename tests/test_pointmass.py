"""Point-mass schedules: conditions, start limits, sampling from the point mass, round trips."""

import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser, GaussianMixtureDenoiser
from schedalg.models import ConvertedDenoiser
from schedalg.symbolic import Diffusion, PointMassError, point_mass_start

L = sa.schedules.LIBRARY
MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
VAR = torch.tensor([0.5, 2.0], dtype=torch.float64)


def test_brownian_bridge_start():
    """alpha = t, sigma^2 = t(1 - t): L = 1, alpha'(0) = 1, e*(0) = 1/2."""
    start = point_mass_start(L["brownian_bridge"]())
    assert (start.t0, start.d_alpha, start.sigma2_over_alpha, start.e_star) == (0.0, 1.0, 1.0, 0.5)
    e0 = Diffusion.optimal(L["brownian_bridge"]()).evaluate(torch.tensor([0.0, 1e-9], dtype=torch.float64))
    torch.testing.assert_close(e0, torch.tensor([0.5, 0.5], dtype=torch.float64), rtol=1e-8, atol=0)


def test_reversed_point_mass_schedule():
    """A point mass at t_max (time running data -> noise): alpha = 1 - t, sigma^2 = 2 t (1 - t)."""
    t = sa.t
    schedule = sa.Schedule(alpha=1 - t, sigma=sp.sqrt(2 * t * (1 - t)), name="reversed_pm")
    start = point_mass_start(schedule)
    assert start.direction == -1 and start.t0 == 1.0
    assert start.d_alpha == -1.0 and start.sigma2_over_alpha == 2.0 and start.e_star == 1.0
    # the optimal diffusion's own limit agrees with L |alpha'| / 2
    values = schedule.compile().e_star(torch.tensor([1 - 1e-7], dtype=torch.float64))
    torch.testing.assert_close(values, torch.tensor([1.0], dtype=torch.float64), rtol=1e-6, atol=0)


def test_conditions_are_checked():
    t = sa.t
    with pytest.raises(PointMassError, match="alpha = sigma = 0 at the noise end"):
        point_mass_start(L["linear"]())
    # sigma^2/alpha -> inf: e* diverges at the start
    wide = sa.Schedule(alpha=t**2, sigma=sp.sqrt(t) * (1 - t), name="wide")
    with pytest.raises(PointMassError, match="sigma\\^2/alpha = inf"):
        point_mass_start(wide)
    # sigma^2/alpha -> 0: the start score E[x]/L is infinite
    narrow = sa.Schedule(alpha=t, sigma=t ** sp.Rational(3, 4) * (1 - t), name="narrow")
    with pytest.raises(PointMassError, match="sigma\\^2/alpha = 0"):
        point_mass_start(narrow)
    # finite sigma^2/alpha but infinite alpha'(0)
    steep = sa.Schedule(alpha=sp.sqrt(t), sigma=t ** sp.Rational(1, 4) * sp.sqrt(1 - sp.sqrt(t)), name="steep")
    with pytest.raises(PointMassError, match="finite alpha'"):
        point_mass_start(steep)


@pytest.mark.parametrize("inner_data", ["gaussian", "mixture"])
def test_start_limits_match_nearby_values(inner_data):
    """At y = 0, s -> 0: velocity -> alpha'(0) E[x]/2, score -> E[x]/L, optimal drift -> alpha'(0) E[x]."""
    src, dst = L["linear"](), L["brownian_bridge"]()
    means = torch.tensor([[2.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    if inner_data == "gaussian":
        inner, native, mean = GaussianDenoiser(src, MU, VAR), GaussianDenoiser(dst, MU, VAR), MU
    else:
        inner, native = GaussianMixtureDenoiser(src, means, 0.2), GaussianMixtureDenoiser(dst, means, 0.2)
        mean = means.mean(0)
    times = torch.tensor([0.0, 1e-8], dtype=torch.float64)
    p = ConvertedDenoiser(inner, dst).prepare(times, Diffusion.optimal(dst))
    y = torch.zeros(3, 2, dtype=torch.float64)
    assert p.at_start == [True, False]
    torch.testing.assert_close(p(y, 0)[0], mean.expand(3, 2))
    torch.testing.assert_close(p.drift(y, 0), mean.expand(3, 2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(p.velocity(y, 0), (mean / 2).expand(3, 2))
    # the start limits equal the native field just after the start (continuity)
    q = native.prepare(times)
    a, sg, da, ds = dst.compile().evaluate(times, "alpha", "sigma", "d_alpha", "d_sigma")
    x0, eps = q(y, 1)
    e1 = Diffusion.optimal(dst).evaluate(times)[1]
    native_drift = da[1] * x0 + ds[1] * eps + e1 * (-eps / sg[1])
    torch.testing.assert_close(p.drift(y, 0), native_drift, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(p.score(y, 0), -eps / sg[1], rtol=1e-3, atol=1e-3)


def test_lazy_bridge_drift_for_any_data():
    """MATH.md 2: under the Brownian bridge with e*, drift = alpha'/(1 - alpha) (x0_hat - y) for any data."""
    src, dst = L["cosine"](), L["brownian_bridge"]()
    means = torch.tensor([[2.0, 0.0], [-1.0, 1.0], [0.0, -3.0]], dtype=torch.float64)
    model = ConvertedDenoiser(GaussianMixtureDenoiser(src, means, 0.1), dst)
    times = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    p = model.prepare(times, Diffusion.optimal(dst))
    y = torch.randn(5, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    for i, s in enumerate(times):
        x0, _ = p(y, i)
        torch.testing.assert_close(p.drift(y, i), (x0 - y) / (1 - s), rtol=1e-9, atol=1e-9)


def test_sampling_from_the_point_mass():
    """Euler-Maruyama with e* from y = 0 under the bridge, model trained (exactly) under linear:
    the samples have the data's mean and variance."""
    src, dst = L["linear"](), L["brownian_bridge"]()
    model = ConvertedDenoiser(GaussianDenoiser(src, MU, VAR), dst)
    times = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)
    p = model.prepare(times[:-1], Diffusion.optimal(dst))
    gen = torch.Generator().manual_seed(10)
    y = torch.zeros(4000, 2, dtype=torch.float64)
    for k in range(len(times) - 1):
        ds = times[k + 1] - times[k]
        y = y + p.drift(y, k) * ds + p.noise_scale(k) * ds.sqrt() * torch.randn(y.shape, generator=gen,
                                                                               dtype=torch.float64)
    torch.testing.assert_close(y.mean(0), MU, rtol=0, atol=0.08)
    torch.testing.assert_close(y.var(0), VAR, rtol=0.08, atol=0)


def test_round_trip_through_point_mass_coordinates():
    """Gaussian-base model -> point-mass coordinates -> back: the original posteriors (inside)."""
    src, dst = L["linear"](), L["brownian_bridge"]()
    inner = GaussianDenoiser(src, MU, VAR)
    there = ConvertedDenoiser(inner, dst)
    back = ConvertedDenoiser(there, src)
    times = torch.linspace(0.02, 0.98, 9, dtype=torch.float64)
    p, q = back.prepare(times), inner.prepare(times)
    y = torch.randn(4, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    for i in range(len(times)):
        for got, want in zip(p(y, i), q(y, i)):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
