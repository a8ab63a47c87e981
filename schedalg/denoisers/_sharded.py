"""Exact mixture / optimal denoisers whose components are split over ``torch.distributed`` ranks.

Rank ``r`` holds the components ``I_r`` (a disjoint part of all ``N``) and computes, for
the same states ``x`` on every rank, the streamed statistics of its part
(:meth:`GaussianMixtureDenoiser.log_sum_exp_statistics`)

    M_r = max_{i in I_r} l_i,   S_r = sum_{i in I_r} exp(l_i - M_r),   Y_r = sum_{i in I_r} exp(l_i - M_r) y_i .

With ``M = max_r M_r`` (an all-reduce MAX) every part is rescaled to the common maximum
(:func:`combine_log_sum_exp`) and summed (one all-reduce SUM of ``[S_r, Y_r]``):

    S = sum_r exp(M_r - M) S_r = sum_i exp(l_i - M),   Y = sum_r exp(M_r - M) Y_r = sum_i exp(l_i - M) y_i ,

so ``m = Y / S`` is the softmax-weighted mean over all ``N`` components (the identity is
checked symbolically in ``proofs/prove_distributed.py``). Every exponent is ``<= 0``, so
nothing overflows. The weights are normalised by their global sum (one all-reduce at
construction). Only the summation order differs from one process, so results agree to
float64 rounding (~1e-16 relative), not bitwise.

Use: every rank calls the denoiser with the same ``x`` (e.g. each runs the same
:class:`schedalg.sampling.Sampler` on the same noise, and rank 0 keeps the result;
:func:`schedalg.distributed.sample` does this for such a denoiser);
under NCCL ``x`` must be on the rank's CUDA device. Collectives are asynchronous on
NCCL (no host synchronisation in the sampling loop); gloo collectives block the host.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist

from ..distributed import collective_device, rank_and_world
from ..errors import SchedalgError
from ..symbolic import Schedule
from ._mixture import GaussianMixtureDenoiser

__all__ = ["ShardedMixtureDenoiser", "ShardedOptimalDenoiser", "combine_log_sum_exp"]


def combine_log_sum_exp(local_max: Any, local_sum: Any, local_weighted: Any, global_max: Any,
                        exp: Callable[[Any], Any] = torch.exp) -> tuple[Any, Any]:
    """One part's ``(S_r, Y_r)``, taken relative to its maximum ``M_r``, rescaled to ``M``:
    ``(exp(M_r - M) S_r, exp(M_r - M) Y_r)``. Summed over disjoint parts they give the
    statistics of the union. ``exp`` is ``torch.exp`` (or ``sympy.exp`` for the proof)."""
    scale = exp(local_max - global_max)
    return scale * local_sum, scale * local_weighted


class ShardedMixtureDenoiser(GaussianMixtureDenoiser):
    """:class:`GaussianMixtureDenoiser` of ``sum_i w_i N(y_i, v I)`` with this rank holding some of the ``y_i``.

    ``local_means``: this rank's components (n_r, *data_shape), ``n_r >= 1``;
    ``local_weights``: their (unnormalised) weights, default 1 each (uniform overall);
    ``variance``: the same on every rank; ``group``: the process group (default: the
    default group; with none initialised it is an ordinary one-process mixture).
    Construction is collective: every rank of ``group`` must build its part.
    """

    #: every rank must call it with the same states (read by :func:`schedalg.distributed.sample`)
    collective = True

    def __init__(self, schedule: Schedule, local_means: Any, variance: Any = 0.0, local_weights: Any = None, *,
                 group: Any = None, chunk_size: int = 1024, direct: bool = False):
        local_means = torch.as_tensor(local_means, dtype=torch.float64)
        rank, world = rank_and_world(group)
        if local_means.dim() < 2 or local_means.shape[0] == 0:
            raise SchedalgError(f"rank {rank}'s components shaped (n_r, *data_shape) with n_r >= 1",
                                f"shape {tuple(local_means.shape)}",
                                "give every rank at least one row (use at most N processes; "
                                "schedalg.distributed.shard_rows splits N rows evenly)")
        if local_weights is None:
            local_weights = torch.ones(local_means.shape[0], dtype=torch.float64)
        super().__init__(schedule, local_means, variance, local_weights, chunk_size=chunk_size, direct=direct)
        self.group, self.rank, self.world_size = group, rank, world
        weights = torch.as_tensor(local_weights, dtype=torch.float64)
        total = weights.sum().reshape(1)
        if world > 1:
            device = collective_device(group)
            dims = torch.tensor([self.means.shape[1], -self.means.shape[1]], dtype=torch.float64, device=device)
            dist.all_reduce(dims, op=dist.ReduceOp.MAX, group=group)
            if dims[0] != -dims[1]:
                raise SchedalgError("the same data shape on every rank",
                                    f"component sizes from {int(-dims[1])} to {int(dims[0])}",
                                    "split the rows of one data set (schedalg.distributed.shard_rows)")
            total = total.to(device)
            dist.all_reduce(total, group=group)
            total = total.cpu()
        # log w_i - log(sum over all ranks): the global normalisation
        self.log_weights = torch.log(weights) - torch.log(total[0])
        self._device_cache.clear()

    def responsibility_mean(self, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``m(x)`` over the components of all ranks (two all-reduces; ``x`` the same on every rank)."""
        local_max, local_sum, local_weighted = self.log_sum_exp_statistics(x, alpha, sigma)
        if self.world_size == 1:
            return local_weighted / local_sum
        global_max = local_max.clone()
        dist.all_reduce(global_max, op=dist.ReduceOp.MAX, group=self.group)
        total, weighted = combine_log_sum_exp(local_max, local_sum, local_weighted, global_max)
        packed = torch.cat([total, weighted], dim=1)
        dist.all_reduce(packed, group=self.group)
        return packed[:, 1:] / packed[:, :1]

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, rank={self.rank} of {self.world_size})"


class ShardedOptimalDenoiser(ShardedMixtureDenoiser):
    """:class:`OptimalDenoiser` (empirical distribution, uniform weights) of a data set whose
    rows are split over the ranks: ``local_data`` is this rank's rows (e.g.
    ``data[schedalg.distributed.shard_rows(len(data))]``)."""

    def __init__(self, schedule: Schedule, local_data: Any, *, group: Any = None, chunk_size: int = 1024,
                 direct: bool = False):
        super().__init__(schedule, local_data, 0.0, None, group=group, chunk_size=chunk_size, direct=direct)
