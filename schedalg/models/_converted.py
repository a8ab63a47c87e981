"""A denoiser trained under one schedule, served in the coordinates of another.

With ``x^dst_s = c(s) x^src_{tau(s)}`` (:func:`schedalg.convert`) the posterior means carry
over unchanged (Damsholt et al. 2026; MATH.md section 1):

    x0_dst(s, y) = x0_src(tau(s), y / c(s)),    eps_dst(s, y) = eps_src(tau(s), y / c(s)),

so the inner model is called at time ``tau(s)`` on the input ``y / c(s)``. Velocity,
score and SDE drift in the new coordinates follow from ``(x0_hat, eps_hat)`` and the
destination schedule: ``b = A' x0 + S' eps``, ``score = -eps / S``,
``drift_E = b + d E score`` (own time, ``d`` the destination's direction), which equals
the transfer formula ``(c'/c) y + c tau' b_src(tau, y/c)`` (``proofs/prove_convert.py``).

At a point-mass start (``c = 0``, ``y = 0``) the input ``y / c`` is ``0/0``; the limits
are used instead (:mod:`schedalg.symbolic._pointmass`): ``x0_hat = E[x]`` (the source at
its noise end, fed 0), ``eps_hat = 0``, ``score = E[x] / L``, ``b = alpha'(t0) E[x] / 2``,
so the optimal-SDE drift is ``alpha'(t0) E[x]``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..symbolic import Diffusion, DiffusionError, PointMassStart, Schedule, convert, point_mass_start, schedule_key
from ._contract import Denoiser, broadcast_to_batch

__all__ = ["ConvertedDenoiser", "PreparedConverted"]


class ConvertedDenoiser:
    """``inner`` (a :class:`Denoiser` under its own schedule) in the coordinates of ``schedule``.

    Implements :class:`schedalg.models.Denoiser`. ``prepare(times)`` computes ``tau_i`` and
    ``c_i`` once (float64, range-checked) and calls ``inner.prepare(tau)``; the prepared
    object is called ``(x, i, **cond) -> (x0_hat, eps_hat)`` and has ``velocity``,
    ``score`` and ``drift`` helpers. Conditioning keyword arguments (labels, guidance
    scales, ...) pass through to the inner denoiser unchanged.
    """

    def __init__(self, inner: Denoiser, schedule: Schedule):
        self.inner = inner
        self.schedule = schedule
        self.conversion = convert(inner.schedule, schedule)
        self.start: PointMassStart | None = point_mass_start(schedule) if schedule.is_point_mass else None

    def prepare(self, times: torch.Tensor, diffusion: Diffusion | None = None) -> "PreparedConverted":
        """Precompute ``tau_i``, ``c_i`` and the destination coefficients on the grid ``times``.

        ``diffusion`` (a :class:`~schedalg.symbolic.Diffusion` on this schedule; ODE if
        omitted) sets ``E_i`` for :meth:`PreparedConverted.drift`.
        """
        return PreparedConverted(self, torch.as_tensor(times, dtype=torch.float64), diffusion)

    def __repr__(self) -> str:
        return f"ConvertedDenoiser({self.inner!r} -> {self.schedule.name!r})"


class PreparedConverted:
    """A :class:`ConvertedDenoiser` bound to a time grid (see :class:`schedalg.models.PreparedDenoiser`).

    Attributes (float64, one entry per grid time): ``times``, ``tau`` (source times),
    ``scale`` (``c``), ``alpha``, ``sigma``, ``d_alpha``, ``d_sigma`` of the destination,
    ``diffusion`` (``E``), and ``at_start`` (Python bools: the point-mass start).
    """

    def __init__(self, owner: ConvertedDenoiser, times: torch.Tensor, diffusion: Diffusion | None):
        self.owner = owner
        self.times = times
        compiled = owner.conversion.compile()
        self.tau, self.scale = compiled.evaluate(times)[:2]
        destination = owner.schedule.compile()
        self.alpha, self.sigma, self.d_alpha, self.d_sigma = destination.evaluate(
            times, "alpha", "sigma", "d_alpha", "d_sigma")
        self.direction = owner.schedule.direction
        if diffusion is None:
            diffusion = Diffusion.ode(owner.schedule)
        if schedule_key(diffusion.schedule) != schedule_key(owner.schedule):
            raise DiffusionError(f"a diffusion coefficient declared on {owner.schedule.name!r}",
                                 f"one on {diffusion.schedule.name!r}",
                                 "map it with diffusion.to(sa.convert(its_schedule, this_schedule))")
        self.diffusion = diffusion.evaluate(times)
        # host-side, once: which grid points are the point-mass start (y = 0, input 0/0)
        if owner.start is not None:
            self.at_start = [bool(v) for v in (times == owner.start.t0)]
        else:
            self.at_start = [False] * len(times)
        inverse = torch.where(self.scale == 0, torch.zeros_like(self.scale), 1 / self.scale)
        self.input_scale = inverse
        self._input_scale = inverse.tolist()  # Python floats for the raw-output path
        self.inner = owner.inner.prepare(self.tau)

    def __call__(self, x: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, eps_hat)`` at destination time ``times[i]`` for states ``x``."""
        if self.at_start[i]:
            x0, eps = self.inner(torch.zeros_like(x), i, **cond)
            return x0, torch.zeros_like(eps)
        return self.inner(x * broadcast_to_batch(self.input_scale[i], x), i, **cond)

    def raw(self, x: torch.Tensor, i: int, **cond: Any) -> torch.Tensor:
        """The inner denoiser's raw output at ``tau_i`` on ``y / c_i`` (0 at a point-mass start).

        Only for an inner prepared denoiser that is affine in a raw output (see :meth:`affine_output`).
        """
        inner = self.inner.raw  # type: ignore[attr-defined]
        if self.at_start[i]:
            return inner(torch.zeros_like(x), i, **cond)
        return inner(x * self._input_scale[i], i, **cond)

    def affine_output(self, i: int) -> tuple[float, float, float, float] | None:
        """``(x0_x, x0_p, eps_x, eps_p)`` with ``x0_hat = x0_x y + x0_p F``, ``eps_hat = eps_x y + eps_p F``
        for ``F = raw(y, i)``: the inner coefficients with ``x`` replaced by ``y / c_i``
        (``eps_hat = 0`` at a point-mass start). None if the inner denoiser declares no such form."""
        affine = getattr(self.inner, "affine_output", None)
        if not callable(affine) or not callable(getattr(self.inner, "raw", None)):
            return None
        inner = affine(i)
        if inner is None:
            return None
        x0_x, x0_p, eps_x, eps_p = inner
        if self.at_start[i]:
            return 0.0, x0_p, 0.0, 0.0
        scale = self._input_scale[i]
        return x0_x * scale, x0_p, eps_x * scale, eps_p

    def velocity(self, x: torch.Tensor, i: int, **cond: Any) -> torch.Tensor:
        """``b = dY/ds`` of the probability-flow ODE in destination own time."""
        x0, eps = self(x, i, **cond)
        if self.at_start[i]:
            return broadcast_to_batch(self.d_alpha[i], x0) * x0 / 2
        return broadcast_to_batch(self.d_alpha[i], x0) * x0 + broadcast_to_batch(self.d_sigma[i], eps) * eps

    def score(self, x: torch.Tensor, i: int, **cond: Any) -> torch.Tensor:
        """``grad log p_s(y) = -eps_hat / S``; ``E[x] / L`` at a point-mass start."""
        x0, eps = self(x, i, **cond)
        return self._score(x0, eps, i)

    def _score(self, x0: torch.Tensor, eps: torch.Tensor, i: int) -> torch.Tensor:
        if self.at_start[i]:
            return x0 / self.owner.start.sigma2_over_alpha
        return -eps / broadcast_to_batch(self.sigma[i], eps)

    def drift(self, x: torch.Tensor, i: int, **cond: Any) -> torch.Tensor:
        """``b + d E s``: the SDE drift in destination own time for the prepared ``E``.

        The step is ``y += drift * ds + sqrt(2 E |ds|) xi`` (``ds`` signed, own time).
        """
        x0, eps = self(x, i, **cond)
        d_alpha = broadcast_to_batch(self.d_alpha[i], x0)
        if self.at_start[i]:
            velocity = d_alpha * x0 / 2
        else:
            velocity = d_alpha * x0 + broadcast_to_batch(self.d_sigma[i], eps) * eps
        rate = broadcast_to_batch(self.direction * self.diffusion[i], x0)
        return velocity + rate * self._score(x0, eps, i)

    def finish(self, final: torch.Tensor | None = None, covered: Any = ()) -> None:
        """After the loop: forward to the inner prepared denoiser's ``finish`` (deferred checks).

        ``final`` is in this denoiser's coordinates, a scaling of the inner ones (``y = c x``) that keeps
        non-finite values non-finite, so the shortcut of :meth:`PreparedNetwork.finish` carries over."""
        finish = getattr(self.inner, "finish", None)
        if finish is not None:
            if covered and final is not None:
                finish(final=final, covered=covered)
            else:
                finish()

    def noise_scale(self, i: int) -> torch.Tensor:
        """``sqrt(2 E_i)``: the noise coefficient of the SDE at ``times[i]``."""
        return torch.sqrt(2 * self.diffusion[i])
