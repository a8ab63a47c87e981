"""Small real data sets that need no download."""

from __future__ import annotations

from functools import lru_cache

import torch

from .._optional import require

__all__ = ["digits"]


@lru_cache(maxsize=1)
def _digits_array():
    datasets = require("sklearn.datasets", "the digits data set (schedalg.datasets.digits)")
    return datasets.load_digits().data  # (1797, 64), integers 0..16


def digits() -> torch.Tensor:
    """scikit-learn's 8x8 handwritten digits as a float64 tensor (1797, 64) in ``[-1, 1]``.

    Pixel values ``p in {0, ..., 16}`` map to ``p / 8 - 1``. Bundled with scikit-learn
    (Alpaydin & Kaynak, UCI), loaded lazily; a fresh tensor on each call.
    """
    return torch.as_tensor(_digits_array(), dtype=torch.float64) / 8.0 - 1.0
