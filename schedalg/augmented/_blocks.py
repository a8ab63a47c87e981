"""Blockwise ``(k x k) (x) I_D`` products: a small matrix acting on the block axis of a state.

States are tensors ``(B, k, *data_shape)``; a matrix ``(k, k)`` acts on axis 1 only, so a
``(k D) x (k D)`` matrix is never built.
"""

from __future__ import annotations

import torch

from ..sampling import Blocks

__all__ = ["apply_blocks", "per_block"]


def apply_blocks(matrix: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``(matrix (x) I) z`` for ``matrix`` ``(k, k)`` and ``z`` ``(B, k, ...)``."""
    return Blocks(matrix.to(z.dtype))(z)


def per_block(vector: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``vector (x) x``: ``(k,)`` times ``(B, ...)`` -> ``(B, k, ...)``."""
    shape = (1, -1) + (1,) * (x.dim() - 1)
    return vector.to(x.dtype).reshape(shape) * x.unsqueeze(1)
