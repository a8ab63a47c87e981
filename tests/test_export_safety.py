"""Loading exported samplers from anyone: no code runs from the file, damage is detected.

Each attack of issue 12 has a regression test; a hypothesis fuzz test (derandomized) flips
bytes, truncates, and edits the graph structurally, with and without recomputing the
digest (an attacker can recompute it; the digest only detects damage).
"""

from __future__ import annotations

import copy
import ctypes
import json
import struct
import sys
import zipfile

import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.models import NetworkDenoiser
from schedalg.sampling import ExportError, Sampler, TimeGrid, export_sampler, load_sampler, per_sample_normal
from schedalg.sampling import _standalone

MARKER_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("code from the file ran")
"""


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def _sampler(solver: str = "euler_maruyama", steps: int = 2) -> Sampler:
    schedule = sa.schedules.linear()
    return Sampler(NetworkDenoiser(_Mlp(), schedule, prediction="velocity"),
                   TimeGrid.uniform(schedule, steps, t_start=0.05, t_end=0.95), solver)


NOISE = per_sample_normal((3, 2), 0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(sampler, file bytes, expected sample for NOISE and seed 1)."""
    sampler = _sampler()
    path = export_sampler(sampler, tmp_path_factory.mktemp("base") / "s.safetensors", NOISE, write_loader=False)
    return sampler, path.read_bytes(), sampler(NOISE, seed=1)


class _MapNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))

    def forward(self, x, s, t):
        return self.net(torch.cat([x, s[:, None].to(x.dtype), t[:, None].to(x.dtype)], dim=1))


@pytest.fixture(scope="module", params=["sampler", "flow_map"])
def any_exported(request, exported, tmp_path_factory):
    """(sampler, file bytes, expected sample) for a stochastic network sampler and a flow-map sampler
    (on a cosine grid: a converted map): both go through the one export path and the one loader."""
    if request.param == "sampler":
        return exported
    from schedalg.flowmaps import FlowMap, FlowMapSampler

    sampler = FlowMapSampler(FlowMap(_MapNet(), sa.schedules.linear()),
                             TimeGrid.uniform(sa.schedules.cosine(), 2, t_start=0.99, t_end=0.01))
    path = export_sampler(sampler, tmp_path_factory.mktemp("map") / "m.safetensors", NOISE, write_loader=False)
    return sampler, path.read_bytes(), sampler(NOISE, seed=1)


@pytest.fixture()
def marker(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a marker file (the payload of a planted attack)."""
    name = f"schedalg_marker_{tmp_path.name.replace('-', '_')}"
    marker_file = tmp_path / "MARKER"
    (tmp_path / f"{name}.py").write_text(MARKER_MODULE.format(marker=str(marker_file)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker_file
    sys.modules.pop(name, None)


def _parts(data: bytes) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(metadata, tensors, program) of a sampler file, read with the safetensors package."""
    tensors = safetensors.torch.load(data)
    (size,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8:8 + size])["__metadata__"]
    return metadata, tensors, json.loads(metadata["program"])


def _forge(program: dict, tensors: dict[str, torch.Tensor], *, version: str = "2", redigest: bool = True,
           metadata: dict | None = None) -> bytes:
    """A sampler file holding ``program``, written with the safetensors package, its digest recomputed
    as an attacker would (the digest is a checksum, not a signature)."""
    text = json.dumps(program, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    names = program["weights"] if isinstance(program.get("weights"), list) else []
    records = [(n, _standalone._SAFETENSORS_CODE[tensors[n].dtype], list(tensors[n].shape),
                _standalone._tensor_bytes(tensors[n])) for n in names if isinstance(n, str) and n in tensors]
    meta = dict(metadata or {})
    meta.update({"format": "schedalg.sampler", "format_version": version, "program": text})
    if redigest:
        meta["sha256"] = _standalone.digest(text, records)
    return safetensors.torch.save(tensors, metadata=meta)


def _load_bytes(tmp_path, data: bytes, name: str = "f.safetensors"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_sampler(path)


def _clean(error: ExportError) -> None:
    """A clean refusal: schedalg's error, with the expected/got/fix message, from a named check."""
    assert isinstance(error, ExportError)
    assert str(error).startswith("expected ") and "unexpected" not in str(error), str(error)


# ---------------------------------------------------------------------------------------------- attacks


def _hijack(program: dict, target: str, args: list) -> dict:
    """A call of ``target`` on ``args`` inserted as node 0, the rest of the graph intact (the issue's attacks)."""
    program = copy.deepcopy(program)
    program["nodes"].insert(0, {"op": target, "args": args, "kwargs": {}})
    _shift_refs(program, after=len(program["inputs"]) + len(program["weights"]), by=1)
    return program


def _load_and_call(tmp_path, data: bytes) -> ExportError:
    """The error that loading (or else calling) a forged file ends in; calling runs any resolved payload."""
    with pytest.raises(ExportError) as info:
        _load_bytes(tmp_path, data)(NOISE, seed=1)
    _clean(info.value)
    return info.value


def test_import_module_target_is_refused_and_never_runs(exported, marker, tmp_path):
    """The issue's attack: target ``import_module.__self__.import_module``, argument a module name."""
    _, data, _ = exported
    name, marker_file = marker
    # the payload is live: the v1 loader's resolver (an attribute walk over torch.ops) imports the module
    namespace, op_name, overload = "import_module.__self__.import_module".split(".")
    getattr(getattr(getattr(torch.ops, namespace), op_name), overload)(name)
    assert marker_file.read_text() == "code from the file ran"
    marker_file.unlink()
    sys.modules.pop(name)
    _, tensors, program = _parts(data)
    error = _load_and_call(tmp_path, _forge(_hijack(program, "import_module.__self__.import_module", [name]), tensors))
    assert not marker_file.exists() and name not in sys.modules
    assert "'import_module.__self__.import_module' in node 0" in str(error)
    assert "aten.mul.Tensor" in str(error)  # the allowed set is named


def test_load_library_target_is_refused(exported, tmp_path, monkeypatch):
    """``load_library`` reaches dlopen (ctypes.CDLL) through torch.ops; the loader never looks it up."""
    _, data, _ = exported
    opened = []
    monkeypatch.setattr(ctypes, "CDLL", lambda path, *args, **kwargs: opened.append(path))
    torch.ops.load_library(str(tmp_path / "probe.so"))  # the payload is live: it reaches CDLL
    assert opened == [str(tmp_path / "probe.so")]
    _, tensors, program = _parts(data)
    for target in ("load_library.__self__.load_library", "ops.load_library.default", "aten.load_library.default"):
        error = _load_and_call(tmp_path, _forge(_hijack(program, target, [str(tmp_path / "libevil.so")]), tensors))
        assert "load_library" in str(error)
    assert opened == [str(tmp_path / "probe.so")]


@pytest.mark.parametrize("target", ["aten.from_file.default", "aten.empty.memory_format", "aten.randn.default",
                                    "builtins.eval", "torch.load", "aten.mul.Tensor.__class__", "aten.mul.Tensor ",
                                    "operator.attrgetter", "operator.pow"])
def test_operators_outside_the_allowlist_are_refused(exported, tmp_path, target):
    _, data, _ = exported
    _, tensors, program = _parts(data)
    with pytest.raises(ExportError, match="operator among the") as info:
        _load_bytes(tmp_path, _forge(_hijack(program, target, [{"ref": 0}]), tensors))
    _clean(info.value)


def test_zeroed_bytes_are_detected(exported, tmp_path):
    """64 zero bytes in the middle of the file (the issue's silent corruption), in the data and in the header."""
    _, data, _ = exported
    (size,) = struct.unpack("<Q", data[:8])
    in_data = 8 + size + (len(data) - 8 - size) // 2 - 32
    damaged = data[:in_data] + bytes(64) + data[in_data + 64:]
    with pytest.raises(ExportError, match="SHA-256 digest") as info:
        _load_bytes(tmp_path, damaged)
    _clean(info.value)
    in_header = 8 + size // 2
    with pytest.raises(ExportError) as info:
        _load_bytes(tmp_path, data[:in_header] + bytes(64) + data[in_header + 64:])
    _clean(info.value)


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_truncated_files_are_refused(exported, tmp_path, keep):
    _, data, _ = exported
    with pytest.raises(ExportError, match="truncated|damaged") as info:
        _load_bytes(tmp_path, data[:keep] if keep >= 0 else data[:len(data) - 1])
    _clean(info.value)


@pytest.mark.parametrize("content", [b"hello, this is a text file\n" * 4, b"", bytes(4096),
                                     b'{"format": "schedalg.sampler"}'])
def test_text_empty_and_zero_filled_files_are_refused(tmp_path, content):
    with pytest.raises(ExportError) as info:
        _load_bytes(tmp_path, content)
    _clean(info.value)


def test_numbers_out_of_the_float_range_are_refused(exported, tmp_path):
    """``1e999`` parses as infinity, which the canonical form cannot spell: refused, not run."""
    _, data, _ = exported
    metadata, tensors, program = _parts(data)
    text = metadata["program"].replace('"start_scale":0.95', '"start_scale":1e999')
    assert text != metadata["program"]
    records = [(n, _standalone._SAFETENSORS_CODE[tensors[n].dtype], list(tensors[n].shape),
                _standalone._tensor_bytes(tensors[n])) for n in program["weights"]]
    forged = safetensors.torch.save(tensors, metadata={**metadata, "program": text,
                                                       "sha256": _standalone.digest(text, records)})
    with pytest.raises(ExportError, match="out of the float range") as info:
        _load_bytes(tmp_path, forged)
    _clean(info.value)


def test_a_safetensors_file_that_is_not_a_sampler_is_refused(tmp_path):
    with pytest.raises(ExportError, match="metadata format") as info:
        _load_bytes(tmp_path, safetensors.torch.save({"w": torch.zeros(2)}, metadata={"format": "pt"}))
    _clean(info.value)


def test_format_versions_are_checked(exported, tmp_path):
    _, data, _ = exported
    _, tensors, program = _parts(data)
    with pytest.raises(ExportError, match="format version 2 .*got format version '3'") as info:
        _load_bytes(tmp_path, _forge(program, tensors, version="3"))
    _clean(info.value)
    old = tmp_path / "v1.pt"  # version 1 was a torch.save zip archive
    with zipfile.ZipFile(old, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(ExportError, match="format version 1") as info:
        load_sampler(old)
    _clean(info.value)


def test_wrong_or_missing_digest_is_refused(exported, tmp_path):
    _, data, _ = exported
    _, tensors, program = _parts(data)
    edited = copy.deepcopy(program)
    edited["meta"]["start_scale"] = 2.0
    with pytest.raises(ExportError, match="SHA-256") as info:  # the stored digest is the original one
        _load_bytes(tmp_path, _forge(edited, tensors, redigest=False, metadata={"sha256": _parts(data)[0]["sha256"]}))
    _clean(info.value)
    with pytest.raises(ExportError, match="exactly the keys") as info:
        _load_bytes(tmp_path, _forge(program, tensors, redigest=False))
    _clean(info.value)


def test_calling_convention_is_the_samplers(exported, tmp_path):
    """``s(noise, seed=...)`` is ``sampler(noise, seed=...)``; the issue's old call, which read noise as
    the initial state, gave a silently wrong sample: that meaning now has its own name."""
    sampler, data, expected = exported
    loaded = _load_bytes(tmp_path, data)
    assert sampler.start_scale != 1.0  # so that noise and the initial state differ
    assert torch.equal(loaded(NOISE, seed=1), expected)
    x = sampler.initial_state(NOISE)
    assert torch.equal(loaded.sample_from_state(x, sampler.draws(x, seed=1)), expected)
    generator = torch.Generator().manual_seed(5)
    assert torch.equal(loaded(NOISE, generator=generator), sampler(NOISE, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(TypeError):  # the old positional (x, draws) call fails loudly
        loaded(x, sampler.draws(x, seed=1))
    with pytest.raises(ExportError, match="a seed or a torch.Generator"):
        loaded(NOISE)
    with pytest.raises(ExportError, match=r"x of shape \(3, 2\) torch.float32"):
        loaded(NOISE[:, :1], seed=1)
    with pytest.raises(ExportError, match="unknown keywords"):
        loaded(NOISE, seed=1, label=torch.zeros(3))


def test_in_place_writes_to_inputs_or_weights_are_refused(exported, tmp_path):
    _, data, _ = exported
    _, tensors, program = _parts(data)
    for target in (0, len(program["inputs"])):  # the input x, the first weight
        edited = copy.deepcopy(program)
        edited["nodes"].insert(0, {"op": "aten.add_.Tensor", "args": [{"ref": target}, 1.0], "kwargs": {}})
        _shift_refs(edited, after=len(edited["inputs"]) + len(edited["weights"]), by=1)
        with pytest.raises(ExportError, match="in-place") as info:
            _load_bytes(tmp_path, _forge(edited, tensors))
        _clean(info.value)


def _shift_refs(program: dict, after: int, by: int, skip_first: bool = True) -> None:
    """References to values ``>= after`` moved by ``by`` (for a node inserted before them)."""
    def shift(value):
        if isinstance(value, dict) and set(value) == {"ref"} and isinstance(value["ref"], int):
            return {"ref": value["ref"] + by if value["ref"] >= after else value["ref"]}
        if isinstance(value, dict):
            return {k: shift(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shift(v) for v in value]
        return value

    for node in program["nodes"][1 if skip_first else 0:]:
        node["args"], node["kwargs"] = shift(node["args"]), shift(node["kwargs"])
    program["output"] = shift(program["output"])


@pytest.mark.parametrize("ref", [-1, "own", "next", 10 ** 6, True])
def test_references_point_to_earlier_values_only(exported, tmp_path, ref):
    """A node may use only the inputs, the weights and earlier nodes (``-1`` would silently read the
    last value in a Python list; a forward reference would read a value not yet made)."""
    _, data, _ = exported
    _, tensors, program = _parts(data)
    edited = copy.deepcopy(program)
    position = len(edited["nodes"]) // 2
    own = len(edited["inputs"]) + len(edited["weights"]) + position
    edited["nodes"][position]["args"][0] = {"ref": {"own": own, "next": own + 1}.get(ref, ref)}
    with pytest.raises(ExportError, match=f"values made before node {position}") as info:
        _load_bytes(tmp_path, _forge(edited, tensors))
    _clean(info.value)


def test_python_operators_take_sizes_only(exported, tmp_path):
    """``operator.mul`` on a tuple of tensors and a big int would build a huge tuple: refused by kind."""
    _, data, _ = exported
    _, tensors, program = _parts(data)
    unbind = next(i for i, node in enumerate(program["nodes"]) if node["op"] == "aten.unbind.int")
    tuple_ref = {"ref": len(program["inputs"]) + len(program["weights"]) + unbind}
    edited = copy.deepcopy(program)
    edited["nodes"].append({"op": "operator.mul", "args": [tuple_ref, 2 ** 40], "kwargs": {}})
    with pytest.raises(ExportError, match="ints .sizes. as the arguments") as info:
        _load_bytes(tmp_path, _forge(edited, tensors))
    _clean(info.value)


def test_export_refuses_operators_the_loader_would_refuse(tmp_path):
    schedule = sa.schedules.linear()

    def net(x, t):
        return torch.cumprod(x, dim=1) * t[:, None]  # aten.cumprod: not in the allowlist

    sampler = Sampler(NetworkDenoiser(net, schedule, prediction="x0"),
                      TimeGrid.uniform(schedule, 2, t_start=0.1, t_end=0.9), "euler")
    with pytest.raises(ExportError, match="aten.cumprod"):
        export_sampler(sampler, tmp_path / "c.safetensors", torch.zeros(2, 2))


def test_files_interoperate_with_the_safetensors_package(exported, tmp_path):
    """The file is plain safetensors: the package reads the weights; a file it writes (another
    layout, the same contents) loads and samples the same."""
    sampler, data, expected = exported
    metadata, tensors, _ = _parts(data)
    loaded = _load_bytes(tmp_path, data)
    assert len(tensors) == len(list(loaded.buffers()))
    rewritten = safetensors.torch.save(dict(reversed(list(tensors.items()))), metadata=metadata)
    assert rewritten != data
    assert torch.equal(_load_bytes(tmp_path, rewritten, "r.safetensors")(NOISE, seed=1), expected)


def test_seeded_draws_match_numpys_seed_sequence():
    """The loader seeds per-sample generators without numpy: its hash equals
    ``numpy.random.SeedSequence([seed, b, stream]).generate_state(2)`` (multi-word seeds too)."""
    import numpy as np

    for entropy in ([0, 0, 0], [3, 7, 1], [2 ** 32 - 1, 0, 1], [2 ** 32, 5, 0], [2 ** 64 + 9, 1, 1],
                    [12345678901234567890123, 2, 1], *([s, b, 1] for s in range(4) for b in range(4))):
        state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
        assert _standalone._seed_sequence_state(entropy) == int(state[0]) << 32 | int(state[1]), entropy


def test_every_allowlisted_operator_exists_in_this_torch():
    missing = [name for name in _standalone.ATEN_OPERATORS if "aten." + name not in _standalone.OPERATORS]
    assert missing == []


# ---------------------------------------------------------------------------------------------- fuzz

HOSTILE = ["import_module.__self__.import_module", "load_library.__self__.load_library", "builtins.exec",
           "aten.from_file.default", "operator.attrgetter", "aten", "", "aten.mul", "aten.mul.Tensor.Tensor"]
SAFE = ["aten.mul.Tensor", "aten.add.Tensor", "aten.cat.default", "aten.linear.default", "aten.add_.Tensor",
        "operator.getitem", "aten.sym_size.int", "aten.zeros.default", "aten.unbind.int", "operator.mul"]

leaf = st.one_of(st.none(), st.booleans(), st.sampled_from([-2, -1, 0, 1, 2, 3, 2 ** 63 - 1]),
                 st.sampled_from([0.5, -1.0, 1e300]), st.sampled_from(["none", "cpu", "x", "__import__"]),
                 st.builds(lambda i: {"ref": i}, st.integers(-2, 80)),
                 st.sampled_from([{"dtype": "float64"}, {"dtype": "object"}, {"device": "cpu"}, {"float": "inf"},
                                  {"float": "bad"}, {"layout": "strided"}, {"evil": 1}, {"ref": "0"}, {}]))
arguments = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.builds(lambda v: {"tuple": v}, st.lists(inner, max_size=3))),
                         max_leaves=6)


@st.composite
def structural_edits(draw):
    """A function editing a program dict in place (operators, arguments, references, order, metadata)."""
    kind = draw(st.sampled_from(["op", "op", "insert", "insert", "insert", "arg", "kwarg", "delete", "duplicate",
                                 "swap", "meta", "inputs", "weights", "output"]))
    a, b = draw(st.integers(0, 10 ** 6)), draw(st.integers(0, 10 ** 6))
    op = draw(st.one_of(st.sampled_from(HOSTILE[:2]), st.sampled_from(HOSTILE), st.sampled_from(SAFE)))
    value = draw(arguments)
    key = draw(st.sampled_from(["start_scale", "noise_draws", "shape", "dynamic_batch", "solver", "alpha"]))

    def edit(program: dict) -> None:
        nodes = program["nodes"]
        node = nodes[a % len(nodes)]
        if kind == "op":
            node["op"] = op
        elif kind == "insert":  # a new node; later references shifted so that the rest still works
            position = b % (len(nodes) + 1)
            first = len(program["inputs"]) + len(program["weights"])
            tail = {"nodes": nodes[position:], "output": program["output"], "inputs": [], "weights": []}
            _shift_refs(tail, after=first + position, by=1, skip_first=False)
            nodes[position:] = [{"op": op, "args": [value], "kwargs": {}}] + tail["nodes"]
            program["output"] = tail["output"]
        elif kind == "arg":
            position = b % (len(node["args"]) + 1)
            node["args"][position:position + 1] = [value]
        elif kind == "kwarg":
            node["kwargs"][["alpha", "dim", "dtype", "out", "__class__"][b % 5]] = value
        elif kind == "delete":
            del nodes[a % len(nodes)]
        elif kind == "duplicate":
            nodes.insert(b % len(nodes), copy.deepcopy(node))
        elif kind == "swap":
            i, j = a % len(nodes), b % len(nodes)
            nodes[i], nodes[j] = nodes[j], nodes[i]
        elif kind == "meta":
            program["meta"][key] = value
        elif kind == "inputs":
            spec = program["inputs"][a % len(program["inputs"])]
            spec[["name", "dtype", "shape"][b % 3]] = value
        elif kind == "weights":
            program["weights"][a % len(program["weights"])] = value if isinstance(value, str) else "other"
        else:
            program["output"] = value

    return kind, edit


FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(FUZZ, max_examples=120)
@given(flips=st.lists(st.tuples(st.integers(0, 10 ** 9), st.integers(1, 255)), min_size=1, max_size=3),
       truncate=st.one_of(st.none(), st.integers(0, 10 ** 9)))
def test_fuzz_damaged_bytes_are_refused_or_harmless(any_exported, tmp_path, flips, truncate):
    """Random byte flips (and truncations) without recomputing the digest: a clean ExportError, or
    (a flip in the header's padding that keeps the JSON valid) the identical sample."""
    _, data, expected = any_exported
    damaged = bytearray(data)
    for position, mask in flips:
        damaged[position % len(damaged)] ^= mask
    if truncate is not None:
        damaged = damaged[:truncate % len(damaged)]
    try:
        loaded = _load_bytes(tmp_path, bytes(damaged))
    except ExportError as error:
        _clean(error)
        return
    assert torch.equal(loaded(NOISE, seed=1), expected)


@settings(FUZZ, max_examples=160)
@given(edits=st.lists(structural_edits(), min_size=1, max_size=3), redigest=st.booleans())
def test_fuzz_structural_edits_never_run_code(any_exported, marker, tmp_path, edits, redigest):
    """Edited graphs (operators, arguments, references, order, inputs, metadata; hostile targets whose
    argument is a module that writes a marker file when imported). Without a new digest: a clean
    ExportError, or the identical sample when the edit changed nothing. With a digest recomputed (a
    deliberate attacker): a clean ExportError at load or call, or a sample of the right shape, which
    may differ (an edited constant is a different, valid sampler); never code from the file."""
    _, data, expected = any_exported
    name, marker_file = marker
    _, tensors, program = _parts(data)
    edited = copy.deepcopy(program)
    for _, edit in edits:
        edit(edited)
    for node in edited["nodes"]:  # hostile targets get the marker module as their argument
        if node["op"] in HOSTILE:
            node["args"] = [name]
    try:
        forged = _forge(edited, tensors, redigest=redigest, metadata={"sha256": _parts(data)[0]["sha256"]})
    except (ValueError, TypeError):  # not even writable as JSON (e.g. a NaN from an edit): nothing to load
        return
    modules = set(sys.modules)
    try:
        loaded = _load_bytes(tmp_path, forged)
        out = loaded(NOISE, seed=1)
    except ExportError as error:
        _clean(error)
    else:
        if not redigest or edited == program:
            assert torch.equal(out, expected)
        assert isinstance(out, torch.Tensor) and out.shape == NOISE.shape
    assert not marker_file.exists()
    assert name not in sys.modules and not any(m.startswith("schedalg_marker") for m in set(sys.modules) - modules)
