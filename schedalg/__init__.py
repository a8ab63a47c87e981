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

import importlib as _importlib

from . import errors as errors
from . import symbolic as symbolic
from .errors import SchedalgError as SchedalgError
from .symbolic import PREDICTION_KINDS as PREDICTION_KINDS
from .symbolic import Conversion as Conversion
from .symbolic import Diffusion as Diffusion
from .symbolic import Schedule as Schedule
from .symbolic import convert as convert
from .symbolic import lam as lam
from .symbolic import t as t

__version__ = "0.1.0"

#: Layers and names loaded on first use (PEP 562): ``import schedalg`` and
#: ``import schedalg.symbolic`` load SymPy only; torch comes with the first numeric name.
_SUBPACKAGES = ("compile", "schedules", "models", "sampling", "augmented", "datasets", "denoisers",
                "distributed", "geometry", "interop", "lazy", "flowmaps", "ot", "testing", "plot")
_LAZY_NAMES = {"CompiledSchedule": "compile", "convert_prediction": "compile"}

__all__ = ["compile", "errors", "schedules", "symbolic", "models", "sampling", "augmented", "datasets",
           "denoisers", "distributed", "geometry", "interop", "lazy", "flowmaps", "ot", "testing", "plot",
           "CompiledSchedule",
           "convert_prediction", "SchedalgError", "PREDICTION_KINDS", "Conversion", "Diffusion", "Schedule",
           "convert", "lam", "t"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = _importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _LAZY_NAMES:
        value = getattr(__getattr__(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
