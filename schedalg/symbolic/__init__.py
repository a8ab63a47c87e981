"""Pure SymPy layer: schedules, prediction types, derivations. Imports no torch."""

from ._numeric import NumericFunction as NumericFunction
from ._predictions import PREDICTION_KINDS as PREDICTION_KINDS
from ._predictions import prediction_basis as prediction_basis
from ._predictions import prediction_conversion as prediction_conversion
from ._schedule import LogSnrInverse as LogSnrInverse
from ._schedule import Schedule as Schedule
from ._symbols import lam as lam
from ._symbols import s as s
from ._symbols import t as t

__all__ = ["NumericFunction", "PREDICTION_KINDS", "prediction_basis", "prediction_conversion",
           "LogSnrInverse", "Schedule", "lam", "s", "t"]
