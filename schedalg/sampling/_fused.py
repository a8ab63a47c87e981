"""The fused loop: an affine solver step and an affine denoiser output map, folded into one update.

A solver that declares its step affine (:meth:`Solver.affine`) computes

    x_{i+1} = c_x x_i + c_0 x0_hat + c_e eps_hat + c_n xi_i,

and a prepared denoiser that declares its output affine in a raw network output ``F``
(``raw(x, i)`` and ``affine_output(i)``, e.g. :class:`schedalg.models.PreparedNetwork`) gives

    x0_hat = a_x x_i + a_p F,    eps_hat = e_x x_i + e_p F.

Substituting, the step is ``x_{i+1} = A_i x_i + B_i F_i + c_n xi_i`` with

    A_i = c_x + c_0 a_x + c_e e_x,    B_i = c_0 a_p + c_e e_p,

both computed before the loop in float64 (terms whose solver weight is exactly 0 left out,
as :func:`combine` does, so an undefined coefficient there never enters). Each step is then
one network call and one or two tensor operations instead of the wrapper's four and the
solver's two to four; the result equals the step-by-step loop up to float rounding
(``tests/test_fused.py``). ``x0_hat`` is not formed: callbacks, :meth:`Sampler.iterate` and
progress bars use the step-by-step loop. The denoiser's own checks (shape, dtype, deferred
or eager NaN/inf check of ``F``) run inside ``raw`` exactly as in the step-by-step loop.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ._solver import Plan, Solver

__all__ = ["FusedLoop", "fuse"]


def _term(weight: float, coefficient: float) -> float:
    return 0.0 if weight == 0.0 else weight * coefficient


class FusedLoop:
    """``x_{i+1} = A_i x_i + B_i raw(x_i, i) + C_i xi_i`` for ``i < n`` (floats ``A, B, C`` per step)."""

    def __init__(self, raw: Callable[..., torch.Tensor], coefficients: list[tuple[float, float, float]]):
        self.raw = raw
        self.coefficients = coefficients
        self.nfe = len(coefficients)

    def run(self, x: torch.Tensor, draws: torch.Tensor | None, cond: dict[str, Any]) -> torch.Tensor:
        """The final state from the initial state ``x`` (never modified in place) and the draws ``(K, B, ...)``."""
        raw = self.raw
        noise = draws.unbind(0) if draws is not None else ()
        for i, (a, b, c) in enumerate(self.coefficients):
            out = raw(x, i, **cond)
            if a == 1.0:
                x = torch.add(x, out, alpha=b)
            elif a == 0.0:  # the state drops out, as in the step-by-step loop
                x = out * b
            else:
                x = torch.add(x * a, out, alpha=b)
            if c != 0.0:
                x.add_(noise[i], alpha=c)  # x is a new tensor here
        return x


def fuse(solver: Solver, plan: Plan, prepared: Any) -> FusedLoop | None:
    """The :class:`FusedLoop` of ``solver``'s ``plan`` on ``prepared``, or None when either side is not affine."""
    raw, affine_output = getattr(prepared, "raw", None), getattr(prepared, "affine_output", None)
    if not (callable(raw) and callable(affine_output)) or plan.eval_grid is not plan.grid:
        return None
    coefficients = []
    for i in range(plan.grid.n_steps):
        step = solver.affine(plan, i)
        output = affine_output(i) if step is not None else None
        if output is None:
            return None
        x0_x, x0_p, eps_x, eps_p = output
        a = step.x + _term(step.x0, x0_x) + _term(step.eps, eps_x)
        b = _term(step.x0, x0_p) + _term(step.eps, eps_p)
        if not (math.isfinite(a) and math.isfinite(b)):
            return None  # leave it to the step-by-step loop (and its error messages)
        coefficients.append((float(a), float(b), float(step.noise)))
    return FusedLoop(raw, coefficients)
