"""Single-step third-order DPM-Solver in data prediction (Lu et al. 2022, Algorithm 2 "DPM-Solver-3",
in the data-prediction form of DPM-Solver++, Lu et al. 2022b).

With ``lambda = log(alpha/sigma)`` (half the log-SNR), ``h = lambda_{i+1} - lambda_i`` and the data-prediction
form of the exact solution (``proofs/prove_solvers.py``)

    x_t = (sigma_t/sigma_s) x_s + alpha_t int_0^h e^{u-h} x0_hat(lambda_s + u) du,

a polynomial ``x0_hat ~ D0 + D1 u`` integrates to ``alpha_t [h phi_1(-h) D0 + h^2 phi_2(-h) D1]``
(:func:`schedalg.sampling._phi.h_phi`). Stages at ``lambda_s + r h`` with ``r1 = 1/3``, ``r2 = 2/3``:

    x_1 = (sigma_1/sigma_s) x + alpha_1 (r1 h) phi_1(-r1 h) D0
    x_2 = (sigma_2/sigma_s) x + alpha_2 [(r2 h) phi_1(-r2 h) D0 + (r2 h)^2 phi_2(-r2 h) (D(x_1) - D0)/(r1 h)]
    x_t = (sigma_t/sigma_s) x + alpha_t [h phi_1(-h) D0 + h^2 phi_2(-h) (D(x_2) - D0)/(r2 h)]

Order 3, three evaluations per step. A step with an infinite log-SNR end (pure noise or
exact data) has no interior stage times; it is the DDIM step (one evaluation), as in the
multistep solvers.
"""

from __future__ import annotations

import math

import torch

from .._grid import TimeGrid
from .._phi import h_phi
from .._program import ProgramBuilder
from .._solver import Solver, register_solver

__all__ = ["DPMSolver3S"]

R1, R2 = 1.0 / 3.0, 2.0 / 3.0


@register_solver("dpm_3s")
class DPMSolver3S(Solver):
    """Single-step third-order DPM-Solver in data prediction (nodes at 1/3 and 2/3 of the log-SNR step)."""

    order = 3

    @staticmethod
    def _finite(grid: TimeGrid) -> list[bool]:
        return [math.isfinite(h) for h in grid.d_log_snr_steps.tolist()]

    def evaluation_grid(self, grid: TimeGrid) -> TimeGrid:
        times, lam = grid.values("times"), grid.values("log_snr")
        compiled = grid.compiled
        joined = [times[0]]
        for i, finite in enumerate(self._finite(grid)):
            if finite:
                step = lam[i + 1] - lam[i]  # in log-SNR = 2 lambda
                stages = torch.tensor([lam[i] + R1 * step, lam[i] + R2 * step], dtype=torch.float64)
                joined += [float(v) for v in compiled.t_of_log_snr(stages).tolist()]
            joined.append(times[i + 1])
        return TimeGrid(grid.schedule, joined, label=f"{grid.label}+dpm_3s_nodes")

    def _starts(self, grid: TimeGrid) -> list[int]:
        """Index in the evaluation grid of each step's start."""
        out, k = [], 0
        for finite in self._finite(grid):
            out.append(k)
            k += 3 if finite else 1
        return out

    def weights(self, grid: TimeGrid, eval_grid: TimeGrid) -> dict[str, list[float]]:
        """Per-step weights of the stages (``stages`` = 3) or of the DDIM step (``stages`` = 1)."""
        lam = grid.values("log_snr")
        e_alpha, e_sigma = eval_grid.values("alpha"), eval_grid.values("sigma")
        keys = ("stages", "x1", "a1", "x2", "a2", "b2", "x", "a", "b", "ddim_x0", "ddim_eps")
        out: dict[str, list[float]] = {key: [] for key in keys}
        for i, (finite, k) in enumerate(zip(self._finite(grid), self._starts(grid))):
            if not finite:
                values = dict.fromkeys(keys, 0.0)
                values.update(stages=1.0, ddim_x0=e_alpha[k + 1], ddim_eps=e_sigma[k + 1])
            else:
                h = 0.5 * (lam[i + 1] - lam[i])
                s, s1, s2, t = e_sigma[k], e_sigma[k + 1], e_sigma[k + 2], e_sigma[k + 3]
                a1, a2, at = e_alpha[k + 1], e_alpha[k + 2], e_alpha[k + 3]
                d1 = (R2 * h) * h_phi(2, R2 * h) / (R1 * h)  # (r2 h)^2 phi_2(-r2 h) / (r1 h)
                d = h * h_phi(2, h) / (R2 * h)
                values = {"stages": 3.0, "x1": s1 / s, "a1": a1 * h_phi(1, R1 * h),
                          "x2": s2 / s, "a2": a2 * (h_phi(1, R2 * h) - d1), "b2": a2 * d1,
                          "x": t / s, "a": at * (h_phi(1, h) - d), "b": at * d, "ddim_x0": 0.0, "ddim_eps": 0.0}
            for key in keys:
                out[key].append(values[key])
        return out

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        w = self.weights(grid, eval_grid)
        b.record(**w)
        x = b.state
        for i, k in enumerate(self._starts(grid)):
            x0, eps = b.evaluate(x, k)
            if w["stages"][i] == 1.0:
                x_next = b.combine((w["ddim_x0"][i], x0), (w["ddim_eps"][i], eps))
            else:
                d1, _ = b.evaluate(b.combine((w["x1"][i], x), (w["a1"][i], x0)), k + 1)
                d2, _ = b.evaluate(b.combine((w["x2"][i], x), (w["a2"][i], x0), (w["b2"][i], d1)), k + 2)
                x_next = b.combine((w["x"][i], x), (w["a"][i], x0), (w["b"][i], d2))
            b.end_step(x_next, x0)
            x = x_next
