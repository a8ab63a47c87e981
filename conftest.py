"""Shared configuration of tests/ and proofs/: hypothesis profiles, one torch thread."""

import os
import tempfile

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile("dev", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# many more random examples (not derandomized): HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_testing_kit.py
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(1)  # small models: threading overhead dominates on 2 cores

# derivations are cached on disk; tests start from an empty cache of their own so that results
# never depend on what another run left behind (SCHEDALG_TEST_CACHE_DIR overrides, e.g. to reuse one)
os.environ["SCHEDALG_CACHE_DIR"] = os.environ.get("SCHEDALG_TEST_CACHE_DIR") or tempfile.mkdtemp(prefix="schedalg-cache-")
