"""Explicit midpoint rule on the probability-flow ODE in own time ``t``.

``x_m = x_i + h/2 b(x_i, t_i)``, ``x_{i+1} = x_i + h b(x_m, m_i)``, ``m_i = (t_i + t_{i+1})/2``,
with ``b = alpha' x0_hat + sigma' eps_hat``. Order 2, two evaluations per step; the
denoiser is prepared on the grid with its midpoints inserted (even index ``2i`` = ``t_i``).
"""

from __future__ import annotations

import torch

from .._grid import TimeGrid
from .._solver import Denoise, Plan, Solver, combine, register_solver

__all__ = ["Midpoint"]


@register_solver
class Midpoint(Solver):
    """Second-order explicit midpoint in ``t`` (two evaluations per step)."""

    name = "midpoint"
    order = 2

    def evaluation_grid(self, grid: TimeGrid) -> TimeGrid:
        return grid.with_midpoints()

    def nfe(self, grid: TimeGrid) -> int:
        return 2 * grid.n_steps

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        h = grid.dt
        mid_alpha, mid_sigma = eval_grid.d_alpha[1::2], eval_grid.d_sigma[1::2]
        return {"x0_half": (0.5 * h * grid.d_alpha[:-1]).tolist(), "eps_half": (0.5 * h * grid.d_sigma[:-1]).tolist(),
                "x0_mid": (h * mid_alpha).tolist(), "eps_mid": (h * mid_sigma).tolist()}

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        x0, eps = denoise(x, 2 * i)
        x_mid = combine((1.0, x), (plan["x0_half"][i], x0), (plan["eps_half"][i], eps))
        x0_mid, eps_mid = denoise(x_mid, 2 * i + 1)
        return combine((1.0, x), (plan["x0_mid"][i], x0_mid), (plan["eps_mid"][i], eps_mid)), x0, memory
