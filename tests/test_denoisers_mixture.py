"""Property tests of the exact mixture / optimal denoisers (schedalg.denoisers._mixture)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser, GaussianMixtureDenoiser, OptimalDenoiser
from schedalg.errors import SchedalgError
from schedalg.models import Denoiser

EDM = sa.schedules.edm()


def _data(n: int = 37, dim: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _brute_force(means, variance, log_w, x, alpha, sigma):
    """Bayes' rule written out with full distances and torch.softmax (float64)."""
    c2 = alpha**2 * variance + sigma**2
    logits = log_w - ((x[:, None, :] - alpha * means[None]) ** 2).sum(-1) / (2 * c2)
    r = torch.softmax(logits, dim=1)
    x0_given = means[None] + alpha * variance * (x[:, None, :] - alpha * means[None]) / c2
    eps_given = sigma * (x[:, None, :] - alpha * means[None]) / c2
    return (r[..., None] * x0_given).sum(1), (r[..., None] * eps_given).sum(1)


@given(chunk=st.integers(1, 50), log_sigma=st.floats(-3, 2), alpha=st.floats(0.05, 1.0),
       variance=st.sampled_from([0.0, 0.01, 0.3]), direct=st.booleans())
def test_chunked_equals_direct_softmax(chunk, log_sigma, alpha, variance, direct):
    means = _data()
    weights = torch.rand(means.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1
    den = GaussianMixtureDenoiser(EDM, means, variance, weights, chunk_size=chunk, direct=direct)
    x = alpha * means[:6] + 10**log_sigma * _data(6, seed=2)
    x0, eps = den.denoise(x, alpha, 10**log_sigma)
    ref_x0, ref_eps = _brute_force(means, variance, torch.log(weights / weights.sum()), x, alpha, 10**log_sigma)
    assert_close(x0, ref_x0, rtol=1e-9, atol=1e-9)
    assert_close(eps, ref_eps, rtol=1e-9, atol=1e-9)


def test_single_component_matches_gaussian_denoiser():
    schedule = sa.schedules.vp_linear()
    mean, variance = _data(1, 4)[0], 0.37
    mixture = GaussianMixtureDenoiser(schedule, mean[None], variance)
    gaussian = GaussianDenoiser(schedule, mean, variance)
    x = _data(9, 4, seed=3)
    for tt in (0.0, 1e-4, 0.3, 1.0):
        for a, b in zip(mixture.posterior(x, tt), gaussian.posterior(x, torch.tensor(tt, dtype=torch.float64))):
            assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_consistency_x_equals_alpha_x0_plus_sigma_eps():
    """x = alpha x0_hat + sigma eps_hat for every schedule and time (the pair is a decomposition)."""
    means = _data()
    for schedule in (sa.schedules.linear(), sa.schedules.cosine(), sa.schedules.vp_linear(), EDM):
        den = GaussianMixtureDenoiser(schedule, means, 0.05, chunk_size=8)
        num = schedule.compile()
        tt = torch.linspace(num.t_min, num.t_max, 7, dtype=torch.float64)[1:-1]
        x = _data(5, seed=4)
        for time in tt:
            x0, eps = den.posterior(x, time)
            alpha, sigma = num.evaluate(time, "alpha", "sigma")
            assert_close(alpha * x0 + sigma * eps, x, rtol=1e-10, atol=1e-10)


@given(alpha=st.floats(0.01, 1.0), sigma=st.floats(0.01, 20.0))
def test_edm_view_is_schedule_independent(alpha, sigma):
    """(x0, eps) at (alpha, sigma, x) equal those at (1, sigma/alpha, x/alpha)."""
    den = GaussianMixtureDenoiser(EDM, _data(), 0.02, chunk_size=16)
    x = _data(4, seed=5) * 3
    a = den.denoise(x, alpha, sigma)
    b = den.denoise(x / alpha, 1.0, sigma / alpha)
    assert_close(a[0], b[0], rtol=1e-9, atol=1e-9)
    assert_close(a[1], b[1], rtol=1e-9, atol=1e-9)


def test_large_sigma_limit_is_the_data_mean():
    data = _data(50)
    den = OptimalDenoiser(EDM, data, chunk_size=7)
    x = _data(3, seed=6)
    x0, eps = den.denoise(x, 1.0, 1e8)
    assert_close(x0, data.mean(0).expand(3, -1), rtol=0, atol=1e-7)
    # at alpha = 0 (pure noise) the limit holds exactly, and eps_hat = x / sigma
    x0, eps = den.denoise(x, 0.0, 2.0)
    assert_close(x0, data.mean(0).expand(3, -1))
    assert_close(eps, x / 2.0)


def test_small_sigma_limit_is_the_nearest_data_point():
    data = _data(200, 8)
    den = OptimalDenoiser(EDM, data, chunk_size=33)
    x = _data(10, 8, seed=7)
    nearest = data[torch.cdist(x, data).argmin(1)]
    for sigma in (1e-3, 1e-8, 0.0):
        assert_close(den.edm_denoiser(x, sigma), nearest, rtol=0, atol=1e-12)
    # states on a data point stay there, in float32 too (the logits are float64)
    x0, eps = den.denoise(data[:4].float(), 1.0, 1e-4)
    assert x0.dtype == torch.float32
    assert_close(x0, data[:4].float())
    assert_close(den.denoise(data[:4], 1.0, 0.0)[1], torch.zeros(4, 8, dtype=torch.float64))


def test_small_sigma_precision_matches_direct_differences():
    data = _data(300, 16) * 0.5
    x = data[:5] + 0.01 * _data(5, 16, seed=8)
    expanded = OptimalDenoiser(EDM, data, chunk_size=64).edm_denoiser(x, 0.02)
    direct = OptimalDenoiser(EDM, data, chunk_size=64, direct=True).edm_denoiser(x, 0.02)
    assert_close(expanded, direct, rtol=1e-10, atol=1e-10)


@given(log_sigma=st.floats(-1, 1.5), variance=st.sampled_from([0.0, 0.1]))
def test_mean_shift_and_tweedie_identity(log_sigma, variance):
    """D(x; s) = x + s_eff^2 grad log p(x) (Tweedie), and for v = 0 D* is one mean-shift step.

    p is the noised density sum_i w_i N(x; y_i, (v + s^2) I); the gradient is by autograd.
    The mean-shift step is sum_i K(x - y_i) y_i / sum_i K(x - y_i) with a Gaussian kernel.
    """
    data = _data(40, 3)
    sigma = 10**log_sigma
    den = GaussianMixtureDenoiser(EDM, data, variance, chunk_size=9)
    x = _data(6, 3, seed=9).requires_grad_(True)
    c2 = variance + sigma**2
    log_p = torch.logsumexp(-((x[:, None, :] - data[None]) ** 2).sum(-1) / (2 * c2), dim=1).sum()
    (score,) = torch.autograd.grad(log_p, x)
    x = x.detach()
    x0 = den.edm_denoiser(x, sigma)
    # Tweedie for x = x0 + s eps: E[x0|x] = x + s^2 grad log p_x(x) with p the law of x;
    # the mixture's E[x0|x] shrinks within components: m + v (x - m)/c2 with m the mean-shift point
    kernel = torch.softmax(-((x[:, None, :] - data[None]) ** 2).sum(-1) / (2 * c2), dim=1)
    mean_shift = kernel @ data
    assert_close(x + c2 * score, mean_shift, rtol=1e-9, atol=1e-9)
    assert_close(x0, mean_shift + variance * (x - mean_shift) / c2, rtol=1e-9, atol=1e-9)
    assert_close(x + sigma**2 * score, x0, rtol=1e-9, atol=1e-9)


def test_prepared_contract_and_image_shapes():
    data = _data(20, 12).reshape(20, 3, 2, 2)
    den = OptimalDenoiser(sa.schedules.linear(), data)
    assert isinstance(den, Denoiser)
    times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    prepared = den.prepare(times)
    x = _data(4, 12, seed=10).reshape(4, 3, 2, 2).float()
    for i in range(3):
        x0, eps = prepared(x, i)
        assert x0.shape == x.shape and x0.dtype == torch.float32
        ref = den.posterior(x, times[i])
        assert_close(x0, ref[0])
        assert_close(eps, ref[1])
    # per-sample times
    x0, _ = den.posterior(x, torch.tensor([0.1, 0.2, 0.3, 0.9], dtype=torch.float64))
    for b, tt in enumerate((0.1, 0.2, 0.3, 0.9)):
        assert_close(x0[b], den.posterior(x[b:b + 1], tt)[0][0])


def test_zero_weights_are_ignored():
    data = _data(10)
    weights = torch.zeros(10, dtype=torch.float64)
    weights[3] = 2.0
    den = GaussianMixtureDenoiser(EDM, data, 0.0, weights, chunk_size=2)
    x0, _ = den.denoise(_data(3, seed=11), 1.0, 0.5)
    assert_close(x0, data[3].expand(3, -1))


@pytest.mark.parametrize("kwargs, match", [
    (dict(means=torch.zeros(5)), "means of shape"),
    (dict(means=torch.full((2, 3), float("nan"))), "finite means"),
    (dict(means=torch.zeros(2, 3), variance=-1.0), "variance"),
    (dict(means=torch.zeros(2, 3), variance=torch.ones(3)), "variance"),
    (dict(means=torch.zeros(2, 3), weights=torch.tensor([1.0, -1.0])), "weights"),
    (dict(means=torch.zeros(2, 3), weights=torch.zeros(2)), "weights"),
    (dict(means=torch.zeros(2, 3), weights=torch.ones(3)), "weights"),
    (dict(means=torch.zeros(2, 3), chunk_size=0), "chunk_size"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(SchedalgError, match=match):
        GaussianMixtureDenoiser(EDM, **kwargs)


def test_bad_state_shape():
    den = OptimalDenoiser(EDM, torch.zeros(3, 4))
    with pytest.raises(SchedalgError, match="states of shape"):
        den.denoise(torch.zeros(2, 5), 1.0, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    data = _data(500, 16)
    den = OptimalDenoiser(EDM, data, chunk_size=100)
    x = _data(8, 16, seed=12)
    cpu = den.edm_denoiser(x, 0.3)
    gpu = den.edm_denoiser(x.cuda(), torch.tensor(0.3, device="cuda"))
    assert gpu.device.type == "cuda"
    assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=1e-10)
