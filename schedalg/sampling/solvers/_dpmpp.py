"""DPM-Solver++ 2M and 3M: multistep exponential integrators in log-SNR, data prediction.

With DPM-Solver's half log-SNR ``l = lambda/2 = log(alpha/sigma)``, the probability-flow
ODE has the exact solution (Lu et al. 2022, DPM-Solver++, eq. 9)

    x_s = (sigma_s/sigma_t) x_t + sigma_s int_{l_t}^{l_s} e^l x0_hat(l) dl.

Approximating ``x0_hat`` by finite differences of the last predictions ``m0, m1, m2``
(at ``l_i, l_{i-1}, l_{i-2}``) with ``h = l_{i+1} - l_i``, ``r0 = h_{i-1}/h``, ``r1 = h_{i-2}/h``:

- 2M (the paper's Algorithm 2): ``x_{i+1} = (sigma_{i+1}/sigma_i) x_i + alpha_{i+1} h phi_1(-h) D``,
  ``D = (1 + 1/(2 r0)) m0 - 1/(2 r0) m1``;
- 3M: ``x_{i+1} = (sigma_{i+1}/sigma_i) x_i + alpha_{i+1} h [phi_1 D0 + phi_2 D1 + 2 phi_3 D2](-h)``
  with ``D1 = D1_0 + r0/(r0+r1) (D1_0 - D1_1)``, ``D2 = (D1_0 - D1_1)/(r0+r1)``,
  ``D1_0 = (m0 - m1)/r0``, ``D1_1 = (m1 - m2)/r1``. ``D1`` and ``D2`` estimate ``h x0'`` and
  ``h^2 x0''/2``, so the update is exact when ``x0_hat`` is quadratic in ``l``
  (``proofs/prove_solvers.py``) and third order. The reference implementations
  (DPM-Solver's code, diffusers, k-diffusion) weight ``D2`` by ``phi_3`` instead of
  ``2 phi_3``, which leaves an ``O(h^3)`` local error (global order 2);
  ``DPMSolverPP3M(published=True)`` reproduces them for comparisons.

The first steps use the lower orders the history allows (3M's second step is the 2M
update), and a step with infinite ``h``
(ending where ``sigma = 0``) is first order (``x_{i+1} = alpha_{i+1} m0``). Each step's
weights on ``x_i, m0, m1, m2`` are computed before the loop (:func:`multistep_weights`).
"""

from __future__ import annotations

import math

from .._grid import TimeGrid
from .._phi import h_phi
from .._program import ProgramBuilder
from .._solver import Solver, SolverError, register_solver

__all__ = ["DPMSolverPP2M", "DPMSolverPP3M", "multistep_weights", "step_weights", "write_multistep"]


def multistep_weights(grid: TimeGrid, order: int, published: bool = False) -> dict[str, list[float]]:
    """Per-step weights ``x, m0, m1, m2`` of the DPM-Solver++ multistep update of ``order`` 2 or 3.

    ``published`` selects the third-order ``D2`` weight of the reference implementations
    (``h phi_3`` instead of the exact ``2 h phi_3``; see the module docstring).
    """
    half_lam = (0.5 * grid.log_snr).tolist()
    sigma, alpha = grid.sigma.tolist(), grid.alpha.tolist()
    out: dict[str, list[float]] = {"x": [], "m0": [], "m1": [], "m2": []}
    for i in range(grid.n_steps):
        h = half_lam[i + 1] - half_lam[i]
        if not h > 0:
            raise SolverError("a log-SNR increasing along the grid (finite at interior times)",
                              f"lambda {2 * half_lam[i]:.6g} -> {2 * half_lam[i + 1]:.6g} at step {i}", None)
        a = alpha[i + 1]
        ratio = math.inf if sigma[i] == 0.0 else sigma[i + 1] / sigma[i]
        out["x"].append(0.0 if sigma[i + 1] == 0.0 else ratio)
        h0 = half_lam[i] - half_lam[i - 1] if i >= 1 else math.inf
        h1 = half_lam[i - 1] - half_lam[i - 2] if i >= 2 else math.inf
        use = 1 if (h == math.inf or h0 == math.inf) else (2 if (order == 2 or h1 == math.inf) else 3)
        for key, w in zip(("m0", "m1", "m2"), step_weights(use, alpha[i + 1], h, h0, h1, published)):
            out[key].append(w)
    return out


def step_weights(order: int, a, h, h0=None, h1=None, published: bool = False, h_phi=h_phi) -> tuple:
    """Weights on ``(m0, m1, m2)`` of one update of ``order`` 1, 2 or 3 (``a = alpha_{i+1}``; ``h, h0, h1``
    the current and the two previous steps in ``l``). Pure arithmetic and ``h_phi(k, h) = h phi_k(-h)``,
    so ``proofs/prove_solvers.py`` calls it with SymPy symbols and SymPy's ``phi``."""
    p1 = a * h_phi(1, h)
    if order == 1:
        return p1, 0.0, 0.0
    if order == 2:  # 2M, also 3M's second step
        r0 = h0 / h
        return p1 * (1 + 1 / (2 * r0)), -p1 / (2 * r0), 0.0
    r0, r1 = h0 / h, h1 / h
    p2, p3 = a * h_phi(2, h), a * h_phi(3, h)
    # D1_0 = (m0 - m1)/r0, D1_1 = (m1 - m2)/r1, as weight vectors on (m0, m1, m2)
    d10 = (1 / r0, -1 / r0, 0.0)
    d11 = (0.0, 1 / r1, -1 / r1)
    diff = tuple(u - v for u, v in zip(d10, d11))
    d1 = tuple(u + r0 / (r0 + r1) * w for u, w in zip(d10, diff))
    d2 = tuple(w / (r0 + r1) for w in diff)
    w2 = p3 if published else 2 * p3
    return tuple(p1 * (1 if k == 0 else 0) + p2 * d1[k] + w2 * d2[k] for k in range(3))


def write_multistep(b: ProgramBuilder, weights: dict[str, list[float]], depth: int, *,
                    mean_eps: list[float] | None = None) -> None:
    """Steps ``x_{i+1} = x[i] x_i + m0[i] m_i + m1[i] m_{i-1} + m2[i] m_{i-2}`` (one evaluation each).

    ``m_i`` is ``x0_hat`` at ``x_i``, or the mean estimate ``x0_hat + mean_eps[i] eps_hat`` when given;
    the last ``depth - 1`` of them are the solver's memory.
    """
    b.record(**weights)
    state, history = b.state, []
    for i in range(b.n_steps):
        x0, eps = b.evaluate(state, i)
        m = x0 if mean_eps is None else b.combine((1.0, x0), (mean_eps[i], eps))
        history = [m] + history[: depth - 1]
        terms = [(weights["x"][i], state)] + [(weights[f"m{j}"][i], r) for j, r in enumerate(history)]
        state = b.combine(*terms)
        b.end_step(state, x0)


class _Multistep(Solver):
    """DPM-Solver++ multistep solvers (weights differ by order)."""

    published = False

    def write(self, b: ProgramBuilder, grid: TimeGrid, eval_grid: TimeGrid) -> None:
        write_multistep(b, multistep_weights(grid, self.order, self.published), self.order)


@register_solver("dpmpp_2m")
class DPMSolverPP2M(_Multistep):
    """DPM-Solver++(2M), second order, one evaluation per step (Lu et al. 2022)."""

    order = 2


@register_solver("dpmpp_3m")
class DPMSolverPP3M(_Multistep):
    """DPM-Solver++(3M), third order, one evaluation per step (Lu et al. 2022).

    ``published=True`` uses the reference implementations' ``D2`` weight (second order).
    """

    order = 3

    def __init__(self, published: bool = False):
        self.published = bool(published)
