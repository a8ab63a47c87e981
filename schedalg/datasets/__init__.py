"""Real data sets for tests, demos and benchmarks (loaded lazily, nothing downloaded)."""

from ._digits import digits as digits

__all__ = ["digits"]
