"""Seeded standard-normal noise whose values do not depend on the batch size.

Sample ``b`` of a batch draws from its own generator, seeded from ``(seed, b, stream)``
through numpy's ``SeedSequence`` (independent streams, no overlap between neighbouring
seeds). A batch of 8 therefore holds exactly the first 8 samples of a batch of 64 with
the same seed: results can be reproduced one sample at a time, and ``offset`` gives the
draws of samples ``offset, offset + 1, ...`` directly (so a slice of a large run, e.g. on
one process of many, draws exactly the noise the full batch would). Drawing happens on the
CPU before the sampling loop (``B`` small generator calls), then moves to the device.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._errors import SamplingError

__all__ = ["per_sample_normal", "STREAM_INITIAL", "STREAM_STEPS"]

#: Stream index of the initial noise (``x`` at the noise end).
STREAM_INITIAL = 0
#: Stream index of the per-step noise of stochastic solvers.
STREAM_STEPS = 1


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SamplingError("a seed: an int >= 0", repr(seed), "pass e.g. seed=0")
    return int(seed)


def per_sample_normal(shape: Sequence[int], seed: int, *, stream: int = STREAM_INITIAL, count: int | None = None,
                      dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                      offset: int = 0) -> torch.Tensor:
    """Standard normals for a batch of ``shape = (B, ...)``, per-sample seeded.

    Returns ``(B, ...)`` when ``count`` is None, else ``(count, B, ...)`` (draw ``k`` of
    every sample, contiguous per draw as the sampling loop reads them). Row ``b`` is
    sample ``offset + b``: ``per_sample_normal((n, ...), seed, offset=a)`` equals rows
    ``a:a+n`` of a batch of ``a + n`` drawn with ``offset=0``.
    """
    seed = _check_seed(seed)
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise SamplingError("an offset: an int >= 0 (the index of the batch's first sample)", repr(offset),
                            "pass e.g. offset=1024")
    shape = tuple(int(s) for s in shape)
    if not shape or shape[0] < 1:
        raise SamplingError("a shape (batch, ...) with batch >= 1", f"{shape}", None)
    per = shape[1:] if count is None else (int(count),) + shape[1:]
    samples = []
    for b in range(shape[0]):
        state = np.random.SeedSequence([seed, int(offset) + b, stream]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator(device="cpu").manual_seed(int(state[0]) << 32 | int(state[1]))
        samples.append(torch.randn(per, generator=generator, dtype=dtype))
    stacked = torch.stack(samples, dim=0 if count is None else 1)
    return stacked.to(device)
