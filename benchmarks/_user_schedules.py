"""Schedules written as a user would (issue 11), shared by the derivation tests and benchmarks."""

from __future__ import annotations

import sympy as sp

import schedalg as sa

t = sa.t


def sigmoid() -> sa.Schedule:
    """log-SNR = -(t - 1/2) 12, written through alpha = sqrt(sigmoid(lambda(t)))."""
    log_snr = -(t - sp.Rational(1, 2)) * 12
    alpha = sp.sqrt(1 / (1 + sp.exp(-log_snr)))
    return sa.Schedule(alpha, sp.sqrt(1 - alpha**2), name="user_sigmoid")


def iddpm_naive() -> sa.Schedule:
    """Improved-DDPM cosine, offset 0.008, with sigma = sqrt(1 - alpha^2) written naively."""
    s = 0.008
    alpha = sp.cos((t + s) / (1 + s) * sp.pi / 2) / sp.cos(s / (1 + s) * sp.pi / 2)
    return sa.Schedule(alpha, sp.sqrt(1 - alpha**2), name="user_iddpm_cosine")


def sd3_shift(shift: float = 3.0) -> sa.Schedule:
    """Rectified flow with the SD3 time shift t' = s t / (1 + (s - 1) t) (noise at t = 1)."""
    shifted = shift * t / (1 + (shift - 1) * t)
    return sa.Schedule(1 - shifted, shifted, name="user_sd3_shift")


def edm_rho(sigma_min: float = 0.002, sigma_max: float = 80.0, rho: int = 7) -> sa.Schedule:
    """EDM's rho-time (Karras et al. 2022, eq. 5) on t in [0, 1], alpha = 1; the domain is
    where sigma > 0 (sigma reaches 0 at t = sigma_max^(1/rho) / (sigma_max^(1/rho) - sigma_min^(1/rho)))."""
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sigma = (a + t * (b - a)) ** rho
    return sa.Schedule(sp.Integer(1), sigma, domain=(0, sp.Float(a / (a - b))), name="user_edm_rho")


USER = {"sigmoid": sigmoid, "iddpm_cosine": iddpm_naive, "sd3_shift": sd3_shift, "edm_rho": edm_rho}
