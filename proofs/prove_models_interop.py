"""Identities behind schedalg.models.NetworkDenoiser and schedalg.interop (diffusers, k-diffusion).

Each test states an identity in its docstring and reduces a residual to 0 with SymPy.
"""

from __future__ import annotations

import pytest
import sympy as sp

import schedalg as sa
from schedalg.interop import flow_match_schedule, shift_noise_level, unshift_noise_level
from schedalg.models import INPUT_SCALINGS, TIME_INPUTS
from schedalg.symbolic import prediction_basis, prediction_conversion

t = sa.t

u, v, m, a, b = sp.symbols("u v m a b", positive=True)
s, sd, w = sp.symbols("s sigma_data w", positive=True)
X0, EPS, PC, PU = sp.symbols("x0 eps p_c p_u")
GENERIC = sa.Schedule(alpha=sp.Function("alpha")(t), sigma=sp.Function("sigma")(t), name="generic")


def test_unshift_inverts_shift():
    """unshift(shift(u)) = u and shift(unshift(v)) = v, shift(u) = m u / (1 + (m - 1) u)."""
    assert sp.simplify(unshift_noise_level(shift_noise_level(u, m), m) - u) == 0
    assert sp.simplify(shift_noise_level(unshift_noise_level(v, m), m) - v) == 0


def test_shifting_twice_is_shifting_by_the_square():
    """shift_a(shift_b(u)) = shift_{ab}(u): a double shift m is a single shift m^2 (diffusers' sigma_min)."""
    assert sp.simplify(shift_noise_level(shift_noise_level(u, b), a) - shift_noise_level(u, a * b)) == 0


def test_flow_match_schedule_is_the_shifted_rectified_flow():
    """alpha = (1 - t)/(1 + (m - 1) t) = 1 - shift(t), sigma = shift(t): alpha + sigma = 1."""
    schedule = flow_match_schedule(m)
    assert sp.simplify(schedule.sigma - shift_noise_level(t, m)) == 0
    assert sp.simplify(schedule.alpha - (1 - shift_noise_level(t, m))) == 0


def test_diffusers_flow_prediction_is_velocity_of_the_unshifted_path():
    """x_u = (1 - u) x0 + u eps has d x_u / du = eps - x0: diffusers' flow_prediction."""
    schedule = flow_match_schedule(1)
    velocity = schedule.d_alpha * X0 + schedule.d_sigma * EPS
    assert sp.simplify(velocity - (EPS - X0)) == 0


def test_shifted_schedule_velocity_is_the_chain_rule():
    """velocity of flow_match(m) in t = shift'(t) (eps - x0): a different prediction than diffusers' output."""
    schedule = flow_match_schedule(m)
    velocity = schedule.d_alpha * X0 + schedule.d_sigma * EPS
    assert sp.simplify(velocity - sp.diff(shift_noise_level(t, m), t) * (EPS - X0)) == 0


def _vp_in_edm(level):
    """The VP coefficients at EDM noise level s: alpha = 1/sqrt(1 + s^2), sigma = s/sqrt(1 + s^2)."""
    return 1 / sp.sqrt(1 + level**2), level / sp.sqrt(1 + level**2)


def test_edm_input_scaling_on_the_edm_schedule_gives_the_vp_state():
    """c_in = 1/sqrt(s^2 + 1) ('edm', sigma_data = 1) maps x_edm = x0 + s eps to x_vp = alpha x0 + sigma eps."""
    edm = sa.schedules.edm(80)
    c_in = INPUT_SCALINGS["edm"](edm, sp.Integer(1)).subs(t, s)
    alpha, sigma = _vp_in_edm(s)
    assert sp.simplify(c_in * (X0 + s * EPS) - (alpha * X0 + sigma * EPS)) == 0


def test_edm_input_scaling_is_karras_c_in_on_the_edm_state():
    """On any schedule: 1/sqrt(sigma^2 + sd^2 alpha^2) x_t = c_in^EDM(sigma/alpha) (x_t/alpha), c_in^EDM = 1/sqrt(s^2 + sd^2)."""
    c_in = INPUT_SCALINGS["edm"](GENERIC, sd)
    level = GENERIC.sigma / GENERIC.alpha
    xt = GENERIC.alpha * X0 + GENERIC.sigma * EPS
    karras = 1 / sp.sqrt(level**2 + sd**2) * (xt / GENERIC.alpha)
    residual = sp.simplify((c_in * xt - karras).subs({GENERIC.alpha: a, GENERIC.sigma: b}))
    assert residual == 0


def _vp_schedule_in_edm_levels():
    """The VP schedule whose time is the EDM noise level: alpha = 1/sqrt(1 + t^2), sigma = t/sqrt(1 + t^2)."""
    alpha, sigma = _vp_in_edm(t)
    return sa.Schedule(alpha=alpha, sigma=sigma, domain=(0, 80), name="vp_in_edm_levels")


def test_v_of_a_vp_table_in_edm_coordinates():
    """v_vp = alpha eps - sigma x0 = (eps - s x0)/sqrt(1 + s^2): c_out = sqrt(1 + s^2) makes it v of EDM
    (both v's from the package's prediction_basis)."""
    vp, edm = _vp_schedule_in_edm_levels(), sa.schedules.edm(80)
    v_vp = sum(c * k for c, k in zip(prediction_basis(vp, "v"), (X0, EPS))).subs(t, s)
    v_edm = sum(c * k for c, k in zip(prediction_basis(edm, "v"), (X0, EPS))).subs(t, s)
    assert sp.simplify(sp.sqrt(1 + s**2) * v_vp - v_edm) == 0


def test_ddim_commutes_with_the_edm_scaling():
    """DDIM in EDM coordinates, x0 + s_n eps, times alpha_n is DDIM in VP, alpha_n x0 + sigma_n eps:
    convert(edm, vp in EDM levels) has tau(s) = s and c(s) = alpha(s) (the package's conversion)."""
    vp = _vp_schedule_in_edm_levels()
    conv = sa.convert(sa.schedules.edm(80), vp)
    alpha, sigma = _vp_in_edm(s)
    from schedalg.symbolic import s as s_conv
    assert sp.simplify(conv.tau - s_conv) == 0
    c_s = conv.c.subs(s_conv, s)
    assert sp.simplify(c_s - alpha) == 0
    assert sp.simplify(c_s * (X0 + s * EPS) - (alpha * X0 + sigma * EPS)) == 0


@pytest.mark.parametrize("name, expected", [("sigma", GENERIC.sigma / GENERIC.alpha),
                                            ("log_sigma", sp.log(GENERIC.sigma / GENERIC.alpha)),
                                            ("c_noise", sp.log(GENERIC.sigma / GENERIC.alpha) / 4),
                                            ("noise_level", GENERIC.sigma)])
def test_time_inputs(name, expected):
    """sigma = sigma_t/alpha, log_sigma = -lambda/2, c_noise = log(sigma)/4 (Karras et al. 2022), noise_level = sigma_t."""
    got = TIME_INPUTS[name](GENERIC).subs({GENERIC.alpha: a, GENERIC.sigma: b})
    assert sp.simplify(sp.expand_log(got - expected.subs({GENERIC.alpha: a, GENERIC.sigma: b}), force=True)) == 0


@pytest.mark.parametrize("kind", sa.PREDICTION_KINDS)
def test_guidance_commutes_with_prediction_conversion(kind):
    """c_x x + c_p (p_u + w (p_c - p_u)) = x0_u + w (x0_c - x0_u) with x0_k = c_x x + c_p p_k."""
    c_x, c_p = prediction_conversion(GENERIC, kind, "x0")
    x = sp.Symbol("x")
    guided = c_x * x + c_p * (PU + w * (PC - PU))
    separate = (c_x * x + c_p * PU) + w * ((c_x * x + c_p * PC) - (c_x * x + c_p * PU))
    assert sp.simplify(guided - separate) == 0


def test_kdiffusion_state():
    """x_t / alpha = x0 + (sigma/alpha) eps: a D(x, sigma) on the EDM state serves any schedule."""
    xt = GENERIC.alpha * X0 + GENERIC.sigma * EPS
    scaling = INPUT_SCALINGS["to_edm"](GENERIC, 1)
    assert sp.simplify(scaling * xt - (X0 + TIME_INPUTS["sigma"](GENERIC) * EPS)) == 0


def test_output_skip_and_scaling_fold_into_the_conversion():
    """With p = c_skip x + c_out F: c_x x + c_p p = (c_x + c_p c_skip) x + (c_p c_out) F (how prepare folds
    them); the package's NetworkDenoiser with a v-network, c_skip and c_out returns exactly that."""
    import torch

    from schedalg.models import NetworkDenoiser

    c_x, c_p, c_skip, c_out, x, F = sp.symbols("c_x c_p c_skip c_out x F")
    assert sp.expand(c_x * x + c_p * (c_skip * x + c_out * F) - ((c_x + c_p * c_skip) * x + (c_p * c_out) * F)) == 0
    schedule = sa.schedules.cosine()
    skip, scale = sp.Rational(1, 4) * t, 1 + t**2
    net = lambda x_in, time: torch.tanh(x_in) + 0.1 * time.reshape(-1, 1)  # noqa: E731
    den = NetworkDenoiser(net, schedule, "v", "t", output_skip=skip, output_scaling=scale)
    times = torch.tensor([0.3, 0.7], dtype=torch.float64)
    prepared = den.prepare(times)
    xs = torch.tensor([[0.5, -1.0], [1.5, 0.2]], dtype=torch.float64)
    for i, time in enumerate(times.tolist()):
        got_x0, _ = prepared(xs, i)
        out = net(xs, torch.tensor([time], dtype=torch.float64))
        cx, cp = (float(v.subs(t, time)) for v in prediction_conversion(schedule, "v", "x0"))
        p = float(skip.subs(t, time)) * xs + float(scale.subs(t, time)) * out
        torch.testing.assert_close(got_x0, cx * xs + cp * p, rtol=1e-10, atol=1e-12)


def test_edm_preconditioning_reproduces_the_denoiser():
    """Karras et al. 2022: c_skip x + c_out F with F = (D - c_skip x)/c_out is D, for the scalings used in tests."""
    x, D = sp.symbols("x D")
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / sp.sqrt(s**2 + sd**2)
    assert sp.simplify(c_skip * x + c_out * ((D - c_skip * x) / c_out) - D) == 0
    # the package's EDM-preconditioned NetworkDenoiser around F = (D - c_skip x)/c_out, fed
    # (c_in x, c_noise = log(s)/4), returns D (sigma_data = 1/2, D the optimal denoiser of two points)
    import torch

    from schedalg.denoisers import OptimalDenoiser
    from schedalg.models import NetworkDenoiser

    half = sp.Rational(1, 2)
    skip, scale = (e.subs(sd, half).subs(s, t) for e in (c_skip, c_out))
    edm = sa.schedules.edm(80)
    optimal = OptimalDenoiser(edm, torch.tensor([[-0.6], [0.9]], dtype=torch.float64))
    skip_fn, scale_fn = (sp.lambdify(t, e, "math") for e in (skip, scale))

    def raw(x_in, c_noise):
        level = float(torch.exp(4 * c_noise.reshape(-1)[0]))
        x = x_in * (level**2 + 0.25) ** 0.5  # undo c_in = 1/sqrt(s^2 + sd^2)
        return (optimal.edm_denoiser(x, torch.tensor(level, dtype=torch.float64)) - skip_fn(level) * x) / scale_fn(level)

    den = NetworkDenoiser(raw, edm, "x0", "c_noise", input_scaling="edm", sigma_data=0.5, output_skip=skip,
                          output_scaling=scale)
    times = torch.tensor([3.0, 0.4], dtype=torch.float64)
    prepared = den.prepare(times)
    xs = torch.tensor([[1.2], [-0.3], [0.1]], dtype=torch.float64)
    for i, level in enumerate(times.tolist()):
        want = optimal.edm_denoiser(xs, torch.tensor(level, dtype=torch.float64))
        torch.testing.assert_close(prepared(xs, i)[0], want, rtol=1e-10, atol=1e-12)
