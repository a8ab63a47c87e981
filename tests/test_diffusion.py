"""Diffusion coefficients: E = c^2 |tau'| e(tau), E* <-> e*, ODE <-> ODE, inverse map, pathwise SDE conversion."""

import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.compile import time_changed_increments
from schedalg.denoisers import GaussianDenoiser
from schedalg.models import ConvertedDenoiser
from schedalg.symbolic import Diffusion, DiffusionError, map_diffusion

L = sa.schedules.LIBRARY
PAIRS = [("linear", "cosine"), ("vp_linear", "edm"), ("linear", "brownian_bridge"), ("sub_vp", "linear"),
         ("cosine", "ve")]


def _interior(conv, n=7):
    lo, hi = conv.s_range
    return torch.linspace(lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo), n, dtype=torch.float64)


@pytest.mark.parametrize("pair", PAIRS)
def test_optimal_maps_to_optimal(pair):
    """c^2 |tau'| e*_src(tau) == e*_dst, evaluated from the map itself (not the identity)."""
    conv = sa.convert(L[pair[0]](), L[pair[1]]())
    mapped = map_diffusion(conv.src.e_star, conv, simplify=False)
    s = _interior(conv)
    want = conv.dst.compile().e_star(s)
    if conv.kind == "symbolic":  # the closed form, at 30 digits (no float cancellation)
        import mpmath  # a SymPy dependency
        mpmath.mp.dps = 30
        fn = sp.lambdify(sa.symbolic.s, mapped.subs(sa.t, sa.symbolic.s), "mpmath")
        got = torch.tensor([float(fn(mpmath.mpf(v))) for v in s.tolist()], dtype=torch.float64)
        rtol = 1e-9
    else:  # tau is a numeric function: the float64 closed form, good to ~1e-8 near ve's data end
        got, rtol = Diffusion(conv.dst, mapped).evaluate(s), 1e-7
    torch.testing.assert_close(got, want, rtol=rtol, atol=1e-12)
    assert Diffusion.optimal(conv.src).to(conv).kind == "optimal"


def test_optimal_map_from_compiled_pieces():
    """The same identity with compiled tau, c, tau' (no symbolic substitution)."""
    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        s = _interior(conv)
        tau, c, d_tau, _ = conv.compile().evaluate(s)
        e_src = conv.src.compile().e_star(tau)
        torch.testing.assert_close(c**2 * d_tau.abs() * e_src, conv.dst.compile().e_star(s), rtol=1e-9, atol=1e-12)


def test_ode_maps_to_ode():
    conv = sa.convert(L["linear"](), L["cosine"]())
    mapped = Diffusion.ode(conv.src).to(conv)
    assert mapped.kind == "ode" and mapped.expr == 0
    assert map_diffusion(sp.Integer(0), conv) == 0


@pytest.mark.parametrize("pair", [("linear", "cosine"), ("vp_linear", "edm")])
def test_inverse_map_round_trip(pair):
    """Mapping e to E and back through the inverse conversion returns e."""
    conv = sa.convert(L[pair[0]](), L[pair[1]]())
    e = Diffusion(conv.src, sp.Rational(3, 10) + sa.t**2 / 5)
    there = e.to(conv)
    back = there.to(conv.inverse())
    t = _interior(conv.inverse())
    torch.testing.assert_close(back.evaluate(t), 0.3 + t**2 / 5, rtol=1e-9, atol=1e-12)
    s = _interior(conv)
    tau, c, d_tau, _ = conv.compile().evaluate(s)
    torch.testing.assert_close(there.evaluate(s), c**2 * d_tau.abs() * (0.3 + tau**2 / 5), rtol=1e-9, atol=1e-12)


def test_negative_diffusion_is_refused():
    schedule = L["linear"]()
    with pytest.raises(DiffusionError, match=">= 0"):
        Diffusion.constant(schedule, -0.1)
    with pytest.raises(DiffusionError, match=">= 0"):
        Diffusion(schedule, sa.t - sp.Rational(1, 2))
    with pytest.raises(DiffusionError, match="real, finite"):
        Diffusion(schedule, sp.sqrt(sa.t - sp.Rational(1, 2)))
    with pytest.raises(DiffusionError, match="schedalg.t only"):
        Diffusion(schedule, sp.Symbol("k") * sa.t)


def test_wrong_conversion_is_refused():
    e = Diffusion.constant(L["linear"](), 0.5)
    with pytest.raises(DiffusionError, match="a conversion from 'linear'"):
        e.to(sa.convert(L["cosine"](), L["edm"]()))


# ------------------------------------------------------------------ pathwise conversion


def _euler_maruyama(prepared, y, times, increments):
    """y += drift ds + sqrt(2 E) dW in own time (ds signed)."""
    for k in range(len(times) - 1):
        y = y + prepared.drift(y, k) * (times[k + 1] - times[k]) + prepared.noise_scale(k) * increments[k]
    return y


def test_pathwise_conversion_converges():
    """c(s) X_tau(s) (source SDE, source noise) vs Y (destination SDE driven by the time-changed
    increments): the gap shrinks with the step, about linearly (Euler-Maruyama, additive noise)."""
    src, dst = L["linear"](), L["cosine"]()
    inner = GaussianDenoiser(src, torch.tensor([0.8, -0.5], dtype=torch.float64),
                             torch.tensor([0.3, 1.2], dtype=torch.float64))
    conv = sa.convert(src, dst)
    big_e = Diffusion(dst, sp.Rational(1, 2) + sa.t / 4)  # any E >= 0 on the destination
    small_e = big_e.to(conv.inverse())  # the source coefficient that reaches it: e = E / (c^2 tau')
    fine = 512
    s_fine = torch.linspace(0.9, 0.1, fine + 1, dtype=torch.float64)  # cosine: generation runs s = 1 -> 0
    tau_fine = conv.time(s_fine)
    gen = torch.Generator().manual_seed(7)
    batch = 256
    d_w_fine = torch.randn(fine, batch, 2, generator=gen, dtype=torch.float64) * \
        (tau_fine[1:] - tau_fine[:-1]).abs().sqrt().reshape(-1, 1, 1)
    a0, sg0 = src.compile().evaluate(tau_fine[:1], "alpha", "sigma")
    x_start = a0 * (0.8 + 0.5 * torch.randn(batch, 2, generator=gen, dtype=torch.float64)) + \
        sg0 * torch.randn(batch, 2, generator=gen, dtype=torch.float64)
    gaps = []
    for n in (32, 64, 128, 256):
        stride = fine // n
        s_grid, tau_grid = s_fine[::stride], tau_fine[::stride]
        d_w_src = d_w_fine.reshape(n, stride, batch, 2).sum(1)
        x_end = _euler_maruyama(ConvertedDenoiser(inner, src).prepare(tau_grid, small_e), x_start, tau_grid, d_w_src)
        d_w_dst = time_changed_increments(conv, s_grid, d_w_src)
        c = conv.scale(s_grid)
        y_end = _euler_maruyama(ConvertedDenoiser(inner, dst).prepare(s_grid, big_e), c[0] * x_start, s_grid,
                                d_w_dst)
        gaps.append(float((y_end - c[-1] * x_end).abs().mean()))
    print("pathwise gaps (n = 32, 64, 128, 256):", gaps)
    assert gaps[-1] < gaps[0] / 4, gaps  # ~1/n: 8x finer steps give a gap at least 4x smaller
    assert all(b < a for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 2e-3, gaps


def test_time_changed_increments_have_destination_variance():
    conv = sa.convert(L["vp_linear"](), L["edm"]())
    s = torch.linspace(60.0, 0.5, 41, dtype=torch.float64)
    tau = conv.time(s)
    d_w = torch.randn(40, 20000, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * \
        (tau[1:] - tau[:-1]).abs().sqrt().reshape(-1, 1)
    out = time_changed_increments(conv, s, d_w)
    ratio = out.var(dim=1) / (s[1:] - s[:-1]).abs()
    torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=0.05, atol=0)
