"""Figures (matplotlib, an optional dependency imported on first use): schedules, sampling
trajectories and their geometry (seed 001), error against network evaluations."""

from ._plots import error_vs_nfe as error_vs_nfe
from ._plots import record_trajectory as record_trajectory
from ._plots import schedules as schedules
from ._plots import trajectories as trajectories

__all__ = ["schedules", "trajectories", "error_vs_nfe", "record_trajectory"]
