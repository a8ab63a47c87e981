"""Semi-discrete optimal transport, quadratic cost, solved on its concave dual by stochastic ascent.

Source: a continuous law ``mu`` on ``R^D`` (standard normal by default). Target: points
``y_1..y_N`` with weights ``w_j >= 0``, ``sum w = 1``. A potential ``h in R^N`` defines the
Laguerre (power) cells and the map

    L_j(h) = { z : |z - y_j|^2 - h_j <= |z - y_k|^2 - h_k  for all k },
    T_h(z) = y_{j(z)},   j(z) = argmin_j |z - y_j|^2 - h_j .

Kantorovich's dual restricted to this form is concave in ``h`` (a minimum of affine
functions, integrated, plus a linear term):

    F(h)        = E_{z~mu}[ min_j (|z - y_j|^2 - h_j) ] + sum_j w_j h_j ,
    dF / dh_j   = w_j - mu(L_j(h)) ,

so at the maximiser every cell holds exactly its weight, ``T_h`` is the optimal
(Brenier) map and ``F(h*) = W_2^2(mu, nu)`` (Aurenhammer, Hoffmann & Aronov 1998;
Merigot 2011; stochastic ascent: Genevay et al. 2016; Monte-Carlo Adam with sample
doubling: An et al., AE-OT, 2020, and DPM-OT, Li et al. 2023, MATH.md section 5;
EMA of the potential and a stopping rule on the marginal error as in ott-jax's
semi-discrete solver). ``F`` and its gradient do not change when a constant is added
to ``h``; :meth:`SemiDiscreteOT.fit` keeps ``mean h = 0``. DPM-OT writes the same cells as
``argmax_j <z, y_j> + h'_j``: ``h'_j = (h_j - |y_j|^2) / 2``.

Numerics. ``|z|^2`` is the same for every ``j`` and is dropped, so a cell index is
``argmin_j (|y_j|^2 - h_j) - 2 <z, y_j>``: one matrix product per chunk of targets and a
running minimum, memory ``O(batch x chunk)`` whatever ``N`` is. Products are computed
in the targets' dtype (float32 or float64) on the targets' device; ``h``, masses and dual
values are float64.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import torch

from ..errors import SchedalgError

__all__ = ["SemiDiscreteOT", "OTError", "MARGINAL_METRICS", "laguerre_score"]

#: Marginal-error metrics of :meth:`SemiDiscreteOT.fit`: ``max_j |m_j - w_j|`` or ``sum_j |m_j - w_j|``.
MARGINAL_METRICS = ("max", "l1")

Source = Callable[[int, torch.Generator], torch.Tensor]


def laguerre_score(inner: Any, norm_sq: Any, potential: Any) -> Any:
    """``|y|^2 - h - 2 <z, y>``: the Laguerre cost ``|z - y|^2 - h`` less ``|z|^2`` (the same for every target).

    Plain arithmetic on its arguments (tensors with broadcasting, or SymPy expressions:
    ``proofs/prove_ot.py`` checks the identity on the package's own expression).
    """
    bias = norm_sq - potential
    if isinstance(inner, torch.Tensor):
        return torch.add(bias, inner, alpha=-2)  # the same, in one kernel and one (B, C) buffer
    return bias - 2 * inner


class OTError(SchedalgError):
    """Bad input to the semi-discrete OT solver or the expressway."""


def _positive_int(value: Any, name: str, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OTError(f"{name} as a positive int", repr(value), f"e.g. {name}={example}")
    return value


def _positive_float(value: Any, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise OTError(f"{name} as a finite number > 0", repr(value), f"e.g. {name}={example}")
    return float(value)


class SemiDiscreteOT:
    """Optimal transport from a continuous source (standard normal) to weighted points, cost ``|z - y|^2``.

    Parameters
    ----------
    targets:
        ``(N, *shape)`` floating tensor (or array) of target points ``y_j``; its device and
        dtype are where and how the cells are computed. Integer input becomes float64.
    weights:
        ``(N,)`` non-negative, positive sum (normalised here); uniform when None.
    chunk_size, batch_size:
        Targets and source points handled at once: memory ``batch_size x chunk_size``
        scores, independent of ``N``.

    Attributes: ``targets`` (``(N, D)``, flattened), ``weights`` (float64 ``(N,)``),
    ``potential`` (``h``, float64 ``(N,)``, settable; zeros = Voronoi cells), and after
    :meth:`fit`: ``history`` (one dict per step: step, samples, lr, error of the
    EMA potential on that step's fresh samples), ``marginal_error``, ``converged``,
    ``fit_seconds``.
    """

    def __init__(self, targets: Any, weights: Any = None, *, chunk_size: int = 2048, batch_size: int = 4096):
        targets = torch.as_tensor(targets)
        if not targets.is_floating_point():
            targets = targets.to(torch.float64)
        if targets.dim() < 2 or targets.shape[0] < 1 or targets[0].numel() < 1:
            raise OTError("targets of shape (N, *shape) with N >= 1", f"shape {tuple(targets.shape)}",
                          "stack the target points along dimension 0")
        if not bool(torch.isfinite(targets).all()):
            raise OTError("finite targets", "NaN or infinite entries", "clean the target points")
        self.shape = tuple(targets.shape[1:])
        self.targets = targets.reshape(targets.shape[0], -1).contiguous()
        n = self.targets.shape[0]
        self.weights = self._check_weights(weights, n)
        self.chunk_size = _positive_int(chunk_size, "chunk_size", "2048")
        self.batch_size = _positive_int(batch_size, "batch_size", "4096")
        self._norms = self.targets.to(torch.float64).square().sum(1).to(self.targets.dtype)  # |y_j|^2
        self._potential = torch.zeros(n, dtype=torch.float64, device=self.device)
        self.history: list[dict[str, float]] = []
        self.marginal_error: float | None = None
        self.converged: bool | None = None
        self.fit_seconds: float | None = None

    # ------------------------------------------------------------------ inputs

    def _check_weights(self, weights: Any, n: int) -> torch.Tensor:
        if weights is None:
            return torch.full((n,), 1.0 / n, dtype=torch.float64, device=self.targets.device)
        weights = torch.as_tensor(weights, dtype=torch.float64).to(self.targets.device)
        if weights.shape != (n,):
            raise OTError(f"weights of shape ({n},), one per target", f"shape {tuple(weights.shape)}",
                          "pass one weight per target point, or None for uniform weights")
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise OTError("finite weights >= 0 with a positive sum", f"min {float(weights.min()):.3g}, "
                          f"sum {float(weights.sum()):.3g}", "pass non-negative masses (they are normalised)")
        return weights / weights.sum()

    @property
    def device(self) -> torch.device:
        """The targets' device: every computation runs there."""
        return self.targets.device

    @property
    def num_targets(self) -> int:
        """``N``."""
        return self.targets.shape[0]

    @property
    def dim(self) -> int:
        """``D``, the number of entries of one point."""
        return self.targets.shape[1]

    @property
    def potential(self) -> torch.Tensor:
        """The dual potential ``h`` (float64, ``(N,)``)."""
        return self._potential

    @potential.setter
    def potential(self, value: Any) -> None:
        value = torch.as_tensor(value, dtype=torch.float64).to(self.device)
        if value.shape != (self.num_targets,) or not bool(torch.isfinite(value).all()):
            raise OTError(f"a finite potential of shape ({self.num_targets},)",
                          f"shape {tuple(value.shape)}" + ("" if bool(torch.isfinite(value).all()) else ", non-finite"),
                          "one value h_j per target")
        self._potential = value.clone()

    def _flat_points(self, z: Any, name: str = "z") -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise OTError(f"{name} as a floating-point torch.Tensor (B, {self.dim}) or (B, *{self.shape})",
                          type(z).__name__ if not isinstance(z, torch.Tensor) else f"dtype {z.dtype}",
                          "e.g. torch.randn(16, D)")
        if z.device != self.device:
            raise OTError(f"{name} on the targets' device {self.device}", f"{name} on {z.device}",
                          f"move {name} with .to({str(self.device)!r}) (or build the solver on {z.device})")
        if z.dim() < 1 or z.shape[0] < 1 or z[0].numel() != self.dim:
            raise OTError(f"{name} of shape (B, {self.dim}) or (B, *{self.shape}) with B >= 1",
                          f"shape {tuple(z.shape)}", "one source point per row, the targets' size")
        return z.reshape(z.shape[0], self.dim).to(self.targets.dtype)

    # ------------------------------------------------------------------ cells

    def _argmin(self, z: torch.Tensor, potentials: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For each potential ``h``: ``min_j laguerre_score(<z, y_j>, |y_j|^2, h_j)`` and its argmin.

        The products ``<z, y_j>`` are computed once per chunk and shared by all potentials.
        """
        potentials = [p.to(z.dtype) for p in potentials]
        best: list[tuple[torch.Tensor, torch.Tensor]] = [(z, z)] * len(potentials)  # set by the first chunk
        for start in range(0, self.num_targets, self.chunk_size):
            stop = min(start + self.chunk_size, self.num_targets)
            products = z @ self.targets[start:stop].T  # (B, C)
            norms = self._norms[start:stop]
            for k, h in enumerate(potentials):
                value, index = torch.min(laguerre_score(products, norms, h[start:stop]), dim=1)
                if start == 0:
                    best[k] = (value, index)
                    continue
                better = value < best[k][0]
                best[k] = (torch.where(better, value, best[k][0]), torch.where(better, index + start, best[k][1]))
        return best

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Index ``j(z) = argmin_j |z - y_j|^2 - h_j`` of each source point (int64 ``(B,)``, targets' device)."""
        z = self._flat_points(z)
        out = [self._argmin(z[i:i + self.batch_size], [self._potential])[0][1]
               for i in range(0, z.shape[0], self.batch_size)]
        return torch.cat(out)

    def transport(self, z: torch.Tensor) -> torch.Tensor:
        """``T_h(z) = y_{j(z)}``, shaped like the targets' points: ``(B, *shape)``."""
        return self.targets[self.assign(z)].reshape((z.shape[0],) + self.shape)

    def dual(self, z: torch.Tensor) -> float:
        """The Monte-Carlo dual ``F_n(h) = mean_k min_j(|z_k - y_j|^2 - h_j) + sum_j w_j h_j`` on the given ``z``."""
        z = self._flat_points(z)
        total = 0.0
        for i in range(0, z.shape[0], self.batch_size):
            chunk = z[i:i + self.batch_size]
            value = self._argmin(chunk, [self._potential])[0][0].to(torch.float64)
            total += float((value + chunk.to(torch.float64).square().sum(1)).sum())
        return total / z.shape[0] + float((self.weights * self._potential).sum())

    def dual_gradient(self, z: torch.Tensor) -> torch.Tensor:
        """``dF_n/dh_j = w_j - (fraction of the given z in cell j)`` (float64 ``(N,)``)."""
        return self.weights - self._fractions(self._flat_points(z), [self._potential])[0]

    def _fractions(self, z: torch.Tensor, potentials: list[torch.Tensor]) -> list[torch.Tensor]:
        """Fraction of the rows of ``z`` in each cell, for each potential (float64 ``(N,)`` each)."""
        counts = [torch.zeros(self.num_targets, dtype=torch.float64, device=self.device) for _ in potentials]
        for i in range(0, z.shape[0], self.batch_size):
            for k, (_, index) in enumerate(self._argmin(z[i:i + self.batch_size], potentials)):
                counts[k] += torch.bincount(index, minlength=self.num_targets).to(torch.float64)
        return [c / z.shape[0] for c in counts]

    # ------------------------------------------------------------------ source

    def _generator(self, seed: int | None, generator: torch.Generator | None) -> torch.Generator:
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise OTError("a torch.Generator", type(generator).__name__, "or pass seed=...")
            return generator
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise OTError("a seed as an int >= 0 (or a torch.Generator)", repr(seed), "e.g. seed=0")
        return torch.Generator(device=self.device).manual_seed(seed)

    def _draw(self, n: int, generator: torch.Generator, source: Source | None) -> torch.Tensor:
        if source is None:
            return torch.randn(n, self.dim, generator=generator, dtype=self.targets.dtype, device=self.device)
        if not callable(source):
            raise OTError("source as a callable (n, generator) -> (n, D) tensor", type(source).__name__,
                          "e.g. source=lambda n, g: torch.randn(n, D, generator=g)")
        z = source(n, generator)
        if not isinstance(z, torch.Tensor) or z.shape[0] != n:
            got = f"shape {tuple(z.shape)}" if isinstance(z, torch.Tensor) else type(z).__name__
            raise OTError(f"source(n={n}, generator) to return {n} points", got, "return a (n, D) tensor")
        return self._flat_points(z, "source(n, generator)")

    def _sampled_fractions(self, n: int, generator: torch.Generator, source: Source | None,
                           potentials: list[torch.Tensor]) -> list[torch.Tensor]:
        """Cell fractions of ``n`` fresh source points, drawn a batch at a time (bounded memory)."""
        counts = [torch.zeros(self.num_targets, dtype=torch.float64, device=self.device) for _ in potentials]
        for i in range(0, n, self.batch_size):
            z = self._draw(min(self.batch_size, n - i), generator, source)
            for k, part in enumerate(self._fractions(z, potentials)):
                counts[k] += part * z.shape[0]
        return [c / n for c in counts]

    def cell_masses(self, n: int = 1 << 18, *, seed: int | None = 0, generator: torch.Generator | None = None,
                    source: Source | None = None) -> torch.Tensor:
        """Monte-Carlo masses ``mu(L_j(h))`` from ``n`` source points (float64 ``(N,)``, sums to 1).

        ``source(n, generator)`` returns ``n`` source points (default: standard normal);
        the standard error of a mass ``m`` is ``sqrt(m (1 - m) / n)``.
        """
        n = _positive_int(n, "n", "1 << 18")
        return self._sampled_fractions(n, self._generator(seed, generator), source, [self._potential])[0]

    # ------------------------------------------------------------------ fit

    def fit(self, *, tol: float = 1e-2, metric: str = "l1", samples: int | None = None,
            max_samples: int = 1 << 20, lr: float | None = None, max_steps: int = 2000, ema: float = 0.9,
            patience: int = 20, growth: int = 2, lr_decay: float = 0.5, min_improvement: float = 0.02,
            seed: int | None = 0, generator: torch.Generator | None = None,
            source: Source | None = None) -> "SemiDiscreteOT":
        """Maximise the dual ``F(h)`` by Adam on Monte-Carlo gradients; returns ``self``.

        Step ``k`` draws ``n_k`` fresh source points and counts, with one set of products,
        the cells of the Adam iterate ``h_k`` (gradient ``w - m(h_k)``) and of the
        exponential moving average ``hbar_k`` (decay ``ema``). The marginal error of
        ``hbar_k`` on these points (``metric``: ``"l1"`` = ``sum_j |m_j - w_j|``, ``"max"`` =
        ``max_j |m_j - w_j|``; the samples are independent of ``hbar_k``, so the estimate
        is honest, with Monte-Carlo noise of order ``sqrt(w_j / n_k)`` per cell) is
        recorded; the fit stops with ``h = hbar_k`` when it is ``<= tol`` on a sample large
        enough that sampling noise alone would stay below ``tol / 2`` (else the sample grows
        first, so a lucky draw does not stop it; a ``tol`` that ``max_samples`` cannot
        resolve is refused before any work). When the error is within twice the sampling
        noise of ``n_k`` points (progress cannot be seen) the sample grows by ``growth`` (up
        to ``max_samples``); on a plateau (no improvement by a factor ``1 - min_improvement``
        for ``patience`` steps) it grows and the rate decays by ``lr_decay`` as well. After every step ``h`` is
        recentred (``mean h = 0``). Default ``samples``: ``max(4096, 64 N)``; default
        ``lr``: ``0.1 * median_j |y_j - ybar|^2 / sqrt(D)`` (``h`` has units of squared
        distance, and Adam moves each ``h_j`` by about ``lr`` per step).

        If ``max_steps`` pass first, ``h = hbar`` is kept, ``converged`` is False and a
        warning gives the error reached. The fit starts from the current ``potential``.
        """
        if metric not in MARGINAL_METRICS:
            raise OTError(f"metric among {MARGINAL_METRICS}", repr(metric), "'l1' (sum) or 'max' (largest cell)")
        tol = _positive_float(tol, "tol", "1e-2")
        n = _positive_int(samples if samples is not None else max(4096, 64 * self.num_targets), "samples", "65536")
        max_samples = max(_positive_int(max_samples, "max_samples", "1 << 20"), n)
        max_steps = _positive_int(max_steps, "max_steps", "2000")
        patience = _positive_int(patience, "patience", "20")
        growth = _positive_int(growth, "growth", "2")
        if not (isinstance(ema, (int, float)) and 0 <= ema < 1):
            raise OTError("ema in [0, 1)", repr(ema), "e.g. ema=0.9 (0: no averaging)")
        if not (isinstance(lr_decay, (int, float)) and 0 < lr_decay <= 1):
            raise OTError("lr_decay in (0, 1]", repr(lr_decay), "e.g. lr_decay=0.5")
        if not (isinstance(min_improvement, (int, float)) and 0 <= min_improvement < 1):
            raise OTError("min_improvement in [0, 1)", repr(min_improvement), "e.g. min_improvement=0.02")
        if lr is None:
            centred = self.targets.to(torch.float64) - self.targets.to(torch.float64).mean(0)
            scale = float(centred.square().sum(1).median())
            lr = 0.1 * (scale if scale > 0 else 1.0) / math.sqrt(self.dim)
        lr = _positive_float(lr, "lr", "0.01")
        floor = self._noise_floor(metric)
        if floor(max_samples) > tol / 2:
            needed = max_samples
            while floor(needed) > tol / 2:
                needed *= 2
            raise OTError(f"a tol the Monte-Carlo estimate can resolve with max_samples={max_samples} (pure sampling "
                          f"noise alone gives a {metric} error of about {floor(max_samples):.3g} there)",
                          f"tol={tol:g}", f"raise max_samples to {needed} or tol to {2 * floor(max_samples):.3g}")
        gen = self._generator(seed, generator)
        start = time.perf_counter()

        h = self._potential.clone().requires_grad_(False)
        h -= h.mean()
        average = h.clone()
        optimizer = torch.optim.Adam([h], lr=lr, maximize=True)
        reduce = torch.amax if metric == "max" else torch.sum
        history: list[dict[str, float]] = []
        best, stale, error = math.inf, 0, math.inf
        converged = False
        for step in range(1, max_steps + 1):
            current, averaged = self._sampled_fractions(n, gen, source, [h.detach(), average])
            error = float(reduce((averaged - self.weights).abs()))
            history.append({"step": step, "samples": n, "lr": optimizer.param_groups[0]["lr"], "error": error})
            if error <= tol and floor(n) <= tol / 2:  # (below tol with more noise: the sample grows below)
                converged = True
                break
            if error < best * (1 - min_improvement):
                best, stale = error, 0
            else:
                stale += 1
            if stale >= patience or error <= 2 * floor(n):  # a plateau, or progress hidden by sampling noise
                if stale >= patience:  # a real plateau: smaller steps too
                    for group in optimizer.param_groups:
                        group["lr"] *= lr_decay
                n = min(n * growth, max_samples)
                best, stale = error, 0
            h.grad = self.weights - current  # dF/dh, ascended (maximize=True)
            optimizer.step()
            with torch.no_grad():
                h -= h.mean()
                average.mul_(ema).add_(h, alpha=1 - ema)
        self._potential = average - average.mean()
        self.history = history
        self.marginal_error = error
        self.converged = converged
        self.fit_seconds = time.perf_counter() - start
        if not converged:
            warnings.warn(f"SemiDiscreteOT.fit stopped after {max_steps} steps with marginal error ({metric}) "
                          f"{error:.3g} > tol {tol:g}; raise max_steps or max_samples, or loosen tol",
                          RuntimeWarning, stacklevel=2)
        return self

    def _noise_floor(self, metric: str) -> Callable[[int], float]:
        """``n -> `` the expected marginal error of pure Monte-Carlo noise with ``n`` samples.

        A cell's count fraction has standard error ``s_j = sqrt(w_j (1 - w_j) / n)``;
        ``E|N(0, s^2)| = s sqrt(2/pi)``, so ``l1`` noise is ``sqrt(2/pi) sum_j s_j``; for
        ``max`` the largest ``s_j`` times ``sqrt(2 log 2N)`` (the growth of the expected
        maximum of ``N`` half-normals).
        """
        spread = (self.weights * (1 - self.weights)).sqrt()
        if metric == "l1":
            total = float(spread.sum()) * math.sqrt(2 / math.pi)
        else:
            total = float(spread.max()) * math.sqrt(2 * math.log(2 * self.num_targets))
        return lambda n: total / math.sqrt(n)

    def __repr__(self) -> str:
        fitted = "" if self.marginal_error is None else f", marginal_error={self.marginal_error:.3g}"
        return (f"SemiDiscreteOT(N={self.num_targets}, D={self.dim}, {self.targets.dtype}, "
                f"{self.device}{fitted})")
