"""Property tests for every library schedule: compiled == symbolic, derivatives == autograd,
inverse round trips, monotonicity, boundary values, dtype/device behaviour."""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

import schedalg as sa
from schedalg.compile import QUANTITIES

t = sa.t

NAMES = sorted(sa.schedules.LIBRARY)
SCHEDULES = {name: sa.schedules.LIBRARY[name]() for name in NAMES}
# interior fraction of the domain; the ends are tested separately
FRACTION = st.floats(min_value=1e-3, max_value=1 - 1e-3, allow_nan=False)


def interior_time(schedule, u: float) -> float:
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    return lo + (hi - lo) * u


@pytest.mark.parametrize("name", NAMES)
@given(u=FRACTION)
def test_compiled_matches_symbolic(name, u):
    schedule = SCHEDULES[name]
    tt = interior_time(schedule, u)
    compiled = schedule.compile()
    values = compiled.evaluate(torch.tensor([tt], dtype=torch.float64), *QUANTITIES)
    with mpmath.workdps(40):
        for quantity, value in zip(QUANTITIES, values):
            exact = float(sp.N(getattr(schedule, quantity).subs(t, sp.Float(tt, 40)), 30))
            torch.testing.assert_close(value, torch.tensor([exact], dtype=torch.float64),
                                       rtol=1e-9, atol=1e-12, msg=f"{name}.{quantity} at t={tt}")


@pytest.mark.parametrize("name", NAMES)
@given(u=FRACTION)
def test_derivatives_match_autograd(name, u):
    compiled = SCHEDULES[name].compile()
    tt = torch.tensor([interior_time(SCHEDULES[name], u)], dtype=torch.float64, requires_grad=True)
    for value_name, slope_name in (("alpha", "d_alpha"), ("sigma", "d_sigma"), ("log_snr", "d_log_snr")):
        value = getattr(compiled, value_name)(tt)
        # a constant (e.g. EDM's alpha = 1) is not connected to t: its derivative is 0
        grad = torch.autograd.grad(value.sum(), tt)[0] if value.requires_grad else torch.zeros_like(tt)
        torch.testing.assert_close(grad, getattr(compiled, slope_name)(tt.detach()), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@given(u=FRACTION)
def test_inverse_round_trip(name, u):
    schedule = SCHEDULES[name]
    compiled = schedule.compile()
    tt = torch.tensor([interior_time(schedule, u)], dtype=torch.float64)
    back = compiled.t_of_log_snr(compiled.log_snr(tt))
    torch.testing.assert_close(back, tt, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_log_snr_monotone_in_direction(name):
    schedule = SCHEDULES[name]
    compiled = schedule.compile()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    tt = torch.linspace(lo, hi, 2001, dtype=torch.float64)[1:-1]
    steps = torch.diff(compiled.log_snr(tt))
    assert bool((schedule.direction * steps > 0).all())
    assert bool((schedule.direction * compiled.d_log_snr(tt) > 0).all())


@pytest.mark.parametrize("name", NAMES)
def test_boundary_values(name):
    schedule = SCHEDULES[name]
    compiled = schedule.compile()
    data_end = torch.tensor([float(schedule.t_data)], dtype=torch.float64)
    noise_end = torch.tensor([float(schedule.t_noise)], dtype=torch.float64)
    low, high = schedule.log_snr_range
    assert low < high
    if schedule.reaches_data:
        torch.testing.assert_close(compiled.sigma(data_end), torch.zeros(1, dtype=torch.float64))
        assert high == math.inf
    if schedule.is_point_mass:
        torch.testing.assert_close(compiled.alpha(noise_end), torch.zeros(1, dtype=torch.float64))
        torch.testing.assert_close(compiled.sigma(noise_end), torch.zeros(1, dtype=torch.float64))
    # the inverse maps the ends of the log-SNR range to the ends of the domain
    ends = compiled.t_of_log_snr(torch.tensor([low, high], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([float(schedule.t_noise), float(schedule.t_data)],
                                                  dtype=torch.float64), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_e_star_and_g2_non_negative(name):
    schedule = SCHEDULES[name]
    compiled = schedule.compile()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    tt = torch.linspace(lo, hi, 257, dtype=torch.float64)[1:-1]
    assert bool((compiled.e_star(tt) >= 0).all())
    torch.testing.assert_close(compiled.diffusion_g2(tt), 2 * compiled.e_star(tt))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_output_follows_input_dtype_and_shape(name, dtype):
    schedule = SCHEDULES[name]
    tt = torch.full((3, 2), interior_time(schedule, 0.4), dtype=dtype)
    for quantity in QUANTITIES:
        out = getattr(schedule.compile(), quantity)(tt)
        assert out.dtype == dtype and out.shape == tt.shape, quantity


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_output_on_cuda(name):
    schedule = SCHEDULES[name]
    tt = torch.full((4,), interior_time(schedule, 0.3), dtype=torch.float64, device="cuda")
    out = schedule.compile().alpha(tt)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), schedule.compile().alpha(tt.cpu()))


def test_python_floats_become_float64():
    out = sa.schedules.linear().compile().alpha(0.25)
    assert out.dtype == torch.float64 and float(out) == 0.25


def test_directions_follow_the_papers():
    expected = {"linear": 1, "trigonometric": 1, "polynomial_convex": 1, "brownian_bridge": 1,
                "cosine": -1, "vp_linear": -1, "vp_cosine": -1, "sub_vp": -1, "ve": -1, "edm": -1}
    assert {n: s.direction for n, s in SCHEDULES.items()} == expected


def test_point_mass_and_truncation_flags():
    assert SCHEDULES["brownian_bridge"].is_point_mass
    assert not any(s.is_point_mass for n, s in SCHEDULES.items() if n != "brownian_bridge")
    assert not SCHEDULES["ve"].reaches_data
    assert SCHEDULES["edm"].reaches_data and SCHEDULES["linear"].reaches_data


def test_stable_forms_near_the_data_end():
    """VP's sigma = sqrt(1 - exp(-2B)) is computed as sqrt(-expm1(-2B)): exact at tiny t."""
    vp = sa.schedules.vp_linear()
    tt = torch.tensor([1e-12], dtype=torch.float64)
    sigma = vp.compile().sigma(tt)
    integral = 0.1 * 1e-12 / 2 + (20.0 - 0.1) * 1e-24 / 4
    exact = math.sqrt(-math.expm1(-2 * integral))
    torch.testing.assert_close(sigma, torch.tensor([exact], dtype=torch.float64), rtol=1e-12, atol=0)
    assert "expm1" in vp.compile().source("sigma")


class TestTabulated:
    betas = sa.schedules.discrete_betas("linear")
    schedule = sa.schedules.from_betas(betas)
    abar = np.cumprod(1 - betas)

    def test_knots_reproduce_the_table(self):
        compiled = self.schedule.compile()
        idx = torch.arange(0, 1000, 37, dtype=torch.float64)
        alpha2 = compiled.alpha(idx) ** 2
        torch.testing.assert_close(alpha2, torch.as_tensor(self.abar[idx.long().numpy()]), rtol=1e-12, atol=1e-14)

    @given(u=st.floats(min_value=0.0, max_value=999.0))
    def test_inverse_round_trip(self, u):
        compiled = self.schedule.compile()
        tt = torch.tensor([u], dtype=torch.float64)
        torch.testing.assert_close(compiled.t_of_log_snr(compiled.log_snr(tt)), tt, rtol=1e-9, atol=1e-9)
        assert self.schedule.inverse_log_snr.kind == "numeric"

    def test_variance_preserving_and_derivatives(self):
        compiled = self.schedule.compile()
        tt = torch.linspace(0.5, 998.5, 50, dtype=torch.float64)
        torch.testing.assert_close(compiled.alpha(tt) ** 2 + compiled.sigma(tt) ** 2, torch.ones_like(tt))
        h = 1e-6
        finite_difference = (compiled.alpha(tt + h) - compiled.alpha(tt - h)) / (2 * h)
        torch.testing.assert_close(compiled.d_alpha(tt), finite_difference, rtol=1e-5, atol=1e-9)

    def test_edm_sigma_interpolation(self):
        schedule = sa.schedules.tabulated(self.abar, interpolation="edm_sigma")
        compiled = schedule.compile()
        knots = np.sqrt((1 - self.abar) / self.abar)
        tt = torch.tensor([10.25, 500.5], dtype=torch.float64)
        expected = torch.as_tensor(np.interp(tt.numpy(), np.arange(1000), knots))
        torch.testing.assert_close(compiled.edm_sigma(tt), expected, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("kind", ["linear", "scaled_linear", "squaredcos_cap_v2"])
    def test_beta_tables(self, kind):
        betas = sa.schedules.discrete_betas(kind)
        assert betas.shape == (1000,) and np.all((betas > 0) & (betas < 1))
        assert sa.schedules.from_betas(betas).direction == -1


@pytest.mark.parametrize("name", NAMES)
def test_exact_end_values_on_grids(name):
    """At the domain ends, grids get exact limits (cos(pi/2) would give lambda = -75, not -inf)."""
    schedule = SCHEDULES[name]
    compiled = schedule.compile()
    ends = torch.tensor([float(schedule.domain[0]), float(schedule.domain[1])], dtype=torch.float64)
    alpha, sigma, lam = compiled.evaluate_grid(ends, "alpha", "sigma", "log_snr")
    low, high = schedule.log_snr_range
    expected = (low, high) if schedule.direction > 0 else (high, low)
    assert tuple(lam.tolist()) == expected
    if schedule.reaches_data:
        data_index = 1 if schedule.direction > 0 else 0
        assert float(sigma[data_index]) == 0.0


def test_library_schedules_compile_without_end_repairs(recwarn):
    """Every library schedule and both lazy families compile to float64 code that is finite (or
    the rule's infinity) at both ends by itself: no EndValueWarning (the repair path is for
    user declarations). The iDDPM cosine written naively (sqrt(1 - alpha^2), float offset) is
    still repaired, and says so."""
    import warnings

    from benchmarks._user_schedules import iddpm_naive
    from schedalg.lazy import derive_lazy_family
    from schedalg.symbolic import EndValueWarning

    fresh = [sa.schedules.LIBRARY[name]() for name in NAMES]
    fresh += [derive_lazy_family(kind).schedule() for kind in ("ode", "optimal_sde")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", EndValueWarning)
        for schedule in fresh:
            compiled = sa.Schedule(schedule.alpha, schedule.sigma, domain=schedule.domain,
                                   name=schedule.name).compile()  # a new object: the check runs again
            ends = torch.tensor([compiled.t_min, compiled.t_max], dtype=torch.float64)
            for name, values in zip(("alpha", "sigma", "log_snr"), compiled.function("alpha", "sigma", "log_snr")(ends)):
                assert not bool(values.isnan().any()), (schedule.name, name, values)
    with pytest.warns(EndValueWarning, match="sigma|log_snr"):
        iddpm_naive().compile()
