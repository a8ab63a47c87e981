"""Augmented samplers as sub-steps ``z <- K z + P eps + N xi``, written as programs of the shared interpreter.

Every splitting, conjugate and Euler-type step in augmented space has the form

    z <- K z + P eps + N xi,

where ``eps`` is either a fresh network evaluation at the current state (``evaluate``)
or the latest one reused, ``xi ~ N(0, I)`` is fresh noise when ``N`` is present, and
``K, P, N`` are ``k x k`` matrices per step acting on the block axis (``(K (x) I) z``).
:class:`SubSteps` holds the stacked matrices ``(n_steps, k, k)`` of each sub-step and the
times of the network evaluations; :meth:`SubSteps.program` writes them as a
:class:`schedalg.sampling.Program` with :class:`schedalg.sampling.Blocks` weights, run by
the same interpreter as every other sampler (no SymPy work, no host-device sync in the loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sampling import Blocks, Program, ProgramBuilder

__all__ = ["SubStep", "SubSteps"]


@dataclass
class SubStep:
    """``z <- K z + P eps + N xi`` (``P``, ``N`` optional); ``evaluate``: fresh ``eps`` first."""

    K: torch.Tensor
    P: torch.Tensor | None = None
    N: torch.Tensor | None = None
    evaluate: bool = False


@dataclass
class SubSteps:
    """Sub-steps applied in order at every step, and ``eval_times`` ``(n_steps, evaluations)``."""

    substeps: list[SubStep]
    eval_times: torch.Tensor

    def program(self) -> Program:
        """The program: per step, each sub-step as one combination (a fresh evaluation first where asked)."""
        n_steps, per_step = self.eval_times.shape
        noisy = sum(sub.N is not None for sub in self.substeps)
        b = ProgramBuilder(n_steps, self.eval_times.reshape(-1), noise_draws=n_steps * noisy)
        z, draw = b.state, 0
        for i in range(n_steps):
            j, eps, first = i * per_step, None, None
            for sub in self.substeps:
                if sub.evaluate:
                    x0, eps = b.evaluate(z, j)
                    first = x0 if first is None else first
                    j += 1
                terms = [(Blocks(sub.K[i]), z)]
                if sub.P is not None:
                    terms.append((Blocks(sub.P[i]), eps))
                if sub.N is not None:
                    terms.append((Blocks(sub.N[i]), b.noise(draw)))
                    draw += 1
                z = b.combine(*terms)
            b.end_step(z, first)
        return b.build()
