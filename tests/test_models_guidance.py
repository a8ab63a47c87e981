"""Classifier-free guidance in NetworkDenoiser: formula, batching, and prediction-type invariance."""

from __future__ import annotations

import pytest
import torch

import schedalg as sa
from schedalg.models import NetworkDenoiser

TIMES = torch.tensor([0.9, 0.6, 0.3], dtype=torch.float64)
SCHEDULE = sa.schedules.vp_linear()  # one object: its compiled conversions are cached on it


class LabelNet:
    """A toy conditional network: output depends on x, time and a class label; counts its calls."""

    def __init__(self):
        self.calls = 0
        self.batch_sizes = []

    def __call__(self, x, tau, *, label, scale=1.0):
        self.calls += 1
        self.batch_sizes.append(x.shape[0])
        return scale * (torch.sin(x * (1 + label[:, None].to(x.dtype))) + tau[:, None] * label[:, None].to(x.dtype))


def _denoiser(net, prediction="v", **kw):
    return NetworkDenoiser(net, SCHEDULE, prediction, time_input="t", **kw)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0", "velocity", "score"])
@pytest.mark.parametrize("w", [0.0, 1.0, 3.5])
def test_guidance_equals_the_guided_combination_of_x0_and_eps(prediction, w):
    """Guiding the raw output equals guiding (x0, eps): the conversion is affine in the output."""
    net = LabelNet()
    label = torch.tensor([1, 2, 3])
    null = torch.tensor([0])
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    guided = _denoiser(net, prediction, guidance_scale=w, uncond={"label": null}).prepare(TIMES)
    plain = _denoiser(net, prediction).prepare(TIMES)
    for i in range(len(TIMES)):
        x0, eps = guided(x, i, label=label)
        x0_c, eps_c = plain(x, i, label=label)
        x0_u, eps_u = plain(x, i, label=null.expand(3))
        torch.testing.assert_close(x0, x0_u + w * (x0_c - x0_u), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(eps, eps_u + w * (eps_c - eps_u), rtol=1e-12, atol=1e-12)


def test_batched_guidance_is_one_call_on_a_doubled_batch_and_matches_two_calls():
    label = torch.tensor([1, 2])
    x = torch.randn(2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    batched_net, split_net = LabelNet(), LabelNet()
    batched = _denoiser(batched_net, guidance_scale=2.0, uncond={"label": torch.tensor([0, 0])}).prepare(TIMES)
    split = _denoiser(split_net, guidance_scale=2.0, uncond={"label": torch.tensor([0, 0])},
                      batched_guidance=False).prepare(TIMES)
    a = batched(x, 1, label=label)
    b = split(x, 1, label=label)
    assert batched_net.calls == 1 and batched_net.batch_sizes == [4]
    assert split_net.calls == 2 and split_net.batch_sizes == [2, 2]
    torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def test_shared_non_batch_conditioning_is_passed_once():
    net = LabelNet()
    guided = _denoiser(net, guidance_scale=1.5, uncond={"label": torch.tensor([0])}).prepare(TIMES)
    guided(torch.zeros(2, 3, dtype=torch.float64), 0, label=torch.tensor([1, 1]), scale=2.0)
    assert net.batch_sizes == [4]


def test_guidance_needs_unconditional_kwargs():
    with pytest.raises(sa.errors.PredictionError, match="uncond"):
        _denoiser(LabelNet(), guidance_scale=2.0)


def test_unconditional_keyword_missing_from_the_call_is_rejected():
    guided = _denoiser(LabelNet(), guidance_scale=2.0, uncond={"label": torch.tensor([0])}).prepare(TIMES)
    with pytest.raises(sa.SchedalgError, match="uncond but not in the call"):
        guided(torch.zeros(2, 3, dtype=torch.float64), 0)


def test_unconditional_value_without_batch_dimension_is_rejected():
    guided = _denoiser(lambda x, tau, label, scale: x, guidance_scale=2.0,
                       uncond={"label": torch.tensor([0]), "scale": 3.0}).prepare(TIMES)
    with pytest.raises(sa.SchedalgError, match="'scale'.*leading batch dimension"):
        guided(torch.zeros(2, 3, dtype=torch.float64), 0, label=torch.tensor([1, 1]), scale=1.0)
