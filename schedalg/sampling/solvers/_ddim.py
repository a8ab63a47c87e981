"""First-order exponential integrator = deterministic DDIM (Song et al. 2021).

``x_{i+1} = alpha_{i+1} x0_hat + sigma_{i+1} eps_hat``: re-noise the prediction to the
next time. With ``eps_hat = (x_i - alpha_i x0_hat)/sigma_i`` this is the exact solution of
the probability-flow ODE over the step when ``x0_hat`` is held constant, i.e. the
first-order exponential integrator in log-SNR (Lu et al. 2022; proved in
``proofs/prove_solvers.py``). Order 1, one evaluation per step, for any schedule.
"""

from __future__ import annotations

from .._grid import TimeGrid
from .._program import ProgramBuilder
from .._solver import Solver, register_solver

__all__ = ["DDIM", "write_one_evaluation_steps"]


def write_one_evaluation_steps(b: ProgramBuilder, x0: list[float], eps: list[float], x: list[float] | None = None,
                               noise: list[float] | None = None) -> None:
    """Steps ``x_{i+1} = x[i] x_i + x0[i] x0_hat + eps[i] eps_hat + noise[i] xi_i`` (one evaluation each)."""
    b.record(x0=x0, eps=eps, **({} if x is None else {"x": x}), **({} if noise is None else {"noise": noise}))
    state = b.state
    for i in range(b.n_steps):
        pred, e = b.evaluate(state, i)
        terms = [(0.0 if x is None else x[i], state), (x0[i], pred), (eps[i], e)]
        if noise is not None:
            terms.append((noise[i], b.noise(i)))
        state = b.combine(*terms)
        b.end_step(state, pred)


@register_solver("ddim")
class DDIM(Solver):
    """Deterministic DDIM / first-order exponential integrator (one evaluation per step)."""

    order = 1

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        write_one_evaluation_steps(b, grid.values("alpha")[1:], grid.values("sigma")[1:])
