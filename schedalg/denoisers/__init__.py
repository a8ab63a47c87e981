"""Exact denoisers (Gaussian data, finite data sets) usable wherever a trained model is."""

from ._gaussian import GaussianDenoiser as GaussianDenoiser
from ._mixture import GaussianMixtureDenoiser as GaussianMixtureDenoiser
from ._mixture import OptimalDenoiser as OptimalDenoiser

__all__ = ["GaussianDenoiser", "GaussianMixtureDenoiser", "OptimalDenoiser"]
