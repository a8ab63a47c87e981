"""Sampling: time grids, solvers (one small file each), the generic sampler, export.

::

    import schedalg as sa
    from schedalg.sampling import TimeGrid, sample

    grid = TimeGrid.log_snr_uniform(schedule, 20, t_start=0.001, t_end=0.999)  # linear schedule
    x = sample(denoiser, torch.randn(16, 2), grid, "dpmpp_2m")

See :class:`Sampler` (plan once, sample many times), :data:`SOLVERS` (registry names),
:func:`export_sampler` / :func:`load_sampler` (a torch-only compiled sampler file).
"""

from . import solvers as solvers
from ._errors import ExportError as ExportError
from ._errors import GridError as GridError
from ._errors import SamplingError as SamplingError
from ._errors import SolverError as SolverError
from ._grid import GRID_QUANTITIES as GRID_QUANTITIES
from ._grid import TimeGrid as TimeGrid
from ._noise import STREAM_INITIAL as STREAM_INITIAL
from ._noise import STREAM_STEPS as STREAM_STEPS
from ._noise import per_sample_normal as per_sample_normal
from ._sampler import Sampler as Sampler
from ._sampler import SamplerStep as SamplerStep
from ._sampler import sample as sample
from ._solver import SOLVERS as SOLVERS
from ._solver import AffineStep as AffineStep
from ._solver import Plan as Plan
from ._solver import Solver as Solver
from ._solver import get_solver as get_solver
from ._solver import register_solver as register_solver

__all__ = ["solvers", "ExportError", "GridError", "SamplingError", "SolverError", "GRID_QUANTITIES", "TimeGrid",
           "per_sample_normal", "STREAM_INITIAL", "STREAM_STEPS", "Sampler", "SamplerStep", "sample", "SOLVERS", "Plan",
           "Solver", "get_solver", "register_solver", "AffineStep"]

from ._export import SamplerModule as SamplerModule
from ._export import export_sampler as export_sampler
from ._export import load_sampler as load_sampler

__all__ += ["SamplerModule", "export_sampler", "load_sampler"]
