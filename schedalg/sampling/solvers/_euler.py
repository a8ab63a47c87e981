"""Explicit Euler on the probability-flow ODE in the schedule's own time.

``x_{i+1} = x_i + h_i (alpha'(t_i) x0_hat + sigma'(t_i) eps_hat)``, ``h_i = t_{i+1} - t_i``
(signed: negative when the schedule runs data -> noise). Order 1, one evaluation per step.
"""

from __future__ import annotations

import torch

from .._grid import TimeGrid
from .._solver import AffineStep, Denoise, Plan, Solver, combine, register_solver

__all__ = ["Euler"]


@register_solver
class Euler(Solver):
    """First-order explicit Euler in ``t`` (one network evaluation per step)."""

    name = "euler"
    order = 1

    def nfe(self, grid: TimeGrid) -> int:
        return grid.n_steps

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        h = grid.dt
        return {"x0": (h * grid.d_alpha[:-1]).tolist(), "eps": (h * grid.d_sigma[:-1]).tolist()}

    def affine(self, plan: Plan, i: int) -> AffineStep:
        return AffineStep(1.0, plan["x0"][i], plan["eps"][i])

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        x0, eps = denoise(x, i)
        return combine((1.0, x), (plan["x0"][i], x0), (plan["eps"][i], eps)), x0, memory
