"""Model wrappers: any network (+ its training schedule, prediction type, time input) -> one contract."""

from ._contract import Denoiser as Denoiser
from ._contract import PreparedDenoiser as PreparedDenoiser
from ._contract import broadcast_to_batch as broadcast_to_batch

__all__ = ["Denoiser", "PreparedDenoiser", "broadcast_to_batch"]

from ._checks import NetworkOutputError as NetworkOutputError
from ._network import NetworkDenoiser as NetworkDenoiser
from ._network import PreparedNetwork as PreparedNetwork
from ._time_inputs import INPUT_SCALINGS as INPUT_SCALINGS
from ._time_inputs import TIME_INPUTS as TIME_INPUTS

__all__ += ["NetworkOutputError", "NetworkDenoiser", "PreparedNetwork", "INPUT_SCALINGS", "TIME_INPUTS"]

from ._converted import ConvertedDenoiser as ConvertedDenoiser
from ._converted import PreparedConverted as PreparedConverted

__all__ += ["ConvertedDenoiser", "PreparedConverted"]
