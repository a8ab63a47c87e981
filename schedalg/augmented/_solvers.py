"""Deterministic samplers for the augmented probability-flow ODE ``dz/dt = F z + W eps_hat``.

Time runs from ``T`` down to a small ``t_eps`` (``h = t_{i+1} - t_i < 0``). Each solver
declares ``nfe_per_step`` (network evaluations per step) and ``order`` (global order of
convergence in ``h`` for smooth problems), checked by ``tests/test_splitting_order.py``.

* ``euler``: ``z + h (F z + W eps)`` (1 NFE, order 1).
* ``heun``: explicit trapezoid (2 NFE, order 2); ``rk4``: classical Runge-Kutta (4 NFE, order 4).
* ``conjugate`` (``B``): the conjugate integrator of :class:`ConjugateTransform` (1 NFE,
  order 1); ``B = 0`` is the exponential integrator, ``B = lambda I`` lambda-DDIM.
  ``B`` is written in forward time ``t`` (MATH.md section 3), where steps have ``h < 0``:
  ``B = lambda I`` in generation time (``tau = -t``) is ``B = -lambda I`` here. On VP with
  Gaussian data the few-step gain comes from ``lambda < 0`` in this convention;
  on PSLD from ``lambda > 0`` (``tests/test_conjugate.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from ._blocks import apply_blocks
from ._conjugate import ConjugateTransform
from ._linear_sde import LinearSDE
from ._program import Program, SubStep, run_program

__all__ = ["AugmentedSolver", "ProgramSolver", "Euler", "Heun", "RK4", "Conjugate"]


class AugmentedSolver:
    """Base class: ``solve(prepare, z, times, generator) -> z`` and the declared cost/order."""

    name = "solver"
    nfe_per_step = 1
    order = 1
    stochastic = False
    evaluations_per_step = 1  # evaluation times per step handed to the model

    def eval_times(self, times: torch.Tensor) -> torch.Tensor:
        """``(n_steps, evaluations_per_step)`` times at which the model is evaluated."""
        return times[:-1, None]

    def solve(self, sde: LinearSDE, prepared, z: torch.Tensor, times: torch.Tensor,
              generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
        """Integrate ``z`` along ``times`` with the model ``prepared`` on :meth:`eval_times`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nfe_per_step={self.nfe_per_step}, order={self.order})"


def _noise(z: torch.Tensor, draws: int, generator: torch.Generator | None, seed: int | None):
    """Noise for the loop: from ``generator``, or per-sample seeded (independent of the batch size)."""
    if seed is None:
        def draw(zz: torch.Tensor) -> torch.Tensor:
            return torch.randn(zz.shape, generator=generator, dtype=zz.dtype, device=zz.device)

        return draw
    from ..sampling import per_sample_normal

    table = per_sample_normal(tuple(z.shape), seed, count=max(draws, 1), dtype=z.dtype, device=z.device)
    counter = iter(range(draws))
    return lambda zz: table[next(counter)]


class ProgramSolver(AugmentedSolver):
    """A solver whose step is a fixed :class:`Program` of linear sub-steps."""

    def program(self, sde: LinearSDE, times: torch.Tensor) -> Program:
        raise NotImplementedError

    def solve(self, sde, prepared, z, times, generator=None, seed=None):
        program = self.program(sde, times)
        draws = (len(times) - 1) * sum(sub.N is not None for sub in program.substeps)
        return run_program(program, z, lambda zz, j: prepared(zz, j)[1], _noise(z, draws, generator, seed))


def _eye(sde: LinearSDE) -> torch.Tensor:
    return torch.eye(sde.k, dtype=torch.float64)


def _steps(times: torch.Tensor) -> torch.Tensor:
    return (times[1:] - times[:-1])[:, None, None]


class Euler(ProgramSolver):
    """Euler on the augmented ODE: ``z <- (I + h F) z + h W eps`` (1 NFE, order 1)."""

    name = "euler"

    def program(self, sde, times):
        c = sde.compile()
        h, t0 = _steps(times), times[:-1]
        return Program([SubStep(_eye(sde) + h * c.drift(t0), h * c.ode_weight(t0), evaluate=True)],
                       self.eval_times(times))


class Conjugate(ProgramSolver):
    """Conjugate integrator with a chosen ``B`` (1 NFE, order 1); see :class:`ConjugateTransform`."""

    name = "conjugate"

    def __init__(self, B: Any = 0):
        self.B = B

    def transform(self, sde: LinearSDE) -> ConjugateTransform:
        return ConjugateTransform(sde, self.B)

    def program(self, sde, times):
        K, P = self.transform(sde).step_matrices(times)
        return Program([SubStep(K, P, evaluate=True)], self.eval_times(times))


class _RungeKutta(AugmentedSolver):
    """Explicit Runge-Kutta on ``f(z, t) = F z + W eps_hat(z, t)`` with a Butcher tableau."""

    a: list[list[float]] = []
    b: list[float] = []
    c: list[float] = []

    @property
    def evaluations_per_step(self) -> int:  # type: ignore[override]
        return len(self.b)

    def eval_times(self, times):
        h = times[1:] - times[:-1]
        return torch.stack([times[:-1] + ci * h for ci in self.c], dim=1)

    def solve(self, sde, prepared, z, times, generator=None, seed=None):
        csde = sde.compile()
        stage_times = self.eval_times(times)
        F, W = csde.drift(stage_times), csde.ode_weight(stage_times)   # (n, s, k, k)
        h = (times[1:] - times[:-1]).tolist()
        s = len(self.b)
        F, W = F.to(z.dtype), W.to(z.dtype)
        for i in range(stage_times.shape[0]):
            slopes = []
            for j in range(s):
                zj = z
                for m, coefficient in enumerate(self.a[j][:j]):
                    if coefficient:
                        zj = zj + (h[i] * coefficient) * slopes[m]
                eps = prepared(zj, i * s + j)[1]
                slopes.append(apply_blocks(F[i, j], zj) + apply_blocks(W[i, j], eps))
            z = z + h[i] * sum(bj * kj for bj, kj in zip(self.b, slopes))
        return z


class Heun(_RungeKutta):
    """Heun's method (explicit trapezoid): 2 NFE per step, order 2."""

    name, nfe_per_step, order = "heun", 2, 2
    a = [[], [1.0]]
    b = [0.5, 0.5]
    c = [0.0, 1.0]


class RK4(_RungeKutta):
    """Classical fourth-order Runge-Kutta: 4 NFE per step, order 4 (reference solves)."""

    name, nfe_per_step, order = "rk4", 4, 4
    a = [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]]
    b = [1 / 6, 1 / 3, 1 / 3, 1 / 6]
    c = [0.0, 0.5, 0.5, 1.0]
