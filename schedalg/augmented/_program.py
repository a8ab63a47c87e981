"""Samplers as programs of linear sub-steps, with all coefficients computed before the loop.

Every splitting, conjugate and Euler-type step in augmented space has the form

    z <- K z + P eps + N xi,

where ``eps`` is either a fresh network evaluation at the current state (``evaluate``)
or the latest one reused, ``xi ~ N(0, I)`` is fresh noise when ``N`` is present, and
``K, P, N`` are ``k x k`` matrices per step (blockwise: ``(K (x) I) z``). A
:class:`Program` holds the stacked matrices ``(n_steps, k, k)`` of each sub-step and the
times of the network evaluations; :func:`run_program` is the loop. It does no SymPy
work and no host-device synchronization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ._blocks import apply_blocks

__all__ = ["SubStep", "Program", "run_program"]


@dataclass
class SubStep:
    """``z <- K z + P eps + N xi`` (``P``, ``N`` optional); ``evaluate``: fresh ``eps`` first."""

    K: torch.Tensor
    P: torch.Tensor | None = None
    N: torch.Tensor | None = None
    evaluate: bool = False


@dataclass
class Program:
    """Sub-steps applied in order at every step, and ``eval_times`` ``(n_steps, evaluations)``."""

    substeps: list[SubStep]
    eval_times: torch.Tensor
    extra: dict = field(default_factory=dict)


def run_program(program: Program, z: torch.Tensor, eps_at: Callable[[torch.Tensor, int], torch.Tensor],
                noise: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``program`` to ``z``; ``eps_at(z, j)`` evaluates the model at flat evaluation index ``j``."""
    n_steps, per_step = program.eval_times.shape
    dtype = z.dtype
    subs = [SubStep(s.K.to(dtype=dtype, device=z.device),
                    None if s.P is None else s.P.to(dtype=dtype, device=z.device),
                    None if s.N is None else s.N.to(dtype=dtype, device=z.device), s.evaluate)
            for s in program.substeps]
    eps = torch.zeros_like(z)
    for i in range(n_steps):
        j = i * per_step
        for sub in subs:
            if sub.evaluate:
                eps = eps_at(z, j)
                j += 1
            new = apply_blocks(sub.K[i], z)
            if sub.P is not None:
                new = new + apply_blocks(sub.P[i], eps)
            if sub.N is not None:
                new = new + apply_blocks(sub.N[i], noise(z))
            z = new
    return z
