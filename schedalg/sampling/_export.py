"""Export a planned sampler as a file that loads with torch alone and runs no code from the file.

:meth:`Sampler.module` is a ``torch.nn.Module`` whose ``forward(x, draws=None, cond=None)``
executes the same program as :class:`Sampler` (:meth:`Program.run`, fused as the sampler's:
the same tensor operations, the program's weights as constants) from an initial state ``x``;
:meth:`schedalg.flowmaps.FlowMapSampler.module` runs the sampler's flow-map jumps the same
way. Any sampler with that interface (:class:`ExportableSampler`) exports by the one path below.
:func:`export_sampler` traces it with ``torch.export`` (steps unrolled into one ATen graph;
network weights and prepared tables become the program's tensors), writes the graph as
versioned JSON and the tensors as safetensors, with a SHA-256 digest over both, through
:func:`schedalg.sampling._standalone.save`. :func:`load_sampler` is that module's
:func:`~schedalg.sampling._standalone.load`: the same source that ``export_sampler`` copies
beside the file as the torch-only loader, so the two cannot drift apart.

``torch.export.save`` files are not used: ``torch.export.load`` imports SymPy and resolves
each node's target by walking attributes of ``torch`` named in the file, which is the kind of
lookup this format exists to avoid.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from . import _standalone
from ._errors import ExportError
from ._noise import STREAM_STEPS

__all__ = ["ExportableSampler", "export_sampler", "load_sampler", "program_payload"]


@runtime_checkable
class ExportableSampler(Protocol):
    """What :func:`export_sampler` reads from a sampler (:class:`Sampler`, :class:`schedalg.flowmaps.FlowMapSampler`).

    ``module()``: an ``nn.Module`` whose ``forward(x, draws=None, cond=None)`` is the run from
    the initial state ``x``; ``initial_state(noise)``: ``start_scale * noise``;
    ``draws(x, seed=...)``: the run's standard-normal draws ``(noise_draws, B, ...)`` or None;
    ``grid`` (a :class:`~schedalg.sampling.TimeGrid`), ``nfe``, ``start_scale`` (``sigma(t_0)``),
    ``method`` (a name recorded in the file) and ``noise_draws``.
    """

    grid: Any
    nfe: int
    start_scale: float
    method: str
    noise_draws: int

    def module(self) -> torch.nn.Module: ...

    def initial_state(self, noise: torch.Tensor, scale_noise: bool = True) -> torch.Tensor: ...

    def draws(self, like: torch.Tensor, *, seed: int | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor | None: ...


_NO_OPS = {"aten._assert_tensor_metadata.default"}
_CASTS = {"aten.to.dtype", "aten.to.device", "aten.to.dtype_layout"}


def _simplify(graph: "torch.fx.Graph") -> tuple[dict[str, str], set]:
    """Output-preserving clean-up: drop metadata asserts, casts to the same dtype and device
    (``Tensor.to`` returns its input then), and computations nothing uses (e.g. a network
    wrapper's deferred finite check). Returns (alias of dropped casts, nodes to keep)."""
    alias: dict[str, str] = {}
    candidates = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = _op_name(node)
        if name in _NO_OPS:
            continue
        source = node.args[0] if node.args else None
        if (name in _CASTS and isinstance(source, torch.fx.Node) and not node.kwargs.get("copy", False)
                and _same_meta(source, node)):
            alias[node.name] = alias.get(source.name, source.name)
            continue
        candidates.append(node)
    live: set[str] = set()
    output = next(n for n in graph.nodes if n.op == "output")
    live.update(_references(output.args, alias))
    kept = set()
    for node in reversed(candidates):
        in_place = node.target._schema.is_mutable if isinstance(node.target, torch._ops.OpOverload) else False
        if node.name in live or (in_place and (_references(node.args, alias) & live)):
            kept.add(node)
            live.update(_references(node.args, alias))
            live.update(_references(list(node.kwargs.values()), alias))
    return alias, kept


def _same_meta(source: "torch.fx.Node", node: "torch.fx.Node") -> bool:
    before, after = source.meta.get("val"), node.meta.get("val")
    return (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)
            and before.dtype == after.dtype and before.device == after.device)


def _references(value: Any, alias: dict[str, str]) -> set[str]:
    if isinstance(value, torch.fx.Node):
        return {alias.get(value.name, value.name)}
    if isinstance(value, (list, tuple)):
        return set().union(*(_references(v, alias) for v in value)) if value else set()
    return set()


def _encode(value: Any, env: dict[str, Any], alias: dict[str, str]) -> Any:
    """A graph argument in the file's JSON form (see :mod:`schedalg.sampling._standalone`)."""
    if isinstance(value, torch.fx.Node):
        return env[alias.get(value.name, value.name)]
    if isinstance(value, (list, tuple)):
        items = [_encode(v, env, alias) for v in value]
        return items if isinstance(value, list) else {"tuple": items}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, torch.layout):
        return {"layout": str(value).removeprefix("torch.")}
    if isinstance(value, torch.memory_format):
        return {"memory_format": str(value).removeprefix("torch.")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ExportError("graph arguments made of tensors, numbers, dtypes and devices",
                      f"an argument of type {type(value).__name__}", "simplify the network's forward")


def _op_name(node: torch.fx.Node) -> str:
    """The full name of a node's operator (``aten.mul.Tensor``, ``operator.getitem``)."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}.{target._overloadname}"
    if getattr(target, "__module__", None) == "_operator":
        return f"operator.{target.__name__}"
    return repr(target)


def _target(node: torch.fx.Node) -> str:
    """The full name of a node's operator, checked against the loader's allowlist."""
    name = _op_name(node)
    if name not in _standalone.OPERATORS:
        raise ExportError(f"a graph of the operators an exported sampler may call "
                          f"(schedalg.sampling._standalone.ATEN_OPERATORS, {len(_standalone.OPERATORS)} in all)",
                          f"{name} in node {node.name!r}",
                          "write the network with common tensor operations, or ask for the operator to be "
                          "added to the allowlist (it must compute on tensors only)")
    return name


def _size(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None  # a symbolic size: the free batch size


def program_payload(program: "torch.export.ExportedProgram", meta: dict[str, Any],
                    names: list[str] | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The file's program JSON and its weights (name -> tensor) for an exported program.

    ``names`` renames the user inputs, in order (e.g. ``x, draws, <conditioning keys>``).
    Values are numbered: tensor inputs, then weights, then node results.
    """
    from torch.export.graph_signature import InputKind, OutputKind, TensorArgument

    env: dict[str, Any] = {}
    inputs, weight_specs = [], []
    for spec in program.graph_signature.input_specs:
        name = spec.arg.name
        if spec.kind == InputKind.USER_INPUT and not isinstance(spec.arg, TensorArgument):
            env[name] = _encode(spec.arg.value, {}, {})  # e.g. draws=None: a constant in the graph
        elif spec.kind == InputKind.USER_INPUT:
            label = names[len(inputs)] if names is not None and len(inputs) < len(names) else name
            inputs.append((name, label))
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            weight_specs.append((name, spec.target))
        else:
            raise ExportError("inputs that are tensors, parameters or buffers", f"{spec.kind} {name!r}", None)
    for spec in program.graph_signature.output_specs:
        if spec.kind != OutputKind.USER_OUTPUT:
            raise ExportError("a sampler that mutates no state", f"output {spec.kind}", None)
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    input_specs = []
    for index, (name, label) in enumerate(inputs):
        example = placeholders[name].meta["val"]
        env[name] = {"ref": index}
        input_specs.append({"name": label, "dtype": str(example.dtype).removeprefix("torch."),
                            "shape": [_size(s) for s in example.shape]})
    weights: dict[str, torch.Tensor] = {}
    for name, target in weight_specs:
        source = program.state_dict if target in program.state_dict else program.constants
        env[name] = {"ref": len(inputs) + len(weights)}
        weights[target] = source[target].detach()
    alias, kept = _simplify(program.graph)
    nodes, output = [], None
    for node in program.graph.nodes:
        if node.op == "call_function" and node in kept:
            nodes.append({"op": _target(node), "args": _encode(list(node.args), env, alias),
                          "kwargs": {k: _encode(v, env, alias) for k, v in node.kwargs.items()}})
            env[node.name] = {"ref": len(inputs) + len(weights) + len(nodes) - 1}
        elif node.op == "output":
            (result,) = node.args
            output = _encode(result[0] if isinstance(result, (list, tuple)) and len(result) == 1 else result,
                             env, alias)
        elif node.op not in ("placeholder", "call_function"):
            raise ExportError("a flat graph of operator calls", f"a {node.op!r} node", None)
    payload = {"inputs": input_specs, "weights": list(weights), "nodes": nodes, "output": output, "meta": meta}
    return payload, weights


def export_sampler(sampler: ExportableSampler, path: str | Path, example_noise: torch.Tensor, *,
                   dynamic_batch: bool = False, write_loader: bool = True, **cond: Any) -> Path:
    """Trace ``sampler`` on an example input and save it to ``path`` (a safetensors file).

    The loaded sampler is called like the sampler itself: ``loaded(noise, seed=...,
    **cond)`` gives ``sampler(noise, seed=..., **cond)``, bitwise on CPU; see
    :class:`schedalg.sampling._standalone.ExportedSampler`. Conditioning tensors ``cond``
    become keyword inputs. ``example_noise`` fixes shape and dtype (the batch size too,
    unless ``dynamic_batch``). With ``write_loader`` a copy of the torch-only loader is
    written beside the file as ``<stem>_loader.py``. Load with :func:`load_sampler`, or
    without schedalg by that loader's ``load(path)``.
    """
    if not isinstance(sampler, ExportableSampler):
        raise ExportError("a sampler (schedalg.sampling.Sampler, schedalg.flowmaps.FlowMapSampler, or any "
                          "schedalg.sampling.ExportableSampler)", type(sampler).__name__,
                          "build one with Sampler(denoiser, grid, solver)")
    if "scale_noise" in cond:  # an option of version 1, which fixed nothing in the file
        raise ExportError("export options path, example_noise, dynamic_batch, write_loader and conditioning "
                          "tensors", "scale_noise=", "drop it; the loaded sampler takes scale_noise=False at call "
                          "time, like the sampler")
    module = sampler.module().eval()
    x = sampler.initial_state(example_noise)
    draws = sampler.draws(x, seed=0)
    for key, value in cond.items():
        if not isinstance(value, torch.Tensor):
            raise ExportError("conditioning given as tensors (they become inputs of the exported program)",
                              f"{key}={type(value).__name__}", "pass tensors, or fix the value inside the network")
    args = (x, draws, dict(cond)) if cond else ((x,) if draws is None else (x, draws))
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1)
        dynamic_shapes = {"x": {0: batch}}
        if draws is not None or cond:
            dynamic_shapes["draws"] = None if draws is None else {1: batch}
        if cond:
            dynamic_shapes["cond"] = {k: {0: batch} for k in cond}
    try:
        with torch.no_grad():
            program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes, strict=False)
    except Exception as exc:  # noqa: BLE001 - report any tracing failure the same way
        raise ExportError("a denoiser whose call torch.export can trace (torch operations, no data-dependent "
                          "Python control flow)", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                          "make the network traceable, or export without dynamic_batch") from exc
    grid = sampler.grid
    names = ["x"] + ([] if draws is None else ["draws"]) + list(cond)
    meta = {"solver": sampler.method, "schedule": grid.schedule.name, "grid": grid.label,
            "times": [float(t) for t in grid.times.tolist()], "nfe": sampler.nfe,
            "noise_draws": sampler.noise_draws, "noise_stream": STREAM_STEPS, "start_scale": sampler.start_scale,
            "dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape),
            "dynamic_batch": bool(dynamic_batch)}
    payload, weights = program_payload(program, meta, names)
    try:
        path = _standalone.save(path, payload, weights)
    except _standalone.ExportError as exc:  # the written program did not pass the loader's checks
        raise ExportError(exc.expected, exc.got, exc.fix) from None
    if write_loader:
        path.with_name(f"{path.stem}_loader.py").write_bytes(Path(_standalone.__file__).read_bytes())
    return path


def load_sampler(path: str | Path, device: torch.device | str | None = None) -> torch.nn.Module:
    """Load an exported sampler, checked in full before anything runs (see :mod:`._standalone`).

    Returns an :class:`~schedalg.sampling._standalone.ExportedSampler`: call it as the
    sampler, ``loaded(noise, seed=..., **cond)``; ``loaded.sample_from_state(x, draws)``
    runs from an initial state. Every failure raises :class:`ExportError`.
    """
    return _standalone.load(path, device, error=ExportError)
