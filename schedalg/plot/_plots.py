"""Figures of schedules, sampling trajectories and error against evaluations (matplotlib, optional).

Every function takes an optional matplotlib ``Axes`` (or a row of them), draws on it and
returns the figure, so figures compose and nothing is shown or saved implicitly. Values
are computed by the package itself (compiled schedules in float64, trajectories from a
:class:`~schedalg.sampling.Sampler`), never re-derived here.

* :func:`schedules` - alpha, sigma and log-SNR against *generation progress* (0 at the
  noise end, 1 at the data end, whatever direction a schedule's own time runs), and the
  path ``(sigma, alpha)`` itself: two schedules with the same path differ only by a time
  change (Damsholt et al. 2026, seed 000).
* :func:`trajectories` - sampling trajectories projected on the plane of the chord
  ``x_0 - x_M`` and the largest orthogonal direction, and their geometry (seed 001, Chen et
  al. 2023): the chord deviation of each state and the angle between ``eps_hat`` and
  ``x_k - x_M`` along the run.
* :func:`error_vs_nfe` - error against network evaluations on log-log axes, one line per
  method, with an optional reference slope.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import torch

from .._optional import require
from ..errors import SchedalgError
from ..geometry import chord_deviation, eps_angle
from ..symbolic import Schedule

__all__ = ["schedules", "trajectories", "error_vs_nfe", "record_trajectory"]


def _pyplot():
    return require("matplotlib.pyplot", "schedalg.plot")


def _axes(ax: Any, count: int, width: float = 4.0):
    plt = _pyplot()
    if ax is None:
        fig, axes = plt.subplots(1, count, figsize=(width * count, 3.6))
        axes = list(axes) if count > 1 else [axes]
        return fig, axes
    axes = list(ax) if isinstance(ax, (list, tuple)) or hasattr(ax, "__len__") else [ax]
    if len(axes) != count:
        raise SchedalgError(f"{count} matplotlib Axes", f"{len(axes)}", f"pass ax=None or a row of {count} Axes")
    return axes[0].figure, axes


def _named(items: Schedule | Iterable[Schedule] | Mapping[str, Schedule]) -> dict[str, Schedule]:
    if isinstance(items, Schedule):
        return {items.name: items}
    if isinstance(items, Mapping):
        named = dict(items)
    else:
        named = {getattr(schedule, "name", repr(schedule)): schedule for schedule in items}
    bad = [k for k, v in named.items() if not isinstance(v, Schedule)]
    if bad or not named:
        raise SchedalgError("one Schedule, a list of them, or a {label: Schedule} mapping",
                            f"{type(items).__name__}" + (f" with non-schedules at {bad}" if bad else " (empty)"),
                            "e.g. schedalg.plot.schedules([sa.schedules.linear(), sa.schedules.vp_cosine()])")
    return named


def schedules(items: Schedule | Iterable[Schedule] | Mapping[str, Schedule], *, points: int = 400,
              log_snr_limits: tuple[float, float] = (-15.0, 15.0), ax: Any = None):
    """alpha, sigma, log-SNR against generation progress, and the path (sigma, alpha); 4 panels."""
    fig, axes = _axes(ax, 4, width=3.4)
    for label, schedule in _named(items).items():
        compiled = schedule.compile()
        progress = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
        times = compiled.t_noise + progress * (compiled.t_data - compiled.t_noise)
        alpha, sigma, lam = compiled.evaluate_grid(times, "alpha", "sigma", "log_snr")
        axes[0].plot(progress, alpha, label=label)
        axes[1].plot(progress, sigma, label=label)
        axes[2].plot(progress, lam.clamp(*log_snr_limits), label=label)
        axes[3].plot(sigma, alpha, label=label)
    axes[0].set(xlabel="generation progress", ylabel="alpha (data coefficient)")
    axes[1].set(xlabel="generation progress", ylabel="sigma (noise coefficient)")
    axes[2].set(xlabel="generation progress", ylabel="log-SNR lambda (clipped)", ylim=log_snr_limits)
    axes[3].set(xlabel="sigma", ylabel="alpha", title="path (time-change invariant)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def record_trajectory(sampler: Any, noise: torch.Tensor, **run: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """States ``(M+1, B, ...)`` and noise predictions ``(M, B, ...)`` of one run of ``sampler``.

    ``eps_hat`` at each step's state is recovered from the step's ``x0_hat`` and the
    schedule, ``eps = (x - alpha x0_hat) / sigma`` (so the noise end must have sigma > 0).
    """
    states, x0s = [], []
    for step in sampler.iterate(noise, **run):
        states.append(step.x)
        x0s.append(step.x0_hat)
    states.append(step.x_next)
    grid = sampler.grid
    alpha, sigma = grid.alpha[:-1], grid.sigma[:-1]
    shape = (-1,) + (1,) * (noise.dim())
    x = torch.stack(states[:-1]).to(torch.float64)
    eps = (x - alpha.reshape(shape) * torch.stack(x0s).to(torch.float64)) / sigma.reshape(shape)
    return torch.stack(states), eps


def trajectories(states: torch.Tensor, eps_hats: torch.Tensor | None = None, *, samples: int = 8,
                 ax: Any = None):
    """Trajectories in the plane of their chord, chord deviation, and the eps-angle (3 panels, or 2).

    ``states``: ``(M+1, B, ...)``, noise end first (e.g. from :func:`record_trajectory`);
    ``eps_hats``: ``(M, B, ...)`` or ``(M+1, B, ...)`` noise predictions at those states.
    """
    if not isinstance(states, torch.Tensor) or states.dim() < 3 or states.shape[0] < 2:
        raise SchedalgError("states of shape (M+1, B, ...) with M >= 1", repr(getattr(states, "shape", states)),
                            "use schedalg.plot.record_trajectory(sampler, noise)")
    panels = 3 if eps_hats is not None else 2
    fig, axes = _axes(ax, panels)
    flat = states.reshape(states.shape[0], states.shape[1], -1).to(torch.float64)
    progress = torch.linspace(0.0, 1.0, states.shape[0], dtype=torch.float64)
    for b in range(min(samples, flat.shape[1])):
        path = flat[:, b] - flat[-1, b]
        chord = path[0]
        unit = chord / chord.norm().clamp_min(1e-300)
        along = path @ unit
        rest = path - along[:, None] * unit
        norms = rest.norm(dim=1)
        k = int(torch.argmax(norms))
        other = rest[k] / norms[k].clamp_min(1e-300)
        axes[0].plot(along, rest @ other, marker=".", lw=1)
    axes[0].set(xlabel="along the chord x_0 - x_M", ylabel="largest orthogonal offset",
                title="trajectories (data end at 0)")
    deviation = chord_deviation(states)
    scale = (flat[0] - flat[-1]).norm(dim=-1)
    axes[1].plot(progress, (deviation / scale).T[:samples].T, lw=1)
    axes[1].set(xlabel="generation progress", ylabel="chord deviation / chord length")
    if eps_hats is not None:
        eps = eps_hats if eps_hats.shape[0] == states.shape[0] else torch.cat([eps_hats, eps_hats[-1:]])
        angle = eps_angle(eps, states)[:-1]
        axes[2].plot(progress[:-1], torch.rad2deg(angle).T[:samples].T, lw=1)
        axes[2].set(xlabel="generation progress", ylabel="angle(eps_hat, x_k - x_M) [deg]")
    fig.tight_layout()
    return fig


def error_vs_nfe(results: Mapping[str, Mapping[int, float] | Sequence[tuple[int, float]]], *,
                 reference_slope: float | None = None, ax: Any = None, ylabel: str = "RMS endpoint error"):
    """Error against network evaluations, log-log, one line per method: ``{label: {nfe: error}}``."""
    fig, (axis,) = _axes(ax, 1, width=5.0)
    if not isinstance(results, Mapping) or not results:
        raise SchedalgError("a mapping {method: {nfe: error}}", type(results).__name__, None)
    lowest = None
    for label, series in results.items():
        pairs = sorted((series.items() if isinstance(series, Mapping) else series))
        nfe = [float(n) for n, _ in pairs]
        err = [float(e) for _, e in pairs]
        if any(not (math.isfinite(e) and e > 0) for e in err) or any(n <= 0 for n in nfe):
            raise SchedalgError(f"positive finite errors and NFE for {label!r}", f"{pairs}",
                                "drop diverged runs or mark them separately")
        axis.loglog(nfe, err, marker="o", label=label)
        lowest = (nfe[0], err[0]) if lowest is None or nfe[0] < lowest[0] else lowest
    if reference_slope is not None and lowest is not None:
        n0, e0 = lowest
        ns = [n0, 4 * n0]
        axis.loglog(ns, [e0 * (n / n0) ** (-reference_slope) for n in ns], "k--", lw=1,
                    label=f"slope -{reference_slope:g}")
    axis.set(xlabel="network evaluations (NFE)", ylabel=ylabel)
    axis.legend(fontsize=7)
    fig.tight_layout()
    return fig
