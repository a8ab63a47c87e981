"""Sampling geometry: trajectory statistics, GITS time grids (Chen et al. 2023, 2024), and
calibrated choice of (schedule, grid, solver) for a budget of network evaluations."""

from ._gits import GitsGrid as GitsGrid
from ._gits import default_fine_times as default_fine_times
from ._gits import gits_grid as gits_grid
from ._gits import jump_costs as jump_costs
from ._gits import least_cost_path as least_cost_path
from ._plan import PlannedSampler as PlannedSampler
from ._plan import PlannedSamplerModule as PlannedSamplerModule
from ._select import Candidate as Candidate
from ._select import Selection as Selection
from ._select import StepChoice as StepChoice
from ._select import choose_steps as choose_steps
from ._select import endpoint_error as endpoint_error
from ._select import jump_counts as jump_counts
from ._select import power_times as power_times
from ._select import sampling_schedules as sampling_schedules
from ._select import select_sampler as select_sampler
from ._statistics import chord_deviation as chord_deviation
from ._statistics import eps_angle as eps_angle
from ._statistics import score_deviation as score_deviation
from ._teacher import teacher_trajectory as teacher_trajectory

__all__ = ["GitsGrid", "default_fine_times", "gits_grid", "jump_costs", "least_cost_path",
           "PlannedSampler", "PlannedSamplerModule", "sampling_schedules", "Candidate", "Selection",
           "endpoint_error", "jump_counts", "StepChoice", "choose_steps", "power_times", "select_sampler",
           "chord_deviation", "eps_angle", "score_deviation", "teacher_trajectory"]
