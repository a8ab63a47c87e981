"""Ancestral sampling: the DDPM posterior step, generalized by DDIM's ``eta``.

For the Markov forward process of any schedule, ``x_s | x_t, x0`` is Gaussian (Ho et al.
2020; Song et al. 2021 DDIM eq. 16 for ``eta``). With ``d = lambda_s - lambda_t > 0``
(``s`` nearer the data):

    x_s = alpha_s x0_hat + sigma_s sqrt(1 - eta^2 (1 - e^-d)) eps_hat + eta sigma_s sqrt(1 - e^-d) xi

``eta = 1`` is DDPM's posterior (mean and variance proved in ``proofs/prove_solvers.py``),
``eta = 0`` is DDIM. At a point-mass start (``lambda_t = -inf``) the ``eps_hat`` weight is
0 for ``eta = 1``; a step ending where ``sigma_s = 0`` returns ``alpha_s x0_hat``.
Weak order 1, one evaluation per step.
"""

from __future__ import annotations

import math

from .._grid import TimeGrid
from .._program import ProgramBuilder
from .._solver import Solver, SolverError, register_solver
from ._ddim import write_one_evaluation_steps

__all__ = ["Ancestral", "step_weights"]


def step_weights(d, s_next, eta, exp=math.exp, expm1=math.expm1, sqrt=math.sqrt) -> tuple:
    """``(eps, noise)`` weights of a step with log-SNR gain ``d > 0`` ending at ``sigma = s_next``:
    ``s_next sqrt(e^-d + (1 - eta^2)(1 - e^-d))`` and ``eta s_next sqrt(1 - e^-d)``, with ``1 - e^-d`` by
    ``expm1`` (no cancellation; both terms under the root are >= 0). ``proofs/prove_solvers.py`` calls it
    with SymPy's functions."""
    kept, fresh = exp(-d), -expm1(-d)
    return s_next * sqrt(kept + (1 - eta**2) * fresh), eta * s_next * sqrt(fresh)


@register_solver("ancestral")
class Ancestral(Solver):
    """Ancestral / DDPM step with stochasticity ``eta`` in [0, 1] (one evaluation per step)."""

    order = 1
    stochastic = True

    def __init__(self, eta: float = 1.0):
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise SolverError("eta in [0, 1]", repr(eta), "eta = 1 is DDPM, eta = 0 is DDIM")
        self.eta = float(eta)

    def weights(self, grid: TimeGrid) -> dict[str, list[float]]:
        """Per-step weights ``x0``, ``eps``, ``noise`` of the step (float64 math, Python floats)."""
        lam, alpha, sigma = grid.log_snr.tolist(), grid.alpha.tolist(), grid.sigma.tolist()
        out: dict[str, list[float]] = {"x0": [], "eps": [], "noise": []}
        for i in range(grid.n_steps):
            s_next = sigma[i + 1]
            eps_w, noise_w = (0.0, 0.0) if s_next == 0.0 else step_weights(lam[i + 1] - lam[i], s_next, self.eta)
            out["x0"].append(alpha[i + 1])
            out["eps"].append(eps_w)
            out["noise"].append(noise_w)
        return out

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        w = self.weights(grid)
        write_one_evaluation_steps(b, w["x0"], w["eps"], noise=w["noise"])
