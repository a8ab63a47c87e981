"""Trajectory statistics of ODE sampling (Chen et al., arXiv 2305.19947; MATH.md section 4).

For a trajectory ``x_0 (noise end) ... x_M (data end)`` of one sample:

- chord deviation: the distance of each state from the straight line through the two
  end states, ``|(x_k - x_M) - <x_k - x_M, u> u|`` with ``u = (x_0 - x_M)/|x_0 - x_M|``
  (the sampling trajectory is quasi-linear: small deviation);
- the angle between ``eps_hat(x_k)`` and ``x_k - x_M`` (small: the noise prediction
  points from the final sample to the current state);
- score deviation: ``|D_theta(x_k) - D*(x_k)|``, a model's denoiser against the optimal one.

All take states ``(M+1, B, ...)`` and return ``(M+1, B)`` float64 tensors.
"""

from __future__ import annotations

import torch

from ..errors import SchedalgError
from ..models import Denoiser

__all__ = ["chord_deviation", "eps_angle", "score_deviation"]


def _flat(states: torch.Tensor) -> torch.Tensor:
    if states.dim() < 3:
        raise SchedalgError("states of shape (M+1, B, ...)", f"shape {tuple(states.shape)}",
                            "stack the trajectory's states along dimension 0")
    return states.reshape(states.shape[0], states.shape[1], -1).to(torch.float64)


def chord_deviation(states: torch.Tensor) -> torch.Tensor:
    """Distance of each state from the line through the trajectory's first and last states."""
    flat = _flat(states)
    offset = flat - flat[-1]
    chord = offset[0]
    unit = chord / chord.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    along = (offset * unit).sum(-1, keepdim=True)
    return (offset - along * unit).norm(dim=-1)


def eps_angle(eps_hats: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """Angle (radians) between ``eps_hat`` at each state and ``x_k - x_M`` (nan at ``k = M``)."""
    eps, flat = _flat(eps_hats), _flat(states)
    if eps.shape != flat.shape:
        raise SchedalgError("eps_hats shaped like the states", f"{tuple(eps_hats.shape)} vs {tuple(states.shape)}",
                            "evaluate eps_hat at every state of the trajectory")
    offset = flat - flat[-1]
    cosine = (eps * offset).sum(-1) / (eps.norm(dim=-1) * offset.norm(dim=-1))
    return torch.arccos(cosine.clamp(-1.0, 1.0))


def score_deviation(model: Denoiser, reference: Denoiser, states: torch.Tensor,
                    times: torch.Tensor) -> torch.Tensor:
    """``|x0_model - x0_reference|`` (L2 over the data dimensions) at each state and time.

    Both denoisers must use the same schedule (their times must mean the same thing).
    """
    if model.schedule is not reference.schedule and (model.schedule.alpha != reference.schedule.alpha
                                                      or model.schedule.sigma != reference.schedule.sigma):
        raise SchedalgError("two denoisers on the same schedule", f"{model.schedule!r} and {reference.schedule!r}",
                            "wrap one of them with a schedule conversion first")
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.shape != (states.shape[0],):
        raise SchedalgError(f"one time per state ({states.shape[0]})", f"times of shape {tuple(times.shape)}",
                            "pass the trajectory's time grid")
    a, b = model.prepare(times), reference.prepare(times)
    rows = []
    for k in range(states.shape[0]):
        diff = (a(states[k], k)[0].to(torch.float64) - b(states[k], k)[0].to(torch.float64))
        rows.append(diff.reshape(diff.shape[0], -1).norm(dim=-1))
    return torch.stack(rows)
