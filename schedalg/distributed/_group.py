"""The process group as seen by schedalg: rank, world size, the device collectives use.

With no initialised ``torch.distributed`` process group everything runs in one process
(rank 0 of 1) and no collective is called. NCCL collectives need CUDA tensors, gloo CPU
ones; :func:`collective_device` says which.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Iterator

import torch
import torch.distributed as dist

from ..errors import SchedalgError

__all__ = ["rank_and_world", "collective_device", "init_from_env", "barrier", "shard_rows"]


def rank_and_world(group: "dist.ProcessGroup | None" = None) -> tuple[int, int]:
    """``(rank, world_size)`` in ``group`` (the default group), ``(0, 1)`` without one."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def collective_device(group: "dist.ProcessGroup | None" = None) -> torch.device:
    """Where tensors passed to collectives must live: this rank's CUDA device under NCCL, else CPU."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier(group: "dist.ProcessGroup | None" = None) -> None:
    if rank_and_world(group)[1] > 1:
        dist.barrier(group)


def shard_rows(n: int, rank: int | None = None, world_size: int | None = None) -> slice:
    """The contiguous rows ``[n r / W, n (r+1) / W)`` of ``n`` that rank ``r`` of ``W`` holds.

    Sizes differ by at most one. Defaults: this process's rank and world size.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SchedalgError("a number of rows n >= 0", repr(n), None)
    here_rank, here_world = rank_and_world()
    rank = here_rank if rank is None else rank
    world_size = here_world if world_size is None else world_size
    if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int) and 0 <= rank < world_size):
        raise SchedalgError("0 <= rank < world_size", f"rank={rank!r}, world_size={world_size!r}", None)
    return slice(n * rank // world_size, n * (rank + 1) // world_size)


@contextlib.contextmanager
def init_from_env(timeout_s: float = 1800.0) -> Iterator[tuple[int, int]]:
    """Join the process group that ``torchrun`` describes; yields ``(rank, world_size)``.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
    (set by ``torchrun``); uses NCCL (one GPU per process, ``cuda:LOCAL_RANK``) when CUDA
    is available, gloo otherwise. In a plain process (no ``WORLD_SIZE``), or when a
    group is already initialised, it does nothing. The group it created is destroyed
    on exit.
    """
    if "WORLD_SIZE" not in os.environ or (dist.is_available() and dist.is_initialized()):
        yield rank_and_world()
        return
    if not dist.is_available():  # pragma: no cover - torch builds without distributed support
        raise SchedalgError("a torch build with torch.distributed", "torch.distributed is unavailable", None)
    use_cuda = torch.cuda.is_available()
    if use_cuda:  # pragma: no cover - no GPU in CI
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    try:
        yield rank_and_world()
    finally:
        dist.destroy_process_group()
