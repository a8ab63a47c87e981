"""The benchmark problem: exact denoiser on real data, fixed noise, a high-accuracy reference.

Data: scikit-learn's 8x8 digits in [-1, 1] (1797 x 64), smoothed into the Gaussian
mixture ``(1/N) sum_i N(y_i, s^2 I)`` so the exact denoiser is closed form and the
probability-flow ODE is smooth up to the data end. Every system, schedalg or peer,
solves that ODE from its own starting state (its schedule, its first time, its noise
scaling) to the data end; the reference endpoint is a DOP853 solve (scipy, rtol = atol
= 1e-9) of the same ODE from the same start, in the coordinates of the linear schedule
``x = t x0 + (1 - t) eps``, where the velocity ``x0_hat - eps_hat`` is finite on
the whole of ``[0, 1]``. A state ``x`` at ``(alpha, sigma)`` of any schedule is
``c x`` at ``t = alpha c`` of the linear one, ``c = 1/(alpha + sigma)`` (MATH.md section 1).

Error = RMS per dimension of (endpoint - reference), averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import schedalg as sa
from schedalg.datasets import digits
from schedalg.denoisers import GaussianMixtureDenoiser

SMOOTHING_STD = 0.1
EVAL_SEED = 1234
CALIBRATION_SEED = 98765


@dataclass
class Problem:
    """Data, the exact mixture denoiser (EDM view), evaluation noise, cached references."""

    batch: int
    smoothing_std: float = SMOOTHING_STD
    components: int | None = None  # use only the first digits (tests); None = all 1797
    rtol: float = 1e-9
    data: torch.Tensor = field(init=False)
    mixture: GaussianMixtureDenoiser = field(init=False)
    noise: torch.Tensor = field(init=False)
    calibration_noise: torch.Tensor = field(init=False)
    _references: dict[tuple, torch.Tensor] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.data = digits()[: self.components]
        self.mixture = self.denoiser(sa.schedules.edm())
        self.noise = torch.randn(self.batch, self.data.shape[1], dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(EVAL_SEED))
        self.calibration_noise = torch.randn(32, self.data.shape[1], dtype=torch.float64,
                                             generator=torch.Generator().manual_seed(CALIBRATION_SEED))

    def denoiser(self, schedule: sa.Schedule) -> GaussianMixtureDenoiser:
        """The exact denoiser of the smoothed digits in the coordinates of ``schedule``."""
        return GaussianMixtureDenoiser(schedule, self.data, self.smoothing_std**2, chunk_size=2048)

    def edm_denoise(self, x: torch.Tensor, edm_sigma: Any) -> torch.Tensor:
        """``D(x; s)`` for EDM states (alpha = 1); float64 in, dtype of ``x`` out."""
        return self.mixture.denoise(x, 1.0, edm_sigma)[0]

    def reference(self, alpha: float, sigma: float, state_scale: float) -> torch.Tensor:
        """The ODE endpoint from ``x = state_scale * noise`` at ``(alpha, sigma)``.

        Cached per start in linear coordinates ``(t0, c * state_scale)``, so equal starts
        written in different schedules share one solve. ``alpha = 0`` is pure noise.
        """
        c = 1.0 / (alpha + sigma)
        key = (round(alpha * c, 11), round(c * state_scale, 11))
        if key not in self._references:
            self._references[key] = self._solve(alpha, sigma, state_scale)
        return self._references[key]

    def _solve(self, alpha: float, sigma: float, state_scale: float) -> torch.Tensor:
        from scipy.integrate import solve_ivp

        c = 1.0 / (alpha + sigma)
        t0 = alpha * c
        x0 = (c * state_scale * self.noise).numpy().reshape(-1)
        shape = self.noise.shape

        def velocity(t: float, flat: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(flat.reshape(shape))
            x0_hat, eps_hat = self.mixture.denoise(x, t, 1.0 - t)
            return (x0_hat - eps_hat).numpy().reshape(-1)

        solution = solve_ivp(velocity, (t0, 1.0), x0, method="DOP853", rtol=self.rtol, atol=self.rtol)
        if not solution.success:
            raise RuntimeError(f"reference solve failed: {solution.message}")
        return torch.from_numpy(solution.y[:, -1].reshape(shape).copy())

    @staticmethod
    def error(endpoint: torch.Tensor, reference: torch.Tensor) -> float:
        """Mean over the batch of the RMS per dimension of ``endpoint - reference``."""
        diff = (endpoint.to(torch.float64) - reference).reshape(reference.shape[0], -1)
        return float(diff.pow(2).mean(1).sqrt().mean())


@dataclass
class Run:
    """One benchmark row."""

    system: str
    sampler: str
    grid: str
    nfe: int
    error: float
    seconds: float
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {"system": self.system, "sampler": self.sampler, "grid": self.grid, "nfe": self.nfe,
                "error": self.error, "seconds": round(self.seconds, 4), "note": self.note}


class Counter:
    """Counts calls of a wrapped function (one call = one network evaluation of the batch)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)
