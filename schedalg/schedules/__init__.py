"""Standard schedule families (``sa.schedules.linear()``, ...) and tabulated schedules."""

from ._library import LIBRARY as LIBRARY
from ._library import brownian_bridge as brownian_bridge
from ._library import cosine as cosine
from ._library import edm as edm
from ._library import linear as linear
from ._library import polynomial_convex as polynomial_convex
from ._library import sub_vp as sub_vp
from ._library import trigonometric as trigonometric
from ._library import ve as ve
from ._library import vp_cosine as vp_cosine
from ._library import vp_linear as vp_linear

__all__ = ["LIBRARY", "brownian_bridge", "cosine", "edm", "linear", "polynomial_convex", "sub_vp",
           "trigonometric", "ve", "vp_cosine", "vp_linear", "TabulatedSchedule", "discrete_betas",
           "from_betas", "tabulated"]

#: Tabulated schedules evaluate with torch; loaded on first use so that the symbolic
#: library (and ``schedalg list``/``show``) does not import torch.
_TABULATED = ("TabulatedSchedule", "discrete_betas", "from_betas", "tabulated")


def __getattr__(name: str):
    if name in _TABULATED:
        from . import _tabulated

        return getattr(_tabulated, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
