"""Euler-Maruyama for the stochastic-interpolant SDE family with any diffusion coefficient.

In generation time ``tau`` (``d tau = |dt|``, ``dir`` = the schedule's direction) the SDE
``dX = [b + e s] d tau + sqrt(2 e) dW`` with ``b = dir (alpha' x0 + sigma' eps)`` and
``s = -eps/sigma = -(X - alpha x0)/sigma^2`` is linear in ``(X, x0_hat)``:

    drift = A(t) X + B(t) x0_hat,
    A = dir sigma'/sigma - e/sigma^2,   B = dir (alpha' - alpha sigma'/sigma) + e alpha/sigma^2

(Damsholt et al. 2026; ``proofs/prove_solvers.py``). ``A``, ``B`` are built by SymPy for
the schedule and ``e``, compiled, and evaluated at the grid times before the loop; at an
end of the domain where they are ``0/0`` (a point-mass start, ``alpha = sigma = 0``) their
SymPy limits are used, so the first step evaluates the denoiser at the point mass
``x = 0`` (where ``x0_hat = E[x0]``) and never needs ``eps_hat`` there. The step is

    X_{i+1} = (1 + |h| A_i) X_i + |h| B_i x0_hat + sqrt(2 e_i |h|) xi_i.

Weak order 1 (strong order 1 too, the noise being additive). ``e = "e_star"`` is the
optimal ``e* = sigma^2 |lambda'|/2``; a number or a SymPy expression in ``t`` gives any other
``e(t) >= 0``; ``scale`` multiplies it.
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp
import torch

from ...compile import compile_exprs
from ...symbolic import Schedule, t, value_at_end
from .._grid import TimeGrid
from .._program import ProgramBuilder
from .._solver import Solver, SolverError, register_solver
from ._ddim import write_one_evaluation_steps

__all__ = ["EulerMaruyama", "drift_coefficients", "step_weights"]


def step_weights(tau: Any, a_coef: Any, b_coef: Any, e: Any, sqrt: Any = math.sqrt) -> tuple:
    """Weights ``(x, x0, noise)`` of the step ``X_{i+1} = (1 + tau A) X + tau B x0_hat + sqrt(2 e tau) xi``
    for step length ``tau = |h| > 0``, drift coefficients ``A``, ``B`` and diffusion ``e`` (floats, or
    tensors with ``sqrt=torch.sqrt``: one per channel in the lazy point-mass sampler)."""
    return 1 + tau * a_coef, tau * b_coef, sqrt(2 * e * tau)


def drift_coefficients(schedule: Schedule, e: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``(A, B)`` with SDE drift ``A X + B x0_hat`` in generation time, for diffusion ``e(t)``."""
    d = schedule.direction
    alpha, sigma = schedule.alpha, schedule.sigma
    a_coef = d * schedule.d_sigma / sigma - e / sigma**2
    b_coef = d * (schedule.d_alpha - alpha * schedule.d_sigma / sigma) + e * alpha / sigma**2
    return a_coef, b_coef


def _diffusion_expr(schedule: Schedule, diffusion: Any, scale: float) -> sp.Expr:
    if isinstance(diffusion, str):
        if diffusion == "e_star":
            base = schedule.e_star
        elif diffusion == "zero":
            base = sp.Integer(0)
        else:
            raise SolverError("diffusion 'e_star', 'zero', a number or a SymPy expression in sa.t",
                              repr(diffusion), None)
    else:
        try:
            base = sp.sympify(diffusion)
        except (sp.SympifyError, TypeError) as exc:
            raise SolverError("a diffusion coefficient e(t) (number or SymPy expression in sa.t)",
                              repr(diffusion), None) from exc
        if base.free_symbols - {t}:
            raise SolverError("a diffusion coefficient in sa.t only", f"free symbols {sorted(map(str, base.free_symbols))}",
                              "bind other symbols to numbers")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
        raise SolverError("scale >= 0", repr(scale), None)
    return sp.Float(scale) * base if scale != 1 else base


@register_solver("euler_maruyama")
class EulerMaruyama(Solver):
    """Euler-Maruyama with diffusion ``e(t)`` (default ``e*``), one evaluation per step."""

    order = 1
    stochastic = True
    step_weights = staticmethod(step_weights)

    def __init__(self, diffusion: Any = "e_star", scale: float = 1.0):
        self.diffusion = diffusion
        self.scale = scale

    def weights(self, grid: TimeGrid) -> dict[str, list[float]]:
        """Per-step weights ``x``, ``x0``, ``noise`` of the step (float64 math, Python floats)."""
        schedule = grid.schedule
        e = _diffusion_expr(schedule, self.diffusion, self.scale)
        a_expr, b_expr = drift_coefficients(schedule, e)
        fn = compile_exprs([a_expr, b_expr, e], [t], name="euler_maruyama_coefficients")
        left = grid.times[:-1]
        values = [v.clone() for v in fn(left)]
        lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
        for expr, array in zip((a_expr, b_expr, e), values):
            for k in torch.nonzero(~torch.isfinite(array)).reshape(-1).tolist():
                time = float(left[k])
                if time in (lo, hi):
                    array[k] = value_at_end(expr, schedule.domain[0 if time == lo else 1], "+" if time == lo else "-")
        a_vals, b_vals, e_vals = values
        if bool((e_vals < 0).any()):
            k = int(torch.nonzero(e_vals < 0)[0])
            raise SolverError("a diffusion coefficient e(t) >= 0", f"e({float(left[k]):.6g}) = {float(e_vals[k]):.6g}",
                              None)
        x, x0, noise = self.step_weights(grid.dt.abs(), a_vals, b_vals, e_vals, sqrt=torch.sqrt)
        return {"x": x.tolist(), "x0": x0.tolist(), "noise": noise.tolist()}

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        w = self.weights(grid)
        write_one_evaluation_steps(b, w["x0"], [0.0] * grid.n_steps, x=w["x"], noise=w["noise"])
