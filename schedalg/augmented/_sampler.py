"""One entry point for augmented-space sampling: ``sample_augmented(model, z_T, times, solver)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable

import torch

from ..sampling import SOLVERS as SHARED_SOLVERS
from ..sampling import Tableau, per_sample_normal
from ._errors import SamplerError
from ._solvers import AugmentedSolver, Conjugate, shared_tableau
from ._splitting import (ConjugateSplitting, NaiveSymplecticEuler, NaiveVelocityVerlet, ReducedSymplecticEuler,
                         ReducedVelocityVerlet, SymmetricSplitting)
from ._stochastic import OBA, EulerMaruyama, StochasticSplitting

__all__ = ["SOLVERS", "get_solver", "sample_augmented", "time_grid"]

#: The solvers of augmented space alone (the Runge-Kutta tableaux come from the shared registry).
_OWN: dict[str, Callable[..., AugmentedSolver]] = {
    "exponential": lambda: Conjugate(0),
    "conjugate": Conjugate,
    "lambda_ddim": lambda lam=0.0: Conjugate(lam),
    "symmetric_splitting": SymmetricSplitting,
    "naive_symplectic_euler": NaiveSymplecticEuler,
    "reduced_symplectic_euler": ReducedSymplecticEuler,
    "naive_velocity_verlet": NaiveVelocityVerlet,
    "reduced_velocity_verlet": ReducedVelocityVerlet,
    "conjugate_splitting": ConjugateSplitting,
    "euler_maruyama": EulerMaruyama,
    "stochastic_splitting": StochasticSplitting,
    "oba": OBA,
}


class _Solvers(Mapping):
    """Solver name -> constructor: the augmented-space solvers and every tableau of
    :data:`schedalg.sampling.SOLVERS` (``euler``, ``heun``, ``rk4``, ... with block-matrix weights)."""

    def __getitem__(self, name: str) -> Callable[..., AugmentedSolver]:
        if name in _OWN:
            return _OWN[name]
        if isinstance(getattr(SHARED_SOLVERS.get(name), "tableau", None), Tableau):
            return lambda: shared_tableau(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        shared = [n for n, cls in SHARED_SOLVERS.items() if isinstance(getattr(cls, "tableau", None), Tableau)]
        return iter(list(_OWN) + [n for n in shared if n not in _OWN])

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: Solver name -> constructor (keyword arguments such as ``B`` go to the constructor).
SOLVERS: Mapping[str, Callable[..., AugmentedSolver]] = _Solvers()


def get_solver(solver: str | AugmentedSolver, **options: Any) -> AugmentedSolver:
    """A solver instance from its name (see :data:`SOLVERS`) or the instance itself."""
    if isinstance(solver, AugmentedSolver):
        return solver
    if solver not in SOLVERS:
        raise SamplerError(f"an augmented solver name among {sorted(SOLVERS)}", repr(solver),
                           "pick one of the listed names or pass a solver instance")
    return SOLVERS[solver](**options)


def time_grid(t_max: float, t_min: float, steps: int, power: float = 2.0) -> torch.Tensor:
    """``t_i = t_min + (t_max - t_min) (1 - i/steps)^power``, from ``t_max`` down to ``t_min``.

    ``power > 1`` clusters steps near the data end, where the momentum block of CLD/PSLD is stiff.
    """
    if steps < 1 or not 0 < t_min < t_max:
        raise SamplerError("steps >= 1 and 0 < t_min < t_max", f"steps={steps}, t_min={t_min}, t_max={t_max}",
                           "e.g. time_grid(1.0, 1e-3, 50)")
    s = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    return t_min + (t_max - t_min) * (1 - s) ** power


def sample_augmented(model, z: torch.Tensor, times: torch.Tensor, solver: str | AugmentedSolver = "euler",
                     generator: torch.Generator | None = None, seed: int | None = None,
                     **options: Any) -> torch.Tensor:
    """Integrate from ``z`` at ``times[0]`` to ``times[-1]`` with ``solver`` and ``model``.

    ``model`` follows :class:`AugmentedDenoiser` (``.sde``, ``.prepare(times)``); ``times``
    must decrease (generation runs towards the data at ``t = 0``). Stochastic solvers draw
    noise from ``generator``, or, with ``seed``, per-sample seeded noise drawn before the
    loop (a sample's path then does not depend on the batch it is in). All coefficients are
    computed before the loop; the loop itself does no SymPy work and no host sync.
    """
    solver = get_solver(solver, **options)
    sde = model.sde
    times = sde.compile().check_times(times)
    if times.dim() != 1 or times.numel() < 2 or not bool((times[1:] < times[:-1]).all()):
        raise SamplerError("a 1-D grid of at least two strictly decreasing times", f"{times.tolist()[:6]}...",
                           "build it with schedalg.augmented.time_grid(T, t_eps, steps)")
    if z.dim() < 2 or z.shape[1] != sde.k:
        raise SamplerError(f"a state of shape (B, {sde.k}, ...)", f"shape {tuple(z.shape)}",
                           "stack the blocks on axis 1")
    program = solver.program(sde, times)
    prepared = model.prepare(program.eval_times)
    return program.on(z).run(z, _draws(z, program.noise_draws, generator, seed), prepared)


def _draws(z: torch.Tensor, count: int, generator: torch.Generator | None, seed: int | None) -> torch.Tensor | None:
    """The run's standard normals ``(count, *z.shape)``: per-sample seeded (independent of the batch) or from
    ``generator``, drawn before the loop."""
    if count == 0:
        return None
    if seed is not None:
        return per_sample_normal(tuple(z.shape), seed, count=count, dtype=z.dtype, device=z.device)
    return torch.randn((count,) + tuple(z.shape), generator=generator, dtype=z.dtype, device=z.device)
