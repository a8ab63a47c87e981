"""Shard files and the run manifest: written atomically, read as untrusted input.

A run's directory holds ``manifest.json`` (the run's parameters) and shards
``samples_<first>-<stop>.safetensors`` holding samples ``first <= id < stop`` (ids
zero-padded to 9 digits, ``stop`` exclusive). Shards use the safetensors layout, written
and read here with the standard library and torch (no optional dependency, no pickle):

    8 bytes        little-endian u64 ``n``: length of the JSON header
    n bytes        JSON ``{"__metadata__": {str: str}, "samples": {"dtype": "F32",
                   "shape": [stop - first, *shape], "data_offsets": [0, nbytes]}}``
                   (padded with spaces to a multiple of 8 bytes)
    nbytes bytes   the samples, row-major, little-endian

so ``safetensors.torch.load_file`` reads them too. The metadata repeats the id range and
carries the run's digest (of the manifest), so a shard from another run is refused.
Everything read back is checked (header size, JSON types, keys, dtype, shape, offsets,
file size, id range) and every failure is a :class:`ShardError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import SchedalgError

__all__ = ["ShardError", "FORMAT", "MANIFEST", "Manifest", "shard_name", "parse_shard_name", "write_shard",
           "read_shard", "write_manifest", "read_manifest", "list_shards", "ranges_text"]

FORMAT = "schedalg.samples/1"
MANIFEST = "manifest.json"
_SHARD = re.compile(r"^samples_(\d{9,})-(\d{9,})\.safetensors$")
_HEADER_LIMIT = 1 << 20  # a shard header is ~300 bytes; anything near 1 MiB is not ours
# safetensors dtype codes of the floating dtypes a sample can have
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_CODES = {v: k for k, v in _DTYPES.items()}
_DTYPE_NAMES = {str(v).removeprefix("torch."): v for v in _DTYPES.values()}


class ShardError(SchedalgError):
    """A sample directory, shard or manifest that is not what this run expects."""


def _check_byteorder() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every supported torch platform is little-endian
        raise ShardError("a little-endian machine (the shard layout is little-endian)", sys.byteorder, None)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (floating dtypes a shard can hold)."""
    if dtype not in _CODES:
        raise ShardError(f"a sample dtype among {sorted(_DTYPE_NAMES)}", str(dtype),
                         "sample in float32 (or float64 / float16 / bfloat16)")
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------------- manifest

class Manifest(dict):
    """The run's parameters: ``format``, ``num_samples``, ``seed``, ``shape``, ``dtype``, ``sampler``."""

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON: written into every shard of the run."""
        return hashlib.sha256(json.dumps(self, sort_keys=True).encode()).hexdigest()

    @property
    def torch_dtype(self) -> torch.dtype:
        return _DTYPE_NAMES[self["dtype"]]


def make_manifest(num_samples: int, seed: int, shape: tuple[int, ...], dtype: torch.dtype,
                  sampler: dict[str, str]) -> Manifest:
    return Manifest(format=FORMAT, num_samples=int(num_samples), seed=int(seed), shape=[int(s) for s in shape],
                    dtype=dtype_name(dtype), sampler=dict(sampler))


def _atomic_write(path: Path, chunks: list[bytes]) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, flush it to disk, then rename it
    over ``path`` (``os.replace`` is atomic on POSIX and Windows): readers see the old file
    or the complete new one, never a partial one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_manifest(directory: Path, manifest: Manifest) -> None:
    _atomic_write(directory / MANIFEST, [json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory`` (None when there is none), validated field by field."""
    path = directory / MANIFEST
    if not path.exists():
        return None
    fix = f"remove {str(path)!r} only if the directory holds no samples you need, or use another out_dir"
    if path.stat().st_size > _HEADER_LIMIT:
        raise ShardError(f"a small JSON manifest ({MANIFEST})", f"{path.stat().st_size} bytes", fix)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ShardError(f"a JSON manifest in {str(path)!r}", f"unreadable JSON ({exc})", fix) from exc
    expected = {"format", "num_samples", "seed", "shape", "dtype", "sampler"}
    if not isinstance(data, dict) or set(data) != expected:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ShardError(f"a manifest with the keys {sorted(expected)}", f"{got}", fix)
    if data["format"] != FORMAT:
        raise ShardError(f"manifest format {FORMAT!r}", repr(data["format"]), fix)
    if not (_is_count(data["num_samples"]) and data["num_samples"] > 0 and _is_count(data["seed"])
            and isinstance(data["shape"], list) and all(_is_count(s) for s in data["shape"])
            and data["dtype"] in _DTYPE_NAMES and isinstance(data["sampler"], dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in data["sampler"].items())):
        raise ShardError("manifest fields num_samples (int > 0), seed (int >= 0), shape (list of ints >= 0), "
                         f"dtype (one of {sorted(_DTYPE_NAMES)}), sampler (str -> str)",
                         json.dumps(data)[:300], fix)
    return Manifest(data)


# ---------------------------------------------------------------------------- shards

def shard_name(first: int, stop: int) -> str:
    return f"samples_{first:09d}-{stop:09d}.safetensors"


def parse_shard_name(name: str) -> tuple[int, int] | None:
    """``(first, stop)`` of a shard file name, None for any other name."""
    match = _SHARD.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def list_shards(directory: Path) -> list[tuple[int, int, Path]]:
    """The files named like shards in ``directory``, sorted by id range (contents not read)."""
    found = []
    for path in directory.iterdir():
        parsed = parse_shard_name(path.name)
        if parsed is not None:
            found.append((parsed[0], parsed[1], path))
    return sorted(found, key=lambda item: (item[0], item[1]))


def write_shard(directory: Path, first: int, samples: torch.Tensor, manifest: Manifest) -> Path:
    """Write ``samples`` (ids ``first .. first + len(samples) - 1``) atomically; returns the path."""
    _check_byteorder()
    samples = samples.detach().to("cpu").contiguous()
    stop = first + samples.shape[0]
    data = samples.view(torch.uint8).numpy().tobytes() if samples.numel() else b""
    header = {"__metadata__": {"format": FORMAT, "first": str(first), "stop": str(stop), "run": manifest.digest},
              "samples": {"dtype": _CODES[samples.dtype], "shape": list(samples.shape),
                          "data_offsets": [0, len(data)]}}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path = directory / shard_name(first, stop)
    _atomic_write(path, [struct.pack("<Q", len(text)), text, data])
    return path


def _header(path: Path, handle: Any, size: int) -> dict:
    if size < 8:
        raise ShardError("a safetensors shard (8-byte header length, JSON header, data)",
                         f"{size} bytes in {path.name}", "delete the file and rerun to regenerate it")
    (length,) = struct.unpack("<Q", handle.read(8))
    if length > min(size - 8, _HEADER_LIMIT):
        raise ShardError("a header length within the file", f"{length} bytes in a {size}-byte file {path.name}",
                         "delete the file and rerun to regenerate it")
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ShardError("a JSON shard header", f"unreadable JSON in {path.name} ({exc})",
                         "delete the file and rerun to regenerate it") from exc
    return {"length": length, "json": header}


def read_shard(path: Path, manifest: Manifest, *, header_only: bool = False) -> torch.Tensor | None:
    """The samples of the shard at ``path`` after checking it against ``manifest`` and its name.

    With ``header_only`` the data is not read (the file size is still checked); returns None.
    """
    _check_byteorder()
    fix = "delete the file and rerun the same command to regenerate it"
    parsed = parse_shard_name(path.name)
    if parsed is None:
        raise ShardError("a shard named samples_<first>-<stop>.safetensors", repr(path.name), None)
    first, stop = parsed
    if not first < stop <= manifest["num_samples"]:
        raise ShardError(f"an id range first < stop <= {manifest['num_samples']}", f"{first}..{stop} ({path.name})",
                         fix)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        parsed_header = _header(path, handle, size)
        header, length = parsed_header["json"], parsed_header["length"]
        if not isinstance(header, dict) or set(header) != {"__metadata__", "samples"}:
            got = sorted(header) if isinstance(header, dict) else type(header).__name__
            raise ShardError("a header with the keys ['__metadata__', 'samples']", f"{got} in {path.name}", fix)
        meta, entry = header["__metadata__"], header["samples"]
        expected_meta = {"format": FORMAT, "first": str(first), "stop": str(stop), "run": manifest.digest}
        if meta != expected_meta:
            raise ShardError(f"shard metadata {expected_meta} (this run's digest and the id range of the name)",
                             f"{json.dumps(meta)[:300]} in {path.name}",
                             "keep only shards of one run in a directory; " + fix)
        shape = [stop - first] + list(manifest["shape"])
        dtype = manifest.torch_dtype
        nbytes = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
        expected_entry = {"dtype": _CODES[dtype], "shape": shape, "data_offsets": [0, nbytes]}
        if entry != expected_entry:
            raise ShardError(f"the tensor entry {expected_entry}", f"{json.dumps(entry)[:300]} in {path.name}", fix)
        if size != 8 + length + nbytes:
            raise ShardError(f"a file of {8 + length + nbytes} bytes (header + data)",
                             f"{size} bytes ({path.name} is truncated or has trailing data)", fix)
        if header_only:
            return None
        data = bytearray(handle.read(nbytes))
    samples = torch.frombuffer(data, dtype=dtype) if nbytes else torch.empty(0, dtype=dtype)
    return samples.reshape(shape)


def ranges_text(ids: torch.Tensor, limit: int = 20) -> str:
    """Sorted ids as ranges, e.g. ``4-7, 12, 20-29`` (the first ``limit`` ranges, then a count)."""
    values = ids.tolist()
    ranges: list[tuple[int, int]] = []
    for value in values:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], value)
        else:
            ranges.append((value, value))
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit]]
    if len(ranges) > limit:
        shown.append(f"... ({len(ranges) - limit} more ranges)")
    return ", ".join(shown)
