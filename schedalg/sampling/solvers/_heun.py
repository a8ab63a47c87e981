"""Heun's method (explicit trapezoidal rule) on the probability-flow ODE in own time ``t``.

Predictor ``x' = x_i + h b_i``, corrector ``x_{i+1} = x_i + h/2 (b_i + b(x', t_{i+1}))``
with ``b = alpha' x0_hat + sigma' eps_hat`` (EDM's Algorithm 1, Karras et al. 2022).
When the grid ends where ``sigma = 0`` (``eps_hat`` is undefined there) the last step is
the predictor alone, as in EDM. Order 2; ``2N`` evaluations, ``2N - 1`` in that case.
"""

from __future__ import annotations

import torch

from .._grid import TimeGrid
from .._solver import Denoise, Plan, Solver, combine, register_solver

__all__ = ["Heun"]


@register_solver
class Heun(Solver):
    """Second-order Heun in ``t``; ``final_euler`` (default: when ``sigma`` ends at 0) skips the last correction."""

    name = "heun"
    order = 2

    def __init__(self, final_euler: bool | None = None):
        self.final_euler = final_euler

    def _last_is_euler(self, grid: TimeGrid) -> bool:
        return bool(float(grid.sigma[-1]) == 0.0) if self.final_euler is None else bool(self.final_euler)

    def nfe(self, grid: TimeGrid) -> int:
        return 2 * grid.n_steps - (1 if self._last_is_euler(grid) else 0)

    def coefficients(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        h = grid.dt
        half = 0.5 * h
        correct = [1.0] * grid.n_steps
        if self._last_is_euler(grid):
            correct[-1] = 0.0
        # a skipped correction never uses the end point's derivatives (they may be infinite there)
        x0_next = [v if c else 0.0 for c, v in zip(correct, (half * grid.d_alpha[1:]).tolist())]
        eps_next = [v if c else 0.0 for c, v in zip(correct, (half * grid.d_sigma[1:]).tolist())]
        return {
            "x0": (h * grid.d_alpha[:-1]).tolist(), "eps": (h * grid.d_sigma[:-1]).tolist(),
            "x0_half": (half * grid.d_alpha[:-1]).tolist(), "eps_half": (half * grid.d_sigma[:-1]).tolist(),
            "x0_next": x0_next, "eps_next": eps_next, "correct": correct,
        }

    def step(self, plan: Plan, i: int, x: torch.Tensor, denoise: Denoise, memory: tuple,
             noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        x0, eps = denoise(x, i)
        predicted = combine((1.0, x), (plan["x0"][i], x0), (plan["eps"][i], eps))
        if plan["correct"][i] == 0.0:
            return predicted, x0, memory
        x0_next, eps_next = denoise(predicted, i + 1)
        out = combine((1.0, x), (plan["x0_half"][i], x0), (plan["eps_half"][i], eps),
                      (plan["x0_next"][i], x0_next), (plan["eps_next"][i], eps_next))
        return out, x0, memory
