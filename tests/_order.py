"""Shared set-up of the convergence-order tests: Gaussian data, schedules, slope fit."""

import numpy as np
import torch

import schedalg as sa

MEAN = torch.tensor([0.3, -0.5], dtype=torch.float64)
VARIANCE = torch.tensor([0.2, 2.0], dtype=torch.float64)

# (schedule, t_start, t_end): both ends inside the domain so log-SNR grids are finite
CASES = {
    "linear": (sa.schedules.linear, 0.02, 0.98),
    "vp_cosine": (sa.schedules.vp_cosine, 0.98, 0.02),
    "edm": (sa.schedules.edm, 10.0, 0.05),
}


def fitted_order(steps: list[int], errors: list[float]) -> float:
    """Slope of log(error) against log(steps), sign flipped: the empirical order."""
    return float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])
