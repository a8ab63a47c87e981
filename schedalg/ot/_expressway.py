"""DPM-OT's expressway: source noise -> a data latent by semi-discrete OT -> a few sampler steps.

Li et al. 2023 (DPM-OT, arXiv 2307.11308; MATH.md section 5). Given data ``y_1..y_N`` and
a :class:`schedalg.sampling.Sampler` whose grid starts at ``t_0`` of a schedule ``(alpha,
sigma)`` (any schedule: the state is written in the grid's own coordinates), the latents
are the data pushed forward to ``t_0``,

    x_j = alpha(t_0) y_j + sigma(t_0) eps_j ,   eps_j ~ N(0, I) drawn once (``seed``),

the semi-discrete OT map ``T`` from ``N(0, I)`` to ``(1/N) sum_j delta_{x_j}`` is fitted
(:class:`SemiDiscreteOT`), and a sample is ``sampler(T(z))`` for ``z ~ N(0, I)``: the map
replaces the sampler's steps from the noise end to ``t_0`` and costs no network
evaluation. The network evaluations are the sampler's (``nfe``), counted as everywhere
else. Every source point in the cell of ``x_j`` starts at the same latent ``x_j``: with a
deterministic sampler the expressway can produce at most ``N`` distinct samples, and at
a low noise level ``t_0`` they are close to the data ``y_j`` themselves (memorisation;
measure it with :func:`schedalg.ot.nearest_distances`). With balanced cells (every cell of
mass ``w_j``), ``T(z)`` for ``z ~ N(0, I)`` has the law ``sum_j w_j delta_{x_j}``: the same law
as drawing the index at random. The map makes the choice a deterministic, monotone
function of the noise; it cannot change the law of the samples, and a residual imbalance
of the fitted cells biases it (``benchmarks/ot.py`` measures both).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ._semidiscrete import OTError, SemiDiscreteOT

__all__ = ["Expressway"]


class Expressway:
    """Noise -> OT cell -> latent ``alpha(t_0) y_j + sigma(t_0) eps_j`` -> ``sampler`` from ``t_0``.

    Parameters
    ----------
    sampler:
        A :class:`schedalg.sampling.Sampler`; its grid's first time ``t_0`` is the level the
        data are pushed to (``alpha(t_0) > 0``). Build it with e.g.
        ``Sampler(denoiser, TimeGrid.uniform(schedule, steps, t_start=t0), solver)``.
    data:
        ``(N, *shape)`` data points ``y_j`` (the state's shape after the batch dimension).
    weights:
        Optional ``(N,)`` masses of the data points (uniform by default).
    seed:
        Seed of the latents' noise ``eps_j`` (a generator on the data's device).
    ot_dtype:
        dtype of the OT cell computations (default: the data's; float32 halves the fit
        time); the sampler still starts from the latents in the data's dtype.
    **ot_options:
        ``chunk_size`` / ``batch_size`` of :class:`SemiDiscreteOT`.

    Attributes: ``sampler``, ``latents`` (``(N, *shape)``), ``ot`` (the
    :class:`SemiDiscreteOT`), ``nfe`` (network evaluations per run: the sampler's),
    ``fit_seconds`` (wall time of the last :meth:`fit`).
    """

    def __init__(self, sampler: Any, data: Any, *, weights: Any = None, seed: int = 0,
                 ot_dtype: torch.dtype | None = None, **ot_options: Any):
        from ..sampling import Sampler

        if not isinstance(sampler, Sampler):
            raise OTError("a schedalg.sampling.Sampler whose grid starts at the latent level t_0",
                          type(sampler).__name__,
                          "Sampler(denoiser, TimeGrid.uniform(schedule, steps, t_start=t0), solver)")
        alpha0, sigma0 = float(sampler.grid.alpha[0]), float(sampler.grid.sigma[0])
        if not alpha0 > 0:
            raise OTError("a grid starting where alpha(t_0) > 0 (data still visible in the latents)",
                          f"alpha(t_0) = {alpha0:g} at t_0 = {float(sampler.grid.times[0]):g}",
                          "start the grid at a lower noise level with t_start=...")
        data = torch.as_tensor(data)
        if not data.is_floating_point() or data.dim() < 2 or data.shape[0] < 1:
            raise OTError("data as a floating tensor (N, *shape) with N >= 1",
                          f"dtype {data.dtype}, shape {tuple(data.shape)}", "stack the data points along dim 0")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise OTError("a seed as an int >= 0", repr(seed), "e.g. seed=0")
        generator = torch.Generator(device=data.device).manual_seed(seed)
        noise = torch.randn(data.shape, generator=generator, dtype=data.dtype, device=data.device)
        self.sampler = sampler
        self.t0 = float(sampler.grid.times[0])
        self.latents = alpha0 * data + sigma0 * noise
        if ot_dtype is not None and not (isinstance(ot_dtype, torch.dtype) and ot_dtype.is_floating_point):
            raise OTError("ot_dtype as a floating torch.dtype or None", repr(ot_dtype), "e.g. ot_dtype=torch.float32")
        self.ot = SemiDiscreteOT(self.latents if ot_dtype is None else self.latents.to(ot_dtype), weights,
                                 **ot_options)
        self.fit_seconds: float | None = None

    @property
    def nfe(self) -> int:
        """Network evaluations per run (the sampler's; the OT map costs none)."""
        return self.sampler.nfe

    def fit(self, **options: Any) -> "Expressway":
        """Fit the OT potential (options of :meth:`SemiDiscreteOT.fit`); returns ``self``."""
        start = time.perf_counter()
        self.ot.fit(**options)
        self.fit_seconds = time.perf_counter() - start
        return self

    def start(self, noise: torch.Tensor) -> torch.Tensor:
        """The latents ``T(z)`` the sampler starts from (``(B, *shape)``, on the data's device)."""
        return self.latents[self.ot.assign(noise)]

    def __call__(self, noise: torch.Tensor, **run_options: Any) -> torch.Tensor:
        """Samples from source noise ``z`` (``(B, *shape)``): ``sampler(T(z), scale_noise=False, ...)``.

        ``run_options`` go to the sampler's call (``seed=`` for a stochastic solver, ``callback=``, ...).
        """
        return self.sampler(self.start(noise), scale_noise=False, **run_options)

    def __repr__(self) -> str:
        return f"Expressway(t0={self.t0:.6g}, {self.ot!r}, {self.sampler!r})"
