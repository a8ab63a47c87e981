"""Geometry-inspired time scheduling (GITS; Chen et al., ICML 2024, arXiv 2405.11326).

Sampling trajectories of a trained diffusion model are regular: they hardly depend on
the starting noise. GITS exploits it: on a fine grid ``t_0 (noise) ... t_M (data)``,
take a teacher trajectory ``x_0 ... x_M`` from a few *calibration* noises, define the
cost of one coarse jump ``i -> j`` as the distance between the teacher state ``x_j`` and
one solver step from ``x_i`` to ``t_j``, and pick the ``K``-step path
``0 = p_0 < ... < p_K = M`` of least accumulated cost by dynamic programming:

    B[k, j] = min_{i < j} B[k-1, i] + C[i, j],   B[0, 0] = 0,

an ``O(K M^2)`` recursion. The jump is the first-order exponential-integrator step
(DDIM; Euler in the EDM view ``x/alpha`` vs ``sigma/alpha``)

    x_j ~ alpha_j x0_hat(x_i) + sigma_j eps_hat(x_i),

which needs one denoiser call per fine time and is exact in every schedule's
coordinates (it is the same step for all of them). Any one-step solver of
:mod:`schedalg.sampling` can replace it (``solver="heun"``, ``"midpoint"``, ...): the jump
is then that solver's own step on the two-point grid ``[t_i, t_j]``, so the path is
optimised for the solver that will use it (about ``M^2/2`` solver steps). The cost of a jump landing at ``t_j``
is the RMS per dimension of the state error, averaged over the calibration batch, times
``weight(t_j)`` (default 1: errors in the schedule's own coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import SchedalgError
from ..models import Denoiser
from ._teacher import _check_times, teacher_trajectory

__all__ = ["GitsGrid", "jump_costs", "least_cost_path", "gits_grid", "default_fine_times"]


@dataclass(frozen=True)
class GitsGrid:
    """A GITS time grid: ``times`` (float64, ``steps + 1`` values from noise to data),
    the chosen ``indices`` into ``fine_times``, and the path's accumulated ``cost``."""

    times: torch.Tensor
    indices: tuple[int, ...]
    cost: float
    fine_times: torch.Tensor


def default_fine_times(denoiser: Denoiser, points: int = 101, log_snr_bound: float = 12.0) -> torch.Tensor:
    """Candidate times uniform in log-SNR on ``[max(lo, -b), min(hi, b)]`` (``b = log_snr_bound``),
    with the schedule's exact noise and data ends added where its log-SNR range is infinite."""
    compiled = denoiser.schedule.compile()
    low, high = compiled.log_snr_range
    lam_low, lam_high = max(low, -log_snr_bound), min(high, log_snr_bound)
    extra = int(low < -log_snr_bound) + int(high > log_snr_bound)
    if points - extra < 2:
        raise SchedalgError(f"at least {extra + 2} fine points", f"points={points}", "use e.g. points=101")
    inner = compiled.t_of_log_snr(torch.linspace(lam_low, lam_high, points - extra, dtype=torch.float64))
    parts = ([torch.tensor([compiled.t_noise], dtype=torch.float64)] if low < -log_snr_bound else []) + [inner] \
        + ([torch.tensor([compiled.t_data], dtype=torch.float64)] if high > log_snr_bound else [])
    return torch.cat(parts)


def jump_costs(denoiser: Denoiser, trajectory: torch.Tensor, times: torch.Tensor, *,
               weight: Callable[[torch.Tensor], torch.Tensor] | None = None,
               solver: Any = None) -> torch.Tensor:
    """The ``(M+1, M+1)`` matrix ``C[i, j]`` of one jump ``i -> j`` (``+inf`` for ``j <= i``).

    ``trajectory``: teacher states ``(M+1, B, ...)`` at ``times`` (M+1,). With ``solver``
    None the jump is DDIM: one denoiser call per fine time (``M`` in all, batched over the
    calibration samples). Otherwise ``solver`` (a name or :class:`schedalg.sampling.Solver`)
    takes one step of its own on ``[t_i, t_j]`` for every pair.
    """
    times = _check_times(times, "fine times")
    if trajectory.shape[0] != times.numel() or trajectory.dim() < 3:
        raise SchedalgError(f"a trajectory of shape ({times.numel()}, B, ...) matching the times",
                            f"shape {tuple(trajectory.shape)}", "pass teacher_trajectory(...) on the same times")
    compiled = denoiser.schedule.compile()
    alpha, sigma = compiled.evaluate(times, "alpha", "sigma")
    scale = torch.ones_like(times) if weight is None else torch.as_tensor(weight(times), dtype=torch.float64)
    prepared = denoiser.prepare(times)
    size = times.numel()
    costs = torch.full((size, size), torch.inf, dtype=torch.float64)
    batch = trajectory.shape[1]
    targets = trajectory[1:].to(torch.float64).reshape(size - 1, batch, -1)
    if solver is not None:
        return _solver_jump_costs(denoiser, trajectory, times, scale, solver)
    for i in range(size - 1):
        x0, eps = prepared(trajectory[i].to(torch.float64), i)
        x0, eps = x0.reshape(batch, -1).to(torch.float64), eps.reshape(batch, -1).to(torch.float64)
        jumped = alpha[i + 1:, None, None] * x0 + sigma[i + 1:, None, None] * eps
        rms = ((jumped - targets[i:]) ** 2).mean(-1).sqrt().mean(-1)
        costs[i, i + 1:] = rms * scale[i + 1:]
    return costs


def _solver_jump_costs(denoiser: Denoiser, trajectory: torch.Tensor, times: torch.Tensor,
                       scale: torch.Tensor, solver: Any) -> torch.Tensor:
    """``C[i, j]`` with one step of a :mod:`schedalg.sampling` solver per pair (host loop)."""
    from ..sampling import Sampler, TimeGrid, get_solver

    solver = get_solver(solver) if isinstance(solver, str) else solver
    size = times.numel()
    costs = torch.full((size, size), torch.inf, dtype=torch.float64)
    batch = trajectory.shape[1]
    for i in range(size - 1):
        start = trajectory[i].to(torch.float64)
        for j in range(i + 1, size):
            grid = TimeGrid(denoiser.schedule, times[[i, j]], label="gits-jump")
            landed = Sampler(denoiser, grid, solver)(start, scale_noise=False)
            error = (landed - trajectory[j].to(torch.float64)).reshape(batch, -1)
            costs[i, j] = error.pow(2).mean(-1).sqrt().mean() * scale[j]
    return costs


def least_cost_path(costs: torch.Tensor, steps: int) -> tuple[tuple[int, ...], float]:
    """The ``steps``-jump path ``0 -> M`` through ``costs`` (M+1, M+1) of least total cost.

    Dynamic programming, ``O(steps M^2)``; returns ``(indices, total cost)``.
    """
    size = costs.shape[0]
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= size - 1:
        raise SchedalgError(f"an integer number of steps in [1, {size - 1}]", f"{steps!r}",
                            "use fewer steps than fine intervals, or a finer candidate grid")
    best = torch.full((steps + 1, size), torch.inf, dtype=torch.float64)
    parent = torch.zeros((steps + 1, size), dtype=torch.long)
    best[0, 0] = 0.0
    for k in range(1, steps + 1):
        total = best[k - 1][:, None] + costs  # (from i, to j)
        best[k], parent[k] = total.min(dim=0)
    path = [size - 1]
    for k in range(steps, 0, -1):
        path.append(int(parent[k, path[-1]]))
    return tuple(reversed(path)), float(best[steps, size - 1])


def gits_grid(denoiser: Denoiser, calibration_noise: torch.Tensor, steps: int, *,
              fine_times: torch.Tensor | None = None, trajectory: torch.Tensor | None = None,
              substeps: int = 4, weight: Callable[[torch.Tensor], torch.Tensor] | None = None,
              solver: Any = None) -> GitsGrid:
    """A ``steps``-step time grid optimised for ``denoiser`` (GITS).

    ``calibration_noise``: a few starting states (B, ...) at ``fine_times[0]``, drawn
    separately from any noise the grid is later evaluated on. ``fine_times``: the
    candidate times from noise to data (default :func:`default_fine_times`);
    ``trajectory``: a precomputed teacher on them (default :func:`teacher_trajectory` with
    ``substeps``); ``solver``: the one-step solver whose jumps are costed (default DDIM,
    see :func:`jump_costs`). Use the returned ``times`` as the sampler's grid.
    """
    if fine_times is None:
        fine_times = default_fine_times(denoiser)
    fine_times = _check_times(fine_times, "fine times")
    if trajectory is None:
        trajectory = teacher_trajectory(denoiser, calibration_noise, fine_times, substeps=substeps)
    costs = jump_costs(denoiser, trajectory, fine_times, weight=weight, solver=solver)
    indices, cost = least_cost_path(costs, steps)
    return GitsGrid(fine_times[list(indices)].clone(), indices, cost, fine_times)
