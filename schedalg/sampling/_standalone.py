"""Save, check and run exported schedalg samplers with torch and the Python standard library alone.

This file imports nothing but torch and the standard library. schedalg uses it as its
own loader (:func:`schedalg.sampling.load_sampler` calls :func:`load` here) and
``export_sampler`` writes a byte-for-byte copy of it beside each exported file, so a
sampler can be run where schedalg and SymPy are not installed::

    from sampler_loader import load      # this file, under any name
    sampler = load("sampler.safetensors")
    x = sampler(noise, seed=0)           # == schedalg's Sampler(...)(noise, seed=0), bitwise on CPU
    x = sampler.sample_from_state(x_T)   # from an initial state x_T = sigma(t_0) * noise, draws=...

File format (version 2): a safetensors file. Its tensors are the weights of the graph
(network parameters, prepared tables); its ``__metadata__`` holds exactly four strings:
``format`` (``"schedalg.sampler"``), ``format_version`` (``"2"``), ``program`` (the graph
as canonical JSON, see below) and ``sha256`` (see :func:`digest`).

``program`` is a JSON object ``{"inputs", "weights", "nodes", "output", "meta"}``:

* ``inputs``: ``[{"name", "dtype", "shape"}]``: ``x`` (the initial state), then ``draws``
  (``(K, B, ...)``, only for stochastic solvers), then conditioning tensors; a ``null``
  size is the free batch size of a ``dynamic_batch`` export;
* ``weights``: names of the file's tensors, each exactly once;
* ``nodes``: ``[{"op", "args", "kwargs"}]``, operator calls in execution order;
* ``output``: an argument (below) naming the sample;
* ``meta``: a flat record (solver, schedule, grid, times, nfe, dtype, shape,
  dynamic_batch) of which the call uses ``start_scale`` (``sigma(t_0)``), ``noise_draws``
  (``K``) and ``noise_stream`` (the stream index of seeded draws).

Values are numbered: the inputs, then the weights, then the node results. An argument is
JSON ``null``/bool/int/float/string, a list of arguments, or a one-key object:
``{"ref": i}`` (value ``i``, made before the node that uses it), ``{"tuple": [...]}``,
``{"float": "inf" | "-inf" | "nan"}``, ``{"dtype": name}``, ``{"layout": name}``,
``{"memory_format": name}`` or ``{"device": name}`` (every device argument means the
device of the input ``x`` at run time).

Loading runs no code from the file: nothing is unpickled, no string from the file is
evaluated or used to look up an attribute; operators are looked up by full name in
:data:`OPERATORS`, a dict built when this module is imported from the fixed list
:data:`ATEN_OPERATORS`. Everything is checked before anything runs: the safetensors
layout, the digest, the format version, and the program schema in full (every reference
points to an earlier value; every call is bound to its operator's signature: argument
count, keyword names, required arguments, argument kinds). Any failure raises
:class:`ExportError`; so does a call that torch refuses at run time (e.g. a shape
mismatch in an edited file), naming the node.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import operator
import struct
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

__all__ = ["FORMAT", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "ATEN_OPERATORS", "OPERATORS", "ExportError",
           "ExportedSampler", "digest", "load", "load_bytes", "save", "seeded_normal"]

FORMAT = "schedalg.sampler"
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (2,)

_MAX_HEADER = 100 * 2 ** 20  # bytes of safetensors header (the safetensors package's own limit)
_MAX_NODES = 2 ** 20
_MAX_INPUTS = 64
_MAX_LIST = 4096  # items of one list argument
_MAX_DEPTH = 6  # nesting of list/tuple arguments
_MAX_STRING = 256
_MAX_RANK = 8
_MAX_INT = 2 ** 62  # magnitude of int arguments (sizes, dims, counts)
_METADATA_KEYS = ("format", "format_version", "program", "sha256")
_PROGRAM_KEYS = ("inputs", "meta", "nodes", "output", "weights")


class ExportError(ValueError):
    """A sampler file that cannot be loaded, or bad input to a loaded sampler.

    The message says what was expected, what arrived and how to fix it (the same shape as
    schedalg's errors; :func:`schedalg.sampling.load_sampler` raises
    :class:`schedalg.sampling.ExportError` with the same message).
    """

    def __init__(self, expected: str, got: str, fix: str | None = None):
        self.expected, self.got, self.fix = expected, got, fix
        super().__init__(f"expected {expected}; got {got}." + (f" Fix: {fix}" if fix else ""))


# ---------------------------------------------------------------------------------------------- operators

#: The operators an exported graph may call: ``aten`` overloads by ``"<op>.<overload>"``.
#: Pure tensor computations only: no file or library access, no random numbers, no
#: uninitialized memory. In-place overloads (``add_`` ...) may only write to a tensor a
#: node of the graph created (see :data:`_FRESH`).
ATEN_OPERATORS = (
    # arithmetic and elementwise math
    "abs.default", "add.Tensor", "add.Scalar", "sub.Tensor", "sub.Scalar", "rsub.Tensor", "rsub.Scalar",
    "mul.Tensor", "mul.Scalar", "div.Tensor", "div.Scalar", "div.Tensor_mode", "neg.default",
    "reciprocal.default", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar", "sqrt.default",
    "rsqrt.default", "exp.default", "exp2.default", "expm1.default", "log.default", "log1p.default",
    "log2.default", "sin.default", "cos.default", "tan.default", "atan.default", "atan2.default",
    "sinh.default", "cosh.default", "tanh.default", "sigmoid.default", "sign.default", "square.default",
    "erf.default", "floor.default", "ceil.default", "round.default", "trunc.default", "fmod.Tensor",
    "fmod.Scalar", "remainder.Tensor", "remainder.Scalar", "clamp.default", "clamp.Tensor",
    "clamp_min.default", "clamp_max.default", "maximum.default", "minimum.default", "lerp.Scalar",
    "lerp.Tensor", "addcmul.default", "addcdiv.default", "nan_to_num.default", "xlogy.Tensor",
    # comparisons and selection
    "eq.Scalar", "eq.Tensor", "ne.Scalar", "ne.Tensor", "gt.Scalar", "gt.Tensor", "ge.Scalar", "ge.Tensor",
    "lt.Scalar", "lt.Tensor", "le.Scalar", "le.Tensor", "logical_and.default", "logical_or.default",
    "logical_not.default", "where.self", "where.ScalarSelf", "where.ScalarOther", "where.Scalar",
    "isfinite.default", "isnan.default", "isinf.default", "masked_fill.Scalar", "masked_fill.Tensor",
    # reductions
    "sum.default", "sum.dim_IntList", "mean.default", "mean.dim", "amax.default", "amin.default",
    "max.default", "min.default", "max.dim", "min.dim", "var.correction", "std.correction",
    "var_mean.correction", "logsumexp.default", "prod.default", "prod.dim_int", "cumsum.default",
    "linalg_vector_norm.default", "norm.ScalarOpt_dim", "argmax.default", "argmin.default", "all.default",
    "any.default",
    # network layers
    "linear.default", "matmul.default", "mm.default", "bmm.default", "addmm.default", "baddbmm.default",
    "einsum.default", "conv1d.default", "conv2d.default", "conv3d.default", "conv1d.padding",
    "conv2d.padding", "conv3d.padding", "conv_transpose1d.default", "conv_transpose2d.input",
    "conv_transpose3d.input", "convolution.default", "silu.default", "gelu.default", "relu.default",
    "leaky_relu.default", "elu.default", "softplus.default", "mish.default", "hardtanh.default",
    "hardswish.default", "hardsigmoid.default", "softmax.int", "_softmax.default", "log_softmax.int",
    "_log_softmax.default", "layer_norm.default", "native_layer_norm.default", "group_norm.default",
    "native_group_norm.default", "batch_norm.default", "_native_batch_norm_legit_no_training.default",
    "rms_norm.default", "scaled_dot_product_attention.default", "dropout.default", "embedding.default",
    "upsample_nearest1d.vec", "upsample_nearest2d.vec", "upsample_bilinear2d.vec", "upsample_nearest3d.vec",
    "avg_pool1d.default", "avg_pool2d.default", "max_pool2d.default", "adaptive_avg_pool1d.default",
    "adaptive_avg_pool2d.default", "pad.default", "constant_pad_nd.default", "pixel_shuffle.default",
    "pixel_unshuffle.default",
    # shapes, views and copies
    "view.default", "reshape.default", "expand.default", "expand_as.default", "permute.default",
    "transpose.int", "t.default", "numpy_T.default", "unsqueeze.default", "squeeze.dim", "squeeze.dims",
    "squeeze.default", "flatten.using_ints", "unflatten.int", "select.int", "slice.Tensor", "narrow.default",
    "cat.default", "stack.default", "split.Tensor", "split_with_sizes.default", "chunk.default",
    "unbind.int", "contiguous.default", "clone.default", "repeat.default", "repeat_interleave.self_int",
    "flip.default", "roll.default", "index_select.default", "gather.default", "index.Tensor", "alias.default",
    "detach.default", "lift_fresh_copy.default", "_to_copy.default", "to.dtype", "to.device",
    "to.dtype_layout", "type_as.default", "view_as.default", "reshape_as.default", "broadcast_to.default",
    "movedim.int", "sym_size.int", "tril.default", "triu.default",
    # creation (initialized memory only)
    "zeros.default", "ones.default", "full.default", "zeros_like.default", "ones_like.default",
    "full_like.default", "arange.default", "arange.start", "arange.start_step", "linspace.default",
    "scalar_tensor.default", "new_zeros.default", "new_ones.default", "new_full.default",
    # in place (only on tensors the graph created)
    "add_.Tensor", "sub_.Tensor", "mul_.Tensor", "mul_.Scalar", "div_.Tensor", "div_.Scalar",
    "copy_.default", "fill_.Scalar", "zero_.default", "clamp_.default",
)

#: Python functions on sizes and tuples that graphs traced with a free batch size use.
_PYTHON_OPERATORS = {"operator.getitem": operator.getitem, "operator.add": operator.add,
                     "operator.sub": operator.sub, "operator.mul": operator.mul,
                     "operator.floordiv": operator.floordiv, "operator.neg": operator.neg}


def _build_operators() -> dict[str, Callable]:
    """``{"aten.<op>.<overload>": OpOverload}`` for the names of :data:`ATEN_OPERATORS` this torch has."""
    table: dict[str, Callable] = dict(_PYTHON_OPERATORS)
    for name in ATEN_OPERATORS:  # fixed names written above, never names read from a file
        op_name, overload = name.split(".")
        packet = getattr(torch.ops.aten, op_name, None)
        if packet is None or overload not in packet.overloads():
            continue  # not in this torch build: a graph using it is refused by name
        table["aten." + name] = getattr(packet, overload)
    return table


#: Full name -> callable: the only way a graph's ``op`` string reaches a function.
OPERATORS: dict[str, Callable] = _build_operators()
_IN_PLACE = frozenset(name for name in OPERATORS if name.split(".")[1].endswith("_"))
#: Operators whose result never shares memory with an argument (targets allowed for in-place ops).
_FRESH = frozenset("aten." + name for name in ATEN_OPERATORS if name.split(".")[0] in {
    "abs", "add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "pow", "sqrt", "rsqrt", "exp", "exp2",
    "expm1", "log", "log1p", "log2", "sin", "cos", "tan", "atan", "atan2", "sinh", "cosh", "tanh", "sigmoid",
    "sign", "square", "erf", "floor", "ceil", "round", "trunc", "fmod", "remainder", "clamp", "clamp_min",
    "clamp_max", "maximum", "minimum", "lerp", "addcmul", "addcdiv", "where", "sum", "mean", "linear",
    "matmul", "mm", "bmm", "addmm", "baddbmm", "conv1d", "conv2d", "conv3d", "convolution", "silu", "gelu",
    "relu", "softmax", "_softmax", "log_softmax", "_log_softmax", "layer_norm", "group_norm", "cat", "stack",
    "clone", "repeat", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange",
    "new_zeros", "new_ones", "new_full", "lift_fresh_copy", "_to_copy", "scalar_tensor"})

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
           "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
_FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")
_LAYOUTS = {"strided": torch.strided}
_MEMORY_FORMATS = {"contiguous_format": torch.contiguous_format, "preserve_format": torch.preserve_format,
                   "channels_last": torch.channels_last}
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# safetensors dtype codes (https://github.com/huggingface/safetensors, format description)
_SAFETENSORS = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                "BOOL": torch.bool}
_SAFETENSORS_CODE = {dtype: code for code, dtype in _SAFETENSORS.items()}


def _fail(expected: str, got: str, fix: str | None = None) -> ExportError:
    return ExportError(expected, got, fix)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------- noise

_MASK32 = 0xFFFFFFFF


def _seed_sequence_state(entropy: list[int]) -> int:
    """The 64-bit seed ``state[0] << 32 | state[1]`` of ``numpy.random.SeedSequence(entropy).generate_state(2)``.

    The hash of O'Neill's seed_seq (as numpy implements it, pool of four 32-bit words),
    written with Python ints so that the loader needs no numpy.
    """
    words: list[int] = []
    for value in entropy:  # each non-negative int as little-endian 32-bit words (0 -> [0])
        words.append(value & _MASK32)
        value >>= 32
        while value:
            words.append(value & _MASK32)
            value >>= 32
    multiplier = 0x43B0D7E5

    def hashmix(value: int) -> int:
        nonlocal multiplier
        value ^= multiplier
        multiplier = (multiplier * 0x931E8875) & _MASK32
        value = (value * multiplier) & _MASK32
        return value ^ (value >> 16)

    def mix(x: int, y: int) -> int:
        result = (0xCA01F9DD * x - 0x4973F715 * y) & _MASK32
        return result ^ (result >> 16)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(4)]
    for source in range(4):
        for target in range(4):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    for word in words[4:]:
        for target in range(4):
            pool[target] = mix(pool[target], hashmix(word))
    state, multiplier_b = [], 0x8B51F9DD
    for word in pool[:2]:
        word ^= multiplier_b
        multiplier_b = (multiplier_b * 0x58F38DED) & _MASK32
        word = (word * multiplier_b) & _MASK32
        state.append(word ^ (word >> 16))
    return state[0] << 32 | state[1]


def seeded_normal(shape: tuple[int, ...], seed: int, stream: int, count: int | None, dtype: torch.dtype,
                  device: torch.device | str) -> torch.Tensor:
    """Standard normals, sample ``b`` of ``shape = (B, ...)`` drawn from its own generator.

    The generator of sample ``b`` is seeded from ``(seed, b, stream)`` through the
    SeedSequence hash, so the values do not depend on the batch size. Returns ``(B, ...)``
    when ``count`` is None, else ``(count, B, ...)``. Arguments are not checked here
    (see :func:`schedalg.sampling.per_sample_normal`).
    """
    per = tuple(shape[1:]) if count is None else (int(count),) + tuple(shape[1:])
    samples = []
    for b in range(shape[0]):
        generator = torch.Generator(device="cpu").manual_seed(_seed_sequence_state([seed, b, stream]))
        samples.append(torch.randn(per, generator=generator, dtype=dtype))
    return torch.stack(samples, dim=0 if count is None else 1).to(device)


# ---------------------------------------------------------------------------------------------- writing


def _canonical(program: dict) -> str:
    return json.dumps(program, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(program_text: str, tensors: list[tuple[str, str, list[int], bytes | memoryview]]) -> str:
    """SHA-256 (hex) over the format, the program's canonical JSON text and every weight.

    ``tensors`` are ``(name, safetensors dtype code, shape, raw bytes)`` in the order of
    the program's ``weights``. Each part is length-prefixed, so no two files share a digest
    input. The digest detects corruption; it is not a signature (anyone can recompute it).
    """
    sha = hashlib.sha256()

    def part(data: bytes | memoryview) -> None:
        sha.update(struct.pack("<Q", len(data)))
        sha.update(data)

    part(f"{FORMAT}/{FORMAT_VERSION}".encode())
    part(program_text.encode("utf-8"))
    for name, code, shape, data in tensors:
        part(json.dumps([name, code, shape], ensure_ascii=True).encode())
        part(data)
    return sha.hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    tensor = tensor.detach().to("cpu").contiguous()
    if sys.byteorder != "little":
        raise _fail("a little-endian machine (safetensors stores little-endian bytes)", sys.byteorder)
    return ctypes.string_at(tensor.data_ptr(), tensor.numel() * tensor.element_size()) if tensor.numel() else b""


def save(path: str | Path, program: dict, weights: dict[str, torch.Tensor]) -> Path:
    """Write ``program`` and its ``weights`` (name -> tensor) as a version-2 sampler file.

    The file is checked by loading it back (:func:`load_bytes`), so a written file is a
    loadable one. Returns the path.
    """
    text = _canonical(program)
    names = list(program["weights"])
    records = []
    for name in names:
        tensor = weights[name]
        if tensor.dtype not in _SAFETENSORS_CODE:
            raise _fail(f"weights of dtypes {sorted(_DTYPES)}", f"{name!r} of dtype {tensor.dtype}",
                        "cast the network to a supported dtype before exporting")
        records.append((name, _SAFETENSORS_CODE[tensor.dtype], list(tensor.shape), _tensor_bytes(tensor)))
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "program": text,
                "sha256": digest(text, records)}
    header: dict[str, Any] = {"__metadata__": metadata}
    # larger elements first, so that every tensor starts aligned to its element size (no holes allowed)
    offset, body = 0, []
    for name, code, shape, data in sorted(records, key=lambda r: -_SAFETENSORS[r[1]].itemsize):
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        body.append(data)
        offset += len(data)
    encoded = json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    blob = struct.pack("<Q", len(encoded)) + encoded + b"".join(body)
    load_bytes(blob, what="the file being written")
    path = Path(path)
    path.write_bytes(blob)
    return path


# ---------------------------------------------------------------------------------------------- reading


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise _fail("JSON objects without repeated keys", f"the key {_short(key)} twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise _fail("standard JSON numbers", f"{name}")


def _parse_json(text: bytes | str, what: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ExportError as exc:
        raise _fail(f"{exc.expected} in {what}", exc.got) from None
    except RecursionError:
        raise _fail(f"{what} as shallow JSON", "nesting too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"{what} as valid JSON", f"{type(exc).__name__}: {str(exc)[:120]}",
                    "the file is damaged or not a schedalg sampler; export it again") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _safetensors(data: memoryview, what: str) -> tuple[dict, dict[str, tuple[str, list[int], memoryview]]]:
    """``(metadata, {name: (dtype code, shape, bytes)})`` of a safetensors file, its layout checked in full."""
    if data[:4] == b"PK\x03\x04":
        raise _fail(f"a schedalg sampler file of format version {list(SUPPORTED_VERSIONS)} (safetensors)",
                    f"a zip archive in {what} (format version 1, written by torch.save, or another file)",
                    "export the sampler again with this schedalg")
    if len(data) < 8:
        raise _fail(f"a safetensors file (8-byte header length, JSON header, data) in {what}",
                    f"{len(data)} bytes", "the file is truncated or empty; copy or export it again")
    (size,) = struct.unpack("<Q", data[:8])
    if size < 2 or size > _MAX_HEADER or 8 + size > len(data):
        raise _fail(f"a safetensors header length between 2 and {min(_MAX_HEADER, len(data) - 8)} bytes in {what}",
                    f"{size}", "the file is truncated, damaged or not a safetensors file")
    raw = bytes(data[8:8 + size])
    if raw[:1] != b"{":
        raise _fail(f"a JSON object as the safetensors header of {what}", f"it starts with {_short(raw[:8])}",
                    "the file is damaged or not a safetensors file")
    header = _parse_json(raw, f"the safetensors header of {what}")
    if not isinstance(header, dict):
        raise _fail("a JSON object as the safetensors header", type(header).__name__)
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(f"a __metadata__ map of strings in {what}", _short(type(metadata).__name__),
                    "this is a safetensors file but not an exported schedalg sampler")
    body = data[8 + size:]
    spans, tensors = [], {}
    for name, entry in header.items():
        if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"}):
            raise _fail("tensor entries {dtype, shape, data_offsets}", f"{_short(name)}: {_short(entry)}")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in _SAFETENSORS:
            raise _fail(f"a tensor dtype among {sorted(_SAFETENSORS)}", f"{_short(code)} for {_short(name)}")
        if not (isinstance(shape, list) and len(shape) <= _MAX_RANK
                and all(_is_int(s) and 0 <= s < _MAX_INT for s in shape)):
            raise _fail(f"a shape of at most {_MAX_RANK} non-negative ints", f"{_short(shape)} for {_short(name)}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= len(body)):
            raise _fail(f"data offsets [begin, end] within the {len(body)} data bytes",
                        f"{_short(offsets)} for {_short(name)}", "the file is truncated or damaged")
        if offsets[1] - offsets[0] != math.prod(shape) * _SAFETENSORS[code].itemsize:
            raise _fail(f"{math.prod(shape) * _SAFETENSORS[code].itemsize} bytes for {code} {shape}",
                        f"{offsets[1] - offsets[0]} bytes for {_short(name)}", "the file is damaged")
        spans.append((offsets[0], offsets[1]))
        tensors[name] = (code, shape, body[offsets[0]:offsets[1]])
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise _fail("tensor data that covers the data section without gaps or overlaps",
                        f"a {'gap' if begin > position else 'overlap'} at byte {position}", "the file is damaged")
        position = end
    if position != len(body):
        raise _fail(f"{position} data bytes after the header (as the header declares)", f"{len(body)}",
                    "the file is truncated or has trailing bytes; copy or export it again")
    return metadata, tensors


class _Ref:
    """A reference to value ``index`` (an input, a weight or an earlier node's result)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


class _Device:
    """A device argument: the device of the input ``x`` at run time."""

    __slots__ = ()


class _Node(NamedTuple):
    """One call, prepared for :func:`_run`: ``fn(*args, **kwargs)`` with the references filled in."""

    op: str
    fn: Callable
    args: list  # positional arguments; top-level references left as None, filled from ``fills``
    fills: tuple[tuple[int, int], ...]  # (position, value index) of top-level references
    deep: tuple[int, ...]  # positions of lists/tuples/devices holding references or devices
    kwargs: dict
    kwargs_dynamic: bool  # some keyword argument holds a reference or a device
    free: tuple[int, ...]  # values whose last use is this node


class _Program(NamedTuple):
    inputs: list[dict]
    weights: list[str]
    nodes: list[_Node]
    output: Any
    meta: dict


class _Checker:
    """Validates the program JSON and turns it into :class:`_Node` s (no call is made here)."""

    def __init__(self, n_values: int):
        self.n_values = n_values  # values defined so far

    def value(self, value: Any, where: str, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise _fail(f"arguments nested at most {_MAX_DEPTH} deep", f"deeper nesting in {where}")
        if value is None or isinstance(value, bool):
            return value
        if _is_int(value):
            if not -2 ** 63 <= value < 2 ** 63:
                raise _fail(f"ints in the int64 range in {where}", _short(value))
            return value
        if isinstance(value, float):
            return value
        if isinstance(value, str):
            if len(value) > _MAX_STRING:
                raise _fail(f"strings of at most {_MAX_STRING} characters in {where}", f"{len(value)} characters")
            return value
        if isinstance(value, list):
            if len(value) > _MAX_LIST:
                raise _fail(f"lists of at most {_MAX_LIST} items in {where}", f"{len(value)} items")
            return [self.value(v, where, depth + 1) for v in value]
        if isinstance(value, dict) and len(value) == 1:
            ((tag, payload),) = value.items()
            named = isinstance(payload, str)  # the tables below are looked up by strings only
            if tag == "ref":
                if not (_is_int(payload) and 0 <= payload < self.n_values):
                    raise _fail(f"a reference to one of the {self.n_values} values made before {where}",
                                f"{{'ref': {_short(payload)}}}", "the graph is damaged or out of order")
                return _Ref(payload)
            if tag == "tuple" and isinstance(payload, list):
                return tuple(self.value(payload, where, depth + 1))
            if tag == "float" and named and payload in _NON_FINITE:
                return _NON_FINITE[payload]
            if tag == "dtype" and named and payload in _DTYPES:
                return _DTYPES[payload]
            if tag == "layout" and named and payload in _LAYOUTS:
                return _LAYOUTS[payload]
            if tag == "memory_format" and named and payload in _MEMORY_FORMATS:
                return _MEMORY_FORMATS[payload]
            if tag == "device" and isinstance(payload, str) and len(payload) <= 16:
                return _Device()
        raise _fail(f"an argument (null, bool, number, string, list, or one of the tags ref, tuple, float, "
                    f"dtype {sorted(_DTYPES)}, layout, memory_format, device) in {where}", _short(value))


def _refs(value: Any) -> list[int]:
    if isinstance(value, _Ref):
        return [value.index]
    if isinstance(value, (list, tuple)):
        return [i for v in value for i in _refs(v)]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _refs(v)]
    return []


def _check_input(spec: Any, position: int) -> dict:
    if not (isinstance(spec, dict) and set(spec) == {"name", "dtype", "shape"}):
        raise _fail("inputs given as {name, dtype, shape}", f"input {position}: {_short(spec)}")
    name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
    if not (isinstance(name, str) and name.isidentifier() and len(name) <= 64):
        raise _fail("input names that are Python identifiers", f"input {position}: {_short(name)}")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise _fail(f"an input dtype among {sorted(_DTYPES)}", f"input {name!r}: {_short(dtype)}")
    if not (isinstance(shape, list) and 1 <= len(shape) <= _MAX_RANK
            and all(s is None or (_is_int(s) and 0 < s < 2 ** 31) for s in shape)):
        raise _fail(f"an input shape of 1 to {_MAX_RANK} positive sizes (null: the free batch size)",
                    f"input {name!r}: {_short(shape)}")
    return {"name": name, "dtype": dtype, "shape": shape}


def _check_meta(meta: Any) -> dict:
    if not isinstance(meta, dict):
        raise _fail("meta as a JSON object", type(meta).__name__)
    for key, value in meta.items():
        scalar = value is None or isinstance(value, (bool, int, float, str))
        numbers = isinstance(value, list) and all(_is_int(v) or isinstance(v, float) for v in value)
        if not (isinstance(key, str) and len(key) <= 64 and (scalar or numbers)):
            raise _fail("meta entries name -> number, string, bool or list of numbers", f"{_short(key)}")
        if isinstance(value, str) and len(value) > _MAX_STRING:
            raise _fail(f"meta strings of at most {_MAX_STRING} characters", f"{key!r}: {len(value)} characters")
    scale = meta.get("start_scale")
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)):
        raise _fail("meta start_scale: a finite number (sigma at the first time)", _short(scale))
    for key in ("noise_draws", "noise_stream"):  # draws per run; stream index of their seeds
        if not (_is_int(meta.get(key)) and 0 <= meta[key] < 2 ** 31):
            raise _fail(f"meta {key}: an int >= 0", _short(meta.get(key)))
    return dict(meta)


def _check_program(program: Any, tensors: dict) -> _Program:
    """The program JSON checked in full (schema, names, counts, references) and resolved."""
    if not (isinstance(program, dict) and sorted(program) == list(_PROGRAM_KEYS)):
        raise _fail(f"a program object with exactly the keys {list(_PROGRAM_KEYS)}",
                    _short(sorted(program) if isinstance(program, dict) else type(program).__name__))
    meta = _check_meta(program["meta"])
    raw_inputs = program["inputs"]
    if not (isinstance(raw_inputs, list) and 1 <= len(raw_inputs) <= _MAX_INPUTS):
        raise _fail(f"1 to {_MAX_INPUTS} inputs", _short(raw_inputs))
    inputs = [_check_input(spec, i) for i, spec in enumerate(raw_inputs)]
    names = [spec["name"] for spec in inputs]
    if len(set(names)) != len(names):
        raise _fail("distinct input names", _short(names))
    stochastic = meta["noise_draws"] > 0
    expected = ["x", "draws"] if stochastic else ["x"]
    if names[:len(expected)] != expected or (not stochastic and "draws" in names) or (
            inputs[0]["dtype"] not in _FLOAT_DTYPES):
        raise _fail(f"inputs {expected} (+ conditioning) with a floating-point x for a solver with "
                    f"{meta['noise_draws']} noise draws", _short(names))
    if stochastic:
        x_shape, draws = inputs[0]["shape"], inputs[1]
        if draws["shape"] != [meta["noise_draws"]] + x_shape or draws["dtype"] != inputs[0]["dtype"]:
            raise _fail(f"draws of shape {[meta['noise_draws']] + x_shape} and dtype {inputs[0]['dtype']}",
                        f"{draws['shape']} {draws['dtype']}")
    weights = program["weights"]
    if not (isinstance(weights, list) and all(isinstance(w, str) for w in weights)
            and sorted(weights) == sorted(tensors) and len(set(weights)) == len(weights)):
        raise _fail("a weights list naming each tensor of the file exactly once",
                    f"{len(weights) if isinstance(weights, list) else _short(weights)} names for "
                    f"{len(tensors)} tensors")
    raw_nodes = program["nodes"]
    if not (isinstance(raw_nodes, list) and len(raw_nodes) <= _MAX_NODES):
        raise _fail(f"a list of at most {_MAX_NODES} nodes", _short(type(raw_nodes).__name__))
    first = len(inputs) + len(weights)
    kinds = ["tensor"] * first
    nodes: list[tuple[str, Callable, tuple, dict]] = []
    fresh: set[int] = set()
    for position, raw in enumerate(raw_nodes):
        where = f"node {position}"
        if not (isinstance(raw, dict) and set(raw) == {"op", "args", "kwargs"}):
            raise _fail("nodes given as {op, args, kwargs}", f"{where}: {_short(raw)}")
        op = raw["op"]
        if not isinstance(op, str) or op not in OPERATORS:
            raise _fail(f"an operator among the {len(OPERATORS)} allowed ones ({', '.join(sorted(OPERATORS))})",
                        f"{_short(op)} in {where}",
                        "only files written by schedalg.sampling.export_sampler load; if this operator is "
                        "missing from this torch build, load with the torch version that exported the file")
        where = f"{where} ({op})"
        checker = _Checker(first + position)
        if not isinstance(raw["args"], list) or not isinstance(raw["kwargs"], dict):
            raise _fail(f"args as a list and kwargs as an object in {where}", _short(raw))
        args = tuple(checker.value(raw["args"], where))
        kwargs = {}
        for key, value in raw["kwargs"].items():
            if not (key.isidentifier() and len(key) <= 64):
                raise _fail(f"keyword names that are identifiers in {where}", _short(key))
            kwargs[key] = checker.value(value, where)
        kinds.append(_bind(op, OPERATORS[op], args, kwargs, kinds, where))
        if op in _IN_PLACE and not (args and isinstance(args[0], _Ref) and args[0].index in fresh):
            raise _fail(f"an in-place {where} that writes to a tensor the graph created (not an input, a weight "
                        "or a view of them)", _short(raw["args"][:1]))
        if op in _FRESH or (op in _IN_PLACE and args[0].index in fresh):
            fresh.add(first + position)
        nodes.append((op, OPERATORS[op], args, kwargs))
    output = _Checker(first + len(nodes)).value(program["output"], "the output")
    if not (isinstance(output, _Ref) and kinds[output.index] == "tensor"):
        raise _fail("the output as a reference to one tensor", _short(program["output"]))
    last_use: dict[int, int] = {}
    for position, (_, _, args, kwargs) in enumerate(nodes):
        for index in _refs((args, kwargs)):
            last_use[index] = position
    keep = {output.index} | set(range(first))  # inputs and weights stay (buffers, caller's tensors)
    frees: dict[int, list[int]] = {}
    for index, position in last_use.items():
        if index not in keep:
            frees.setdefault(position, []).append(index)
    resolved = []
    for position, (op, fn, args, kwargs) in enumerate(nodes):
        fills = tuple((i, a.index) for i, a in enumerate(args) if isinstance(a, _Ref))
        deep = tuple(i for i, a in enumerate(args) if not isinstance(a, _Ref) and _dynamic(a))
        template = [None if isinstance(a, _Ref) else a for a in args]
        resolved.append(_Node(op, fn, template, fills, deep, kwargs,
                              _dynamic(list(kwargs.values())), tuple(sorted(frees.get(position, ())))))
    return _Program(inputs, weights, resolved, output, meta)


def _dynamic(value: Any) -> bool:
    if isinstance(value, (_Ref, _Device)):
        return True
    return isinstance(value, (list, tuple)) and any(_dynamic(v) for v in value)


def _materialize(value: Any, values: list, device: torch.device) -> Any:
    if isinstance(value, _Ref):
        return values[value.index]
    if isinstance(value, list):
        return [_materialize(v, values, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_materialize(v, values, device) for v in value)
    if isinstance(value, _Device):
        return device
    return value


def _run(program: _Program, values: list, device: torch.device) -> Any:
    """Run the nodes on ``values`` (inputs then weights): the graph, one operator call per node."""
    append = values.append
    for _, fn, template, fills, deep, kwargs, kwargs_dynamic, free in program.nodes:
        args = template.copy()
        for position, index in fills:
            args[position] = values[index]
        for position in deep:
            args[position] = _materialize(template[position], values, device)
        if kwargs_dynamic:
            kwargs = {k: _materialize(v, values, device) for k, v in kwargs.items()}
        append(fn(*args, **kwargs))
        for index in free:
            values[index] = None
    return values[program.output.index]


def _kind_ok(value: Any, jit_type: str, kinds: list[str]) -> bool:
    """Whether an argument fits a schema type (``Tensor``, ``Optional[int]``, ``List[Tensor]`` ...)."""
    def kind(v: Any) -> str | None:
        return kinds[v.index] if isinstance(v, _Ref) else None

    if jit_type.startswith("Optional[") and jit_type.endswith("]"):
        return value is None or _kind_ok(value, jit_type[9:-1], kinds)
    if jit_type.startswith("List[") and jit_type.endswith("]"):
        item = jit_type[5:-1]
        if item == "Tensor" and kind(value) == "tensors":
            return True
        if item == "int" and (_is_int(value) or kind(value) == "int"):  # int[N] given as one int
            return True
        return isinstance(value, (list, tuple)) and all(_kind_ok(v, item, kinds) for v in value)
    if jit_type == "Tensor":  # a number is taken as a 0-dim tensor (e.g. aten.mul.Tensor(x, 0.5))
        return kind(value) == "tensor" or isinstance(value, (int, float))
    if jit_type == "int":  # also dtypes, layouts and memory formats (ints in schemas)
        return (_is_int(value) or kind(value) == "int"
                or isinstance(value, (torch.dtype, torch.layout, torch.memory_format)))
    if jit_type in ("float", "number"):
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or kind(value) == "int" or (
            jit_type == "number" and isinstance(value, bool))
    if jit_type == "bool":
        return isinstance(value, bool)
    if jit_type == "str":
        return isinstance(value, str)
    if jit_type == "Device":
        return isinstance(value, _Device)
    return False


def _python_kind(op: str, args: tuple, kinds: list[str], where: str) -> str:
    """The kind of a Python operator's result: ints only (getitem: a tensor list and an int)."""
    if op == "operator.getitem":
        if len(args) == 2 and isinstance(args[0], _Ref) and kinds[args[0].index] == "tensors" and _is_int(args[1]):
            return "tensor"
        raise _fail(f"a result list of tensors and an int index in {where}", _short(args))
    if op.startswith("operator."):
        if 1 <= len(args) <= 2 and all(_is_int(a) or (isinstance(a, _Ref) and kinds[a.index] == "int")
                                       for a in args):
            return "int"
        raise _fail(f"ints (sizes) as the arguments of {where}", _short(args))
    return ""


_SIGNATURES: dict[str, tuple[tuple[tuple[str, str, bool, bool], ...], tuple[str, ...]]] = {}


def _signature(op: str, fn: Any) -> tuple[tuple[tuple[str, str, bool, bool], ...], tuple[str, ...]]:
    """``((name, type, keyword only, has default) per argument, return types)`` of an allowed operator."""
    if op not in _SIGNATURES:
        schema = fn._schema
        _SIGNATURES[op] = (tuple((a.name, str(a.type), a.kwarg_only, a.has_default_value()) for a in schema.arguments),
                           tuple(str(r.type) for r in schema.returns))
    return _SIGNATURES[op]


def _bind(op: str, fn: Any, args: tuple, kwargs: dict, kinds: list[str], where: str) -> str:
    """Binds a call to its operator's schema and returns the result's kind (tensor, tensors, int).

    Checks positions, keyword names, required arguments and each argument's kind; the
    kinds of earlier values are ``kinds`` (inputs and weights are tensors).
    """
    if op.startswith("operator."):
        if kwargs:
            raise _fail(f"no keyword arguments for {where}", _short(sorted(kwargs)))
        return _python_kind(op, args, kinds, where)
    arguments, returns = _signature(op, fn)
    positional = [a for a in arguments if not a[2]]
    if len(args) > len(positional):
        raise _fail(f"at most {len(positional)} positional arguments for {where}", f"{len(args)}")
    bound = {a[0]: value for a, value in zip(positional, args)}
    names = {a[0] for a in arguments}
    for key, value in kwargs.items():
        if key not in names or key in bound:
            raise _fail(f"keyword arguments among {sorted(names - set(bound))} for {where}", _short(key))
        bound[key] = value
    for name, jit_type, _, has_default in arguments:
        if name not in bound:
            if not has_default:
                raise _fail(f"the argument {name!r} of {where}", "nothing")
            continue
        if not _kind_ok(bound[name], jit_type, kinds):
            raise _fail(f"{name}: {jit_type} in {where}", _short(bound[name]))
    if returns == ("Tensor",):
        return "tensor"
    if returns == ("int",):
        return "int"
    if returns == ("List[Tensor]",) or (len(returns) > 1 and all(r == "Tensor" for r in returns)):
        return "tensors"
    raise _fail(f"an operator returning tensors or an int in {where}", _short(returns))


def load_bytes(data: bytes | bytearray, device: torch.device | str | None = None, *,
               what: str = "the file") -> "ExportedSampler":
    """Check a sampler file's bytes in full, then build the sampler (see the module docstring).

    The weights are views into ``data`` when it is a ``bytearray`` (no copy): do not change it afterwards.
    """
    # the weights are read in place from this buffer (a bytearray: writable, so torch can share it)
    buffer = data if isinstance(data, bytearray) else bytearray(data)
    metadata, tensors = _safetensors(memoryview(buffer), what)
    kind, version = metadata.get("format"), metadata.get("format_version")
    if kind != FORMAT:
        raise _fail(f"a schedalg sampler file (metadata format {FORMAT!r}) in {what}", _short(kind),
                    "load files written by schedalg.sampling.export_sampler")
    if version not in [str(v) for v in SUPPORTED_VERSIONS]:
        raise _fail(f"format version {', '.join(map(str, SUPPORTED_VERSIONS))} (this loader)",
                    f"format version {_short(version)} in {what}",
                    "load it with the schedalg version that wrote it, or export the sampler again")
    if sorted(metadata) != sorted(_METADATA_KEYS):
        raise _fail(f"metadata with exactly the keys {list(_METADATA_KEYS)}", _short(sorted(metadata)))
    text = metadata["program"]
    program_json = _parse_json(text, f"the program of {what}")
    try:
        canonical = _canonical(program_json)
    except ValueError:  # a number too large for a float (e.g. 1e999) reads as infinity
        raise _fail(f"finite JSON numbers in the program of {what} (non-finite ones are tagged)",
                    "a number out of the float range", "the file was edited or damaged; export it again") from None
    if canonical != text:
        raise _fail(f"the program of {what} as canonical JSON (sorted keys, no spaces)", "another spelling",
                    "the file was edited or damaged; export the sampler again")
    weights = program_json.get("weights") if isinstance(program_json, dict) else None
    if not (isinstance(weights, list) and all(isinstance(w, str) and w in tensors for w in weights)
            and len(weights) == len(tensors)):
        raise _fail("a program whose weights name the file's tensors", _short(weights))
    records = [(name, *tensors[name]) for name in weights]
    found = digest(text, records)
    if found != metadata["sha256"]:
        raise _fail(f"the SHA-256 digest stored in {what}",
                    f"{found[:16]}... over its contents, {_short(metadata['sha256'])[:20]}... stored",
                    "the file was damaged or edited after export; copy or export it again")
    program = _check_program(program_json, tensors)
    values = []
    for name in weights:
        code, shape, raw = tensors[name]
        dtype = _SAFETENSORS[code]
        flat = torch.frombuffer(raw, dtype=dtype) if len(raw) else torch.empty(0, dtype=dtype)
        if flat.data_ptr() % dtype.itemsize:  # another writer's layout: copy to aligned memory
            flat = flat.clone()
        values.append(flat.reshape(shape))
    return ExportedSampler(program, values, device)


def load(path: str | Path, device: torch.device | str | None = None, *,
         error: type[Exception] = ExportError) -> "ExportedSampler":
    """Load an exported sampler file; ``device`` moves its weights (default: CPU).

    Every failure raises ``error`` (this module's :class:`ExportError`; schedalg passes
    its own), with a message saying what was expected, what was found and how to fix it.
    """
    try:
        path = Path(path)
        if not path.is_file():
            raise _fail("an exported sampler file", f"{str(path)!r}, which is not a file",
                        "check the path (export_sampler writes <name>.safetensors)")
        try:
            data = bytearray(path.stat().st_size)
            with path.open("rb") as file:
                if file.readinto(data) != len(data):
                    raise _fail(f"{len(data)} bytes in {str(path)!r}", "fewer (the file changed while read)")
        except OSError as exc:
            raise _fail(f"a readable file at {str(path)!r}", f"{type(exc).__name__}: {exc.strerror}") from None
        sampler = load_bytes(data, device, what=repr(path.name))
        sampler.error = error
        return sampler
    except ExportError as exc:
        if error is ExportError:
            raise
        raise error(exc.expected, exc.got, exc.fix) from None  # type: ignore[call-arg]
    except Exception as exc:  # noqa: BLE001 - a failure no check above names: still a clean error
        raise error("a loadable sampler file",  # type: ignore[call-arg]
                    f"an unexpected {type(exc).__name__} while checking it: {str(exc)[:200]}",
                    "please report this file to schedalg") from None


# ---------------------------------------------------------------------------------------------- the module


class ExportedSampler(torch.nn.Module):
    """An exported sampler: ``sampler(noise, seed=...)`` as schedalg's ``Sampler(...)(noise, seed=...)``.

    * ``sampler(noise, *, seed=None, generator=None, draws=None, scale_noise=True, **cond)``:
      the sample from standard-normal ``noise`` ``(B, ...)``. The state starts at
      ``start_scale * noise`` (:meth:`initial_state`); a stochastic solver's draws
      ``(K, B, ...)`` come from ``seed`` (per sample, as
      :func:`schedalg.sampling.per_sample_normal`), a ``generator``, or ``draws``.
    * :meth:`sample_from_state` ``(x, draws=None, **cond)``: the sample from an initial
      *state* ``x`` (already scaled), the exported graph itself.

    ``torch.compile`` traces either call; drawing noise from a seed or generator is host
    work outside the graph, so for a whole-graph compile of a stochastic solver compile
    :meth:`sample_from_state` and pass ``draws`` (``sampler.draws(x, seed=...)``).

    ``meta`` holds the solver, schedule, grid, times, ``nfe``, ``noise_draws``,
    ``noise_stream``, ``start_scale``; ``input_names`` the graph's inputs (``x``, ``draws``, conditioning).
    """

    def __init__(self, program: _Program, weights: list[torch.Tensor], device: torch.device | str | None = None):
        super().__init__()
        self._graph = program
        self.meta = dict(program.meta)
        self.input_names = [spec["name"] for spec in program.inputs]
        self.start_scale = float(program.meta["start_scale"])
        self.noise_draws = int(program.meta["noise_draws"])
        self.noise_stream = int(program.meta["noise_stream"])
        self.error: type[Exception] = ExportError
        self._weight_names = []
        for index, tensor in enumerate(weights):
            self._weight_names.append(f"weight_{index}")
            self.register_buffer(f"weight_{index}", tensor.to(device) if device is not None else tensor)

    def _bad(self, expected: str, got: str, fix: str | None = None) -> Exception:
        return self.error(expected, got, fix)  # type: ignore[call-arg]

    def initial_state(self, noise: torch.Tensor, scale_noise: bool = True) -> torch.Tensor:
        """``start_scale * noise`` (``sigma(t_0) * noise``), or ``noise`` itself when ``scale_noise`` is False."""
        if not isinstance(noise, torch.Tensor) or noise.dim() < 1 or not noise.is_floating_point():
            raise self._bad("noise as a floating-point tensor (batch, ...)", type(noise).__name__,
                            "e.g. torch.randn(16, 2)")
        if not scale_noise or self.start_scale == 1.0:
            return noise
        return noise * self.start_scale

    def draws(self, like: torch.Tensor, *, seed: int | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Standard-normal draws ``(K, B, ...)`` like ``Sampler.draws`` (None for deterministic solvers)."""
        if self.noise_draws == 0:
            return None
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise self._bad("a seed: an int >= 0", repr(seed), "pass e.g. seed=0")
            return seeded_normal(tuple(like.shape), seed, self.noise_stream, self.noise_draws, like.dtype,
                                 like.device)
        if generator is None:
            raise self._bad(f"a seed or a torch.Generator for the {self.meta.get('solver')!r} solver's noise",
                            "neither", "pass seed=0 (per-sample, batch-size independent) or generator=...")
        return torch.randn((self.noise_draws,) + tuple(like.shape), generator=generator, dtype=like.dtype,
                           device=generator.device).to(like.device)

    def forward(self, noise: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
                draws: torch.Tensor | None = None, scale_noise: bool = True, **cond: torch.Tensor) -> torch.Tensor:
        x = self.initial_state(noise, scale_noise)
        if draws is None and self.noise_draws:
            draws = self.draws(x, seed=seed, generator=generator)
        return self.sample_from_state(x, draws, **cond)

    def sample_from_state(self, x: torch.Tensor, draws: torch.Tensor | None = None,
                          **cond: torch.Tensor) -> torch.Tensor:
        """The exported graph: the sample from the initial state ``x`` (not noise: see :meth:`initial_state`)."""
        given = {"x": x, "draws": draws, **cond}
        values = []
        batch = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() else None
        for spec in self._graph.inputs:
            value = given.pop(spec["name"], None)
            shape, dtype = spec["shape"], _DTYPES[spec["dtype"]]
            if not (isinstance(value, torch.Tensor) and value.dtype == dtype and value.dim() == len(shape)
                    and all((batch if s is None else s) == n for s, n in zip(shape, value.shape))):
                got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else repr(value)
                want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + f") {dtype}"
                raise self._bad(f"{spec['name']} of shape {want}", got,
                                "pass noise and conditioning as at export (see .meta and .input_names)")
            values.append(value)
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise self._bad(f"the inputs {self.input_names}", f"also {extra}", "drop the unknown keywords")
        first = len(values)
        values += [getattr(self, name) for name in self._weight_names]
        try:
            out = _run(self._graph, values, x.device)
        except torch.OutOfMemoryError:
            raise
        except (RuntimeError, TypeError, ValueError, IndexError) as exc:
            position = len(values) - first - len(self._weight_names)
            raise self._bad(f"a graph whose node {position} ({self._graph.nodes[position].op}) runs on inputs "
                            f"of shapes {[tuple(v.shape) for v in values[:first]]}",
                            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                            "check the inputs against .input_names and .meta, or export the sampler again") from exc
        if not (isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype):
            got = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise self._bad(f"a sample of the state's shape and dtype {tuple(x.shape)} {x.dtype}", got,
                            "the graph is damaged; export the sampler again")
        return out
