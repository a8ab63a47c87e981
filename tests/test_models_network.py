"""NetworkDenoiser: every prediction type x time input round-trips an exact model.

The "network" below is built from the exact Gaussian posterior: it reads the time input
it receives, finds which grid time that is using the test's own (independent) formula
for that time input, undoes the input scaling with the test's own formula, and returns
the exact prediction of its kind (again written out here, not taken from schedalg's
conversion code). The wrapper must hand back the exact ``(x0, eps)``.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.models import NetworkDenoiser, NetworkOutputError, PreparedDenoiser

KINDS = ("eps", "x0", "v", "velocity", "score")


def _schedules():
    betas = sa.schedules.discrete_betas("linear", 50, beta_start=1e-3, beta_end=0.2)
    return {
        "vp_linear": (sa.schedules.vp_linear(), torch.linspace(0.9, 0.05, 6, dtype=torch.float64)),
        "linear": (sa.schedules.linear(), torch.linspace(0.1, 0.9, 6, dtype=torch.float64)),
        "tabulated": (sa.schedules.from_betas(betas), torch.tensor([48.0, 37.5, 20.0, 11.25, 3.0, 0.5],
                                                                   dtype=torch.float64)),
    }


SCHEDULES = _schedules()


def _basics(schedule, times):
    alpha, sigma, d_alpha, d_sigma = schedule.compile().evaluate(times, "alpha", "sigma", "d_alpha", "d_sigma")
    return alpha, sigma, d_alpha, d_sigma


def _expected_time_input(name, schedule, times):
    """The time input of each name, written independently of schedalg's implementation."""
    alpha, sigma, _, _ = _basics(schedule, times)
    lo, hi = (float(e) for e in schedule.domain)
    return {
        "t": times,
        "index": (times - lo) / (hi - lo) * (1000 - 1 if not hasattr(schedule, "alphas_cumprod") else 49),
        "sigma": sigma / alpha,
        "log_sigma": torch.log(sigma / alpha),
        "c_noise": torch.log(sigma / alpha) / 4,
        "noise_level": sigma,
        "callable": 3 * times + 1,
        "sympy": 1000 * sigma,
    }[name]


def _time_input_spec(name, schedule):
    if name == "callable":
        return lambda tt: 3 * tt + 1
    if name == "sympy":
        return 1000 * schedule.sigma
    return name


def _expected_c_in(name, schedule, times):
    alpha, sigma, _, _ = _basics(schedule, times)
    return {
        None: torch.ones_like(times),
        "edm": 1 / torch.sqrt(sigma**2 + 0.25 * alpha**2),
        "to_edm": 1 / alpha,
        "callable": 2 + times,
    }[name]


class ExactNetwork:
    """Returns the exact prediction of ``kind`` for Gaussian data, reading only (x_in, tau)."""

    def __init__(self, schedule, kind, times, tau_table, c_in_table, mean, var):
        self.gauss = GaussianDenoiser(schedule, mean, var)
        self.kind = kind
        self.times = times
        self.tau_table = tau_table
        self.c_in_table = c_in_table
        self.basics = _basics(schedule, times)
        self.calls = []

    def __call__(self, x_in, tau, **cond):
        assert tau.shape == (x_in.shape[0],)
        j = int(torch.argmin((self.tau_table - tau[0]).abs()))
        torch.testing.assert_close(tau, self.tau_table[j].expand_as(tau), rtol=1e-12, atol=1e-12)
        self.calls.append(j)
        x = x_in / self.c_in_table[j]
        x0, eps = self.gauss.posterior(x, self.times[j])
        alpha, sigma, d_alpha, d_sigma = (q[j] for q in self.basics)
        return {"x0": x0, "eps": eps, "v": alpha * eps - sigma * x0, "velocity": d_alpha * x0 + d_sigma * eps,
                "score": -eps / sigma}[self.kind]


def _roundtrip(schedule_name, kind, time_name, c_in_name=None):
    schedule, times = SCHEDULES[schedule_name]
    mean, var = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.3, 1.0, 2.5])
    tau_table = _expected_time_input(time_name, schedule, times)
    c_in_table = _expected_c_in(c_in_name, schedule, times)
    net = ExactNetwork(schedule, kind, times, tau_table, c_in_table, mean, var)
    c_in_spec = (lambda tt: 2 + tt) if c_in_name == "callable" else c_in_name
    model = NetworkDenoiser(net, schedule, prediction=kind, time_input=_time_input_spec(time_name, schedule),
                            num_steps=1000 if time_name == "index" and schedule_name != "tabulated" else None,
                            input_scaling=c_in_spec, sigma_data=0.5)
    prepared = model.prepare(times)
    assert isinstance(prepared, PreparedDenoiser)
    gauss = GaussianDenoiser(schedule, mean, var)
    generator = torch.Generator().manual_seed(1)
    for i in range(len(times)):
        x = 2 * torch.randn(4, 3, generator=generator, dtype=torch.float64)
        x0, eps = prepared(x, i)
        x0_ref, eps_ref = gauss.posterior(x, times[i])
        torch.testing.assert_close(x0, x0_ref, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(eps, eps_ref, rtol=1e-9, atol=1e-9)
    assert net.calls == list(range(len(times)))
    prepared.finish()


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("time_name", ["t", "index", "sigma", "log_sigma", "c_noise", "noise_level",
                                       "callable", "sympy"])
def test_every_prediction_and_time_input_round_trips(schedule_name, kind, time_name):
    _roundtrip(schedule_name, kind, time_name)


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("c_in_name", ["edm", "to_edm", "callable"])
def test_input_scalings_round_trip(schedule_name, c_in_name):
    _roundtrip(schedule_name, "v", "sigma", c_in_name)


def test_edm_input_scaling_is_karras_c_in_on_alpha_one_schedules():
    """On EDM (alpha = 1) c_in = 1/sqrt(sigma^2 + sigma_data^2), Karras et al. 2022 Table 1."""
    schedule = sa.schedules.edm(80.0)
    times = torch.tensor([80.0, 10.0, 1.0, 0.1], dtype=torch.float64)
    seen = []
    model = NetworkDenoiser(lambda x, s: (seen.append(x.clone()), torch.zeros_like(x))[1], schedule, "x0",
                            "sigma", input_scaling="edm", sigma_data=0.5)
    prepared = model.prepare(times)
    x = torch.ones(1, 2, dtype=torch.float64)
    for i in range(len(times)):
        prepared(x, i)
    got = torch.stack([s[0, 0] for s in seen])
    torch.testing.assert_close(got, 1 / torch.sqrt(times**2 + 0.25), rtol=1e-14, atol=0)


def test_round_time_and_integer_time_dtype():
    schedule, _ = SCHEDULES["tabulated"]
    times = torch.tensor([48.6, 20.2, 3.5], dtype=torch.float64)
    seen = []

    def net(x, tau):
        seen.append(tau.clone())
        return torch.zeros_like(x)

    NetworkDenoiser(net, schedule, time_dtype=torch.long).prepare(times)(torch.zeros(2, 1, dtype=torch.float64), 1)
    NetworkDenoiser(net, schedule, round_time=True).prepare(times)(torch.zeros(2, 1, dtype=torch.float64), 2)
    assert seen[0].dtype == torch.long and seen[0].tolist() == [20, 20]
    assert seen[1].dtype == torch.float64 and seen[1].tolist() == [4.0, 4.0]  # round half to even: 3.5 -> 4


def test_network_dtype_is_inferred_from_module_and_results_follow_x():
    schedule = sa.schedules.vp_linear()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(0.5))

        def forward(self, x, tau):
            assert x.dtype == torch.float32 and tau.dtype == torch.float32
            return self.scale * x

    prepared = NetworkDenoiser(Net(), schedule, "eps").prepare(torch.tensor([0.5], dtype=torch.float64))
    x = torch.randn(3, 2, dtype=torch.float64)
    with torch.no_grad():
        x0, eps = prepared(x, 0)
    assert x0.dtype == torch.float64 and eps.dtype == torch.float64
    torch.testing.assert_close(eps, (0.5 * x.float()).double())


def test_conditioning_kwargs_and_fixed_kwargs_reach_the_network():
    schedule = sa.schedules.linear()
    got = {}

    def net(x, tau, *, label, flag):
        got.update(label=label, flag=flag)
        return torch.zeros_like(x)

    prepared = NetworkDenoiser(net, schedule, "velocity", network_kwargs={"flag": True}).prepare(
        torch.tensor([0.3, 0.6], dtype=torch.float64))
    labels = torch.tensor([1, 2])
    prepared(torch.zeros(2, 4, dtype=torch.float64), 0, label=labels)
    assert got["label"] is labels and got["flag"] is True


def test_network_outputs_with_sample_attribute_or_tuple_are_accepted():
    schedule = sa.schedules.linear()

    class Out:
        def __init__(self, sample):
            self.sample = sample

    times = torch.tensor([0.5], dtype=torch.float64)
    x = torch.randn(2, 3, dtype=torch.float64)
    a = NetworkDenoiser(lambda x, t: Out(x), schedule, "x0").prepare(times)(x, 0)
    b = NetworkDenoiser(lambda x, t: (x, None), schedule, "x0").prepare(times)(x, 0)
    torch.testing.assert_close(a[0], x)
    torch.testing.assert_close(b[0], x)


# ---------------------------------------------------------------------- bad input


def _prepared(net, prediction="eps", check_finite="deferred", schedule=None, times=(0.8, 0.5, 0.2), **kw):
    schedule = schedule or sa.schedules.vp_linear()
    model = NetworkDenoiser(net, schedule, prediction, check_finite=check_finite, **kw)
    return model.prepare(torch.tensor(times, dtype=torch.float64))


def test_unknown_prediction_type_is_rejected():
    with pytest.raises(sa.errors.PredictionError, match="prediction type"):
        NetworkDenoiser(lambda x, t: x, sa.schedules.linear(), prediction="epsilon")


def test_unknown_time_input_and_scaling_are_rejected():
    with pytest.raises(sa.SchedalgError, match="time input"):
        NetworkDenoiser(lambda x, t: x, sa.schedules.linear(), time_input="timestep")
    with pytest.raises(sa.SchedalgError, match="input scaling"):
        NetworkDenoiser(lambda x, t: x, sa.schedules.linear(), input_scaling="karras")
    with pytest.raises(sa.SchedalgError, match="free symbols"):
        NetworkDenoiser(lambda x, t: x, sa.schedules.linear(), time_input=sp.Symbol("k") * sa.t)


def test_index_time_input_needs_num_steps_on_continuous_schedules():
    with pytest.raises(sa.SchedalgError, match="num_steps"):
        NetworkDenoiser(lambda x, t: x, sa.schedules.vp_linear(), time_input="index")


def test_non_callable_network_and_non_schedule_are_rejected():
    with pytest.raises(sa.SchedalgError, match="callable network"):
        NetworkDenoiser(3, sa.schedules.linear())
    with pytest.raises(sa.SchedalgError, match="training schedule"):
        NetworkDenoiser(lambda x, t: x, "vp")


def test_user_time_function_with_wrong_shape_is_rejected():
    model = NetworkDenoiser(lambda x, t: x, sa.schedules.linear(), time_input=lambda tt: torch.zeros(7))
    with pytest.raises(sa.SchedalgError, match="one value per time"):
        model.prepare(torch.tensor([0.2, 0.4], dtype=torch.float64))


def test_wrong_output_shape_names_step_and_time():
    prepared = _prepared(lambda x, t: x[:, :2])
    with pytest.raises(NetworkOutputError, match=r"step 1 \(t = 0\.5\).*shape \(2, 2\)"):
        prepared(torch.zeros(2, 3, dtype=torch.float64), 1)


def test_non_float_and_wrong_dtype_outputs_are_rejected():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(NetworkOutputError, match="floating-point"):
        _prepared(lambda x, t: torch.zeros(x.shape, dtype=torch.long))(x, 0)
    with pytest.raises(NetworkOutputError, match=r"dtype torch\.float32"):
        _prepared(lambda x, t: x.float())(x, 2)
    x0, _ = _prepared(lambda x, t: x.float(), strict_dtype=False)(x, 2)
    assert x0.dtype == torch.float64


def test_non_tensor_output_is_rejected():
    with pytest.raises(NetworkOutputError, match="return a tensor"):
        _prepared(lambda x, t: {"sample": x})(torch.zeros(1, 1, dtype=torch.float64), 0)


def _nan_at(step_time, value=float("nan")):
    def net(x, tau):
        out = torch.zeros_like(x)
        return out + value if abs(float(tau[0]) - step_time) < 1e-9 else out
    return net


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_output_deferred_check_raises_after_the_loop_naming_the_first_bad_step(value):
    prepared = _prepared(_nan_at(0.5, value), time_input="t")
    x = torch.ones(2, 3, dtype=torch.float64)
    for i in range(3):
        prepared(x, i)  # no error inside the loop: no host sync
    with pytest.raises(NetworkOutputError, match=r"step 1 \(t = 0\.5\).*NaN or inf"):
        prepared.finish()
    prepared.finish()  # reset: reported once


def test_nan_output_eager_check_raises_at_the_step():
    prepared = _prepared(_nan_at(0.2), check_finite="eager")
    x = torch.ones(2, 3, dtype=torch.float64)
    prepared(x, 0)
    with pytest.raises(NetworkOutputError, match=r"step 2 \(t = 0\.2\)"):
        prepared(x, 2)


def test_nan_output_check_off_returns_nan():
    prepared = _prepared(_nan_at(0.8), check_finite=False)
    x0, _ = prepared(torch.ones(1, 1, dtype=torch.float64), 0)
    assert math.isnan(float(x0))
    prepared.finish()


def test_bad_check_finite_mode_is_rejected():
    with pytest.raises(sa.errors.PredictionError, match="check_finite"):
        NetworkDenoiser(lambda x, t: x, sa.schedules.linear(), check_finite="sometimes")


def test_undefined_conversion_at_an_end_names_step_and_time():
    """An eps network cannot give x0 where alpha = 0 (cosine at t = 1)."""
    prepared = _prepared(lambda x, t: x, "eps", schedule=sa.schedules.cosine(), times=(1.0, 0.5), time_input="t")
    prepared(torch.ones(1, 2, dtype=torch.float64), 1)
    with pytest.raises(NetworkOutputError, match=r"finite x0_hat for a 'eps' network.*step 0 \(t = 1\)"):
        prepared(torch.ones(1, 2, dtype=torch.float64), 0)


def test_prepare_rejects_non_1d_times():
    model = NetworkDenoiser(lambda x, t: x, sa.schedules.linear())
    with pytest.raises(sa.errors.DomainError, match="1-D"):
        model.prepare(torch.zeros(2, 2))


def test_deferred_calls_make_no_host_sync(monkeypatch):
    """The hot path reads nothing back from the device: no item/bool/float/tolist/cpu calls."""
    schedule, times = SCHEDULES["vp_linear"]
    x = torch.randn(3, 2, dtype=torch.float64)
    y = torch.ones(3)
    reads = {}
    for mode in ("deferred", "eager"):
        prepared = NetworkDenoiser(lambda x, tau, y: 0.5 * x, schedule, "v", "c_noise", input_scaling="edm",
                                   guidance_scale=2.0, uncond={"y": torch.zeros(1)},
                                   check_finite=mode).prepare(times)
        prepared(x, 0, y=y)  # first call casts the tables (allowed once per dtype/device)
        reads[mode] = []
        for name in ("item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy"):
            original = getattr(torch.Tensor, name)

            def spy(self, *args, _name=name, _original=original, _log=reads[mode], **kwargs):
                _log.append(_name)
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, spy)
        for i in range(1, len(times)):
            prepared(x, i, y=y)
        monkeypatch.undo()
    assert reads["deferred"] == []
    assert reads["eager"] == ["__bool__"] * (len(times) - 1)  # the spy sees the eager mode's syncs


def test_sampler_reports_deferred_nan_after_the_loop():
    """schedalg.sampling calls PreparedNetwork.finish() after its loop: the error names the first bad step."""
    from schedalg.sampling import TimeGrid, sample

    schedule = SCHEDULES["vp_linear"][0]
    grid = TimeGrid.from_times(schedule, [0.9, 0.7, 0.5, 0.3, 0.1])
    calls = []

    def net(x, tau):
        calls.append(1)
        return torch.full_like(x, float("nan")) if len(calls) >= 3 else torch.zeros_like(x)

    with pytest.raises(NetworkOutputError, match=r"step 2 \(t = 0\.5\)"):
        sample(NetworkDenoiser(net, schedule, "eps"), torch.ones(2, 3, dtype=torch.float64), grid, "euler")
    assert len(calls) == 4  # the loop ran to its end without a host sync, then raised


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (sync debug mode)")
def test_prepared_network_makes_no_cuda_sync():
    schedule, times = SCHEDULES["vp_linear"]
    net = torch.nn.Linear(3, 3).double().cuda()
    model = NetworkDenoiser(lambda x, tau, y: net(x) * tau[:, None], schedule, "v", "c_noise", input_scaling="edm",
                            guidance_scale=1.5, uncond={"y": torch.zeros(1, device="cuda")})
    prepared = model.prepare(times.cuda())
    x = torch.randn(4, 3, dtype=torch.float64, device="cuda")
    y = torch.ones(4, device="cuda")
    prepared(x, 0, y=y)  # first call casts the tables
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad():
            for i in range(1, len(times)):
                x0, eps = prepared(x, i, y=y)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    prepared.finish()


def test_edm_preconditioning_with_skip_and_output_scaling():
    """A raw EDM network F with D = c_skip x + c_out F(c_in x, c_noise) (Karras et al. 2022, Table 1)."""
    schedule, sd = sa.schedules.edm(80.0), 0.5
    mean, var = torch.tensor([0.2, -0.4]), torch.tensor([0.25, 0.3])
    exact = GaussianDenoiser(schedule, mean, var)

    def raw(x_in, c_noise):
        s = torch.exp(4 * c_noise)[:, None]  # c_noise = log(s)/4
        x = x_in * torch.sqrt(s**2 + sd**2)
        x0, _ = exact.posterior(x, s[:, 0])
        return (x0 - sd**2 / (s**2 + sd**2) * x) / (s * sd / torch.sqrt(s**2 + sd**2))

    s = sa.t
    model = NetworkDenoiser(raw, schedule, "x0", "c_noise", input_scaling="edm", sigma_data=sd,
                            output_skip=sd**2 / (s**2 + sd**2), output_scaling=s * sd / sp.sqrt(s**2 + sd**2))
    times = torch.tensor([60.0, 5.0, 0.7, 0.05], dtype=torch.float64)
    prepared = model.prepare(times)
    x = 3 * torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for i, tt in enumerate(times):
        got = prepared(x, i)
        want = exact.posterior(x, tt)
        torch.testing.assert_close(got[0], want[0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got[1], want[1], rtol=1e-10, atol=1e-10)


@settings(max_examples=25)
@given(st.floats(min_value=0.02, max_value=0.98), st.sampled_from(KINDS),
       st.sampled_from(["t", "sigma", "log_sigma", "c_noise", "noise_level"]))
def test_round_trip_at_random_times(time, kind, time_name):
    """Property: at any interior time, any kind and time input, the wrapper recovers the exact (x0, eps)."""
    schedule = SCHEDULES["vp_linear"][0]
    times = torch.tensor([time], dtype=torch.float64)
    mean, var = torch.tensor([0.1, 1.5]), torch.tensor([0.5, 2.0])
    net = ExactNetwork(schedule, kind, times, _expected_time_input(time_name, schedule, times), torch.ones(1),
                       mean, var)
    prepared = NetworkDenoiser(net, schedule, kind, time_name).prepare(times)
    x = torch.tensor([[0.3, -2.0], [1.0, 4.0]], dtype=torch.float64)
    x0, eps = prepared(x, 0)
    x0_ref, eps_ref = GaussianDenoiser(schedule, mean, var).posterior(x, times[0])
    torch.testing.assert_close(x0, x0_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(eps, eps_ref, rtol=1e-9, atol=1e-9)
