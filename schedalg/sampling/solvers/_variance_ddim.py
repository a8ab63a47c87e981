"""Variance-aware exponential integrators (DDIM and a 2-step multistep) for data of variance ``v`` per component.

For Gaussian data ``N(mu, v I)`` the probability-flow ODE has the exact map

    X_{t->n}(x) = alpha_n mu + (c_n/c_t) (x - alpha_t mu),   c = sqrt(sigma^2 + alpha^2 v).

In general, with the *mean estimate* ``r = x0_hat - (alpha v / sigma) eps_hat`` (equal to
``mu`` for such data), the ODE ``dx/dt = alpha' x0_hat + sigma' eps_hat`` is exactly
``d(x/c) = r d(alpha/c)``, so with ``l = log(alpha/c)``

    x_n = (c_n/c_t) x_t + c_n int_{l_t}^{l_n} e^l r(l) dl.

This is DPM-Solver++'s variation-of-constants formula (Lu et al. 2022, eq. 9) with
``sigma -> c``, ``log(alpha/sigma) -> l`` and ``x0_hat -> r``; ``v = 0`` gives back the
data-prediction exponential integrators (DDIM, DPM-Solver++). Holding ``r`` constant (``vddim``, one evaluation per step):

    x_n = alpha_n x0_hat + [(c_n c_t - alpha_n alpha_t v)/sigma_t] eps_hat,

exact in one step for Gaussian data of variance ``v`` (``proofs/prove_variance_ddim.py``).
The ``eps`` weight is computed without cancellation as
``[sigma_n^2 sigma_t + v (sigma_n^2 alpha_t^2/sigma_t + alpha_n^2 sigma_t)] / (c_n c_t + alpha_n alpha_t v)``;
it is finite wherever a step starts (``sigma_t > 0``; ``alpha_t = 0`` gives ``c_n``).
Extrapolating ``r`` linearly in ``l`` through the last two evaluations ``m0, m1`` (at ``l_t``,
``l_t - h0``) and integrating exactly (``vdpmpp_2m``), with ``h = l_n - l_t``, ``r0 = h0/h``:

    x_n = (c_n/c_t) x_t + alpha_n [h phi_1(-h) m0 + h phi_2(-h) (m0 - m1)/r0],

exact when ``r`` is linear in ``l`` (second order otherwise). This is DPM-Solver++(2M) with the
``phi_2`` weight (the paper's Taylor form, diffusers' ``solver_type="heun"``) rather than the
``phi_1/2`` of its Algorithm 2 (``dpmpp_2m``); it was chosen because it is exact for linear ``r``
and, on the digits benchmark, much less sensitive to the grid at 20 evaluations. The first step
and any step next to an infinite ``h`` (a pure-noise start, ``alpha = 0``) are first order.
With ``v > 0``, ``c > 0`` at the data end, so the last step keeps second order there.
"""

from __future__ import annotations

import math

import torch

from .._grid import TimeGrid
from .._phi import h_phi
from .._program import ProgramBuilder
from .._solver import Solver, SolverError, register_solver
from ._ddim import write_one_evaluation_steps
from ._dpmpp import write_multistep

__all__ = ["VarianceDDIM", "VarianceDPMSolverPP2M", "variance_scale", "eps_weight", "two_step_weights"]


def _check_variance(variance: object) -> float:
    if isinstance(variance, bool) or not isinstance(variance, (int, float)) or not (
            math.isfinite(variance) and variance >= 0):
        raise SolverError("a finite data variance v >= 0 (a number)", repr(variance),
                          "v = 0 is DDIM / DPM-Solver++; try the per-component variance of the data, e.g. 0.01")
    return float(variance)


def variance_scale(grid: TimeGrid, variance: float) -> torch.Tensor:
    """``c = sqrt(sigma^2 + alpha^2 v)`` on the grid (float64; ``hypot`` avoids overflow)."""
    return torch.hypot(grid.sigma, grid.alpha * math.sqrt(variance))


def _eps_weights(grid: TimeGrid, variance: float) -> list[float]:
    """``(c_n c_t - alpha_n alpha_t v)/sigma_t`` per step, in the cancellation-free form."""
    alpha, sigma = grid.alpha.tolist(), grid.sigma.tolist()
    c = variance_scale(grid, variance).tolist()
    out = []
    for i in range(grid.n_steps):
        a_t, s_t, a_n, s_n = alpha[i], sigma[i], alpha[i + 1], sigma[i + 1]
        if s_t == 0.0:
            out.append(math.inf)  # a step out of the data end: reported by Solver.plan
            continue
        if variance == 0.0:  # DDIM (also where c_n = sigma_n = 0 would make the form below 0/0)
            out.append(s_n)
            continue
        out.append(eps_weight(a_t, s_t, a_n, s_n, c[i], c[i + 1], variance))
    return out


def two_step_weights(a, h, h0=None, h_phi=h_phi) -> tuple:
    """Weights on ``(m0, m1)`` of ``vdpmpp_2m`` (``a = alpha_n``, ``h = l_n - l_t``, ``h0`` the previous step;
    None: first order): ``a [h phi_1(-h) m0 + h phi_2(-h) (h/h0) (m0 - m1)]``. Pure arithmetic and ``h_phi``
    (``proofs/prove_variance_ddim.py`` calls it with SymPy symbols)."""
    if h0 is None:
        return a * h_phi(1, h), 0.0
    slope = a * h_phi(2, h) * h / h0  # weight of (m0 - m1)
    return a * h_phi(1, h) + slope, -slope


def eps_weight(a_t, s_t, a_n, s_n, c_t, c_n, v):
    """The ``eps`` weight ``(c_n c_t - a_n a_t v)/s_t`` of a step ``t -> n`` in the cancellation-free form
    (pure arithmetic: ``proofs/prove_variance_ddim.py`` calls it with SymPy symbols)."""
    return (s_n**2 * s_t + v * (s_n**2 * a_t**2 / s_t + a_n**2 * s_t)) / (c_n * c_t + a_n * a_t * v)


class _VarianceOption:
    """The ``variance`` option shared by the variance-aware solvers (validated)."""

    def __init__(self, variance: float = 0.0):
        self.variance = _check_variance(variance)


@register_solver("vddim")
class VarianceDDIM(_VarianceOption, Solver):
    """First-order exponential integrator exact for Gaussian data of variance ``variance`` (v = 0: DDIM).

    The step is DDIM's affine form ``x0 x0_hat + eps eps_hat`` with the ``eps`` weight above.
    """

    order = 1

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        write_one_evaluation_steps(b, grid.values("alpha")[1:], _eps_weights(grid, self.variance))


@register_solver("vdpmpp_2m")
class VarianceDPMSolverPP2M(_VarianceOption, Solver):
    """Two-step exponential integrator on the mean estimate ``r``, linear in ``l = log(alpha/c)``, exact for such ``r``."""

    order = 2

    def weights(self, grid: TimeGrid) -> dict[str, list[float]]:
        """Per-step weights ``x``, ``m0``, ``m1`` of the update and ``r_eps`` of the mean estimate."""
        alpha, sigma = grid.alpha.tolist(), grid.sigma.tolist()
        scale = variance_scale(grid, self.variance)
        c, ell = scale.tolist(), (torch.log(grid.alpha) - torch.log(scale)).tolist()  # l = log(alpha/c)
        out: dict[str, list[float]] = {"x": [], "m0": [], "m1": [], "r_eps": []}
        for i in range(grid.n_steps):
            h = ell[i + 1] - ell[i]
            if not h > 0:
                raise SolverError("log(alpha/c) increasing along the grid (a grid from noise to data)",
                                  f"l = {ell[i]:.6g} -> {ell[i + 1]:.6g} at step {i}", None)
            h0 = ell[i] - ell[i - 1] if i >= 1 else math.inf
            a = alpha[i + 1]
            out["x"].append(0.0 if c[i + 1] == 0.0 else (math.inf if c[i] == 0.0 else c[i + 1] / c[i]))
            w0, w1 = two_step_weights(a, h, None if h == math.inf or h0 == math.inf else h0)
            out["m0"].append(w0)
            out["m1"].append(w1)
            # r = x0_hat - (alpha_t v / sigma_t) eps_hat at the step's start
            out["r_eps"].append(0.0 if self.variance == 0.0 else
                                (math.inf if sigma[i] == 0.0 else -alpha[i] * self.variance / sigma[i]))
        return out

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        weights = self.weights(grid)
        write_multistep(b, weights, 2, mean_eps=weights["r_eps"])
