"""Splitting integrators for the augmented probability-flow ODE (Pandey, Rudolph, Mandt, ICLR 2024).

``z = (x, m)``, ``f = F z + W eps_hat`` split into a position part ``P_x f`` and a momentum
part ``P_m f`` (``P_x = diag(1, 0)``, ``P_m = diag(0, 1)``), or into an exactly solvable
linear part and a remainder (:mod:`._equilibrium`). Step ``t -> t + h`` (``h < 0``),
``t_mid = t + h/2``. "Naive" schemes evaluate the network at every sub-step, "reduced"
ones reuse one evaluation per step. Details [D] (the paper's names, our definitions):

* ``symmetric_splitting``: exact linear half step, Euler remainder at ``t_mid``, exact
  linear half step (Strang; 1 NFE). Order 1: Euler on the remainder leaves a local
  error ``h^2 g' g / 2`` of the remainder ``g``.
* ``naive_symplectic_euler``: ``x`` by Euler at ``(x, m, t)``, then ``m`` by Euler at
  ``(x_new, m, t + h)`` (2 NFE); ``reduced_symplectic_euler`` reuses the first ``eps`` (1 NFE).
* ``naive_velocity_verlet``: ``m`` half step at ``t``, ``x`` full step at ``t_mid``, ``m`` half
  step at ``t + h``, each with a fresh evaluation (3 NFE); ``reduced_velocity_verlet``
  evaluates once (1 NFE). Both explicit, so order 1 for these non-separable fields.
* ``conjugate_splitting`` (the hybrid; 1 NFE, order 1): ``symmetric_splitting`` whose
  remainder step is a conjugate-integrator step with a chosen ``B`` (the remainder's own
  linear part handled through ``A``, the ``eps`` weight integrated exactly).
"""

from __future__ import annotations

from typing import Any

import sympy as sp
import torch

from ._conjugate import ConjugateTransform
from ._equilibrium import equilibrium
from ._errors import SamplerError
from ._linear_sde import LinearSDE
from ._program import SubStep, SubSteps
from ._solvers import SubStepSolver, _eye, _steps

__all__ = ["SymmetricSplitting", "NaiveSymplecticEuler", "ReducedSymplecticEuler", "NaiveVelocityVerlet",
           "ReducedVelocityVerlet", "ConjugateSplitting", "projectors"]


def projectors(sde: LinearSDE) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P_x, P_m)`` onto the position block and the momentum block (``k = 2`` only)."""
    if sde.k != 2:
        raise SamplerError("a phase-space SDE with 2 blocks (position, momentum)", f"{sde.name!r} with k = {sde.k}",
                           "use euler, heun, rk4, conjugate or symmetric_splitting for scalar SDEs")
    return torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64)), torch.diag(
        torch.tensor([0.0, 1.0], dtype=torch.float64))


def _mid(times: torch.Tensor) -> torch.Tensor:
    return (times[:-1] + times[1:]) / 2


class SymmetricSplitting(SubStepSolver):
    """Exact linear half step, Euler remainder at the midpoint, exact linear half step (1 NFE)."""

    name = "symmetric_splitting"

    def eval_times(self, times):
        return _mid(times)[:, None]

    def substeps(self, sde, times):
        eq, c = equilibrium(sde), sde.compile()
        t0, tm, t1, h = times[:-1], _mid(times), times[1:], _steps(times)
        first, second = eq.ode_flow(t0, tm), eq.ode_flow(tm, t1)
        K_rem = _eye(sde) - h / 2 * c.ggt(tm) @ eq.S_inv
        return SubSteps([SubStep(first), SubStep(second @ K_rem, second @ (h * c.ode_weight(tm)), evaluate=True)],
                       self.eval_times(times))


class _ComponentSplit(SubStepSolver):
    """Sequential Euler updates of one block at a time: ``(projector, fraction of h, time)``."""

    stages: list[tuple[str, float, str]] = []   # (block, fraction of h, 't0' | 'mid' | 't1')
    naive = True

    @property
    def evaluations_per_step(self) -> int:  # type: ignore[override]
        return len(self.stages) if self.naive else 1

    def _time(self, times, where):
        return {"t0": times[:-1], "mid": _mid(times), "t1": times[1:]}[where]

    def eval_times(self, times):
        stages = self.stages if self.naive else self.stages[:1]
        return torch.stack([self._time(times, w) for _, _, w in stages], dim=1)

    def substeps(self, sde, times):
        Px, Pm = projectors(sde)
        c, h = sde.compile(), _steps(times)
        subs = []
        for j, (block, fraction, where) in enumerate(self.stages):
            proj = Px if block == "x" else Pm
            tt = self._time(times, where)
            subs.append(SubStep(_eye(sde) + fraction * h * proj @ c.drift(tt), fraction * h * proj @ c.ode_weight(tt),
                                evaluate=self.naive or j == 0))
        return SubSteps(subs, self.eval_times(times))


class NaiveSymplecticEuler(_ComponentSplit):
    """``x`` then ``m`` by Euler, fresh evaluation for each (2 NFE, order 1)."""

    name, nfe_per_step, naive = "naive_symplectic_euler", 2, True
    stages = [("x", 1.0, "t0"), ("m", 1.0, "t1")]


class ReducedSymplecticEuler(_ComponentSplit):
    """``x`` then ``m`` by Euler, one evaluation reused (1 NFE, order 1)."""

    name, nfe_per_step, naive = "reduced_symplectic_euler", 1, False
    stages = [("x", 1.0, "t0"), ("m", 1.0, "t1")]


class NaiveVelocityVerlet(_ComponentSplit):
    """``m`` half, ``x`` full, ``m`` half; a fresh evaluation at each (3 NFE, order 1)."""

    name, nfe_per_step, naive = "naive_velocity_verlet", 3, True
    stages = [("m", 0.5, "t0"), ("x", 1.0, "mid"), ("m", 0.5, "t1")]


class ReducedVelocityVerlet(_ComponentSplit):
    """``m`` half, ``x`` full, ``m`` half with one evaluation (1 NFE, order 1)."""

    name, nfe_per_step, naive = "reduced_velocity_verlet", 1, False
    stages = [("m", 0.5, "t0"), ("x", 1.0, "mid"), ("m", 0.5, "t1")]


class ConjugateSplitting(SubStepSolver):
    """Symmetric splitting whose remainder step is a conjugate step (the hybrid; 1 NFE, order 1).

    Exact equilibrium-linear half step; at ``t_mid`` one evaluation; the remainder
    ``z' = R z + W eps`` with ``R = -G G^T S^{-1} / 2`` is advanced over ``h`` by the
    conjugate integrator with ``B`` (``A = exp(int (B - R))``, the ``eps`` weight ``Phi``
    exact); exact linear half step. Default ``B = R + lam I``: ``lam = 0`` gives ``A = I``
    (``symmetric_splitting`` with the ``eps`` weight integrated exactly instead of ``h W(t_mid)``).
    """

    name = "conjugate_splitting"

    def __init__(self, lam: Any = 0, B: Any = None):
        self.lam, self.B = lam, B

    def eval_times(self, times):
        return _mid(times)[:, None]

    def substeps(self, sde, times):
        eq = equilibrium(sde)
        tc = sde.time_change
        remainder_linear = -tc.rate * tc.Q0 * sde.stationary_covariance.inv() / 2
        B = remainder_linear + sp.nsimplify(self.lam) * sp.eye(sde.k) if self.B is None else self.B
        ct = ConjugateTransform(sde, B, linear=remainder_linear)
        t0, tm, t1 = times[:-1], _mid(times), times[1:]
        K, P = ct.step_matrices(times)
        first, second = eq.ode_flow(t0, tm), eq.ode_flow(tm, t1)
        return SubSteps([SubStep(first), SubStep(second @ K, second @ P, evaluate=True)], self.eval_times(times))
