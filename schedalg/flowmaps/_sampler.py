"""Few-step sampling with a flow map, and the a-posteriori choice of the step count.

A flow map jumps along the probability-flow ODE: on a grid ``t_0`` (noise end) ...
``t_N`` (data end), ``x_{k+1} = X_{t_k, t_{k+1}}(x_k)`` from ``x_0 = sigma(t_0) noise``,
one network evaluation per step. For the exact map every ``N`` gives the same sample
(semigroup property); for a learned one ``N`` trades accuracy for cost and is chosen
after training (Boffi, Albergo & Vanden-Eijnden, arXiv 2406.07507, section 4): see
:func:`schedalg.geometry.choose_steps` (the planner on uniform jump grids).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple, Sequence

import torch

from ..sampling import TimeGrid
from ..symbolic import Schedule
from ._map import ConvertedFlowMap, FlowMapError

__all__ = ["FlowMapSampler", "FlowMapSamplerModule", "FlowMapStep"]


class FlowMapStep(NamedTuple):
    """One jump: the state ``x`` at ``t``, and ``x_next = X_{t, t_next}(x)``."""

    index: int
    t: float
    t_next: float
    x: torch.Tensor
    x_next: torch.Tensor


def _same(a: Schedule, b: Schedule) -> bool:
    return a is b or bool(a.alpha == b.alpha and a.sigma == b.sigma and tuple(a.domain) == tuple(b.domain))


class FlowMapSampler:
    """``N`` flow-map jumps on a time grid; called like :class:`schedalg.sampling.Sampler`.

    ``flow_map``: any flow map (``fm(x, s, t)`` with ``.schedule``); ``grid``: a
    :class:`schedalg.sampling.TimeGrid` (in any schedule: the map is moved to it with
    :class:`schedalg.flowmaps.ConvertedFlowMap`) or an int ``N`` (uniform in the map's own
    time over its whole domain). ``sampler(noise, seed=...)`` returns the sample (``seed``
    and ``generator`` are accepted for interface compatibility: the jumps are deterministic).
    Attributes: ``grid``, ``nfe`` (= ``N``, network evaluations per run), ``flow_map``
    (the map in the grid's schedule), ``method`` (``"flow_map"``) and ``noise_draws`` (0).
    It exports like any sampler: ``schedalg.sampling.export_sampler(sampler, path, noise)``
    traces :meth:`module` (the jumps unrolled into one graph of tensor operations).
    """

    method = "flow_map"
    noise_draws = 0

    def __init__(self, flow_map: Any, grid: TimeGrid | int):
        if not callable(flow_map) or not isinstance(getattr(flow_map, "schedule", None), Schedule):
            raise FlowMapError("a flow map (callable (x, s, t) with a .schedule)", type(flow_map).__name__,
                               "wrap a network with schedalg.flowmaps.FlowMap")
        if isinstance(grid, int) and not isinstance(grid, bool):
            if grid < 1:
                raise FlowMapError("a number of steps >= 1", repr(grid), "e.g. FlowMapSampler(fm, 2)")
            grid = TimeGrid.uniform(flow_map.schedule, grid)
        if not isinstance(grid, TimeGrid):
            raise FlowMapError("a TimeGrid or a number of steps", type(grid).__name__, None)
        self.grid = grid
        self.flow_map = flow_map if _same(flow_map.schedule, grid.schedule) else ConvertedFlowMap(flow_map,
                                                                                                  grid.schedule)
        self.nfe = grid.n_steps
        # host-side floats, read once: the loop below does no schedule work
        self._times = grid.values("times")
        if isinstance(self.flow_map, ConvertedFlowMap):
            self.flow_map.prepare(self._times)
        self.start_scale = float(grid.sigma[0])
        if self.start_scale == 0.0:
            raise FlowMapError("a grid starting where sigma > 0 (a flow map needs a non-degenerate start)",
                               f"sigma(t_0) = 0 at t_0 = {self._times[0]}", "start the grid inside the domain")

    def initial_state(self, noise: torch.Tensor, scale_noise: bool = True) -> torch.Tensor:
        """``sigma(t_0) * noise`` (or ``noise`` itself when ``scale_noise`` is False)."""
        if not isinstance(noise, torch.Tensor) or noise.dim() < 1 or not noise.is_floating_point():
            raise FlowMapError("noise as a floating-point tensor (batch, ...)", type(noise).__name__,
                               "e.g. schedalg.sampling.per_sample_normal((16, 64), seed=0)")
        return noise * self.start_scale if scale_noise and self.start_scale != 1.0 else noise

    def draws(self, like: torch.Tensor, *, seed: int | None = None,
              generator: torch.Generator | None = None) -> None:
        """None: the jumps draw no noise (as :meth:`schedalg.sampling.Sampler.draws` of a deterministic solver)."""
        return None

    def iterate(self, noise: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
                scale_noise: bool = True) -> Iterator[FlowMapStep]:
        """Yield a :class:`FlowMapStep` per jump (the last one's ``x_next`` is the sample)."""
        return _jumps(self.flow_map, self._times, self.initial_state(noise, scale_noise))

    def __call__(self, noise: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
                 scale_noise: bool = True, callback: Callable[[FlowMapStep], None] | None = None) -> torch.Tensor:
        """The sample at the end of the grid; ``callback(step)`` after every jump."""
        out = noise
        for step in self.iterate(noise, scale_noise=scale_noise):
            if callback is not None:
                callback(step)
            out = step.x_next
        return out

    def module(self) -> "FlowMapSamplerModule":
        """The jumps as an ``nn.Module`` (``forward(x)`` from the scaled initial state), for ``torch.export``."""
        return FlowMapSamplerModule(self)

    def __repr__(self) -> str:
        return f"FlowMapSampler({self.flow_map!r}, {self.grid!r})"


def _jumps(flow_map: Any, times: Sequence[float], x: torch.Tensor) -> Iterator[FlowMapStep]:
    """``x_{k+1} = X_{t_k, t_{k+1}}(x_k)``: the one loop of every flow-map run (calls, iterate, the module)."""
    with torch.no_grad():
        for i in range(len(times) - 1):
            x_next = flow_map(x, times[i], times[i + 1])
            yield FlowMapStep(i, times[i], times[i + 1], x, x_next)
            x = x_next


class FlowMapSamplerModule(torch.nn.Module):
    """The jumps of a :class:`FlowMapSampler` as an ``nn.Module``: ``forward(x)``, ``x`` the initial state.

    The grid's times are Python constants of the module, so ``torch.export.export(module, (x,))``
    unrolls the jumps into one graph (the network found at ``flow_map.network``, if an
    ``nn.Module``, is registered as a submodule so its weights travel with the program).
    ``forward`` takes ``draws`` and ``cond`` only to refuse them (a flow map draws no noise and
    takes no conditioning), so that it has the signature of :class:`schedalg.sampling.SamplerModule`.
    """

    def __init__(self, sampler: FlowMapSampler):
        super().__init__()
        self.flow_map = sampler.flow_map
        self.times = tuple(sampler.grid.values("times"))
        network = getattr(getattr(sampler.flow_map, "flow_map", sampler.flow_map), "network", None)
        self.network = network if isinstance(network, torch.nn.Module) else None

    def forward(self, x: torch.Tensor, draws: torch.Tensor | None = None,
                cond: dict[str, Any] | None = None) -> torch.Tensor:
        if draws is not None or cond:
            raise FlowMapError("only the initial state (a flow-map sampler draws no noise and takes no "
                               "conditioning)", "draws or conditioning", "export with the noise alone")
        for step in _jumps(self.flow_map, self.times, x):
            x = step.x_next
        return x
