"""Lazy samplers: the ODE in the variance-preserving family, the optimal SDE from a point mass.

Damsholt, Frellsen & Ditlevsen 2026 (arXiv 2602.03789); MATH.md section 2.

**Lazy ODE.** In the ODE family ``y = sin(u) x' + cos(u) eps`` (``u`` the angle, per
channel) the probability-flow ODE is ``dy/du = A'(u) x0' + S'(u) eps'`` with
``A' = cos u`` and ``S' = -sin u`` (derived, compiled). For standardized Gaussian data
the right side is identically zero, so Euler, Heun and midpoint steps are all exact;
on other data the right side is only the non-Gaussian part of the model. Solvers:

* ``euler``:    ``y += h f(y, u_i)``                                     (1 evaluation / step)
* ``heun``:     ``y_p = y + h f_i``, ``y += h (f_i + f(y_p, u_{i+1})) / 2``  (2 / step; the last
  step, onto the data end where sigma = 0, is an Euler step)
* ``midpoint``: ``y_m = y + h/2 f_i``, ``y += h f(y_m, u_i + h/2)``           (2 / step)

**Lazy SDE.** In the point-mass family ``y = a x' + sqrt(a (1 - a)) eps`` the optimal
SDE (``e* = a'/2``) has drift ``(x0' - y) / (1 - a)`` and noise ``dW`` per unit ``a``;
Euler-Maruyama from ``y = 0``:

    y += h / (1 - a_i) (x0' - y) + sqrt(h) xi_i,     xi_i ~ N(0, I).

At ``a = 0`` the state is the point mass and the network is queried on the limit input
(:meth:`PreparedLazy.at_point_mass`, with ``xi_0``).

Both loops use coefficients computed before the loop (no SymPy, no host sync) and
return samples in data coordinates (``mean + std y``).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import SchedalgError
from ..models._contract import Denoiser
from ._standardize import Standardization
from ._view import LazyDenoiser, PreparedLazy

__all__ = ["LAZY_ODE_SOLVERS", "lazy_ode_sample", "point_mass_sample", "lazy_nfe", "integrate_lazy_ode",
           "integrate_point_mass"]

#: Solver name -> network evaluations per step of the lazy ODE.
LAZY_ODE_SOLVERS = {"euler": 1, "heun": 2, "midpoint": 2}


def lazy_nfe(solver: str, steps: int) -> int:
    """Network evaluations of ``steps`` steps of a lazy ODE ``solver`` (Heun's last step, onto
    the data end, is an Euler step: one evaluation fewer)."""
    _check_solver(solver)
    return LAZY_ODE_SOLVERS[solver] * steps - (1 if solver == "heun" else 0)


def _check_solver(solver: str) -> None:
    if solver not in LAZY_ODE_SOLVERS:
        raise SchedalgError(f"a lazy ODE solver among {sorted(LAZY_ODE_SOLVERS)}", repr(solver),
                            "pick one of the listed names")


def _grid_of(lazy: LazyDenoiser, steps: int | None, grid: Any) -> torch.Tensor:
    if (steps is None) == (grid is None):
        raise SchedalgError("exactly one of steps= and grid=", f"steps={steps!r}, grid={grid!r}",
                            "pass steps=N for a uniform grid in the free coordinate, or grid=values")
    return lazy.uniform_grid(steps) if grid is None else lazy._check_grid(grid)


def _check_sample_shape(standardization: Standardization, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise SchedalgError("a batch tensor (B, *sample_shape)", type(x).__name__, "pass a tensor")
    standardization.check_shape(x.shape[1:])


def integrate_lazy_ode(prepared: PreparedLazy, y: torch.Tensor, solver: str, **cond: Any) -> torch.Tensor:
    """The lazy ODE loop from ``y`` (the state at the grid's first point) to its last point.

    Uses only the coefficient tables of ``prepared`` (made before the loop): no SymPy,
    no host-device synchronization. For ``"midpoint"`` the grid interleaves step ends and
    midpoints (``u_0, m_0, u_1, ..., u_N``).
    """
    _check_solver(solver)
    table = prepared.tables(y)
    u, d_alpha, d_sigma = table["u"], table["d_alpha"], table["d_sigma"]
    h = [u[i + 1] - u[i] for i in range(len(u) - 1)]

    def velocity(state: torch.Tensor, i: int) -> torch.Tensor:
        x0, eps = prepared(state, i, **cond)
        return d_alpha[i] * x0 + d_sigma[i] * eps

    if solver == "euler":
        for i in range(len(h)):
            y = y + h[i] * velocity(y, i)
    elif solver == "heun":
        for i in range(len(h)):
            f = velocity(y, i)
            if i == len(h) - 1:
                # the grid ends at the data end (u = pi/2, sigma = 0), where an x0-prediction
                # network's eps (and its velocity) is 0/0: the last step is an Euler step, as in
                # Karras et al. 2022 (Alg. 1) when the last noise level is 0
                y = y + h[i] * f
            else:
                y = y + h[i] / 2 * (f + velocity(y + h[i] * f, i + 1))
    else:
        for i in range(0, len(h), 2):
            y = y + (h[i] + h[i + 1]) * velocity(y + h[i] * velocity(y, i), i + 1)
    return y


def integrate_point_mass(prepared: PreparedLazy, noise: torch.Tensor, **cond: Any) -> torch.Tensor:
    """The Euler-Maruyama loop of the point-mass SDE from ``y = 0``; ``noise`` is ``(N, B, ...)``."""
    table = prepared.tables(noise)
    a = table["u"]
    h = [a[i + 1] - a[i] for i in range(len(a) - 1)]
    drift = [h[i] / (1 - a[i]) for i in range(len(h))]
    root = [step.sqrt() for step in h]
    x0, _ = prepared.at_point_mass(noise[0], 0, **cond)
    y = drift[0] * x0 + root[0] * noise[0]
    for i in range(1, len(h)):
        x0, _ = prepared(y, i, **cond)
        y = y + drift[i] * (x0 - y) + root[i] * noise[i]
    return y


def lazy_ode_sample(denoiser: Denoiser, noise: torch.Tensor, standardization: Standardization, *,
                    steps: int | None = None, grid: Any = None, solver: str = "euler",
                    **cond: Any) -> torch.Tensor:
    """Sample by the probability-flow ODE in the lazy (variance-preserving) family.

    ``noise`` (B, ...) is the standard normal state at the noise end (``u = 0``), the
    same pathwise noise as the model's own ODE started from ``x = noise`` at its noise
    end (for schedules with ``sigma = 1`` there). ``steps`` gives a uniform grid in the
    angle; ``grid`` any increasing angles from 0 to pi/2. Returns data-coordinate samples.
    """
    _check_solver(solver)
    _check_sample_shape(standardization, noise)
    lazy = LazyDenoiser(denoiser, standardization, "ode")
    values = _grid_of(lazy, steps, grid)
    if solver == "midpoint":
        mids = (values[:-1] + values[1:]) / 2
        values = torch.stack([values[:-1], mids], dim=1).reshape(-1)
        values = torch.cat([values, values.new_tensor([lazy.free_range[1]])])
    y = integrate_lazy_ode(lazy.prepare(values), noise, solver, **cond)
    return standardization.invert(y)


def point_mass_sample(denoiser: Denoiser, noise: torch.Tensor, standardization: Standardization, *,
                      grid: Any = None, **cond: Any) -> torch.Tensor:
    """Sample by the optimal SDE in the point-mass family, Euler-Maruyama from ``y = 0``.

    ``noise`` has shape ``(N, B, ...)``: one standard normal draw per step (``N`` steps,
    a uniform grid in ``a`` unless ``grid`` gives ``N + 1`` increasing values from 0 to
    1). Draw it with a seeded generator for reproducible samples. Returns data-coordinate
    samples.
    """
    if not isinstance(noise, torch.Tensor) or noise.dim() < 2 or noise.shape[0] < 1:
        raise SchedalgError("noise of shape (steps, B, *sample_shape)",
                            f"{tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__}",
                            "draw one standard normal tensor per step: torch.randn(steps, B, ...)")
    _check_sample_shape(standardization, noise[0])
    lazy = LazyDenoiser(denoiser, standardization, "optimal_sde")
    steps = noise.shape[0]
    values = lazy.uniform_grid(steps) if grid is None else lazy._check_grid(grid)
    if values.numel() != steps + 1:
        raise SchedalgError(f"a grid of steps + 1 = {steps + 1} values (one noise draw per step)",
                            f"{values.numel()} values", "match the grid to noise.shape[0]")
    y = integrate_point_mass(lazy.prepare(values), noise, **cond)
    return standardization.invert(y)
