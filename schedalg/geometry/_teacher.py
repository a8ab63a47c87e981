"""A fine reference trajectory of the probability-flow ODE (the GITS "teacher").

Heun's method (trapezoidal predictor-corrector) in the schedule's own time ``t`` on the
velocity ``b = alpha' x0_hat + sigma' eps_hat`` (MATH.md section 1), with ``substeps``
equal sub-intervals between consecutive grid times. The velocity is finite at both ends
of every schedule whose ``alpha'``, ``sigma'`` are (Gaussian-base and point-mass ones
included). One exception: a last step that lands on ``sigma = 0`` is the DDIM step
``alpha x0_hat(x)`` instead (as EDM's sampler skips its correction there), because for
data without a density (a finite data set) ``eps_hat`` jumps at ``sigma = 0`` from its
limit along the path to ``E[eps] = 0``.
"""

from __future__ import annotations

import torch

from ..errors import SchedalgError
from ..models import Denoiser

__all__ = ["teacher_trajectory"]


def _check_times(times: torch.Tensor, what: str) -> torch.Tensor:
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.dim() != 1 or times.numel() < 2 or not bool(torch.isfinite(times).all()):
        raise SchedalgError(f"{what}: a 1-D tensor of at least 2 finite times", f"shape {tuple(times.shape)}",
                            "pass the grid from the noise end to the data end")
    steps = torch.diff(times)
    if not (bool((steps > 0).all()) or bool((steps < 0).all())):
        raise SchedalgError(f"{what}: strictly monotone times", f"{times.tolist()[:6]}...",
                            "sort the grid from the noise end to the data end without repeats")
    return times


def teacher_trajectory(denoiser: Denoiser, noise: torch.Tensor, times: torch.Tensor, *,
                       substeps: int = 4) -> torch.Tensor:
    """States ``x(times[k])`` of the probability-flow ODE from ``x(times[0]) = noise``.

    Returns a tensor ``(len(times), *noise.shape)`` in float64 (row 0 is ``noise``).
    Costs at most ``2 * substeps * (len(times) - 1)`` denoiser calls (Heun, 2nd order in the step).
    """
    times = _check_times(times, "teacher times")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise SchedalgError("a positive integer substeps", f"{substeps!r}", "e.g. substeps=4")
    fractions = torch.arange(substeps + 1, dtype=torch.float64) / substeps
    fine = torch.cat([(times[:-1, None] + fractions[None, :-1] * torch.diff(times)[:, None]).flatten(),
                      times[-1:]])
    compiled = denoiser.schedule.compile()
    alpha, sigma, d_alpha, d_sigma = compiled.evaluate(fine, "alpha", "sigma", "d_alpha", "d_sigma")
    last = fine.numel() - 2
    ends_on_data = bool(sigma[-1] == 0)
    prepared = denoiser.prepare(fine)

    def velocity(x: torch.Tensor, k: int) -> torch.Tensor:
        x0, eps = prepared(x, k)
        return d_alpha[k] * x0 + d_sigma[k] * eps

    x = noise.to(torch.float64)
    states = [x]
    for k in range(fine.numel() - 1):
        h = fine[k + 1] - fine[k]
        if k == last and ends_on_data:
            x = alpha[-1] * prepared(x, k)[0]
        else:
            slope = velocity(x, k)
            x = x + 0.5 * h * (slope + velocity(x + h * slope, k + 1))
        if (k + 1) % substeps == 0:
            states.append(x)
    return torch.stack(states)
