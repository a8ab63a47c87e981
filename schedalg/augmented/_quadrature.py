"""Composite Gauss-Legendre quadrature of matrix functions over many intervals at once.

Used where SymPy finds no closed-form integral (e.g. ``Phi = int A W`` for PSLD, whose
``W`` holds the Cholesky factor of the Lyapunov covariance).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["integrate_intervals"]


def integrate_intervals(fn: Callable[[torch.Tensor], torch.Tensor], lo: torch.Tensor, hi: torch.Tensor,
                        nodes: int = 16, panels: int = 4) -> torch.Tensor:
    """``int_lo^hi fn(s) ds`` for each pair ``(lo[i], hi[i])`` (float64).

    ``fn`` maps times ``(...)`` to values ``(..., k, k)``; each interval is split into
    ``panels`` equal panels with ``nodes``-point Gauss-Legendre rules.
    """
    x, w = (torch.as_tensor(v, dtype=torch.float64) for v in np.polynomial.legendre.leggauss(nodes))
    edges = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, panels + 1, dtype=torch.float64)
    a, b = edges[:, :-1], edges[:, 1:]                                  # (n, panels)
    points = (a + b)[..., None] / 2 + (b - a)[..., None] / 2 * x        # (n, panels, nodes)
    values = fn(points)                                                 # (n, panels, nodes, k, k)
    weights = ((b - a)[..., None] / 2 * w)[..., None, None]
    return (values * weights).sum(dim=(1, 2))
