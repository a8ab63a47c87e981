"""Sample ``num_samples`` ids over all processes, resumably, into shards named by id range.

Every sample depends only on ``(seed, id)``: its initial noise and its stochastic
solvers' draws are :func:`schedalg.sampling.per_sample_normal` rows ``id`` of the
streams ``STREAM_INITIAL`` and ``STREAM_STEPS`` (one generator per sample, seeded from
``(seed, id, stream)``), exactly the noise ``sampler(per_sample_normal((N, ...), seed),
seed=seed)`` draws in one process. The batches themselves do not depend on the world
size (below), so the files are bitwise the same for any number of processes at a given
``batch_size``, for any network with deterministic kernels. Across batch sizes they are
bitwise the same only for a batch-invariant denoiser: schedalg's exact denoisers are
(sample ``id`` is then row ``id`` of the one-process batch); a network's matrix products
are not in general (BLAS and GPU libraries pick kernels by batch size: a small torch MLP
on CPU differs by ~1 float32 ulp between batches of 1 and 64), so keep ``batch_size``
fixed when bitwise reproducibility matters.

Work split. The ids are cut into blocks of ``batch_size`` consecutive ids on a fixed
grid (block ``k`` = ids ``[k B, (k+1) B)``); the ids of a block not yet on disk form a
work item (one per maximal run of missing ids), and items go round-robin to the ranks
(item ``j`` to rank ``j mod W``). Blocks of consecutive ids keep every batch's noise a
contiguous slice of the streams and every shard one id range (its file name); the
round-robin over blocks balances the ranks to within one batch, and after a crash the
finished ids form (nearly) a prefix. A fresh run and a resumed one with the same
``batch_size`` run the very same batches whatever the world size.

Resume. Rank 0 validates the manifest (a rerun with other parameters is refused),
lists the complete shards (header and size checked; a damaged one is renamed to
``*.invalid`` and regenerated) and broadcasts which ids are missing; only those are
sampled. A shard is written atomically (temporary file, fsync, ``os.replace``), so a
crash loses at most the batches in flight.

A sampler whose denoiser is split over the ranks (``collective = True``, e.g.
:class:`schedalg.denoisers.ShardedOptimalDenoiser`) needs the same states on every rank:
then every rank runs every batch, in id order, and rank 0 writes the shards.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from ..errors import SchedalgError
from ..sampling import STREAM_INITIAL, STREAM_STEPS, Sampler, per_sample_normal
from ._group import barrier, collective_device, rank_and_world
from ._shards import (
    Manifest,
    ShardError,
    list_shards,
    make_manifest,
    read_manifest,
    read_shard,
    write_manifest,
    write_shard,
)

__all__ = ["sample", "work_items"]

_EXPORTED_META = ("start_scale", "noise_draws", "shape", "dtype")


def _count(value: Any, name: str, minimum: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SchedalgError(f"{name}: an int >= {minimum}", repr(value), f"pass e.g. {name}={example}")
    return value


# ---------------------------------------------------------------------------- samplers

class _Runner:
    """Runs one batch of ids ``first .. first + n - 1`` of a sampler (no host sync inside)."""

    def __init__(self, call: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], shape: tuple[int, ...],
                 dtype: torch.dtype, noise_draws: int, description: dict[str, str]):
        self.call, self.shape, self.dtype = call, shape, dtype
        self.noise_draws, self.description = noise_draws, description
        self.collective = False  # True: the denoiser is split over the ranks, all ranks run every batch

    def __call__(self, seed: int, first: int, n: int, device: torch.device) -> torch.Tensor:
        shape = (n,) + self.shape
        noise = per_sample_normal(shape, seed, stream=STREAM_INITIAL, offset=first, dtype=self.dtype, device=device)
        draws = None
        if self.noise_draws:
            draws = per_sample_normal(shape, seed, stream=STREAM_STEPS, count=self.noise_draws, offset=first,
                                      dtype=self.dtype, device=device)
        return self.call(noise, draws)


def _hash_tensors(digest: "hashlib._Hash", tensors: list[tuple[str, torch.Tensor]]) -> None:
    for name, tensor in tensors:
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def _denoiser_tensors(obj: Any, prefix: str = "denoiser", depth: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Tensors and network weights held by a denoiser (and by a denoiser it wraps)."""
    found: list[tuple[str, torch.Tensor]] = []
    for key, value in sorted(vars(obj).items()) if hasattr(obj, "__dict__") else []:
        if key.startswith("_"):
            continue
        if isinstance(value, torch.Tensor):
            found.append((f"{prefix}.{key}", value))
        elif isinstance(value, torch.nn.Module):
            found.extend((f"{prefix}.{key}.{k}", v) for k, v in sorted(value.state_dict().items()))
        elif depth < 2 and hasattr(value, "prepare") and hasattr(value, "schedule"):  # a wrapped denoiser
            found.extend(_denoiser_tensors(value, f"{prefix}.{key}", depth + 1))
    return found


def _sampler_runner(sampler: Sampler, shape: Any, dtype: Any) -> _Runner:
    if shape is None:
        raise SchedalgError("shape=: the shape of one sample (without batch) for a Sampler", "shape=None",
                            "e.g. shape=(3, 32, 32)")
    dtype = torch.float32 if dtype is None else dtype
    digest = hashlib.sha256()
    digest.update(json.dumps([sampler.solver.name, repr(sampler.solver), sampler.grid.label, sampler.nfe,
                              sampler.plan.noise_draws, sampler.start_scale, repr(sampler.denoiser)]).encode())
    _hash_tensors(digest, [("grid.times", sampler.grid.times)] + _denoiser_tensors(sampler.denoiser))
    description = {"kind": "schedalg.sampling.Sampler", "solver": sampler.solver.name,
                   "steps": str(sampler.grid.n_steps), "digest": digest.hexdigest()}

    def call(noise: torch.Tensor, draws: torch.Tensor | None) -> torch.Tensor:
        return sampler(noise, draws=draws)

    runner = _Runner(call, shape, dtype, sampler.plan.noise_draws, description)
    wrapped = getattr(sampler.denoiser, "inner", None)  # a denoiser converted to the grid's schedule
    runner.collective = any(getattr(d, "collective", False) for d in (sampler.denoiser, wrapped))
    return runner


def _exported_runner(module: torch.nn.Module, shape: Any, dtype: Any) -> _Runner:
    """A sampler from :func:`schedalg.sampling.load_sampler`: ``module(x, draws)`` from the
    scaled initial state ``x = start_scale * noise`` (all the calling convention used here)."""
    meta = module.meta
    exported_shape = tuple(int(s) for s in meta["shape"])
    exported_dtype = getattr(torch, str(meta["dtype"]))
    if shape is not None and tuple(shape) != exported_shape[1:]:
        raise SchedalgError(f"shape={exported_shape[1:]} (the exported sampler's sample shape) or None",
                            f"shape={tuple(shape)}", "drop shape= for an exported sampler")
    if dtype is not None and dtype != exported_dtype:
        raise SchedalgError(f"dtype={exported_dtype} (the exported sampler's) or None", f"dtype={dtype}",
                            "drop dtype= for an exported sampler")
    start_scale = float(meta["start_scale"])
    fixed_batch = None if meta.get("dynamic_batch", False) else exported_shape[0]
    digest = hashlib.sha256()
    digest.update(json.dumps({k: v for k, v in sorted(meta.items()) if isinstance(v, (str, int, float, bool, list))},
                             sort_keys=True, default=str).encode())
    _hash_tensors(digest, sorted(module.state_dict().items()))
    description = {"kind": "exported sampler", "solver": str(meta.get("solver", "")), "digest": digest.hexdigest()}

    def call(noise: torch.Tensor, draws: torch.Tensor | None) -> torch.Tensor:
        x = noise if start_scale == 1.0 else noise * start_scale  # as Sampler.initial_state
        n = x.shape[0]
        if fixed_batch is not None and n != fixed_batch:
            if n > fixed_batch:
                raise SchedalgError(f"batch_size <= {fixed_batch} (the sampler was exported with that batch)",
                                    f"a batch of {n}", f"pass batch_size={fixed_batch}, or export with "
                                    "dynamic_batch=True")
            # pad with zero rows to the exported batch and drop their outputs (rows are independent)
            x = torch.cat([x, x.new_zeros((fixed_batch - n,) + tuple(x.shape[1:]))])
            if draws is not None:
                draws = torch.cat([draws, draws.new_zeros((draws.shape[0], fixed_batch - n) + tuple(draws.shape[2:]))],
                                  dim=1)
        out = module(x) if draws is None else module(x, draws)
        return out[:n]

    return _Runner(call, exported_shape[1:], exported_dtype, int(meta["noise_draws"]), description)


def _runner(sampler: Any, shape: Any, dtype: Any) -> _Runner:
    if shape is not None:
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError) as exc:
            raise SchedalgError("shape: a tuple of ints (one sample's shape)", repr(shape), "e.g. shape=(2,)") from exc
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise SchedalgError("dtype: a torch.dtype", repr(dtype), "e.g. dtype=torch.float32")
    if isinstance(sampler, Sampler):
        return _sampler_runner(sampler, shape, dtype)
    meta = getattr(sampler, "meta", None)
    if isinstance(sampler, torch.nn.Module) and isinstance(meta, dict) and all(k in meta for k in _EXPORTED_META):
        return _exported_runner(sampler, shape, dtype)
    raise SchedalgError("a schedalg.sampling.Sampler, or a sampler loaded by schedalg.sampling.load_sampler",
                        type(sampler).__name__, "build Sampler(denoiser, grid, solver), or load an exported file")


# ---------------------------------------------------------------------------- work split

def work_items(missing: torch.Tensor, batch_size: int) -> list[tuple[int, int]]:
    """``(first, stop)`` id ranges to sample: the runs of ``missing`` (a bool mask over ids)
    inside each block ``[k B, (k+1) B)``, in id order."""
    ids = torch.arange(missing.numel())
    before = torch.cat([torch.zeros(1, dtype=torch.bool), missing[:-1]])  # missing[i - 1]
    after = torch.cat([missing[1:], torch.zeros(1, dtype=torch.bool)])  # missing[i + 1]
    firsts = ids[missing & (~before | (ids % batch_size == 0))]
    lasts = ids[missing & (~after | ((ids + 1) % batch_size == 0))]
    return list(zip(firsts.tolist(), (lasts + 1).tolist()))


def _prepare_directory(out_dir: Path, manifest: Manifest) -> torch.Tensor:
    """Rank 0: check or write the manifest; the mask of ids with no complete shard."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = read_manifest(out_dir)
    if existing is None:
        if list_shards(out_dir):
            raise ShardError(f"a new or resumable sample directory (shards with a {'manifest.json'})",
                             f"shards without a manifest in {str(out_dir)!r}", "use an empty out_dir")
        write_manifest(out_dir, manifest)
    elif existing != manifest:
        changed = sorted(k for k in manifest if existing.get(k) != manifest[k])
        raise ShardError(f"the parameters of the run already in {str(out_dir)!r}: "
                         + ", ".join(f"{k}={json.dumps(existing[k])}" for k in changed),
                         ", ".join(f"{k}={json.dumps(manifest[k])}" for k in changed),
                         "rerun with the same parameters to resume, or write to a new out_dir")
    for stale in out_dir.glob(".samples_*.tmp"):  # partial writes of a crashed run
        stale.unlink(missing_ok=True)
    missing = torch.ones(manifest["num_samples"], dtype=torch.bool)
    for first, stop, path in list_shards(out_dir):
        try:
            read_shard(path, manifest, header_only=True)
        except ShardError as exc:
            if not missing[first:stop].all():
                raise  # overlaps another shard: a directory this run did not write
            print(f"schedalg: regenerating {path.name}: {exc}", file=sys.stderr)
            path.rename(path.with_name(path.name + ".invalid"))
            continue
        if not missing[first:stop].all():
            raise ShardError("shards with disjoint id ranges", f"{path.name} overlaps another shard",
                             "keep one shard per id range")
        missing[first:stop] = False
    return missing


class _Progress:
    """Samples done over all ranks, shown on rank 0 (tqdm when installed, else a line per 10 %)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.shown, self.bar, self.enabled = total, 0, None, enabled and total > 0
        if self.enabled:
            try:
                import tqdm
            except ImportError:
                return
            self.bar = tqdm.tqdm(total=total, desc="schedalg sample", unit="sample")

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(done - self.shown)
        elif done * 10 // self.total > self.shown * 10 // self.total or done == self.total:
            print(f"schedalg sample: {done}/{self.total}", file=sys.stderr)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def sample(sampler: Any, num_samples: int, seed: int, out_dir: str | Path, batch_size: int = 64, *,
           shape: Any = None, dtype: torch.dtype | None = None, device: torch.device | str | None = None,
           progress: bool = True, group: Any = None) -> Path:
    """Sample ids ``0 .. num_samples - 1`` over all processes of ``group`` into ``out_dir``.

    ``sampler``: a :class:`schedalg.sampling.Sampler` (then ``shape``, one sample's shape,
    is required and ``dtype`` defaults to float32) or a module from
    :func:`schedalg.sampling.load_sampler` (shape and dtype are the exported ones).
    Call it on every rank with the same arguments (under ``torchrun``, or in one process
    when no ``torch.distributed`` group is initialised). Sample ``id`` depends only on
    ``(seed, id)``; see the module docstring for the split, the shard files and resuming.
    ``device``: where the sampler runs (default: the rank's CUDA device under NCCL, else
    the CPU). ``progress``: a bar on rank 0 (one small all-reduce per round of batches).
    Returns ``out_dir``; read the samples with :func:`load_samples`.
    """
    num_samples = _count(num_samples, "num_samples", 1, "1000")
    seed = _count(seed, "seed", 0, "0")
    batch_size = _count(batch_size, "batch_size", 1, "64")
    runner = _runner(sampler, shape, dtype)
    out_dir = Path(out_dir)
    manifest = make_manifest(num_samples, seed, runner.shape, runner.dtype, runner.description)
    rank, world = rank_and_world(group)
    comm = collective_device(group)
    device = comm if device is None else torch.device(device)

    # rank 0 checks the directory; everyone receives [ok, missing mask]
    state = torch.zeros(num_samples + 1, dtype=torch.uint8)
    failure: Exception | None = None
    if rank == 0:
        try:
            state[1:] = _prepare_directory(out_dir, manifest).to(torch.uint8)
            state[0] = 1
        except (SchedalgError, OSError) as exc:
            failure = exc
    if world > 1:
        state = state.to(comm)
        dist.broadcast(state, src=0 if group is None else dist.get_global_rank(group, 0), group=group)
        state = state.cpu()
    if failure is not None:
        raise failure
    if not bool(state[0]):
        raise ShardError(f"rank 0 to accept {str(out_dir)!r}", "a refusal", "see rank 0's error message")

    items = work_items(state[1:].bool(), batch_size)
    # a denoiser split over the ranks needs every rank on the same batch: all run every
    # batch (in the same order) and rank 0 writes
    mine = items if runner.collective else items[rank::world]
    writes = rank == 0 or not runner.collective
    bar = _Progress(int(state[1:].sum()), progress and rank == 0)
    done = torch.zeros(1, dtype=torch.int64, device=comm)
    total_done = 0
    rounds = len(items) if runner.collective else (len(items) + world - 1) // world
    for round_index in range(rounds):
        if round_index < len(mine):
            first, stop = mine[round_index]
            samples = runner(seed, first, stop - first, device)
            if writes:
                write_shard(out_dir, first, samples, manifest)
                total_done += stop - first
        if progress and world > 1:
            done.fill_(total_done)
            dist.all_reduce(done, group=group)
            bar.update(int(done.item()))
        else:
            bar.update(total_done)
    bar.close()
    barrier(group)
    return out_dir
