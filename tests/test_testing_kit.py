"""schedalg.testing: the kit passes on the library, flags planted bugs, and drives the
property tests of drift transfer, E* = c^2 |tau'| e*(tau) and the pathwise SDE conversion
over schedules drawn from its grammar.

Each drawn schedule costs a SymPy derivation, so the property tests draw a few examples
under the derandomized 'ci' profile and 25x more under HYPOTHESIS_PROFILE=thorough
(registered in conftest.py).
"""

import subprocess
import sys

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.compile import CompiledConversion
from schedalg.errors import OptionalDependencyError
from schedalg.testing import IdentityError, check_conversion, check_schedule
from schedalg.testing import strategies as sst

L = sa.schedules.LIBRARY
#: examples per property test: 3 under 'ci' (max_examples=40), 75 under 'thorough' (each
#: drawn schedule or pair costs a SymPy derivation of 0.5-5 s)
EXAMPLES = max(3, settings.default.max_examples * 3 // 40)
@pytest.mark.parametrize("name", ["linear", "cosine", "vp_linear", "ve", "edm", "brownian_bridge"])
def test_library_schedules_pass(name):
    report = check_schedule(L[name]())
    assert len(report.checked) >= 20, report.checked  # every identity group ran


def test_warped_vp_schedule_passes():
    """The grammar's warp vp_linear(t -> t^3): sigma underflows to 0 in float64 near t = 0
    (about 1e-9 at the validator's first grid point), yet the schedule is valid; the
    validator decides at 60 digits, and the kit's identities hold on it."""
    from schedalg.testing._strategies import _warped

    report = check_schedule(_warped(L["vp_linear"](), sa.t**3))
    assert len(report.checked) >= 20, report.checked


@pytest.mark.parametrize("pair", [("vp_linear", "edm")])
def test_library_pairs_pass(pair):
    report = check_conversion(L[pair[0]](), L[pair[1]]())
    names = " ".join(report.checked)
    for identity in ("time map", "E*", "drift transfer", "pathwise SDE conversion", "Euler-Maruyama"):
        assert identity in names, (identity, report.checked)


@settings(max_examples=EXAMPLES)
@given(sst.user_schedules(), st.data())
def test_user_schedules_pass(schedule, data):
    points = data.draw(st.lists(sst.times(schedule), max_size=3))
    check_schedule(schedule, points=points)


@settings(max_examples=EXAMPLES)
@given(sst.schedule_pairs(), st.data())
def test_drift_transfer_e_star_and_sde_conversion_on_drawn_pairs(pair, data):
    """Drift transfer, E* = c^2 |tau'| e*(tau), the SDE drift and noise of c X_tau for a drawn
    coefficient, and the closed form of the mapped coefficient, on pairs from the grammar."""
    src, dst = pair
    diffusion = data.draw(sst.diffusions(src))
    check_conversion(src, dst, diffusion=diffusion, pathwise=False)


@settings(max_examples=EXAMPLES)
@given(sst.schedules(), sst.prediction_kinds(), sst.prediction_kinds())
def test_prediction_round_trip_on_drawn_schedules(schedule, src, dst):
    """Converting src -> dst -> src returns the prediction (at interior drawn times)."""
    num = schedule.compile()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    tt = torch.linspace(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo), 7, dtype=torch.float64)
    x, p = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    back = num.convert_prediction(num.convert_prediction(p, x, tt, src, dst), x, tt, dst, src)
    torch.testing.assert_close(back, p, rtol=1e-8, atol=1e-8)


def test_a_wrong_e_star_is_reported_with_identity_and_point(monkeypatch):
    monkeypatch.setattr(sa.Schedule, "e_star", property(lambda self: self.sigma**2 * self.d_log_snr.__abs__()))
    with pytest.raises(IdentityError) as info:
        check_schedule(L["linear"]())
    message = str(info.value)
    # caught as e* against its definition, or (when the compiled e* comes from the derivation
    # record) as the compiled e* against the symbolic one: either way named, with a point
    assert ("e* == sigma^2 |lambda'| / 2: t = " in message or "compiled e_star == symbolic" in message)
    assert "t = " in message and "relative error" in message


def test_a_wrong_scale_derivative_fails_several_identities(monkeypatch):
    original = CompiledConversion.evaluate

    def halved(self, ss, *, check=True):
        tau, c, d_tau, d_c = original(self, ss, check=check)
        return tau, c, d_tau, d_c / 2

    monkeypatch.setattr(CompiledConversion, "evaluate", halved)
    with pytest.raises(IdentityError) as info:
        check_conversion(L["linear"](), L["vp_linear"](), pathwise=False)
    failed = {name for name, _, _ in info.value.failures}
    assert "c' == finite difference of c" in failed
    assert any(name.startswith("drift transfer") for name in failed)
    assert any(name.startswith("pathwise SDE conversion, optimal") for name in failed)


def test_a_wrong_time_map_is_caught_by_the_euler_maruyama_pair(monkeypatch):
    """Only the pathwise pair sees a Brownian time change with the wrong variance."""
    from schedalg.testing import _checks

    def wrong(conversion, s_grid, d_w_src):
        return d_w_src * 0.8
    monkeypatch.setattr(_checks, "time_changed_increments", wrong)
    with pytest.raises(IdentityError, match="Euler-Maruyama"):
        check_conversion(L["linear"](), L["vp_linear"]())


def test_checks_need_no_hypothesis_and_strategies_say_how_to_get_it():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import schedalg as sa\nfrom schedalg.testing import check_schedule, strategies\n"
            "assert callable(check_schedule)\n"
            "try:\n    strategies.schedules()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert OptionalDependencyError.__name__ in out.stdout and "pip install hypothesis" in out.stdout


def test_bad_input_is_refused():
    with pytest.raises(sa.SchedalgError, match="a schedalg.Schedule"):
        check_schedule(sp.sin(sa.t))
