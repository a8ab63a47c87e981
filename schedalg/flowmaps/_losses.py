"""Flow-map losses, each a function of ``(model, batch, times)``.

``model`` is a flow map (``model(x, s, t) = X_{s,t}(x)``, ``model.velocity(x, t)``,
``model.schedule``; see :mod:`schedalg.flowmaps._map`); ``batch = (x0, noise)`` are data
and standard-normal draws of one shape (B, ...); ``times = (s, t)`` are (B,) tensors in the
schedule's time. The start states are the schedule's interpolants
``I_s = alpha_s x0 + sigma_s noise``, i.e. samples of the ODE's marginal at ``s``. Each
loss is the batch mean of a squared residual that vanishes for the exact flow map of the
velocity ``b`` (``velocity=`` a callable ``b(x, t)``, e.g. a trained flow network; None: the
model's own diagonal ``v_{t,t}``, under stop-gradient: self-distillation). Time derivatives
are forward-mode (``torch.func.jvp``): one extra pass, no finite differences.
Boffi, Albergo & Vanden-Eijnden (arXiv 2406.07507), section 3; Boffi et al. 2025
(self-distillation, Lagrangian form); Geng et al. 2025 (MeanFlow, Eulerian form).

* :func:`lagrangian_loss`: ``|d_t X_{s,t}(I_s) - b_t(X_{s,t}(I_s))|^2`` (target under stop-gradient).
* :func:`eulerian_loss`: ``|d_s X_{s,t}(I_s) + grad X_{s,t}(I_s) b_s(I_s)|^2`` (one jvp along ``(b_s, 1, 0)``).
* :func:`progressive_loss`: ``|X_{s,t}(I_s) - X'_{u_{K-1},t} o ... o X'_{s,u_1}(I_s)|^2`` against a
  frozen flow map ``X'`` on ``K`` equal sub-steps (progressive flow map matching).
* :func:`self_distillation_loss`: the MeanFlow regression ``|v_{s,t} - sg(v_{s,t} + R)|^2``, ``R`` the
  Eulerian residual (``v = b_s + (t - s) D_s v`` in mean-velocity form): the same value as
  :func:`eulerian_loss` (pairs with ``t = s`` excluded) and the gradient of a regression onto a frozen target.
* :func:`trajectory_loss`: ``|X_{s,t}(x_s) - x_t|^2`` on pairs of states of pre-solved ODE trajectories
  (Lagrangian map distillation in integrated form: the ODE of ``b`` solved once, offline).
* :func:`diagonal_loss`: flow matching of the diagonal ``|v_{t,t}(I_t) - dI_t/dt|^2`` (not 0 at the
  optimum: its minimum is the conditional variance of ``dI_t/dt``), which trains the velocity that
  self-distillation then reads.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.func import jvp

from ..symbolic import t as t_symbol
from ..compile import compile_exprs
from ._map import FlowMapError, as_times, per_sample

__all__ = ["lagrangian_loss", "eulerian_loss", "progressive_loss", "self_distillation_loss", "diagonal_loss",
           "trajectory_loss", "interpolant"]

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _unpack(model: Any, batch: Any, times: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if not callable(model) or not hasattr(model, "schedule") or not callable(getattr(model, "velocity", None)):
        raise FlowMapError("a flow map model (callable (x, s, t), with .velocity and .schedule)",
                           type(model).__name__, "wrap the network with schedalg.flowmaps.FlowMap")
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(b, torch.Tensor) for b in batch)
            and batch[0].shape == batch[1].shape and batch[0].dim() >= 1):
        raise FlowMapError("batch = (x0, noise), two tensors of one shape (B, ...)",
                           f"{type(batch).__name__}", "pass (data, torch.randn_like(data))")
    if not (isinstance(times, (tuple, list)) and len(times) == 2):
        raise FlowMapError("times = (s, t), (B,) tensors or numbers", f"{type(times).__name__}", None)
    x0, noise = batch
    return x0, noise, as_times(times[0], x0, "s"), as_times(times[1], x0, "t")


def _rates(model: Any):
    schedule = model.schedule
    return compile_exprs([schedule.alpha, schedule.sigma, schedule.d_alpha, schedule.d_sigma], [t_symbol],
                         name="interpolant_rates")


def interpolant(model: Any, x0: torch.Tensor, noise: torch.Tensor, times: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(I_t, dI_t/dt) = (alpha_t x0 + sigma_t noise, alpha'_t x0 + sigma'_t noise)`` on ``model.schedule``."""
    alpha, sigma, d_alpha, d_sigma = (per_sample(c, x0).to(x0.dtype) for c in _rates(model)(times.to(torch.float64)))
    return alpha * x0 + sigma * noise, d_alpha * x0 + d_sigma * noise


def _velocity_or_own(model: Any, velocity: Velocity | None) -> Velocity:
    if velocity is None:
        return model.velocity
    if not callable(velocity):
        raise FlowMapError("velocity as a callable b(x, t) or None (the model's own diagonal)",
                           type(velocity).__name__, None)
    return velocity


def _mean_square(residual: torch.Tensor) -> torch.Tensor:
    return residual.square().flatten(1).sum(1).mean() / residual[0].numel()


def lagrangian_loss(model: Any, batch: Any, times: Any, velocity: Velocity | None = None) -> torch.Tensor:
    """Lagrangian map distillation: ``E |d_t X_{s,t}(I_s) - sg(b_t(X_{s,t}(I_s)))|^2``.

    0 exactly when ``d_t X_{s,t} = b_t o X_{s,t}`` on the marginal at ``s`` (with ``X_{s,s} = id``:
    the flow map of ``b``). ``velocity=None``: ``b`` is the model's own diagonal (Lagrangian
    self-distillation).
    """
    x0, noise, s, t = _unpack(model, batch, times)
    b = _velocity_or_own(model, velocity)
    start, _ = interpolant(model, x0, noise, s)
    end, d_end = jvp(lambda tt: model(start, s, tt), (t,), (torch.ones_like(t),))
    with torch.no_grad():
        target = b(end.detach(), t)
    return _mean_square(d_end - target)


def _eulerian_residual(model: Any, start: torch.Tensor, s: torch.Tensor, t: torch.Tensor,
                       b: Velocity) -> torch.Tensor:
    with torch.no_grad():
        drift = b(start, s)
    _, residual = jvp(lambda xx, ss: model(xx, ss, t), (start, s), (drift, torch.ones_like(s)))
    return residual


def eulerian_loss(model: Any, batch: Any, times: Any, velocity: Velocity | None = None) -> torch.Tensor:
    """Eulerian map distillation: ``E |d_s X_{s,t}(I_s) + grad X_{s,t}(I_s) sg(b_s(I_s))|^2``.

    The directional derivative along ``(b_s, 1, 0)`` in ``(x, s, t)``, one jvp. 0 exactly
    for the flow map of ``b`` (with ``X_{t,t} = id``).
    """
    x0, noise, s, t = _unpack(model, batch, times)
    start, _ = interpolant(model, x0, noise, s)
    return _mean_square(_eulerian_residual(model, start, s, t, _velocity_or_own(model, velocity)))


def self_distillation_loss(model: Any, batch: Any, times: Any, velocity: Velocity | None = None) -> torch.Tensor:
    """MeanFlow-type identity: ``E |v_{s,t}(I_s) - sg(b_s + (t - s) D_s v_{s,t})(I_s)|^2`` over pairs with ``t != s``.

    With ``X = x + (t - s) v`` the Eulerian residual is ``R = -v + b_s + (t - s) D_s v``
    (``D_s = d_s + b_s . grad``), so the target is ``sg(v + R)``; the value equals the Eulerian
    loss, the gradient is that of a regression onto a frozen target (Geng et al. 2025).
    Written with the map only: ``v - sg(v + R) = (X - sg(X + (t - s) R)) / (t - s)``.
    """
    x0, noise, s, t = _unpack(model, batch, times)
    start, _ = interpolant(model, x0, noise, s)
    residual = _eulerian_residual(model, start, s, t, _velocity_or_own(model, velocity))
    gap = per_sample(t - s, start)
    end = model(start, s, t)
    target = (end + gap * residual).detach()
    off_diagonal = gap != 0
    safe_gap = torch.where(off_diagonal, gap, torch.ones_like(gap))
    return _mean_square(torch.where(off_diagonal, (end - target) / safe_gap, torch.zeros_like(end)))


def progressive_loss(model: Any, batch: Any, times: Any, teacher: Any, splits: int = 2) -> torch.Tensor:
    """Progressive flow map matching: ``E |X_{s,t}(I_s) - sg(X'_{u_{K-1},t} o ... o X'_{s,u_1}(I_s))|^2``.

    ``teacher``: a frozen flow map ``X'(x, s, t)`` (the previous stage, or an exact map);
    ``u_k = s + k (t - s) / K`` with ``K = splits``. 0 when the model equals the teacher's
    ``K``-step composition; for an exact teacher, exactly at the true flow map (semigroup).
    """
    x0, noise, s, t = _unpack(model, batch, times)
    if not callable(teacher):
        raise FlowMapError("teacher as a flow map callable (x, s, t)", type(teacher).__name__, None)
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise FlowMapError("splits as an int >= 1", repr(splits), "e.g. splits=2")
    start, _ = interpolant(model, x0, noise, s)
    with torch.no_grad():
        target = start
        for k in range(splits):
            u0, u1 = s + (t - s) * (k / splits), s + (t - s) * ((k + 1) / splits)
            target = teacher(target, u0, t if k == splits - 1 else u1)
    return _mean_square(model(start, s, t) - target)


def trajectory_loss(model: Any, batch: Any, times: Any) -> torch.Tensor:
    """Distillation onto pre-solved trajectories: ``E |X_{s,t}(x_s) - x_t|^2``, ``batch = (x_s, x_t)``.

    ``x_s, x_t``: states at times ``s`` and ``t`` of one solution of the ODE ``x' = b_t(x)``
    (solved offline, e.g. from noise by a high-order solver). 0 exactly when ``X_{s,t}`` maps
    ``x_s`` to ``x_t``, i.e. at the flow map of ``b`` on the law of ``x_s``. It is the integrated
    form of :func:`lagrangian_loss`: with ``e_u = X_{s,u}(x_s) - x_u``, ``e_s = 0`` and
    ``e'_u = [d_u X_{s,u} - b_u(X_{s,u})](x_s) + b_u(X_{s,u}(x_s)) - b_u(x_u)``, so a zero
    Lagrangian residual gives ``e = 0`` (Gronwall) and conversely; and it is
    :func:`progressive_loss` with the exact flow of ``b`` as the frozen map (Boffi, Albergo &
    Vanden-Eijnden, arXiv 2406.07507: progressive and operator-learning distillation as cases
    of flow map matching). Start states lie on the ODE's own marginal, not the interpolant's.
    """
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(b, torch.Tensor) for b in batch)
            and batch[0].shape == batch[1].shape and batch[0].dim() >= 1):
        raise FlowMapError("batch = (x_s, x_t), two tensors of one shape (B, ...): states of ODE solutions",
                           f"{type(batch).__name__}", "pass the states of pre-solved trajectories at s and t")
    start, end, s, t = _unpack(model, batch, times)
    return _mean_square(model(start, s, t) - end)


def diagonal_loss(model: Any, batch: Any, times: Any) -> torch.Tensor:
    """Flow matching on the diagonal: ``E |v_{t,t}(I_t) - (alpha'_t x0 + sigma'_t noise)|^2`` at ``t = times[1]``."""
    x0, noise, _, t = _unpack(model, batch, times)
    state, d_state = interpolant(model, x0, noise, t)
    return _mean_square(model.velocity(state, t) - d_state)
