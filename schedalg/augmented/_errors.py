"""Errors of the augmented-space layer (all :class:`~schedalg.errors.SchedalgError` subclasses)."""

from __future__ import annotations

from ..errors import SchedalgError

__all__ = ["LinearSDEError", "SamplerError"]


class LinearSDEError(SchedalgError):
    """A linear SDE ``dz = F z dt + G dW`` that is malformed, or a request it cannot answer."""


class SamplerError(SchedalgError):
    """An augmented-space sampler used with inputs it does not support."""
