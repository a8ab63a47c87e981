"""Any denoiser seen in the coordinates of a lazy family (standardize, then convert).

Let the model's schedule be ``(alpha, sigma)`` and the standardized data
``x' = (x - mu) / sd``. Its standardized schedule ``(alpha, sigma / sd)`` has log-SNR
``lambda_src(t) + 2 log sd``. A lazy family member ``(A(u), S(u))`` in its free
coordinate ``u`` (the angle theta of the ODE family, alpha of the point-mass family) is
reached by the pathwise conversion of MATH.md section 1:

    tau(u) = lambda_src^{-1}(lambda_lazy(u) - 2 log sd),
    c(u)   = (A + S) / (alpha(tau) + sigma(tau) / sd),       y_u = c(u) x'_tau,

so the network is queried at ``x_tau = sd * y / c + alpha(tau) mu`` and its pair
``(x0_hat, eps_hat)`` becomes ``x0' = (x0_hat - mu) / sd``, ``eps' = eps_hat``.

With one ``sd`` per channel the grid fixes one network time ``tau_i`` (through the
reference ``sd``, :attr:`Standardization.reference_std`) and every channel ``j`` gets
its own family coordinate ``u_ij = lambda_lazy^{-1}(lambda_src(tau_i) + 2 log sd_j)``
and scale ``c_ij``: a diagonal conversion that is exact for Gaussian data with
per-channel variances, at one network evaluation per grid time.

The family's ``lambda_lazy``, its inverse and ``A, S, A', S'`` are all compiled from the
SymPy-derived family (:func:`schedalg.symbolic._lazy.derive_lazy_family`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp
import torch

from ..errors import SchedalgError
from ..models import Denoiser
from ..symbolic import LazyFamily, Schedule, derive_lazy_family, t
from ._standardize import Standardization

__all__ = ["LazyDenoiser", "PreparedLazy", "LazyGridError", "natural_schedule"]


class LazyGridError(SchedalgError):
    """A grid in a lazy family's free coordinate that does not run over the family's range."""


def natural_schedule(kind: str) -> Schedule:
    """The lazy family of ``kind`` with its free coordinate as the time (``u`` on ``free_range``)."""
    family = derive_lazy_family(kind)
    return family.schedule(free=t, domain=family.free_range, name=f"lazy_{kind}_natural")


class LazyDenoiser:
    """``inner`` (any :class:`~schedalg.models.Denoiser`) in the lazy family ``kind``'s coordinates.

    Its :attr:`schedule` is the family in its free coordinate (``alpha = sin(u)``,
    ``sigma = cos(u)`` on ``(0, pi/2)`` for ``"ode"``; ``alpha = u``,
    ``sigma = sqrt(u (1 - u))`` on ``(0, 1)`` for ``"optimal_sde"``) and it answers in
    standardized coordinates: ``prepare(grid)(y, i) = (x0', eps')``. With a scalar std
    it satisfies the Denoiser contract exactly, so the solvers of :mod:`schedalg.sampling`
    run on it (build their grid with :meth:`time_grid`; map the result back with
    ``standardization.invert``). With one std per channel the channels' coordinates
    differ (``PreparedLazy.u``) and only the lazy samplers of this package apply.
    """

    def __init__(self, inner: Denoiser, standardization: Standardization, kind: str = "ode"):
        if not hasattr(inner, "schedule") or not hasattr(inner, "prepare"):
            raise SchedalgError("a schedalg Denoiser (with .schedule and .prepare(times))",
                                type(inner).__name__, "wrap the network with schedalg.models first")
        if not isinstance(standardization, Standardization):
            raise SchedalgError("a schedalg.lazy.Standardization", type(standardization).__name__,
                                "build one with Standardization.given(mean, std) or .estimate(samples)")
        self.inner = inner
        self.standardization = standardization
        self.kind = kind
        self.family: LazyFamily = derive_lazy_family(kind)
        self.schedule = natural_schedule(kind)
        self._lazy = self.schedule.compile()
        self._src = inner.schedule.compile()

    @property
    def free_range(self) -> tuple[float, float]:
        """``(u at the noise end, u at the data end)`` of the family's free coordinate."""
        return float(self.family.free_range[0]), float(self.family.free_range[1])

    def uniform_grid(self, steps: int) -> torch.Tensor:
        """``steps + 1`` values of the free coordinate, uniform over its range (float64)."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise LazyGridError("a positive integer number of steps", repr(steps), "pass steps >= 1")
        lo, hi = self.free_range
        grid = torch.linspace(lo, hi, steps + 1, dtype=torch.float64)
        grid[-1] = hi
        return grid

    def grid_from(self, free: Any, steps: int) -> torch.Tensor:
        """The free-coordinate grid ``u_i = free(i / steps)`` of a member ``family.schedule(free)``.

        ``free`` is an expression in :data:`schedalg.t` on ``[0, 1]`` running over the free
        range (checked, as in :meth:`LazyFamily.schedule`); sampling uniformly in the
        member's own time is sampling on this grid (e.g. ``free = pi t**2 / 2`` clusters
        the ODE family's steps at the noise end).
        """
        from ..compile import compile_exprs

        self.family.schedule(free)  # validates the ends
        times = self.uniform_grid(steps)
        lo, hi = self.free_range
        (values,) = compile_exprs([sp.sympify(free)], [t], name="lazy_free")((times - lo) / (hi - lo))
        return self._check_grid(torch.broadcast_to(values, times.shape))

    def time_grid(self, grid: Any):
        """A :class:`schedalg.sampling.TimeGrid` on :attr:`schedule` at the free-coordinate values ``grid``.

        For running the named solvers of :mod:`schedalg.sampling` on the lazy family (a
        scalar std). Times at the ends of the domain get exact end values from
        :class:`~schedalg.sampling.TimeGrid` (``cos(pi/2)`` is ``6e-17`` in float64, not 0).
        """
        from ..sampling import TimeGrid

        if not self.standardization.is_scalar:
            raise LazyGridError("a scalar std for the solvers of schedalg.sampling (one schedule for all channels)",
                                f"one std per channel, shape {tuple(self.standardization.std.shape)}",
                                "use lazy_ode_sample / point_mass_sample, which give each channel its coordinate")
        return TimeGrid.from_times(self.schedule, self._check_grid(grid))

    def prepare(self, grid: Any) -> "PreparedLazy":
        """Precompute network times, family coordinates and scales for ``grid`` (free coordinate)."""
        return PreparedLazy(self, self._check_grid(grid))

    def _check_grid(self, grid: Any) -> torch.Tensor:
        lo, hi = self.free_range
        try:
            values = torch.as_tensor(grid, dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise LazyGridError("a 1-D grid of numbers", repr(grid), "pass a list or tensor of floats") from exc
        if values.numel() < 2 or not bool(torch.isfinite(values).all()) or not bool((values.diff() > 0).all()):
            raise LazyGridError(f"a strictly increasing finite grid of >= 2 values in [{lo:.6g}, {hi:.6g}]",
                                f"{values.tolist()}", "sort the grid and drop repeated or non-finite values")
        if abs(float(values[0]) - lo) > 1e-12 or abs(float(values[-1]) - hi) > 1e-9 * hi:
            raise LazyGridError(f"a grid from the noise end {lo!r} to the data end {hi!r} of the "
                                f"{self.kind} family's free coordinate",
                                f"a grid from {float(values[0])!r} to {float(values[-1])!r}",
                                "use LazyDenoiser.uniform_grid(steps) or map your spacing onto the range")
        values = values.clone()
        values[0], values[-1] = lo, hi
        return values


@dataclass
class _Coefficients:
    u: torch.Tensor        # (n, *std_shape) family coordinate per channel
    d_alpha: torch.Tensor  # A'(u), same shape
    d_sigma: torch.Tensor  # S'(u)
    to_source: torch.Tensor  # sd / c: x_src = to_source * y + alpha_src mu
    alpha_src: torch.Tensor  # (n,) source alpha at the network time


class PreparedLazy:
    """A :class:`LazyDenoiser` bound to a grid of its free coordinate.

    ``times`` is the grid (the reference channel's coordinate); ``u[i]``, ``d_alpha[i]``,
    ``d_sigma[i]`` are the per-channel coordinate and family derivatives at grid point
    ``i`` (shape of the std, broadcastable to a sample); ``source_times`` the network's
    times. Calling ``(y, i)`` returns ``(x0', eps')`` at grid point ``i``. At a point mass
    (``u = 0`` of the point-mass family) the scale is 0 and the state carries no
    information: a call there feeds the network the source's noise-end state with zero
    noise, :meth:`at_point_mass` the same state with a given noise (both give ``E[x]``
    for a perfect model).
    """

    def __init__(self, lazy: LazyDenoiser, grid: torch.Tensor):
        self.lazy = lazy
        self.times = grid
        std = lazy.standardization
        src, fam = lazy._src, lazy._lazy
        lo, hi = lazy.free_range
        lam_ref = fam.log_snr(grid)
        lam_ref = torch.where(grid == lo, -torch.inf, torch.where(grid == hi, torch.inf, lam_ref))
        shift = 2 * torch.log(std.reference_std)
        self.source_times = src.t_of_log_snr(lam_ref - shift)
        alpha_src, sigma_src = src.evaluate(self.source_times, "alpha", "sigma")
        sd = std.std
        extra = (1,) * sd.dim()
        if std.is_scalar:
            u = grid.reshape((-1,) + extra)
        else:
            lam_src = (lam_ref - shift).reshape((-1,) + extra)
            u = fam.t_of_log_snr(lam_src + 2 * torch.log(sd), check=False)
            u = torch.where(lam_src == -torch.inf, lo, torch.where(lam_src == torch.inf, hi, u))
        big_a, big_s, d_a, d_s = fam.evaluate(u, "alpha", "sigma", "d_alpha", "d_sigma")
        big_s = torch.where(u == hi, torch.zeros_like(big_s), big_s.abs())
        a_src, s_src = alpha_src.reshape((-1,) + extra), sigma_src.reshape((-1,) + extra)
        scale_sum = big_a + big_s
        # sd / c in the sum form of MATH.md 1; at a point mass (c = 0) the network gets the source's
        # noise-end state with zero noise (x0_hat = E[x] for a perfect model), as ConvertedDenoiser does
        to_source = torch.where(scale_sum > 0, (sd * a_src + s_src) / scale_sum.clamp_min(1e-300), 0.0)
        self._c = _Coefficients(u, d_a, d_s, to_source, alpha_src)
        self._inner = lazy.inner.prepare(self.source_times)
        self._mean = std.mean
        self._std = sd
        self._sigma_src = sigma_src

    @property
    def u(self) -> torch.Tensor:
        """Family coordinate per grid point and channel, shape ``(n, *std_shape)``."""
        return self._c.u

    @property
    def d_alpha(self) -> torch.Tensor:
        """``A'(u)`` per grid point and channel."""
        return self._c.d_alpha

    @property
    def d_sigma(self) -> torch.Tensor:
        """``S'(u)`` per grid point and channel."""
        return self._c.d_sigma

    def tables(self, like: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Per-grid-point coefficients on ``like``'s device and dtype, made once and cached.

        Keys: ``to_source`` (``sd / c``), ``shift`` (``alpha_src mu``), ``noise_scale``
        (``sigma_src``), ``d_alpha``, ``d_sigma``, ``u`` (lists over the grid), ``mean`` and
        ``std`` (one-element lists). The sampling loops index these lists only.
        """
        key = (like.device, like.dtype)
        cache = self.__dict__.setdefault("_tables", {})
        if key not in cache:
            def put(values: torch.Tensor) -> list[torch.Tensor]:
                return list(values.to(device=like.device, dtype=like.dtype).unbind(0))
            mean = self._mean.to(device=like.device, dtype=torch.float64)
            shift = self._c.alpha_src.reshape((-1,) + (1,) * mean.dim()) * mean
            cache[key] = {"to_source": put(self._c.to_source), "shift": put(shift),
                          "noise_scale": put(self._sigma_src), "d_alpha": put(self._c.d_alpha),
                          "d_sigma": put(self._c.d_sigma), "u": put(self._c.u),
                          "mean": [self._mean.to(like)], "std": [self._std.to(like)]}
        return cache[key]

    def _standardized(self, x0: torch.Tensor, eps: torch.Tensor, table: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return (x0 - table["mean"][0]) / table["std"][0], eps

    def __call__(self, y: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0', eps')`` at grid point ``i`` for the lazy state ``y`` (B, ...)."""
        table = self.tables(y)
        x = table["to_source"][i] * y + table["shift"][i]
        x0, eps = self._inner(x, i, **cond)
        return self._standardized(x0, eps, table)

    def at_point_mass(self, noise: torch.Tensor, i: int = 0, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0', eps')`` where the lazy state is the point mass: the limit ``y / c -> noise``.

        Along the point-mass family ``y / c`` tends to the source's noise-end state, so
        the network is queried at ``x = sigma_src(tau_i) noise + alpha_src(tau_i) mu``;
        for a perfect model ``x0_hat`` there is ``E[x]`` whatever the noise.
        """
        table = self.tables(noise)
        x = table["noise_scale"][i] * noise + table["shift"][i]
        x0, eps = self._inner(x, i, **cond)
        return self._standardized(x0, eps, table)
