"""The flow-map contract: a network ``v_{s,t}(x)`` as the two-time map ``X_{s,t}``.

The flow map of the probability-flow ODE ``x' = b_t(x)`` of a schedule sends the state at
time ``s`` to the state at time ``t`` (Boffi, Albergo & Vanden-Eijnden, arXiv 2406.07507;
MATH.md section 6):

    X_{s,t}(x_s) = x_t,    X_{s,s} = id,    X_{t,u} o X_{s,t} = X_{s,u},
    d_t X_{s,t}(x) = b_t(X_{s,t}(x))                         (Lagrangian equation)
    d_s X_{s,t}(x) + grad X_{s,t}(x) b_s(x) = 0               (Eulerian equation)

It is parameterized as ``X_{s,t}(x) = x + (t - s) v_{s,t}(x)``, so ``X_{s,s} = id`` holds
by construction and the diagonal ``v_{t,t} = b_t`` is the ODE's velocity.

Every flow map in :mod:`schedalg.flowmaps` (a network wrapped by :class:`FlowMap`, the
exact oracles, a map moved to another schedule by :class:`ConvertedFlowMap`) offers:
``schedule`` (a :class:`schedalg.Schedule`; times are that schedule's own times),
``fm(x, s, t)`` (``X_{s,t}(x)``; ``s``, ``t`` numbers or (B,) tensors) and
``fm.velocity(x, t)`` (``b_t(x)``).

Moving a map to another schedule. With ``conv = sa.convert(A, B)`` (``x^B_s = c(s)
x^A_{tau(s)}``, the same data and noise), a path of A's ODE scaled by ``c`` and
re-timed by ``tau`` is a path of B's ODE, so

    X^B_{s,t}(y) = c(t) X^A_{tau(s), tau(t)}(y / c(s)),
    b^B_s(y)     = (c'(s)/c(s)) y + c(s) tau'(s) b^A_{tau(s)}(y / c(s))

(proved from the package's conversion expressions in ``proofs/prove_flowmaps.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..errors import SchedalgError
from ..symbolic import Schedule
from ..symbolic import convert as _convert

__all__ = ["FlowMap", "FlowMapError", "ConvertedFlowMap", "as_times", "per_sample", "semigroup_defect",
           "identity_defect", "is_flow_map", "velocity_denoiser"]


class FlowMapError(SchedalgError):
    """Bad input to a flow map, a flow-map loss or a flow-map sampler."""


def as_times(value: Any, like: torch.Tensor, name: str) -> torch.Tensor:
    """A time ``value`` (number, 0-d or (B,) tensor) as a (B,) tensor in the dtype and device of ``like``."""
    batch = like.shape[0]
    times = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if times.dim() == 0:
        return times.expand(batch)
    if times.dim() != 1 or times.shape[0] != batch:
        raise FlowMapError(f"{name} as a number or a ({batch},) tensor (one time per sample)",
                           f"shape {tuple(times.shape)}", f"pass {name} with the batch size of x")
    return times


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) values reshaped to broadcast against ``like`` (B, ...)."""
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def _check_state(x: Any) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or not x.is_floating_point():
        got = f"{type(x).__name__}" + (f" {tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else "")
        raise FlowMapError("states x as a floating-point tensor (batch, ...)", got, "e.g. torch.randn(16, 2)")


class FlowMap:
    """``X_{s,t}(x) = x + (t - s) v_{s,t}(x)`` for a network ``v = network(x, s, t)``.

    ``network`` takes states (B, ...) and times ``s``, ``t`` as (B,) tensors (the
    schedule's own time, in the dtype of ``x``) and returns ``v_{s,t}(x)`` with the shape
    of ``x`` (a "mean velocity": the average of ``b`` along the path from ``s`` to ``t``).
    ``schedule`` is the schedule whose probability-flow ODE the map follows.
    Boffi, Albergo & Vanden-Eijnden (arXiv 2406.07507), eq. (2.6).
    """

    def __init__(self, network: Callable[..., torch.Tensor], schedule: Schedule):
        if not callable(network):
            raise FlowMapError("a callable network(x, s, t) -> v_{s,t}(x)", type(network).__name__, None)
        if not isinstance(schedule, Schedule):
            raise FlowMapError("a schedalg.Schedule", type(schedule).__name__, "e.g. sa.schedules.linear()")
        self.network = network
        self.schedule = schedule

    def mean_velocity(self, x: torch.Tensor, s: Any, t: Any) -> torch.Tensor:
        """``v_{s,t}(x)``: the network's output, checked for shape."""
        _check_state(x)
        out = self.network(x, as_times(s, x, "s"), as_times(t, x, "t"))
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise FlowMapError(f"network output of the state's shape {tuple(x.shape)}", f"{got}",
                               "the network must return v_{s,t}(x) with the shape of x")
        return out

    def __call__(self, x: torch.Tensor, s: Any, t: Any) -> torch.Tensor:
        """``X_{s,t}(x) = x + (t - s) v_{s,t}(x)``."""
        _check_state(x)
        s, t = as_times(s, x, "s"), as_times(t, x, "t")
        return x + per_sample(t - s, x) * self.mean_velocity(x, s, t)

    def velocity(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """``b_t(x) = v_{t,t}(x)``, the velocity of the ODE the map follows."""
        return self.mean_velocity(x, t, t)

    def __repr__(self) -> str:
        return f"FlowMap({type(self.network).__name__}, schedule={self.schedule.name!r})"


class ConvertedFlowMap:
    """A flow map of schedule A moved to schedule B: ``c(t) X^A_{tau(s), tau(t)}(y / c(s))``.

    ``tau`` and ``c`` come from ``sa.convert(flow_map.schedule, schedule)``; times are in
    B's time. Valid where B's log-SNR is inside A's range (the conversion raises otherwise).
    """

    def __init__(self, flow_map: Any, schedule: Schedule):
        if not isinstance(getattr(flow_map, "schedule", None), Schedule) or not callable(flow_map):
            raise FlowMapError("a flow map (callable (x, s, t) with a .schedule)", type(flow_map).__name__,
                               "wrap a network with schedalg.flowmaps.FlowMap")
        self.flow_map = flow_map
        self.schedule = schedule
        self.conversion = _convert(flow_map.schedule, schedule)
        self._at_float: dict[float, tuple[float, float]] = {}

    def _pieces(self, value: Any, like: torch.Tensor, name: str) -> tuple[Any, Any]:
        """``(tau, c)``: host floats for a Python number (computed once per time, e.g. a sampler's
        grid), else (B,) tensors."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            pieces = self._at_float.get(float(value))
            if pieces is None:
                wide = torch.tensor([float(value)], dtype=torch.float64)
                pieces = (float(self.conversion.time(wide)[0]), float(self.conversion.scale(wide)[0]))
                self._at_float[float(value)] = pieces
            return pieces
        wide = as_times(value, like, name).to(torch.float64)
        tau, c = self.conversion.time(wide), self.conversion.scale(wide)
        return tau.to(like.dtype), per_sample(c, like).to(like.dtype)

    def prepare(self, times: Any) -> None:
        """Compute ``(tau, c)`` once, on the host, at each of ``times`` (Python floats, e.g. a sampler's grid):
        calls at these times then do no conversion work (and trace into constants)."""
        for value in times:
            self._pieces(float(value), torch.empty(0), "t")

    def __call__(self, y: torch.Tensor, s: Any, t: Any) -> torch.Tensor:
        """``X^B_{s,t}(y) = c(t) X^A_{tau(s), tau(t)}(y / c(s))``."""
        _check_state(y)
        (tau_s, c_s), (tau_t, c_t) = self._pieces(s, y, "s"), self._pieces(t, y, "t")
        return c_t * self.flow_map(y / c_s, tau_s, tau_t)

    def velocity(self, y: torch.Tensor, t: Any) -> torch.Tensor:
        """``b^B_t(y) = (c'/c) y + c tau' b^A_{tau(t)}(y / c)``."""
        _check_state(y)
        tt = as_times(t, y, "t").to(torch.float64)
        tau, c = self.conversion.time(tt), self.conversion.scale(tt)
        d_tau, d_c = self.conversion.d_time(tt), self.conversion.d_scale(tt)
        c_, tau_ = per_sample(c, y).to(y.dtype), tau.to(y.dtype)
        inner = self.flow_map.velocity(y / c_, tau_)
        return per_sample(d_c / c, y).to(y.dtype) * y + c_ * per_sample(d_tau, y).to(y.dtype) * inner

    def __repr__(self) -> str:
        return f"ConvertedFlowMap({self.flow_map!r} -> {self.schedule.name!r})"


def semigroup_defect(flow_map: Any, x: torch.Tensor, s: Any, t: Any, u: Any) -> torch.Tensor:
    """Per-sample RMS of ``X_{t,u}(X_{s,t}(x)) - X_{s,u}(x)`` (0 for an exact flow map)."""
    _check_state(x)
    two_jumps = flow_map(flow_map(x, s, t), t, u)
    return (two_jumps - flow_map(x, s, u)).flatten(1).square().mean(1).sqrt()


def identity_defect(flow_map: Any, x: torch.Tensor, s: Any) -> torch.Tensor:
    """Per-sample RMS of ``X_{s,s}(x) - x`` (0 for an exact flow map)."""
    _check_state(x)
    return (flow_map(x, s, s) - x).flatten(1).square().mean(1).sqrt()


def is_flow_map(obj: Any) -> bool:
    """True for a flow map: callable ``(x, s, t)`` with a :class:`schedalg.Schedule` ``.schedule`` and a
    ``.velocity(x, t)`` (and no ``.prepare``, which makes a :class:`schedalg.models.Denoiser`)."""
    return (callable(obj) and isinstance(getattr(obj, "schedule", None), Schedule)
            and callable(getattr(obj, "velocity", None)) and not callable(getattr(obj, "prepare", None)))


class _Diagonal:
    """``(x, t) -> b_t(x) = v_{t,t}(x)``: a flow map's diagonal as a velocity network."""

    def __init__(self, flow_map: Any):
        self.flow_map = flow_map

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.flow_map.velocity(x, t)


def velocity_denoiser(flow_map: Any) -> Any:
    """The ODE a flow map follows, as a :class:`schedalg.models.Denoiser`: its diagonal ``b_t = v_{t,t}``
    (the small-jump limit ``lim_{t -> s} (X_{s,t}(x) - x) / (t - s)``) served as a ``"velocity"`` network
    (``b_t = alpha'(t) x0 + sigma'(t) eps``, MATH.md section 1) in the map's schedule.

    Any ODE sampler runs on it; :func:`schedalg.geometry.select_sampler` solves it finely as the default
    reference of a flow map's jumps (for the exact oracles it is the exact velocity).
    """
    from ..models import NetworkDenoiser

    if not is_flow_map(flow_map):
        raise FlowMapError("a flow map (callable (x, s, t) with a .schedule and a .velocity(x, t))",
                           type(flow_map).__name__, "wrap a network with schedalg.flowmaps.FlowMap")
    return NetworkDenoiser(_Diagonal(flow_map), flow_map.schedule, "velocity", "t")
