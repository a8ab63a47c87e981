"""Lazy samplers: the ODE in the variance-preserving family, the optimal SDE from a point mass.

Damsholt, Frellsen & Ditlevsen 2026 (arXiv 2602.03789); MATH.md section 2.

**Lazy ODE.** In the ODE family ``y = sin(u) x' + cos(u) eps`` (``u`` the angle, per
channel) the probability-flow ODE is ``dy/du = A'(u) x0' + S'(u) eps'`` with
``A' = cos u`` and ``S' = -sin u`` (derived, compiled). For standardized Gaussian data
the right side is identically zero, so every Runge-Kutta step is exact;
on other data the right side is only the non-Gaussian part of the model. Solvers: the
tableau solvers of :data:`schedalg.sampling.SOLVERS` (``euler``, ``heun``, ``midpoint``,
``heun3``, ``rk3``, ``rk4``, ``rk4_38`` and any registered :class:`~schedalg.sampling.Tableau`),
written as programs with per-channel weights ``h A_jl A'(u_l)``, ``h A_jl S'(u_l)``
(:func:`schedalg.sampling.write_tableau_step`, ``h = u_{i+1} - u_i`` per channel) and run by
the same interpreter as every sampler. The network is evaluated on the grid with each step's
interior nodes inserted. Heun's last step, onto the data end (where an x0-prediction
network's eps is 0/0), is an Euler step, as in Karras et al. 2022 (Alg. 1).

**Lazy SDE.** In the point-mass family ``y = a x' + sqrt(a (1 - a)) eps`` the optimal
SDE (``e* = a'/2``) has drift ``(x0' - y) / (1 - a)`` and noise ``dW`` per unit ``a``;
the registry's Euler-Maruyama step from ``y = 0`` (per channel ``a``, ``h = a_{i+1} - a_i``):

    y <- (1 - h / (1 - a_i)) y + h / (1 - a_i) x0' + sqrt(h) xi_i,     xi_i ~ N(0, I).

At ``a = 0`` the state is the point mass and the network is queried on the limit input
(:meth:`PreparedLazy.at_point_mass`, with ``xi_0``).

Both samplers write programs with coefficients computed before the loop (no SymPy, no host
sync), run by the interpreter of :mod:`schedalg.sampling`, and return samples in data
coordinates (``mean + std y``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ..errors import SchedalgError
from ..models import Denoiser
from ..sampling import SOLVERS, ProgramBuilder, Tableau, tableau_nodes, write_tableau_step
from ._standardize import Standardization
from ._view import LazyDenoiser, PreparedLazy

__all__ = ["LAZY_ODE_SOLVERS", "lazy_ode_sample", "point_mass_sample", "lazy_nfe", "integrate_lazy_ode",
           "integrate_point_mass"]


class _TableauSolvers(Mapping):
    """Solver name -> network evaluations per step, for the tableau solvers of the registry (live view)."""

    def __getitem__(self, name: str) -> int:
        tableau = getattr(SOLVERS.get(name), "tableau", None)
        if not isinstance(tableau, Tableau):
            raise KeyError(name)
        return tableau.stages

    def __iter__(self) -> Iterator[str]:
        return (name for name, cls in SOLVERS.items() if isinstance(getattr(cls, "tableau", None), Tableau))

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: Solver name -> network evaluations per step of the lazy ODE (the registry's tableau solvers).
LAZY_ODE_SOLVERS: Mapping[str, int] = _TableauSolvers()


def lazy_nfe(solver: str, steps: int) -> int:
    """Network evaluations of ``steps`` steps of a lazy ODE ``solver`` (Heun's last step is Euler)."""
    return sum(tableau.stages for tableau in _step_tableaus(solver, steps))


def _step_tableaus(solver: str, steps: int) -> list[Tableau]:
    """The tableau of each step: Heun's last step, onto the data end where sigma = 0 and an
    x0-prediction network's eps (so its velocity) is 0/0, is an Euler step (it has no interior
    nodes, so the evaluation grid is the same)."""
    tableau = _tableau(solver)
    if solver == "heun" and steps >= 1:
        return [tableau] * (steps - 1) + [_tableau("euler")]
    return [tableau] * steps


def _tableau(solver: str) -> Tableau:
    if solver not in LAZY_ODE_SOLVERS:
        raise SchedalgError(f"a lazy ODE solver among {sorted(LAZY_ODE_SOLVERS)} (the registry's tableaux)",
                            repr(solver), "pick one of the listed names")
    return SOLVERS[solver].tableau


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

    ``prepared`` is on the evaluation grid: the step ends with each step's interior nodes of the
    ``solver``'s tableau inserted (for ``"midpoint"``: ``u_0, m_0, u_1, ..., u_N``). Uses only
    the coefficient tables of ``prepared`` (made before the loop): no SymPy, no host-device
    synchronization.
    """
    tableau = _tableau(solver)
    table = prepared.tables(y)
    u, d_alpha, d_sigma = table["u"], table["d_alpha"], table["d_sigma"]
    per_step = len(tableau.interior()) + 1
    if (len(u) - 1) % per_step:
        raise SchedalgError(f"a grid of steps x {per_step} + 1 points for {solver!r} (interior nodes inserted)",
                            f"{len(u)} points", "build it with lazy_ode_sample, or insert the tableau's nodes")
    steps = (len(u) - 1) // per_step
    tableaus = _step_tableaus(solver, steps)
    _, stages = tableau_nodes([float(i) for i in range(steps + 1)], tableaus)
    b = ProgramBuilder(steps, prepared.times)
    x = b.state
    for i in range(steps):
        h = u[(i + 1) * per_step] - u[i * per_step]
        x, x0 = write_tableau_step(b, tableaus[i], x, h, stages[i], lambda k: (0.0, d_alpha[k], d_sigma[k]))
        b.end_step(x, x0)
    return b.build().run(y, None, prepared, cond)


class _FromPointMass:
    """``prepared`` as the point-mass program evaluates it: at grid point 0, where the lazy state is
    the point mass (``c = 0``), the evaluated register is the limit ``y / c``, a standard-normal draw
    (:meth:`PreparedLazy.at_point_mass`); elsewhere the state ``y``."""

    def __init__(self, prepared: PreparedLazy):
        self.prepared = prepared

    def __call__(self, y: torch.Tensor, k: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if k == 0:
            return self.prepared.at_point_mass(y, 0, **cond)
        return self.prepared(y, k, **cond)


def integrate_point_mass(prepared: PreparedLazy, noise: torch.Tensor, **cond: Any) -> torch.Tensor:
    """The Euler-Maruyama loop of the point-mass SDE from ``y = 0``; ``noise`` is ``(N, B, ...)``.

    The step is the registry's ``euler_maruyama`` step
    (:func:`~schedalg.sampling.solvers.EulerMaruyama.step_weights`) with the point-mass family's
    coefficients per channel, ``A = -1/(1 - a_i)``, ``B = 1/(1 - a_i)``, ``e = e* = 1/2`` and
    ``tau = a_{i+1} - a_i``, written as a program and run by the one interpreter. Uses only the
    coefficient tables of ``prepared`` (made before the loop): no SymPy, no host-device synchronization.
    """
    a = prepared.tables(noise)["u"]
    steps = len(a) - 1
    step_weights = SOLVERS["euler_maruyama"].step_weights
    b = ProgramBuilder(steps, prepared.times, noise_draws=steps)
    y = b.state
    for i in range(steps):
        rate = 1 / (1 - a[i])
        w_y, w_x0, w_noise = step_weights(a[i + 1] - a[i], -rate, rate, 0.5, sqrt=torch.sqrt)
        x0, _ = b.evaluate(b.noise(0) if i == 0 else y, i)
        y = b.combine((w_y, y), (w_x0, x0), (w_noise, b.noise(i)))
        b.end_step(y, x0)
    return b.build().run(torch.zeros_like(noise[0]), noise, _FromPointMass(prepared), cond)


def lazy_ode_sample(denoiser: Denoiser, noise: torch.Tensor, standardization: Standardization, *,
                    steps: int | None = None, grid: Any = None, solver: str = "euler",
                    **cond: Any) -> torch.Tensor:
    """Sample by the probability-flow ODE in the lazy (variance-preserving) family.

    ``noise`` (B, ...) is the standard normal state at the noise end (``u = 0``), the
    same pathwise noise as the model's own ODE started from ``x = noise`` at its noise
    end (for schedules with ``sigma = 1`` there). ``steps`` gives a uniform grid in the
    angle; ``grid`` any increasing angles from 0 to pi/2. Returns data-coordinate samples.
    """
    tableau = _tableau(solver)
    _check_sample_shape(standardization, noise)
    lazy = LazyDenoiser(denoiser, standardization, "ode")
    values = _grid_of(lazy, steps, grid)
    if tableau.interior():
        joined, _ = tableau_nodes(values.tolist(), [tableau] * (values.numel() - 1))
        values = torch.tensor(joined, dtype=torch.float64)
        values[-1] = lazy.free_range[1]
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
