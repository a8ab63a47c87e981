"""Prediction-type conversions round-trip numerically on every library schedule."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.symbolic import PREDICTION_KINDS

NAMES = sorted(sa.schedules.LIBRARY)


def direct(compiled, kind, x0, eps, tt):
    alpha, sigma, d_alpha, d_sigma = compiled.evaluate(tt, "alpha", "sigma", "d_alpha", "d_sigma")
    return {"x0": x0, "eps": eps, "v": alpha * eps - sigma * x0, "velocity": d_alpha * x0 + d_sigma * eps,
            "score": -eps / sigma}[kind]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(u=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_all_pairs(name, u, seed):
    schedule = sa.schedules.LIBRARY[name]()
    compiled = schedule.compile()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    tt = torch.tensor(lo + (hi - lo) * u, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 3, generator=g, dtype=torch.float64)
    alpha, sigma = compiled.evaluate(tt, "alpha", "sigma")
    x = alpha * x0 + sigma * eps
    for src, dst in itertools.permutations(PREDICTION_KINDS, 2):
        out = sa.convert_prediction(schedule, direct(compiled, src, x0, eps, tt), x, tt, src, dst)
        torch.testing.assert_close(out, direct(compiled, dst, x0, eps, tt), rtol=1e-8, atol=1e-8,
                                   msg=f"{name}: {src} -> {dst}")


def test_per_sample_times():
    schedule = sa.schedules.cosine()
    compiled = schedule.compile()
    tt = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    x0 = torch.randn(3, 2, dtype=torch.float64)
    eps = torch.randn(3, 2, dtype=torch.float64)
    alpha, sigma = (v[:, None] for v in compiled.evaluate(tt, "alpha", "sigma"))
    x = alpha * x0 + sigma * eps
    v = alpha * eps - sigma * x0
    torch.testing.assert_close(compiled.convert_prediction(v, x, tt, "v", "x0"), x0)
