"""Numeric properties of the flow shift (proofs: proofs/prove_models_interop.py)."""

from __future__ import annotations

import torch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.interop import flow_match_schedule, shift_noise_level, unshift_noise_level

levels = st.floats(min_value=1e-6, max_value=1.0)
shifts = st.floats(min_value=0.1, max_value=10.0)


@given(levels, shifts)
def test_unshift_inverts_shift(u, m):
    u64 = torch.tensor(u, dtype=torch.float64)
    torch.testing.assert_close(unshift_noise_level(shift_noise_level(u64, m), m), u64, rtol=1e-13, atol=1e-15)


@given(levels, shifts, shifts)
def test_two_shifts_are_one_shift_by_the_product(u, a, b):
    u64 = torch.tensor(u, dtype=torch.float64)
    torch.testing.assert_close(shift_noise_level(shift_noise_level(u64, b), a), shift_noise_level(u64, a * b),
                               rtol=1e-12, atol=1e-15)


@settings(max_examples=8)  # each example builds and compiles a schedule
@given(shifts)
def test_flow_match_schedule_values(m):
    schedule = flow_match_schedule(m)
    tt = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    alpha, sigma = schedule.compile().evaluate(tt, "alpha", "sigma")
    torch.testing.assert_close(sigma, shift_noise_level(tt, m), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(alpha + sigma, torch.ones_like(tt), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), "3"])
def test_flow_match_schedule_rejects_bad_shifts(bad):
    with pytest.raises(sa.SchedalgError, match="shift > 0"):
        flow_match_schedule(bad)
