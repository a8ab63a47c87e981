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

import torch

from .._grid import TimeGrid
from .._solver import AffineStep, Denoise, Plan, Solver, SolverError, combine, register_solver

__all__ = ["Ancestral"]


@register_solver
class Ancestral(Solver):
    """Ancestral / DDPM step with stochasticity ``eta`` in [0, 1] (one evaluation per step)."""

    name = "ancestral"
    order = 1
    stochastic = True

    def __init__(self, eta: float = 1.0):
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise SolverError("eta in [0, 1]", repr(eta), "eta = 1 is DDPM, eta = 0 is DDIM")
        self.eta = float(eta)

    def nfe(self, grid: TimeGrid) -> int:
        return grid.n_steps

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        lam, alpha, sigma = grid.log_snr.tolist(), grid.alpha.tolist(), grid.sigma.tolist()
        out: dict[str, list[float]] = {"x0": [], "eps": [], "noise": []}
        for i in range(grid.n_steps):
            s_next = sigma[i + 1]
            if s_next == 0.0:
                eps_w = noise_w = 0.0
            else:
                kept = math.exp(-(lam[i + 1] - lam[i]))  # e^-d in [0, 1)
                fresh = -math.expm1(-(lam[i + 1] - lam[i]))  # 1 - e^-d, without cancellation
                eps_w = s_next * math.sqrt(max(0.0, kept + (1 - self.eta**2) * fresh))
                noise_w = self.eta * s_next * math.sqrt(fresh)
            out["x0"].append(alpha[i + 1])
            out["eps"].append(eps_w)
            out["noise"].append(noise_w)
        return out

    def affine(self, plan: Plan, i: int) -> AffineStep:
        return AffineStep(0.0, plan["x0"][i], plan["eps"][i], plan["noise"][i])

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        x0, eps = denoise(x, i)
        return combine((plan["x0"][i], x0), (plan["eps"][i], eps), (plan["noise"][i], noise)), x0, memory
