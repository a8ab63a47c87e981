"""ConvertedDenoiser: a model under schedule A served under schedule B (exact predictors, flow_matching)."""

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser, GaussianMixtureDenoiser
from schedalg.models import ConvertedDenoiser, NetworkDenoiser
from schedalg.symbolic import Diffusion, DiffusionError

L = sa.schedules.LIBRARY
MU = torch.tensor([0.7, -1.2], dtype=torch.float64)
VAR = torch.tensor([0.4, 1.5], dtype=torch.float64)
MEANS = torch.tensor([[-2.0, 0.5], [1.5, 1.0], [0.0, -2.0]], dtype=torch.float64)

PAIRS = [("linear", "cosine"), ("linear", "vp_linear"), ("vp_linear", "edm"), ("cosine", "brownian_bridge"),
         ("sub_vp", "trigonometric"), ("edm", "linear")]


def _grid(conv, n=9):
    lo, hi = conv.s_range
    return torch.linspace(lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo), n, dtype=torch.float64)


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("data", ["gaussian", "mixture"])
def test_predictors_carry_over(pair, data):
    """x0_hat and eps_hat of the converted model equal the exact ones under the destination."""
    src, dst = L[pair[0]](), L[pair[1]]()
    if data == "gaussian":
        inner, native = GaussianDenoiser(src, MU, VAR), GaussianDenoiser(dst, MU, VAR)
    else:
        inner, native = GaussianMixtureDenoiser(src, MEANS, 0.1), GaussianMixtureDenoiser(dst, MEANS, 0.1)
    model = ConvertedDenoiser(inner, dst)
    times = _grid(model.conversion)
    p, q = model.prepare(times), native.prepare(times)
    gen = torch.Generator().manual_seed(0)
    a_d, s_d = dst.compile().evaluate(times, "alpha", "sigma")
    for i in range(len(times)):
        x = a_d[i] * MEANS[torch.randint(0, 3, (6,), generator=gen)] + s_d[i] * torch.randn(
            6, 2, generator=gen, dtype=torch.float64)
        for got, want in zip(p(x, i), q(x, i)):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def _euler(prepared, x, times, field):
    for i in range(len(times) - 1):
        x = x + (times[i + 1] - times[i]) * field(prepared, x, i)
    return x


def test_ode_samples_agree():
    """Euler ODE in cosine coordinates: converted linear model == native cosine model, step by step."""
    src, dst = L["linear"](), L["cosine"]()
    model = ConvertedDenoiser(GaussianMixtureDenoiser(src, MEANS, 0.05), dst)
    native = GaussianMixtureDenoiser(dst, MEANS, 0.05)
    times = torch.linspace(0.999, 0.001, 60, dtype=torch.float64)
    p, q = model.prepare(times), native.prepare(times)
    a, sg, da, ds = dst.compile().evaluate(times, "alpha", "sigma", "d_alpha", "d_sigma")

    def native_velocity(prep, x, i):
        x0, eps = prep(x, i)
        return da[i] * x0 + ds[i] * eps

    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out_converted = _euler(p, x, times, lambda prep, y, i: prep.velocity(y, i))
    out_native = _euler(q, x, times, native_velocity)
    torch.testing.assert_close(out_converted, out_native, rtol=1e-9, atol=1e-9)


def test_sde_samples_agree():
    """Euler-Maruyama with the optimal SDE under vp_cosine, same noise: converted == native."""
    src, dst = L["trigonometric"](), L["vp_cosine"]()
    model = ConvertedDenoiser(GaussianMixtureDenoiser(src, MEANS, 0.05), dst)
    native = ConvertedDenoiser(GaussianMixtureDenoiser(dst, MEANS, 0.05), dst)  # identity conversion
    times = torch.linspace(0.98, 0.01, 41, dtype=torch.float64)
    optimal = Diffusion.optimal(dst)
    p, q = model.prepare(times, optimal), native.prepare(times, optimal)
    gen = torch.Generator().manual_seed(13)
    noise = torch.randn(len(times), 64, 2, generator=gen, dtype=torch.float64)
    y = z = noise[-1] * dst.compile().sigma(times[:1])
    for i in range(len(times) - 1):
        ds = times[i + 1] - times[i]
        y = y + p.drift(y, i) * ds + p.noise_scale(i) * ds.abs().sqrt() * noise[i]
        z = z + q.drift(z, i) * ds + q.noise_scale(i) * ds.abs().sqrt() * noise[i]
    torch.testing.assert_close(y, z, rtol=1e-8, atol=1e-8)


def test_velocity_transfer_formula():
    """A' x0 + S' eps == (c'/c) y + c tau' b_src(tau, y/c) (MATH.md drift transfer)."""
    for a, b in PAIRS:
        src, dst = L[a](), L[b]()
        inner = GaussianDenoiser(src, MU, VAR)
        model = ConvertedDenoiser(inner, dst)
        times = _grid(model.conversion, 5)
        p = model.prepare(times)
        tau, c, d_tau, d_c = model.conversion.compile().evaluate(times)
        da, ds = src.compile().evaluate(tau, "d_alpha", "d_sigma")
        y = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        for i in range(len(times)):
            x0, eps = inner.posterior(y / c[i], tau[i])
            b_src = da[i] * x0 + ds[i] * eps
            want = d_c[i] / c[i] * y + c[i] * d_tau[i] * b_src
            torch.testing.assert_close(p.velocity(y, i), want, rtol=1e-8, atol=1e-8 * float(want.abs().max()))


def test_score_transfer():
    """score_dst(s, y) = score_src(tau, y/c) / c."""
    src, dst = L["vp_linear"](), L["edm"]()
    inner = GaussianDenoiser(src, MU, VAR)
    model = ConvertedDenoiser(inner, dst)
    times = _grid(model.conversion, 5)
    p = model.prepare(times)
    tau, c = model.conversion.compile().evaluate(times)[:2]
    sg = src.compile().sigma(tau)
    y = torch.randn(3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 10
    for i in range(len(times)):
        score_src = -inner.posterior(y / c[i], tau[i])[1] / sg[i]
        torch.testing.assert_close(p.score(y, i), score_src / c[i], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "velocity", "score"])
def test_any_prediction_type(prediction):
    """A network predicting any kind under linear serves vp_linear with the exact posteriors."""
    src, dst = L["linear"](), L["vp_linear"]()
    exact = GaussianDenoiser(src, MU, VAR)
    compiled = src.compile()

    def network(x, t):
        x0, eps = exact.posterior(x, t)
        return compiled.convert_prediction(eps, x, t, "eps", prediction) if prediction != "x0" else x0

    inner = NetworkDenoiser(network, src, prediction=prediction)
    model = ConvertedDenoiser(inner, dst)
    times = _grid(model.conversion, 6)
    p, q = model.prepare(times), GaussianDenoiser(dst, MU, VAR).prepare(times)
    y = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for i in range(len(times)):
        for got, want in zip(p(y, i), q(y, i)):
            torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-7)


def test_conditioning_and_guidance_pass_through():
    """Keyword arguments reach the inner model; classifier-free guidance commutes with conversion."""
    src, dst = L["linear"](), L["cosine"]()
    by_label = {0: GaussianDenoiser(src, MU, VAR), 1: GaussianDenoiser(src, -MU, VAR), 2: GaussianDenoiser(src, 0, 1)}

    def network(x, t, label):
        outs = [by_label[int(k)].posterior(x[j:j + 1], t if t.dim() == 0 else t[j])[1] for j, k in enumerate(label)]
        return torch.cat(outs)

    inner = NetworkDenoiser(network, src, prediction="eps", guidance_scale=2.0, uncond={"label": torch.tensor([2])})
    model = ConvertedDenoiser(inner, dst)
    times = _grid(model.conversion, 4)
    p = model.prepare(times)
    y = torch.randn(2, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    labels = torch.tensor([0, 1])
    tau, c = model.conversion.compile().evaluate(times)[:2]
    for i in range(len(times)):
        x0, eps = p(y, i, label=labels)
        u = y / c[i]
        cond = torch.cat([by_label[k].posterior(u[j:j + 1], tau[i])[1] for j, k in enumerate([0, 1])])
        uncond = by_label[2].posterior(u, tau[i])[1]
        want = uncond + 2.0 * (cond - uncond)
        torch.testing.assert_close(eps, want, rtol=1e-9, atol=1e-9)


def test_diffusion_on_wrong_schedule_is_refused():
    model = ConvertedDenoiser(GaussianDenoiser(L["linear"](), MU, VAR), L["cosine"]())
    with pytest.raises(DiffusionError, match="declared on 'cosine'"):
        model.prepare(torch.tensor([0.5], dtype=torch.float64), Diffusion.optimal(L["linear"]()))


def test_unreachable_grid_is_refused():
    model = ConvertedDenoiser(GaussianDenoiser(L["ve"](), MU, VAR), L["linear"]())
    with pytest.raises(sa.errors.DomainError, match="'ve' covers"):
        model.prepare(torch.tensor([1e-6, 0.5], dtype=torch.float64))


# ------------------------------------------------------------------ flow_matching peer


class _VelocityModule(torch.nn.Module):
    """Exact Gaussian velocity under a flow_matching scheduler (x_t = alpha x1 + sigma x0_noise)."""

    def __init__(self, scheduler):
        super().__init__()
        self.scheduler = scheduler

    def forward(self, x, t, **extras):
        out = self.scheduler(t)
        a, sg = out.alpha_t.reshape(-1, 1), out.sigma_t.reshape(-1, 1)
        da, ds = out.d_alpha_t.reshape(-1, 1), out.d_sigma_t.reshape(-1, 1)
        centred = x - a * MU
        denominator = a**2 * VAR + sg**2
        x1 = MU + a * VAR * centred / denominator
        noise = sg * centred / denominator
        return da * x1 + ds * noise


def _fm_schedules():
    """Our schedules for flow_matching's schedulers, with ``flip`` when its time is ``1 - t`` of ours.

    flow_matching's VPScheduler is the VP-linear SDE (beta 0.1 -> 20) in reversed time:
    ``alpha(r) = exp(-T(1 - r)/2)``, so it is compared with ``sa.schedules.vp_linear()`` at
    ``t = 1 - r``, where the velocity changes sign.
    """
    import sympy as sp

    t = sa.t
    return {
        "CondOTScheduler": (sa.Schedule(alpha=t, sigma=1 - t, name="fm_condot"), False),
        "CosineScheduler": (sa.Schedule(alpha=sp.sin(sp.pi * t / 2), sigma=sp.cos(sp.pi * t / 2), name="fm_cosine"),
                            False),
        "LinearVPScheduler": (sa.Schedule(alpha=t, sigma=sp.sqrt(1 - t**2), name="fm_linear_vp"), False),
        "VPScheduler": (sa.schedules.vp_linear(beta_min=0.1, beta_max=20.0), True),
        "PolynomialConvexScheduler": (sa.Schedule(alpha=t**3, sigma=1 - t**3, name="fm_poly3"), False),
    }


@pytest.mark.parametrize("original,new", [("CondOTScheduler", "CosineScheduler"),
                                          ("CosineScheduler", "LinearVPScheduler"),
                                          ("CondOTScheduler", "VPScheduler"),
                                          ("PolynomialConvexScheduler", "CondOTScheduler")])
def test_flow_matching_schedule_transformed_model(original, new):
    """Velocity of flow_matching's ScheduleTransformedModel == ConvertedDenoiser.velocity, 1e-6, float64."""
    fm = pytest.importorskip("flow_matching.path.scheduler")
    make = {"PolynomialConvexScheduler": lambda: fm.PolynomialConvexScheduler(n=3)}
    fm_original = make.get(original, getattr(fm, original))()
    fm_new = make.get(new, getattr(fm, new))()
    ours = _fm_schedules()
    peer = fm.ScheduleTransformedModel(_VelocityModule(fm_original), fm_original, fm_new)

    (source, _), (destination, flip) = ours[original], ours[new]
    model = ConvertedDenoiser(GaussianDenoiser(source, MU, VAR), destination)
    peer_times = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    p = model.prepare(1 - peer_times if flip else peer_times)
    gen = torch.Generator().manual_seed(6)
    for i, r in enumerate(peer_times):
        x = torch.randn(8, 2, generator=gen, dtype=torch.float64) * 1.5
        want = peer(x=x, t=r)  # a scalar time, as its ODESolver passes it
        got = -p.velocity(x, i) if flip else p.velocity(x, i)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_finish_reaches_the_inner_network():
    """PreparedConverted.finish forwards to the inner prepared network (its deferred NaN check)."""
    src, dst = L["linear"](), L["cosine"]()
    inner = NetworkDenoiser(lambda x, t: torch.full_like(x, float("nan")), src, prediction="eps")
    p = ConvertedDenoiser(inner, dst).prepare(torch.tensor([0.5], dtype=torch.float64))
    p(torch.zeros(2, 2, dtype=torch.float64), 0)
    with pytest.raises(sa.models.NetworkOutputError):
        p.finish()
