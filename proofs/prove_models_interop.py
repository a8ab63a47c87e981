"""Identities behind schedalg.models.NetworkDenoiser and schedalg.interop (diffusers, k-diffusion).

Each test states an identity in its docstring and reduces a residual to 0 with SymPy.
"""

from __future__ import annotations

import pytest
import sympy as sp

import schedalg as sa
from schedalg.interop import flow_match_schedule, shift_noise_level, unshift_noise_level
from schedalg.models import INPUT_SCALINGS, TIME_INPUTS
from schedalg.symbolic import prediction_conversion
from schedalg.symbolic._symbols import t

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


def test_v_of_a_vp_table_in_edm_coordinates():
    """v_vp = alpha eps - sigma x0 = (eps - s x0)/sqrt(1 + s^2): c_out = sqrt(1 + s^2) makes it v of EDM."""
    alpha, sigma = _vp_in_edm(s)
    v_vp = alpha * EPS - sigma * X0
    v_edm = 1 * EPS - s * X0  # v of the schedule alpha = 1, sigma = s
    assert sp.simplify(sp.sqrt(1 + s**2) * v_vp - v_edm) == 0


def test_ddim_commutes_with_the_edm_scaling():
    """DDIM in EDM coordinates, x0 + s_n eps, times alpha_n is DDIM in VP, alpha_n x0 + sigma_n eps."""
    alpha, sigma = _vp_in_edm(s)
    assert sp.simplify(alpha * (X0 + s * EPS) - (alpha * X0 + sigma * EPS)) == 0


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
    """With p = c_skip x + c_out F: c_x x + c_p p = (c_x + c_p c_skip) x + (c_p c_out) F (how prepare folds them)."""
    c_x, c_p, c_skip, c_out, x, F = sp.symbols("c_x c_p c_skip c_out x F")
    assert sp.expand(c_x * x + c_p * (c_skip * x + c_out * F) - ((c_x + c_p * c_skip) * x + (c_p * c_out) * F)) == 0


def test_edm_preconditioning_reproduces_the_denoiser():
    """Karras et al. 2022: c_skip x + c_out F with F = (D - c_skip x)/c_out is D, for the scalings used in tests."""
    x, D = sp.symbols("x D")
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / sp.sqrt(s**2 + sd**2)
    assert sp.simplify(c_skip * x + c_out * ((D - c_skip * x) / c_out) - D) == 0
