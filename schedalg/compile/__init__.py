"""SymPy -> torch: printer, common-subexpression elimination, caching, numeric inverses."""

from ._compile import CompiledFunction as CompiledFunction
from ._compile import clear_cache as clear_cache
from ._compile import compile_exprs as compile_exprs
from ._inverse import invert_monotone as invert_monotone
from ._printer import TorchPrinter as TorchPrinter
from ._printer import stabilize as stabilize

__all__ = ["CompiledFunction", "clear_cache", "compile_exprs", "invert_monotone",
           "TorchPrinter", "stabilize"]

from ._schedule import QUANTITIES as QUANTITIES
from ._schedule import CompiledSchedule as CompiledSchedule
from ._schedule import convert_prediction as convert_prediction

__all__ += ["QUANTITIES", "CompiledSchedule", "convert_prediction"]

from ._conversion import CompiledConversion as CompiledConversion
from ._conversion import evaluate_diffusion as evaluate_diffusion
from ._conversion import time_changed_increments as time_changed_increments

__all__ += ["CompiledConversion", "evaluate_diffusion", "time_changed_increments"]

from ..symbolic import register_compiler as _register  # noqa: E402
from ._conversion import compile_conversion as _compile_conversion  # noqa: E402
from ._schedule import compile_schedule as _compile_schedule  # noqa: E402

_register("schedule", _compile_schedule)
_register("conversion", _compile_conversion)
_register("diffusion", evaluate_diffusion)
