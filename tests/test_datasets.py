"""The bundled real data sets (schedalg.datasets)."""

import torch

from schedalg.datasets import digits


def test_digits_shape_range_and_freshness():
    data = digits()
    assert data.shape == (1797, 64) and data.dtype == torch.float64
    assert float(data.min()) == -1.0 and float(data.max()) == 1.0
    # pixel levels p/8 - 1 for p in 0..16
    torch.testing.assert_close((data + 1) * 8, torch.round((data + 1) * 8))
    data[0, 0] = 5.0
    assert float(digits()[0, 0]) != 5.0
