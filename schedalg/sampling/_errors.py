"""Errors of the sampling layer (all :class:`schedalg.errors.SchedalgError` subclasses)."""

from __future__ import annotations

from ..errors import DomainError, SchedalgError

__all__ = ["GridError", "SolverError", "SamplingError", "ExportError"]


class GridError(DomainError):
    """A time grid that cannot be sampled on: too short, duplicate, non-monotone or out of range."""


class SolverError(SchedalgError):
    """An unknown solver name, bad solver options, or a solver that cannot run on a grid."""


class SamplingError(SchedalgError):
    """Bad input to a sampling run: noise of the wrong shape, seeds, draws, a non-finite coefficient."""


class ExportError(SchedalgError):
    """A sampler that cannot be exported, or an exported file that cannot be loaded."""
