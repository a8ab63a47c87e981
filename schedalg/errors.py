"""Errors raised by schedalg.

Every error says what was expected, what arrived, and how to fix it. All are
``ValueError`` subclasses so that code catching bad input generically keeps working.
"""

from __future__ import annotations

__all__ = [
    "SchedalgError",
    "ScheduleError",
    "NotMonotoneError",
    "UnboundSymbolError",
    "DomainError",
    "PredictionError",
    "OptionalDependencyError",
]


class SchedalgError(ValueError):
    """Base class of schedalg's input errors.

    Built from three parts so that every message has the same shape:
    what was expected, what arrived, and how to fix it.
    """

    def __init__(self, expected: str, got: str, fix: str | None = None):
        self.expected = expected
        self.got = got
        self.fix = fix
        message = f"expected {expected}; got {got}."
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)


class ScheduleError(SchedalgError):
    """A schedule that is not a valid ``x_t = alpha x0 + sigma eps`` on its domain."""


class NotMonotoneError(ScheduleError):
    """The log-SNR is not strictly monotone on the domain.

    ``interval`` is the (t_lo, t_hi) sub-interval where monotonicity fails.
    """

    def __init__(self, expected: str, got: str, fix: str | None, interval: tuple[float, float]):
        self.interval = interval
        super().__init__(expected, got, fix)


class UnboundSymbolError(ScheduleError):
    """An expression has a free symbol other than the time symbol and no value bound to it."""


class DomainError(SchedalgError):
    """A time, log-SNR or argument outside the range an object covers."""


class PredictionError(SchedalgError):
    """An unknown prediction type, or a network output that cannot be used."""


class OptionalDependencyError(ImportError):
    """An optional package is needed for the requested feature but is not installed."""
