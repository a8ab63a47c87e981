"""Seeded standard-normal noise whose values do not depend on the batch size.

Sample ``b`` of a batch draws from its own generator, seeded from ``(seed, b, stream)``
through numpy's ``SeedSequence`` hash (independent streams, no overlap between
neighbouring seeds), computed with Python ints in
:func:`schedalg.sampling._standalone.seeded_normal`, which exported samplers share.
A batch of 8 therefore holds exactly the first 8 samples of a batch of 64 with the same seed: results can be reproduced one sample at a time. Drawing happens on the
CPU before the sampling loop (``B`` small generator calls), then moves to the device.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._errors import SamplingError
from ._standalone import seeded_normal

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
                      dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normals for a batch of ``shape = (B, ...)``, per-sample seeded.

    Returns ``(B, ...)`` when ``count`` is None, else ``(count, B, ...)`` (draw ``k`` of
    every sample, contiguous per draw as the sampling loop reads them).
    """
    seed = _check_seed(seed)
    shape = tuple(int(s) for s in shape)
    if not shape or shape[0] < 1:
        raise SamplingError("a shape (batch, ...) with batch >= 1", f"{shape}", None)
    return seeded_normal(shape, seed, int(stream), None if count is None else int(count), dtype, device)
