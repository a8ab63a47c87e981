"""Read a sample directory back: every sample, ordered by id, or a clear list of what is missing."""

from __future__ import annotations

from pathlib import Path

import torch

from ._shards import MANIFEST, ShardError, list_shards, ranges_text, read_manifest, read_shard

__all__ = ["load_samples"]


def load_samples(out_dir: str | Path) -> torch.Tensor:
    """All samples of the run in ``out_dir`` as one tensor ``(num_samples, *shape)``, row ``i`` = id ``i``.

    Every shard is checked against the manifest (name, header, dtype, shape, run digest,
    size) before its data is used; shards never overlap. Raises :class:`ShardError`
    listing the missing ids when the run is incomplete (rerun the same ``sample`` call
    to finish it).
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ShardError("a directory written by schedalg.distributed.sample", f"{str(out_dir)!r} is not a directory",
                         None)
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise ShardError(f"a sample directory with a {MANIFEST}", f"none in {str(out_dir)!r}",
                         "pass the out_dir given to schedalg.distributed.sample")
    samples = torch.empty([manifest["num_samples"]] + manifest["shape"], dtype=manifest.torch_dtype)
    present = torch.zeros(manifest["num_samples"], dtype=torch.bool)
    for first, stop, path in list_shards(out_dir):
        data = read_shard(path, manifest)
        if present[first:stop].any():
            raise ShardError("shards with disjoint id ranges", f"{path.name} overlaps another shard",
                             "keep one shard per id range")
        samples[first:stop] = data
        present[first:stop] = True
    if not bool(present.all()):
        missing = torch.nonzero(~present).flatten()
        raise ShardError(f"all {manifest['num_samples']} samples",
                         f"{missing.numel()} missing, ids {ranges_text(missing)}",
                         "rerun the same schedalg.distributed.sample call (or `schedalg sample` command) to finish")
    return samples
