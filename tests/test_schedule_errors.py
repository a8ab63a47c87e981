"""Every invalid schedule is refused with an error that says what was expected, what
arrived and how to fix it."""

import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.errors import (DomainError, NotMonotoneError, PredictionError, SchedalgError, ScheduleError,
                             UnboundSymbolError)

t = sa.t


def test_not_monotone_reports_the_interval():
    # lambda = 2 log(alpha/sigma) with alpha/sigma = 1 + (t - 1/2)^2 has its minimum at t = 1/2
    with pytest.raises(NotMonotoneError) as info:
        sa.Schedule(alpha=1 + (t - sp.Rational(1, 2)) ** 2, sigma=sp.Integer(1))
    lo, hi = info.value.interval
    assert lo <= 0.5 <= hi and hi - lo < 0.2
    assert "monotone" in str(info.value) and "Fix:" in str(info.value)


def test_flat_log_snr_is_not_monotone():
    with pytest.raises(NotMonotoneError):
        sa.Schedule(alpha=sp.Integer(1), sigma=sp.Integer(2))


def test_negative_alpha_inside_domain():
    with pytest.raises(ScheduleError, match="alpha"):
        sa.Schedule(alpha=t - sp.Rational(1, 2), sigma=1 - t)


def test_complex_sigma_inside_domain():
    with pytest.raises(ScheduleError, match="real"):
        sa.Schedule(alpha=t, sigma=sp.sqrt(sp.Rational(1, 2) - t))


def test_non_finite_inside_domain():
    with pytest.raises(ScheduleError, match="finite"):
        sa.Schedule(alpha=t, sigma=1 / (t - sp.Rational(1, 2)) ** 2)


def test_positivity_is_decided_by_the_mathematics_not_by_float64_underflow():
    """vp_linear with t -> t^3: sigma = sqrt(1 - exp(-(0.1 t^3 + 9.95 t^6))) is about 3e-9 at the
    first grid point, 0 in float64. The validator looks again at 60 digits and accepts it;
    schedules that really are <= 0, complex or negative at an end are still refused."""
    vp = sa.schedules.vp_linear()
    warped = sa.Schedule(vp.alpha.subs(t, t**3), vp.sigma.subs(t, t**3), domain=vp.domain, name="vp(t^3)")
    assert warped.direction == -1 and warped.log_snr_range[1] == float("inf")
    sigma, lam = warped.compile().evaluate(torch.tensor([1e-7, 0.5], dtype=torch.float64), "sigma", "log_snr")
    assert float(sigma[0]) > 0 and bool(torch.isfinite(lam).all())
    with pytest.raises(ScheduleError, match="alpha.*> 0 inside"):  # -7.7e-6 at the first grid point
        sa.Schedule(alpha=t - sp.Rational(1, 10**5), sigma=1 - t)
    with pytest.raises(ScheduleError, match="real"):
        sa.Schedule(alpha=1 - t, sigma=sp.sqrt(t - sp.Rational(1, 10**5)) + 1)
    with pytest.raises(ScheduleError, match="at the end"):  # -1e-30 at t = 0: below zero at the end
        sa.Schedule(alpha=1 - t, sigma=t - sp.Rational(1, 10**30))


def test_unbound_symbol():
    beta = sp.Symbol("beta")
    with pytest.raises(UnboundSymbolError) as info:
        sa.Schedule(alpha=sp.exp(-beta * t), sigma=sp.sqrt(1 - sp.exp(-2 * beta * t)))
    assert "beta" in str(info.value) and "params" in str(info.value)


def test_declared_symbol_then_bound():
    beta = sp.Symbol("beta", positive=True)
    symbolic = sa.Schedule(alpha=sp.exp(-beta * t), sigma=sp.sqrt(1 - sp.exp(-2 * beta * t)),
                           params={beta: None}, name="vp_const")
    assert not symbolic.is_bound
    with pytest.raises(UnboundSymbolError, match="bind"):
        symbolic.compile()
    bound = symbolic.bind(beta=3.0)
    assert bound.is_bound and bound.direction == -1
    torch.testing.assert_close(bound.compile().alpha(torch.tensor([1.0], dtype=torch.float64)),
                               torch.exp(torch.tensor([-3.0], dtype=torch.float64)))


def test_bind_unknown_parameter():
    with pytest.raises(UnboundSymbolError, match="parameters among"):
        sa.schedules.vp_linear(sp.Symbol("bmin", positive=True), 20.0).bind(gamma=1.0)


def test_domain_short_of_the_data_end():
    with pytest.raises(DomainError, match="extend the domain"):
        sa.Schedule(alpha=t, sigma=1 - t, domain=(0, 0.9))


def test_bad_domain():
    with pytest.raises(ScheduleError, match="t_min < t_max"):
        sa.Schedule(alpha=t, sigma=1 - t, domain=(1, 0))


def test_not_an_expression():
    with pytest.raises(ScheduleError):
        sa.Schedule(alpha=object(), sigma=1 - t)


def test_unknown_prediction_type():
    with pytest.raises(PredictionError, match="epsilon"):
        sa.schedules.linear().compile().prediction_coefficients("epsilon", "x0")


def test_log_snr_out_of_range():
    ve = sa.schedules.ve().compile()
    with pytest.raises(DomainError, match="range"):
        ve.t_of_log_snr(torch.tensor([50.0], dtype=torch.float64))


def test_errors_are_value_errors():
    assert issubclass(SchedalgError, ValueError)


def test_bad_tabulated_tables():
    with pytest.raises(ScheduleError, match="inside"):
        sa.schedules.tabulated([0.9, 1.0, 0.5])
    with pytest.raises(ScheduleError, match="at least 2"):
        sa.schedules.tabulated([0.5])
    with pytest.raises(NotMonotoneError):
        sa.schedules.tabulated([0.9, 0.5, 0.6, 0.1])
    with pytest.raises(ScheduleError, match="betas"):
        sa.schedules.from_betas([0.1, -0.1])
