"""Pure SymPy layer: schedules, prediction types, derivations. Imports no torch."""

from ._numeric import NumericFunction as NumericFunction
from ._predictions import PREDICTION_KINDS as PREDICTION_KINDS
from ._predictions import prediction_basis as prediction_basis
from ._predictions import prediction_conversion as prediction_conversion
from ._schedule import DIRECTION as DIRECTION
from ._schedule import LogSnrInverse as LogSnrInverse
from ._schedule import Schedule as Schedule
from ._symbols import lam as lam
from ._symbols import s as s
from ._symbols import t as t

__all__ = ["DIRECTION", "NumericFunction", "PREDICTION_KINDS", "prediction_basis", "prediction_conversion",
           "LogSnrInverse", "Schedule", "lam", "s", "t"]

from ._convert import TAU as TAU
from ._convert import ComposedConversion as ComposedConversion
from ._convert import Conversion as Conversion
from ._convert import PIECES as PIECES
from ._convert import conversion_formulas as conversion_formulas
from ._convert import convert as convert
from ._diffusion import Diffusion as Diffusion
from ._diffusion import DiffusionError as DiffusionError
from ._diffusion import map_diffusion as map_diffusion
from ._pointmass import PointMassError as PointMassError
from ._pointmass import PointMassStart as PointMassStart
from ._pointmass import point_mass_start as point_mass_start

__all__ += ["TAU", "ComposedConversion", "Conversion", "PIECES", "conversion_formulas", "convert", "one_sided_limit", "Diffusion",
            "DiffusionError", "map_diffusion", "PointMassError", "PointMassStart", "point_mass_start"]

from ._cache import cache_dir as cache_dir
from ._cache import configure_cache as configure_cache
from ._ends import conversion_end_values as conversion_end_values
from ._ends import end_values as end_values
from ._ends import one_sided_limit as one_sided_limit
from ._ends import value_at_end as value_at_end
from ._hooks import register_compiler as register_compiler
from ._record import record_of as derivation_record

__all__ += ["cache_dir", "configure_cache", "conversion_end_values", "end_values", "value_at_end", "register_compiler", "derivation_record"]
from ._schedule import EndValueWarning as EndValueWarning
from ._schedule import SuspiciousScheduleWarning as SuspiciousScheduleWarning

__all__ += ["EndValueWarning", "SuspiciousScheduleWarning"]

# shared with the layers above (compile, models, lazy): their public face here
from ._cache import CSE_NAME as CSE_NAME
from ._cache import Builder as CacheTreeBuilder
from ._cache import CacheFormatError as CacheFormatError
from ._cache import decode as decode_expr
from ._cache import encode as encode_expr
from ._convert import schedule_key as schedule_key
from ._lazy import LAZY_KINDS as LAZY_KINDS
from ._lazy import LazyFamily as LazyFamily
from ._lazy import derive_lazy_family as derive_lazy_family
from ._lazy import gaussian_drift_coefficient as gaussian_drift_coefficient
from ._lazy import gaussian_posterior as gaussian_posterior
from ._lazy import ode_family as ode_family
from ._lazy import point_mass_family as point_mass_family
from ._lazy import sde_drift as sde_drift
from ._pointmass import start_limit as start_limit
from ._predictions import check_prediction_kind as check_prediction_kind
from ._stable import stabilize as stabilize

__all__ += ["CSE_NAME", "CacheTreeBuilder", "CacheFormatError", "decode_expr", "encode_expr", "schedule_key", "LAZY_KINDS", "LazyFamily",
            "derive_lazy_family", "gaussian_drift_coefficient", "gaussian_posterior", "ode_family",
            "point_mass_family", "sde_drift", "start_limit", "check_prediction_kind", "stabilize"]
