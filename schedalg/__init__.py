"""schedalg: a symbolic-numeric schedule algebra for diffusion and flow models.

Declare a schedule ``x_t = alpha(t) x0 + sigma(t) eps`` with SymPy; schedalg derives
the rest symbolically and compiles it to torch::

    import sympy as sp, schedalg as sa
    t = sa.t
    cosine = sa.Schedule(alpha=sp.cos(sp.pi * t / 2), sigma=sp.sin(sp.pi * t / 2))
    cosine.log_snr          # SymPy
    num = cosine.compile()  # num.alpha(tt), num.sigma(tt), ... (torch)
"""

from . import compile as compile  # noqa: A004 - the layer's name
from . import errors as errors
from . import schedules as schedules
from . import symbolic as symbolic
from .compile import CompiledSchedule as CompiledSchedule
from .errors import SchedalgError as SchedalgError
from .symbolic import PREDICTION_KINDS as PREDICTION_KINDS
from .symbolic import Schedule as Schedule
from .symbolic import lam as lam
from .symbolic import t as t
from .symbolic import Conversion as Conversion
from .symbolic import Diffusion as Diffusion
from .symbolic import convert as convert

__version__ = "0.1.0"

__all__ = ["compile", "errors", "schedules", "symbolic", "CompiledSchedule", "SchedalgError",
           "PREDICTION_KINDS", "Schedule", "lam", "t", "convert_prediction"]
__all__ += ["Conversion", "Diffusion", "convert"]

from . import augmented as augmented  # noqa: E402 - augmented-space diffusions (CLD, PSLD)

__all__ += ["augmented"]

from . import interop as interop  # noqa: E402 - diffusers / k-diffusion adapters (peers imported lazily)

__all__ += ["interop"]


def convert_prediction(schedule: Schedule, output, x, tt, src: str, dst: str):
    """Convert a network ``output`` of kind ``src`` into kind ``dst`` (torch tensors).

    ``dst = c_x(t) x_t + c_p(t) output`` with coefficients derived by SymPy for
    ``schedule`` (:func:`schedalg.symbolic.prediction_conversion`).
    """
    return schedule.compile().convert_prediction(output, x, tt, src, dst)

from . import sampling as sampling  # noqa: E402 - the sampling layer (grids, solvers, sampler, export)

__all__ += ["sampling"]

from . import lazy as lazy  # noqa: E402 - lazy zero-drift families and their samplers

__all__ += ["lazy"]
