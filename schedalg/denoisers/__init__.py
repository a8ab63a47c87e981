"""Exact denoisers (Gaussian data, finite data sets) usable wherever a trained model is."""

from ._gaussian import GaussianDenoiser as GaussianDenoiser

__all__ = ["GaussianDenoiser"]
