"""Stochastic samplers for the augmented reverse SDE ``dz = (F z + 2 W eps_hat) dt + G dW`` (``dt < 0``).

* ``euler_maruyama``: ``z + h (F z + 2 W eps) + sqrt(-h) G xi`` (1 NFE, weak order 1).
* ``stochastic_splitting``: ``O(h/2) B(h) O(h/2)``: exact reverse Ornstein-Uhlenbeck half
  steps around an Euler kick of the remainder ``2 W eps - G G^T S^{-1} z`` at ``t_mid``
  (1 NFE; the SSCS idea of Dockhorn et al. 2022 on the equilibrium reference).
* ``oba``: OBA-type (Pandey et al. 2024 [P name; D details]): exact OU step over ``h``, then
  the remainder kick on the momentum block (``B``, one evaluation at ``t + h``), then on
  the position block reusing it (``A``) (1 NFE).
"""

from __future__ import annotations

import torch

from ._equilibrium import equilibrium
from ._program import SubStep, SubSteps
from ._solvers import SubStepSolver, _eye, _steps
from ._splitting import _mid, projectors

__all__ = ["EulerMaruyama", "StochasticSplitting", "OBA"]


class EulerMaruyama(SubStepSolver):
    """Euler-Maruyama on the reverse SDE (1 NFE, weak order 1)."""

    name, stochastic = "euler_maruyama", True

    def substeps(self, sde, times):
        c, h, t0 = sde.compile(), _steps(times), times[:-1]
        return SubSteps([SubStep(_eye(sde) + h * c.drift(t0), 2 * h * c.ode_weight(t0),
                                torch.sqrt(-h) * c.diffusion(t0), evaluate=True)], self.eval_times(times))


class StochasticSplitting(SubStepSolver):
    """``O(h/2) B(h) O(h/2)`` with exact OU parts (1 NFE, weak order 1)."""

    name, stochastic = "stochastic_splitting", True

    def eval_times(self, times):
        return _mid(times)[:, None]

    def substeps(self, sde, times):
        eq, c = equilibrium(sde), sde.compile()
        t0, tm, t1, h = times[:-1], _mid(times), times[1:], _steps(times)
        E1, N1 = eq.ou(t0, tm)
        E2, N2 = eq.ou(tm, t1)
        K_kick = _eye(sde) - h * c.ggt(tm) @ eq.S_inv
        return SubSteps([SubStep(E1, N=N1), SubStep(K_kick, 2 * h * c.ode_weight(tm), evaluate=True),
                        SubStep(E2, N=N2)], self.eval_times(times))


class OBA(SubStepSolver):
    """Exact OU step, remainder kick on ``m`` then on ``x`` with one evaluation (1 NFE, weak order 1)."""

    name, stochastic = "oba", True

    def eval_times(self, times):
        return times[1:, None]

    def substeps(self, sde, times):
        Px, Pm = projectors(sde)
        eq, c = equilibrium(sde), sde.compile()
        t0, t1, h = times[:-1], times[1:], _steps(times)
        E, N = eq.ou(t0, t1)
        drift = c.ggt(t1) @ eq.S_inv
        weight = 2 * h * c.ode_weight(t1)
        return SubSteps([SubStep(E, N=N),
                        SubStep(_eye(sde) - h * Pm @ drift, Pm @ weight, evaluate=True),
                        SubStep(_eye(sde) - h * Px @ drift, Px @ weight)], self.eval_times(times))
