"""Time grids: where a sampler evaluates the network, in the sampling schedule's own ``t``.

A :class:`TimeGrid` holds times ``t_0, ..., t_N`` (float64, ``N >= 1`` steps) ordered
from the noise end to the data end of its schedule (so increasing for flow-matching
schedules, ``direction = +1``, and decreasing for VP/VE/EDM, ``direction = -1``), and
every per-time quantity a solver needs, computed once when the grid is built:

    alpha, sigma, d_alpha, d_sigma, log_snr (lambda), d_log_snr, e_star

(see :class:`schedalg.Schedule`). Values that the compiled expressions leave undefined
at an end of the domain (``0/0`` forms, e.g. ``e*`` of a point-mass schedule) are
replaced by their SymPy limits, so a grid that touches either end carries no NaN.
Infinite values are kept where they are the true limit (``lambda = -inf`` where
``alpha = 0``); solvers that would need them raise a clear error before the loop.

Constructors:

- :meth:`TimeGrid.uniform`: equal steps in ``t``;
- :meth:`TimeGrid.power`: a power warp of ``t``, ``t_k = t_data + (t_noise - t_data)(1 - k/N)^rho``
  (EDM's rho idea applied to any schedule's own time; ``rho = 1`` is uniform);
- :meth:`TimeGrid.log_snr_uniform`: equal steps in ``lambda`` (DPM-Solver's choice,
  Lu et al. 2022);
- :meth:`TimeGrid.karras`: EDM's rho-spacing of the noise level ``sigma/alpha``
  (Karras et al. 2022, eq. 5);
- :meth:`TimeGrid.from_times`: user-supplied times;
- :meth:`TimeGrid.discrete`: the ``leading`` / ``trailing`` / ``linspace`` spacings of
  integer timesteps of a tabulated (discrete) schedule (Ho et al. 2020, Song et al.
  2021 DDIM, Lin et al. 2024 "Common diffusion noise schedules are flawed").

Every constructor validates the result: at least two times, all finite, inside the
domain, strictly monotone towards the data end (no duplicates). By default every grid
starts and stops exactly at the ends of the schedule's domain, which for a truncated
schedule is the model's span (:meth:`schedalg.Schedule.truncate`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch

from ..symbolic import Schedule
from ._errors import GridError

__all__ = ["TimeGrid", "GRID_QUANTITIES"]

#: Per-time quantities a :class:`TimeGrid` precomputes (float64 tensors of length N+1).
GRID_QUANTITIES = ("alpha", "sigma", "d_alpha", "d_sigma", "log_snr", "d_log_snr", "e_star")


class TimeGrid:
    """Sampling times of one schedule, noise end first, with precomputed quantities.

    Parameters
    ----------
    schedule:
        The (bound) schedule whose own time ``t`` the grid is written in.
    times:
        1-D sequence of at least two times, strictly monotone from the noise end to
        the data end (decreasing when ``schedule.direction == -1``), inside the domain.

    Attributes
    ----------
    times:
        float64 tensor ``(N + 1,)``.
    alpha, sigma, d_alpha, d_sigma, log_snr, d_log_snr, e_star:
        float64 tensors ``(N + 1,)`` (see :data:`GRID_QUANTITIES`).
    """

    def __init__(self, schedule: Schedule, times: Any, *, label: str = "user"):
        if not isinstance(schedule, Schedule):
            raise GridError("a schedalg.Schedule", f"{type(schedule).__name__}",
                            "pass the schedule the grid's times belong to")
        schedule.require_bound("build a time grid on it")
        self.schedule = schedule
        self.compiled = schedule.compile()
        self.label = label
        self.times = _validated_times(schedule, times)
        # exact values at the domain's ends (cos(pi/2) is 6e-17 in floating point, not 0)
        values = self.compiled.evaluate_grid(self.times, *GRID_QUANTITIES)
        for name, value in zip(GRID_QUANTITIES, values):
            setattr(self, name, _fill_end_limits(schedule, name, self.times, value.clone()))

    # ------------------------------------------------------------------ views

    @property
    def n_steps(self) -> int:
        """Number of steps ``N`` (one less than the number of times)."""
        return self.times.numel() - 1

    def __len__(self) -> int:
        return self.times.numel()

    @cached_property
    def dt(self) -> torch.Tensor:
        """Signed steps ``t_{i+1} - t_i`` in the schedule's own time (float64, ``(N,)``)."""
        return self.times[1:] - self.times[:-1]

    @cached_property
    def d_log_snr_steps(self) -> torch.Tensor:
        """Steps ``lambda_{i+1} - lambda_i > 0`` in log-SNR (``inf`` where an end is open)."""
        return self.log_snr[1:] - self.log_snr[:-1]

    @property
    def direction(self) -> int:
        """The schedule's direction: +1 if ``t`` increases towards the data end."""
        return self.schedule.direction

    def values(self, name: str) -> list[float]:
        """Host-side Python floats of a precomputed quantity (read before a sampling loop)."""
        if name not in GRID_QUANTITIES and name not in ("times", "dt"):
            raise GridError(f"a quantity among {GRID_QUANTITIES + ('times', 'dt')}", repr(name), None)
        return [float(v) for v in getattr(self, name).tolist()]

    def with_midpoints(self) -> "TimeGrid":
        """The grid ``t_0, m_0, t_1, m_1, ..., t_N`` with ``m_i = (t_i + t_{i+1}) / 2``."""
        mids = 0.5 * (self.times[:-1] + self.times[1:])
        joined = torch.empty(2 * self.n_steps + 1, dtype=torch.float64)
        joined[0::2] = self.times
        joined[1::2] = mids
        return TimeGrid(self.schedule, joined, label=f"{self.label}+midpoints")

    def __repr__(self) -> str:
        t = self.times
        return (f"TimeGrid({self.schedule.name!r}, {self.label}, steps={self.n_steps}, "
                f"t={float(t[0]):.6g} -> {float(t[-1]):.6g})")

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_times(cls, schedule: Schedule, times: Any) -> "TimeGrid":
        """A grid at user-supplied ``times`` (noise end first, strictly monotone)."""
        return cls(schedule, times, label="user")

    @classmethod
    def uniform(cls, schedule: Schedule, steps: int, *, t_start: float | None = None,
                t_end: float | None = None) -> "TimeGrid":
        """``steps`` equal steps in ``t`` from ``t_start`` (default: noise end) to ``t_end`` (data end)."""
        steps = _check_steps(steps)
        start, end = _span(schedule, t_start, t_end)
        return cls(schedule, np.linspace(start, end, steps + 1), label="uniform")

    @classmethod
    def power(cls, schedule: Schedule, steps: int, rho: float = 1.0, *, t_start: float | None = None,
              t_end: float | None = None) -> "TimeGrid":
        """``t_k = t_end + (t_start - t_end)(1 - k/N)^rho``, ``k = 0..N`` (``rho > 1``: more steps near the data).

        Defaults: the span's noise and data ends; both ends are exact.
        """
        steps = _check_steps(steps)
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not (np.isfinite(rho) and rho > 0):
            raise GridError("a warp exponent rho > 0", repr(rho), "rho = 1 is uniform in t; try 1.5")
        start, end = _span(schedule, t_start, t_end)
        u = np.linspace(0.0, 1.0, steps + 1)
        times = end + (start - end) * (1.0 - u) ** float(rho)
        times[0], times[-1] = start, end
        return cls(schedule, times, label=f"power(rho={rho:g})")

    @classmethod
    def log_snr_uniform(cls, schedule: Schedule, steps: int, *, t_start: float | None = None,
                        t_end: float | None = None) -> "TimeGrid":
        """``steps`` equal steps in ``lambda`` between the log-SNRs at ``t_start`` and ``t_end``.

        Both ends must have finite ``lambda``: schedules whose ``alpha`` or ``sigma``
        vanishes at an end need an explicit ``t_start``/``t_end`` inside the domain.
        """
        steps = _check_steps(steps)
        start, end = _span(schedule, t_start, t_end)
        compiled = schedule.compile()
        lam = compiled.log_snr(torch.tensor([start, end], dtype=torch.float64))
        if not bool(torch.isfinite(lam).all()):
            raise GridError(
                "finite log-SNR at both ends of a log-SNR-uniform grid",
                f"lambda({start:.6g}) = {float(lam[0]):.6g}, lambda({end:.6g}) = {float(lam[1]):.6g} "
                f"on {schedule.name!r}",
                "pass t_start/t_end strictly inside the domain (e.g. t_end a little before the data end)",
            )
        targets = torch.linspace(float(lam[0]), float(lam[1]), steps + 1, dtype=torch.float64)
        times = compiled.t_of_log_snr(targets)
        times[0], times[-1] = start, end  # exact ends
        return cls(schedule, times, label="log_snr_uniform")

    @classmethod
    def karras(cls, schedule: Schedule, steps: int, *, sigma_min: float | None = None,
               sigma_max: float | None = None, rho: float = 7.0,
               to_data: bool | None = None) -> "TimeGrid":
        """EDM's rho-spaced noise levels ``s = sigma/alpha`` (Karras et al. 2022, eq. 5).

        ``s_i = (s_max^(1/rho) + i/(K-1) (s_min^(1/rho) - s_max^(1/rho)))^rho``, ``i < K``,
        mapped to ``t`` through ``lambda = -2 log s``. With ``to_data`` (default: when
        the schedule reaches ``sigma = 0``) the last step goes from ``s_min`` to the data
        end, so ``K = steps`` rho-spaced levels plus the data end; otherwise
        ``K = steps + 1``. ``K = 1`` is just ``s_max`` (no division by ``K - 1``).
        Defaults: ``s_max`` from the noise end (80 if infinite), ``s_min`` 0.002 or the
        data end's level, whichever is larger.
        """
        steps = _check_steps(steps)
        if not (isinstance(rho, (int, float)) and np.isfinite(rho) and rho > 0):
            raise GridError("rho > 0", repr(rho), "EDM uses rho = 7")
        compiled = schedule.compile()
        (end_levels,) = compiled.evaluate_grid(torch.tensor([compiled.t_noise, compiled.t_data], dtype=torch.float64),
                                               "edm_sigma")
        noise_level, data_level = (float(v) for v in end_levels.tolist())
        if to_data is None:
            to_data = bool(schedule.reaches_data)
        s_max = sigma_max if sigma_max is not None else (noise_level if np.isfinite(noise_level) else 80.0)
        s_min = sigma_min if sigma_min is not None else max(0.002, data_level if np.isfinite(data_level) else 0.0)
        if not (0 < s_min < s_max and np.isfinite(s_max)):
            raise GridError("0 < sigma_min < sigma_max < inf (noise levels sigma/alpha)",
                            f"sigma_min={s_min!r}, sigma_max={s_max!r}", "pass both explicitly")
        count = steps if to_data else steps + 1
        ramp = np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)
        levels = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
        lam = torch.as_tensor(-2.0 * np.log(levels), dtype=torch.float64)
        times = compiled.t_of_log_snr(lam)
        # levels equal to the span's end levels land exactly on its ends (no inverse rounding)
        if s_max == noise_level:
            times[0] = compiled.t_noise
        if s_min == data_level and not to_data:
            times[-1] = compiled.t_data
        if to_data:
            times = torch.cat([times, torch.tensor([compiled.t_data], dtype=torch.float64)])
        return cls(schedule, times, label=f"karras(rho={rho})")

    @classmethod
    def discrete(cls, schedule: Schedule, steps: int, *, spacing: str = "leading",
                 offset: int = 0, to_data: bool = True) -> "TimeGrid":
        """Integer timesteps of a tabulated schedule (``t`` = training step, ``[0, N-1]``).

        With ``N`` training steps and ``k = steps``:

        - ``leading``: ``j * (N // k) + offset`` for ``j = k-1, ..., 0``;
        - ``trailing``: ``round(N - j N / k) - 1`` for ``j = 0, ..., k-1``;
        - ``linspace``: ``round(linspace(0, N-1, k))``, reversed.

        The data end ``t = 0`` is appended when ``to_data`` and not already the last
        timestep, so the grid has ``k`` steps (``k - 1`` when the spacing itself ends at 0).
        Duplicate timesteps (more steps than the table allows) raise :class:`GridError`.
        """
        steps = _check_steps(steps)
        if float(schedule.domain[0]) != 0.0 or schedule.direction != -1:
            raise GridError("a discrete (tabulated) schedule: t = training step in [0, N-1], data at t = 0",
                            f"{schedule.name!r} with domain {schedule.domain}",
                            "use sa.schedules.tabulated(...) / from_betas(...), or another grid constructor")
        n_train = int(round(float(schedule.domain[1]))) + 1
        if spacing == "leading":
            ticks = (np.arange(steps) * (n_train // steps))[::-1] + offset
        elif spacing == "trailing":
            ticks = np.round(np.arange(n_train, 0, -n_train / steps)) - 1
        elif spacing == "linspace":
            ticks = np.round(np.linspace(0, n_train - 1, steps))[::-1]
        else:
            raise GridError("spacing 'leading', 'trailing' or 'linspace'", repr(spacing), None)
        ticks = np.asarray(ticks, dtype=np.float64)
        if to_data and ticks[-1] != 0.0:
            ticks = np.append(ticks, 0.0)
        return cls(schedule, ticks, label=f"discrete({spacing})")


# ---------------------------------------------------------------------- helpers


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise GridError("a number of steps >= 1 (an int)", repr(steps), "pass e.g. steps=10")
    return int(steps)


def _span(schedule: Schedule, t_start: float | None, t_end: float | None) -> tuple[float, float]:
    schedule.require_bound("build a time grid on it")
    start = float(schedule.t_noise) if t_start is None else float(t_start)
    end = float(schedule.t_data) if t_end is None else float(t_end)
    return start, end


def _validated_times(schedule: Schedule, times: Any) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(np.array(times, dtype=np.float64) if not isinstance(times, torch.Tensor)
                                 else times.detach().to("cpu", torch.float64))
    except (TypeError, ValueError) as exc:
        raise GridError("a 1-D sequence of float times", f"{type(times).__name__}", None) from exc
    tensor = tensor.to(torch.float64).reshape(-1).clone() if tensor.dim() <= 1 else tensor
    if tensor.dim() != 1 or tensor.numel() < 2:
        raise GridError("at least two times in a 1-D sequence (one step or more)",
                        f"shape {tuple(tensor.shape)}", "include both the start and the end time")
    if not bool(torch.isfinite(tensor).all()):
        raise GridError("finite times", f"{tensor.tolist()}", None)
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    slack = 1e-12 * max(1.0, abs(lo), abs(hi))
    if float(tensor.min()) < lo - slack or float(tensor.max()) > hi + slack:
        raise GridError(f"times inside the domain [{lo:.6g}, {hi:.6g}] of {schedule.name!r}",
                        f"times in [{float(tensor.min()):.6g}, {float(tensor.max()):.6g}]", None)
    tensor = tensor.clamp(lo, hi)
    steps = (tensor[1:] - tensor[:-1]) * schedule.direction
    bad = torch.nonzero(steps <= 0).reshape(-1)
    if bad.numel():
        i = int(bad[0])
        order = "increasing" if schedule.direction > 0 else "decreasing"
        kind = "a duplicate time" if float(steps[i]) == 0 else "a step back towards the noise end"
        raise GridError(
            f"times strictly {order} from the noise end (t={float(schedule.t_noise):.6g}) to the data end "
            f"(t={float(schedule.t_data):.6g}) of {schedule.name!r}",
            f"{kind} at index {i}: t[{i}] = {float(tensor[i]):.10g}, t[{i + 1}] = {float(tensor[i + 1]):.10g}",
            "remove duplicates (e.g. from rounding discrete timesteps) or use fewer steps",
        )
    return tensor


def _fill_end_limits(schedule: Schedule, name: str, times: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Refuse NaN values: the ends already carry the one end-value rule's values
    (:meth:`CompiledSchedule.evaluate_grid`), so a NaN left is a time where ``name`` has none."""
    if bool(torch.isnan(values).any()):
        index = int(torch.nonzero(torch.isnan(values))[0])
        raise GridError(f"a finite or infinite {name}(t) at every grid time of {schedule.name!r}",
                        f"{name}({float(times[index])!r}) = nan", "move the grid away from that time")
    return values


