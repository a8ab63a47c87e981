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

from ..sampling import SOLVERS as SHARED_SOLVERS
from ..sampling import Blocks, Program, ProgramBuilder, Tableau, write_tableau_step
from ._conjugate import ConjugateTransform
from ._linear_sde import LinearSDE
from ._program import SubStep, SubSteps

__all__ = ["AugmentedSolver", "SubStepSolver", "TableauSolver", "Euler", "Heun", "RK4", "Conjugate"]


class AugmentedSolver:
    """Base class: ``program(sde, times)`` (a :class:`schedalg.sampling.Program`) and the declared cost/order."""

    name = "solver"
    nfe_per_step = 1
    order = 1
    stochastic = False
    evaluations_per_step = 1  # evaluation times per step handed to the model

    def eval_times(self, times: torch.Tensor) -> torch.Tensor:
        """``(n_steps, evaluations_per_step)`` times at which the model is evaluated."""
        return times[:-1, None]

    def program(self, sde: LinearSDE, times: torch.Tensor) -> Program:
        """The program of this solver on ``times``, evaluating the model at :meth:`eval_times` (flattened)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nfe_per_step={self.nfe_per_step}, order={self.order})"


class SubStepSolver(AugmentedSolver):
    """A solver whose step is a fixed list of linear sub-steps (:class:`SubSteps`)."""

    def substeps(self, sde: LinearSDE, times: torch.Tensor) -> SubSteps:
        raise NotImplementedError

    def program(self, sde, times):
        return self.substeps(sde, times).program()


def _eye(sde: LinearSDE) -> torch.Tensor:
    return torch.eye(sde.k, dtype=torch.float64)


def _steps(times: torch.Tensor) -> torch.Tensor:
    return (times[1:] - times[:-1])[:, None, None]


class Conjugate(SubStepSolver):
    """Conjugate integrator with a chosen ``B`` (1 NFE, order 1); see :class:`ConjugateTransform`."""

    name = "conjugate"

    def __init__(self, B: Any = 0):
        self.B = B

    def transform(self, sde: LinearSDE) -> ConjugateTransform:
        return ConjugateTransform(sde, self.B)

    def substeps(self, sde, times):
        K, P = self.transform(sde).step_matrices(times)
        return SubSteps([SubStep(K, P, evaluate=True)], self.eval_times(times))


class TableauSolver(AugmentedSolver):
    """An explicit Runge-Kutta method of the shared registry on ``dz/dt = F z + W eps_hat``.

    The tableau (:class:`schedalg.sampling.Tableau`) is written with block-matrix weights: the
    velocity at a stage time ``t`` is ``F(t) Z + W(t) eps_hat(Z)``
    (:func:`schedalg.sampling.write_tableau_step`); stage ``j`` of step ``i`` is evaluation
    ``i s + j`` at ``t_i + c_j h``.
    """

    def __init__(self, tableau: Tableau, name: str = "tableau", order: int | None = None):
        self.tableau = tableau
        self.name = name
        self.order = tableau.order if order is None else order
        self.nfe_per_step = self.evaluations_per_step = tableau.stages

    def eval_times(self, times):
        h = times[1:] - times[:-1]
        return torch.stack([times[:-1] + float(c) * h for c in self.tableau.c], dim=1)

    def program(self, sde, times):
        stage_times = self.eval_times(times)
        csde = sde.compile()
        F, W = csde.drift(stage_times).flatten(0, 1), csde.ode_weight(stage_times).flatten(0, 1)  # (n s, k, k)
        h = (times[1:] - times[:-1]).tolist()
        s, n_steps = self.tableau.stages, stage_times.shape[0]
        b = ProgramBuilder(n_steps, stage_times.reshape(-1))
        z = b.state
        for i in range(n_steps):
            z, first = write_tableau_step(b, self.tableau, z, h[i], range(i * s, (i + 1) * s),
                                          lambda k: (Blocks(F[k]), 0.0, Blocks(W[k])))
            b.end_step(z, first)
        return b.build()


def shared_tableau(name: str) -> TableauSolver:
    """The augmented form of the registry's tableau solver ``name`` (``euler``, ``heun``, ``rk4``, ...)."""
    cls = SHARED_SOLVERS[name]
    return TableauSolver(cls.tableau, name, cls.order)


def Euler() -> TableauSolver:  # noqa: N802 - the solver's name
    """Euler on the augmented ODE: ``z <- z + h (F z + W eps)`` (1 NFE, order 1)."""
    return shared_tableau("euler")


def Heun() -> TableauSolver:  # noqa: N802
    """Heun's method (explicit trapezoid): 2 NFE per step, order 2."""
    return shared_tableau("heun")


def RK4() -> TableauSolver:  # noqa: N802
    """Classical fourth-order Runge-Kutta: 4 NFE per step, order 4 (reference solves)."""
    return shared_tableau("rk4")
