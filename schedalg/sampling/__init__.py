"""Sampling: time grids, solvers (one small file each), the generic sampler, export.

::

    import schedalg as sa
    from schedalg.sampling import TimeGrid, sample

    grid = TimeGrid.log_snr_uniform(schedule, 20, t_start=0.001, t_end=0.999)  # linear schedule
    x = sample(denoiser, torch.randn(16, 2), grid, "dpmpp_2m")

See :class:`Sampler` (plan once, sample many times), :data:`SOLVERS` (registry names;
:func:`register_solver` adds one, as a :class:`Tableau` or a :class:`Solver` writing a
:class:`Program`), :func:`export_sampler` / :func:`load_sampler` (a torch-only sampler file).
"""

from ._errors import ExportError as ExportError
from ._errors import GridError as GridError
from ._errors import SamplingError as SamplingError
from ._errors import SolverError as SolverError
from ._grid import GRID_QUANTITIES as GRID_QUANTITIES
from ._grid import TimeGrid as TimeGrid
from ._noise import STREAM_INITIAL as STREAM_INITIAL
from ._noise import STREAM_STEPS as STREAM_STEPS
from ._noise import per_sample_normal as per_sample_normal
from ._program import Blocks as Blocks
from ._program import Program as Program
from ._program import ProgramBuilder as ProgramBuilder
from ._sampler import Sampler as Sampler
from ._sampler import SamplerModule as SamplerModule
from ._sampler import SamplerStep as SamplerStep
from ._sampler import sample as sample
from ._sampler import same_schedule as same_schedule
from ._solver import SOLVERS as SOLVERS
from ._solver import Solver as Solver
from ._solver import get_solver as get_solver
from ._solver import register_solver as register_solver
from ._tableau import Tableau as Tableau
from ._tableau import tableau_nodes as tableau_nodes
from ._tableau import write_tableau_step as write_tableau_step
from . import solvers as solvers  # noqa: E402  (registers the built-in solvers)
from ._export import ExportableSampler as ExportableSampler
from ._export import export_sampler as export_sampler
from ._export import load_sampler as load_sampler

__all__ = ["ExportError", "GridError", "SamplingError", "SolverError", "GRID_QUANTITIES", "TimeGrid",
           "per_sample_normal", "STREAM_INITIAL", "STREAM_STEPS", "Blocks", "Program", "ProgramBuilder", "Sampler", "SamplerModule", "SamplerStep",
           "sample", "same_schedule", "SOLVERS", "Solver", "get_solver", "register_solver", "Tableau", "tableau_nodes",
           "write_tableau_step", "solvers", "ExportableSampler", "export_sampler", "load_sampler"]
