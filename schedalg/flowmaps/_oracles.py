"""Exact flow maps: Gaussian data in closed form (derived by SymPy), Gaussian mixtures by an accurate ODE solve.

Gaussian data ``x0 ~ N(m, diag(v))`` (per coordinate). The posterior means
``x0_hat = m + alpha v (x - alpha m) / c^2``, ``eps_hat = sigma (x - alpha m) / c^2`` with
``c^2 = alpha^2 v + sigma^2`` give the probability-flow velocity
``b_t(x) = alpha' x0_hat + sigma' eps_hat``, affine in ``x``. :func:`derive_gaussian_flow_map`
solves this ODE with SymPy for generic ``alpha(t)``, ``sigma(t)``: centring at the mean
path, ``y = x - alpha m``, makes it homogeneous, ``y' = p(t) y`` (checked symbolically),
SymPy integrates ``p`` to ``P = log(c^2)/2``, and

    X_{s,t}(x) = alpha_t m + exp(P(t) - P(s)) (x - alpha_s m)
               = alpha_t m + sqrt((alpha_t^2 v + sigma_t^2) / (alpha_s^2 v + sigma_s^2)) (x - alpha_s m)

(Boffi et al., arXiv 2406.07507, Gaussian example; MATH.md section 6). The schedule's own
``alpha``, ``sigma`` are substituted into this and the result compiled to torch;
``proofs/prove_flowmaps.py`` checks from :attr:`GaussianFlowMap.expr` that it solves the
schedule's ODE and is the identity at ``t = s``.

Gaussian mixtures have no closed-form map: :class:`MixtureFlowMap` integrates the exact
ODE (the velocity of :class:`schedalg.denoisers.GaussianMixtureDenoiser`) with SciPy's
DOP853 at tight tolerances, in the rescaled time ``r in [0, 1]``, ``t(r) = s + r (t - s)``,
so every sample can have its own ``(s, t)``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp
import torch

from ..compile import compile_exprs
from ..denoisers import GaussianMixtureDenoiser
from ..symbolic import Schedule
from ..symbolic import t as t_symbol
from ._map import FlowMapError, _check_state, as_times, per_sample

__all__ = ["gaussian_flow_map", "GaussianFlowMap", "derive_gaussian_flow_map", "MixtureFlowMap",
           "mixture_flow_map", "FLOW_SYMBOLS"]

#: Symbols of the Gaussian flow map: state x, data mean m, data variance v, start time s, end time t.
FLOW_SYMBOLS = sp.symbols("x m v s_start t_end", real=True)


@lru_cache(maxsize=1)
def derive_gaussian_flow_map() -> tuple[sp.Expr, sp.Function, sp.Function]:
    """``(X, alpha, sigma)``: the Gaussian flow map for generic schedule functions ``alpha(.)``, ``sigma(.)``.

    ``X`` is in :data:`FLOW_SYMBOLS`; ``alpha``, ``sigma`` are the undefined SymPy functions
    it contains (applied to ``s_start`` and ``t_end``), to be replaced by a schedule's.
    """
    x, m, v, s_start, t_end = FLOW_SYMBOLS
    tau = sp.Symbol("tau", real=True)
    alpha, sigma = sp.Function("alpha", positive=True), sp.Function("sigma", positive=True)
    a, sg = alpha(tau), sigma(tau)
    c2 = a**2 * v + sg**2
    x0_hat = m + a * v * (x - a * m) / c2
    eps_hat = sg * (x - a * m) / c2
    velocity = sp.diff(a, tau) * x0_hat + sp.diff(sg, tau) * eps_hat
    # centring at the mean path y = x - alpha m makes the ODE linear homogeneous: y' = p y
    y = sp.Symbol("y", real=True)
    p = sp.diff(velocity, x)
    centred = velocity.subs(x, y + a * m) - sp.diff(a, tau) * m
    if sp.cancel(centred - p * y) != 0:  # pragma: no cover - a derivation failure, not input
        raise RuntimeError("the centred Gaussian probability-flow ODE is not homogeneous")
    big_p = sp.integrate(sp.cancel(p), tau, manual=True)  # SymPy finds log(alpha^2 v + sigma^2) / 2
    gain = sp.exp(big_p.subs(tau, t_end) - big_p.subs(tau, s_start))
    flow = alpha(t_end) * m + sp.powsimp(sp.expand_log(gain, force=True), force=True) * (x - alpha(s_start) * m)
    return flow, alpha, sigma


class GaussianFlowMap:
    """The exact flow map of ``schedule``'s probability-flow ODE for ``N(mean, diag(variance))`` data.

    Call as ``fm(x, s, t)`` (``x`` (B, ...); ``s``, ``t`` numbers or (B,) tensors in the
    schedule's time); ``fm.velocity(x, t)`` is ``b_t(x)``. :attr:`expr` is the SymPy map in
    :data:`FLOW_SYMBOLS` (``alpha``, ``sigma`` of the schedule substituted), :attr:`velocity_expr`
    its ``t``-derivative at ``t = s``. Computed in float64 and returned in the dtype of ``x``;
    differentiable (``torch.func`` transforms go through it).
    """

    def __init__(self, schedule: Schedule, mean: Any = 0.0, variance: Any = 1.0):
        if not isinstance(schedule, Schedule):
            raise FlowMapError("a schedalg.Schedule", type(schedule).__name__, "e.g. sa.schedules.linear()")
        schedule.require_bound("build its Gaussian flow map")
        self.schedule = schedule
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.variance = torch.as_tensor(variance, dtype=torch.float64)
        if not bool(torch.isfinite(self.variance).all()) or bool((self.variance < 0).any()):
            raise FlowMapError("finite, non-negative variances", f"{self.variance.tolist()}",
                               "pass the per-coordinate data variance (>= 0)")
        generic, alpha, sigma = derive_gaussian_flow_map()
        x, m, v, s_start, t_end = FLOW_SYMBOLS
        u = sp.Dummy("u")
        own = {alpha: sp.Lambda(u, schedule.alpha.subs(t_symbol, u)), sigma: sp.Lambda(u, schedule.sigma.subs(t_symbol, u))}
        self.expr: sp.Expr = generic.subs(own)
        self.velocity_expr: sp.Expr = sp.diff(self.expr, t_end).subs(t_end, s_start)
        self._map = compile_exprs([self.expr], FLOW_SYMBOLS, name="gaussian_flow_map")
        self._velocity = compile_exprs([self.velocity_expr], (x, m, v, s_start), name="gaussian_flow_velocity")

    def _data(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape[1:]
        try:
            return (self.mean.to(x.device).expand(shape), self.variance.to(x.device).expand(shape))
        except RuntimeError as exc:
            raise FlowMapError(f"states whose per-sample shape {tuple(shape)} the mean "
                               f"{tuple(self.mean.shape)} and variance {tuple(self.variance.shape)} broadcast to",
                               f"x of shape {tuple(x.shape)}", "pass mean and variance of the data's shape") from exc

    def __call__(self, x: torch.Tensor, s: Any, t: Any) -> torch.Tensor:
        """``X_{s,t}(x) = alpha_t m + (c_t / c_s) (x - alpha_s m)``, ``c^2 = alpha^2 v + sigma^2``."""
        _check_state(x)
        wide = x.to(torch.float64)
        m, v = self._data(x)
        s64 = per_sample(as_times(s, wide, "s"), wide).expand_as(wide)
        t64 = per_sample(as_times(t, wide, "t"), wide).expand_as(wide)
        return self._map(wide, m.expand_as(wide), v.expand_as(wide), s64, t64)[0].to(x.dtype)

    def velocity(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """``b_t(x) = d_t X_{s,t}(x)`` at ``t = s`` (the probability-flow velocity)."""
        _check_state(x)
        wide = x.to(torch.float64)
        m, v = self._data(x)
        t64 = per_sample(as_times(t, wide, "t"), wide).expand_as(wide)
        return self._velocity(wide, m.expand_as(wide), v.expand_as(wide), t64)[0].to(x.dtype)

    def __repr__(self) -> str:
        return f"GaussianFlowMap({self.schedule.name!r}, mean={self.mean.tolist()}, variance={self.variance.tolist()})"


def gaussian_flow_map(schedule: Schedule, mean: Any = 0.0, variance: Any = 1.0) -> GaussianFlowMap:
    """The exact flow map ``fm(x, s, t)`` of ``schedule``'s probability-flow ODE for ``N(mean, diag(variance))`` data.

    Derived symbolically (:func:`derive_gaussian_flow_map`) and compiled; see :class:`GaussianFlowMap`.
    """
    return GaussianFlowMap(schedule, mean, variance)


class MixtureFlowMap:
    """The flow map of the exact ODE for mixture data ``sum_i w_i N(means[i], variance I)``, solved numerically.

    ``b_t(x) = alpha'_t x0_hat + sigma'_t eps_hat`` with the exact posterior means of
    :class:`schedalg.denoisers.GaussianMixtureDenoiser`; ``fm(x, s, t)`` integrates it with
    SciPy DOP853 (``rtol``, ``atol``) in float64 on the host. For tests and reference values,
    not for sampling loops. Not differentiable.
    """

    def __init__(self, schedule: Schedule, means: Any, variance: Any = 0.0, weights: Any = None, *,
                 rtol: float = 1e-10, atol: float = 1e-10):
        self.schedule = schedule
        self.denoiser = GaussianMixtureDenoiser(schedule, means, variance, weights)
        self._rates = compile_exprs([schedule.d_alpha, schedule.d_sigma], [t_symbol], name="mixture_rates")
        self.rtol, self.atol = rtol, atol

    def velocity(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """``b_t(x) = alpha'_t x0_hat + sigma'_t eps_hat`` (exact posterior means)."""
        _check_state(x)
        wide = x.to(torch.float64)
        tt = as_times(t, wide, "t")
        x0, eps = self.denoiser.posterior(wide, tt)
        d_alpha, d_sigma = self._rates(tt)
        return (per_sample(d_alpha, wide) * x0 + per_sample(d_sigma, wide) * eps).to(x.dtype)

    def __call__(self, x: torch.Tensor, s: Any, t: Any) -> torch.Tensor:
        """``X_{s,t}(x)`` by DOP853 on ``dx/dr = (t - s) b_{s + r (t - s)}(x)``, ``r`` from 0 to 1."""
        from scipy.integrate import solve_ivp

        _check_state(x)
        wide = x.detach().to(torch.float64).cpu()
        s64, t64 = as_times(s, wide, "s").clone(), as_times(t, wide, "t").clone()
        span = t64 - s64

        def rhs(r: float, flat: np.ndarray) -> np.ndarray:
            state = torch.from_numpy(flat).reshape(wide.shape)
            return (per_sample(span, state) * self.velocity(state, s64 + r * span)).reshape(-1).numpy()

        out = solve_ivp(rhs, (0.0, 1.0), wide.reshape(-1).numpy(), method="DOP853", rtol=self.rtol, atol=self.atol)
        if not out.success:  # pragma: no cover - solver failure is reported, never hidden
            raise FlowMapError("a converged ODE solve", out.message, "loosen rtol/atol")
        return torch.from_numpy(out.y[:, -1]).reshape(wide.shape).to(device=x.device, dtype=x.dtype)

    def __repr__(self) -> str:
        return f"MixtureFlowMap({self.denoiser!r})"


def mixture_flow_map(schedule: Schedule, means: Any, variance: Any = 0.0, weights: Any = None) -> MixtureFlowMap:
    """The exact-ODE flow map for Gaussian-mixture data (numerical); see :class:`MixtureFlowMap`."""
    return MixtureFlowMap(schedule, means, variance, weights)
