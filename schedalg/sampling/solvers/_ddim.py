"""First-order exponential integrator = deterministic DDIM (Song et al. 2021).

``x_{i+1} = alpha_{i+1} x0_hat + sigma_{i+1} eps_hat``: re-noise the prediction to the
next time. With ``eps_hat = (x_i - alpha_i x0_hat)/sigma_i`` this is the exact solution of
the probability-flow ODE over the step when ``x0_hat`` is held constant, i.e. the
first-order exponential integrator in log-SNR (Lu et al. 2022; proved in
``proofs/prove_solvers.py``). Order 1, one evaluation per step, for any schedule.
"""

from __future__ import annotations

import torch

from .._grid import TimeGrid
from .._solver import AffineStep, Denoise, Plan, Solver, combine, register_solver

__all__ = ["DDIM"]


@register_solver
class DDIM(Solver):
    """Deterministic DDIM / first-order exponential integrator (one evaluation per step)."""

    name = "ddim"
    order = 1

    def nfe(self, grid: TimeGrid) -> int:
        return grid.n_steps

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        return {"x0": grid.alpha[1:].tolist(), "eps": grid.sigma[1:].tolist()}

    def affine(self, plan: Plan, i: int) -> AffineStep:
        return AffineStep(0.0, plan["x0"][i], plan["eps"][i])

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        x0, eps = denoise(x, i)
        return combine((plan["x0"][i], x0), (plan["eps"][i], eps)), x0, memory
