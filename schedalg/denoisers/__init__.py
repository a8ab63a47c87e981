"""Exact denoisers (Gaussian data, finite data sets) usable wherever a trained model is."""

from ._gaussian import GaussianDenoiser as GaussianDenoiser
from ._mixture import GaussianMixtureDenoiser as GaussianMixtureDenoiser
from ._mixture import OptimalDenoiser as OptimalDenoiser
from ._sharded import ShardedMixtureDenoiser as ShardedMixtureDenoiser
from ._sharded import ShardedOptimalDenoiser as ShardedOptimalDenoiser
from ._sharded import combine_log_sum_exp as combine_log_sum_exp

__all__ = ["GaussianDenoiser", "GaussianMixtureDenoiser", "OptimalDenoiser", "ShardedMixtureDenoiser",
           "ShardedOptimalDenoiser", "combine_log_sum_exp"]
