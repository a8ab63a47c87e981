"""Model wrappers: any network (+ its training schedule, prediction type, time input) -> one contract."""

from ._contract import Denoiser as Denoiser
from ._contract import PreparedDenoiser as PreparedDenoiser
from ._contract import broadcast_to_batch as broadcast_to_batch

__all__ = ["Denoiser", "PreparedDenoiser", "broadcast_to_batch"]
