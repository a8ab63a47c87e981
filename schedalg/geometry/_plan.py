"""The ready sampler of a plan: a :class:`~schedalg.sampling.Sampler` that answers in the model's coordinates.

A plan may sample along another schedule than the model's (``x^S_s = c(s) x^model_tau(s)``,
:func:`schedalg.convert`). Its grid starts at the model's noise end (the sampling schedule
is truncated to the model's log-SNR span, so ``sigma_S(s_0) noise = c(s_0) sigma_model
noise``: EDM's ``80 noise``) and ends at the span's data end, where the state is mapped
back: ``x^model = x^S / c(s_N)``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..sampling import Sampler, SamplerModule

__all__ = ["PlannedSampler", "PlannedSamplerModule"]


class PlannedSampler(Sampler):
    """A :class:`Sampler` whose result is ``output_scale * x_N`` (``1 / c(t_data)``): the model's coordinates.

    :meth:`iterate` and callbacks see the states in the sampling schedule's coordinates.
    """

    def __init__(self, denoiser: Any, grid: Any, solver: Any = "euler", *, output_scale: float = 1.0,
                 **solver_options: Any):
        super().__init__(denoiser, grid, solver, **solver_options)
        self.output_scale = float(output_scale)

    @classmethod
    def for_model(cls, denoiser: Any, grid: Any, solver: Any = "euler", **solver_options: Any) -> "PlannedSampler":
        """The sampler of ``denoiser`` along ``grid`` (on the model's span, any schedule), answering in the
        model's coordinates: ``output_scale = 1 / c(t_data)`` from the conversion model -> grid schedule."""
        from ..sampling import same_schedule
        from ..symbolic import convert

        schedule = grid.schedule
        scale = 1.0
        if not same_schedule(denoiser.schedule, schedule):
            end = torch.tensor([float(grid.times[-1])], dtype=torch.float64)
            scale = 1.0 / float(convert(denoiser.schedule, schedule).scale(end)[0])
        return cls(denoiser, grid, solver, output_scale=scale, **solver_options)

    def __call__(self, noise: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        out = super().__call__(noise, **kwargs)
        return out if self.output_scale == 1.0 else out * self.output_scale

    def module(self) -> "PlannedSamplerModule":
        """The run as a ``torch.nn.Module`` (for ``torch.compile`` and export), the output scale included."""
        return PlannedSamplerModule(self)

    def __repr__(self) -> str:
        return f"PlannedSampler({self.solver!r}, {self.grid!r}, nfe={self.nfe}, output_scale={self.output_scale:.6g})"


class PlannedSamplerModule(SamplerModule):
    """:class:`schedalg.sampling.SamplerModule` of a :class:`PlannedSampler`: the program's result times
    ``output_scale`` (the same multiplication as the call, so an exported plan answers in the model's
    coordinates, bitwise)."""

    def __init__(self, sampler: PlannedSampler):
        super().__init__(sampler)
        self.output_scale = sampler.output_scale

    def forward(self, x: torch.Tensor, draws: torch.Tensor | None = None,
                cond: dict[str, Any] | None = None) -> torch.Tensor:
        out = super().forward(x, draws, cond)
        return out if self.output_scale == 1.0 else out * self.output_scale
