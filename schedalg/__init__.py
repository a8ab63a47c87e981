"""schedalg: a symbolic-numeric schedule algebra for diffusion and flow models.

Declare a schedule ``x_t = alpha(t) x0 + sigma(t) eps`` with SymPy; schedalg derives
the rest symbolically and compiles it to torch::

    import sympy as sp, schedalg as sa
    t = sa.t
    cosine = sa.Schedule(alpha=sp.cos(sp.pi * t / 2), sigma=sp.sin(sp.pi * t / 2))
    cosine.log_snr          # SymPy
    num = cosine.compile()  # num.alpha(tt), num.sigma(tt), ... (torch)

Layers: :mod:`schedalg.symbolic` (pure SymPy) -> :mod:`schedalg.compile` (SymPy -> torch)
-> :mod:`schedalg.models` -> :mod:`schedalg.sampling`; beside them :mod:`schedalg.schedules`,
:mod:`schedalg.interop`, :mod:`schedalg.lazy`, :mod:`schedalg.augmented`,
:mod:`schedalg.denoisers`, :mod:`schedalg.distributed`, :mod:`schedalg.geometry`, :mod:`schedalg.datasets`,
:mod:`schedalg.flowmaps`, :mod:`schedalg.ot`, and :mod:`schedalg.testing` (property tests for your own schedules).
Optional packages (diffusers, k-diffusion, flow_matching, scikit-learn, matplotlib, tqdm)
are imported only when a feature needs them.
"""

from . import compile as compile  # noqa: A004 - the layer's name
from . import errors as errors
from . import schedules as schedules
from . import symbolic as symbolic
from .compile import CompiledSchedule as CompiledSchedule
from .compile import convert_prediction as convert_prediction
from .errors import SchedalgError as SchedalgError
from .symbolic import PREDICTION_KINDS as PREDICTION_KINDS
from .symbolic import Conversion as Conversion
from .symbolic import Diffusion as Diffusion
from .symbolic import Schedule as Schedule
from .symbolic import convert as convert
from .symbolic import lam as lam
from .symbolic import t as t

from . import models as models  # noqa: E402,I001 - layers above first
from . import sampling as sampling  # noqa: E402
from . import augmented as augmented  # noqa: E402
from . import datasets as datasets  # noqa: E402
from . import denoisers as denoisers  # noqa: E402
from . import distributed as distributed  # noqa: E402
from . import geometry as geometry  # noqa: E402
from . import interop as interop  # noqa: E402
from . import lazy as lazy  # noqa: E402
from . import flowmaps as flowmaps  # noqa: E402
from . import ot as ot  # noqa: E402
from . import testing as testing  # noqa: E402 - check functions; hypothesis only when strategies are built

__version__ = "0.1.0"

__all__ = ["compile", "errors", "schedules", "symbolic", "models", "sampling", "augmented", "datasets",
           "denoisers", "distributed", "geometry", "interop", "lazy", "flowmaps", "ot", "testing", "CompiledSchedule",
           "convert_prediction", "SchedalgError", "PREDICTION_KINDS", "Conversion", "Diffusion", "Schedule",
           "convert", "lam", "t"]
