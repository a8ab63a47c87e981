"""Export a planned sampler as a file that runs with torch alone.

:class:`SamplerModule` is a ``torch.nn.Module`` whose ``forward(x, draws=None, **cond)``
executes the same program as :class:`Sampler` (:meth:`Program.run`: the same tensor operations,
the program's weights as constants) from an initial state ``x`` (already scaled, see
:meth:`Sampler.initial_state`), with the stochastic solvers' draws ``(K, B, ...)`` as an
input. :func:`export_sampler` traces it with ``torch.export`` (steps unrolled into one
ATen graph; network weights and prepared tables become tensors of the program) and
stores the graph as plain containers with ``torch.save``. ``torch.export.save`` files
are not used because loading them imports SymPy; the file written here loads with
``torch.load(weights_only=True)`` (no arbitrary pickle) and runs through the small
torch-only interpreter in :mod:`schedalg.sampling._standalone`, which imports neither
schedalg nor SymPy and is copied beside the exported file. The loaded module gives
bitwise the same samples as the sampler on CPU and can be passed to ``torch.compile``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ._errors import ExportError
from ._sampler import Sampler, SamplerModule
from ._standalone import FORMAT, load

__all__ = ["export_sampler", "load_sampler", "program_payload"]


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
        name = _target(node)
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


def _encode(value: Any, alias: dict[str, str] | None = None) -> Any:
    """A graph argument as plain containers (node references, dtypes and devices tagged)."""
    if isinstance(value, torch.fx.Node):
        return {"node": (alias or {}).get(value.name, value.name)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, alias) for v in value]
        return items if isinstance(value, list) else {"tuple": items}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, torch.layout):
        return {"layout": str(value).removeprefix("torch.")}
    if isinstance(value, torch.memory_format):
        return {"memory_format": str(value).removeprefix("torch.")}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ExportError("graph arguments made of tensors, numbers, dtypes and devices",
                      f"an argument of type {type(value).__name__}", "simplify the network's forward")


def _target(node: torch.fx.Node) -> str:
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        namespace = target.namespace
        return f"{namespace}.{target._opname}.{target._overloadname}"
    if getattr(target, "__module__", None) == "_operator":
        return f"operator.{target.__name__}"
    raise ExportError("a graph of torch operators", f"the call target {target!r} in node {node.name!r}",
                      "make the network traceable by torch.export without custom Python calls")


def program_payload(program: "torch.export.ExportedProgram", meta: dict[str, Any],
                    names: list[str] | None = None) -> dict[str, Any]:
    """The plain-container form of an exported program (see :mod:`schedalg.sampling._standalone`).

    ``names`` renames the user inputs, in order (e.g. ``x, draws, <conditioning keys>``).
    """
    from torch.export.graph_signature import InputKind, OutputKind, TensorArgument

    specs = program.graph_signature.input_specs
    placeholders, inputs, state = [], [], {}
    for spec in specs:
        name = spec.arg.name
        if spec.kind == InputKind.USER_INPUT and not isinstance(spec.arg, TensorArgument):
            placeholders.append([name, "constant", _encode(spec.arg.value)])  # e.g. draws=None
        elif spec.kind == InputKind.USER_INPUT:
            label = names[len(inputs)] if names is not None and len(inputs) < len(names) else name
            placeholders.append([name, "input", label])
            inputs.append(label)
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            source = program.state_dict if spec.target in program.state_dict else program.constants
            state[spec.target] = source[spec.target].detach().clone()
            placeholders.append([name, "state", spec.target])
        else:
            raise ExportError("inputs that are tensors, parameters or buffers", f"{spec.kind} {name!r}", None)
    for spec in program.graph_signature.output_specs:
        if spec.kind != OutputKind.USER_OUTPUT:
            raise ExportError("a sampler that mutates no state", f"output {spec.kind}", None)
    alias, kept = _simplify(program.graph)
    nodes, output = [], None
    for node in program.graph.nodes:
        if node.op == "call_function" and node in kept:
            nodes.append([node.name, _target(node), _encode(list(node.args), alias),
                          {k: _encode(v, alias) for k, v in node.kwargs.items()}])
        elif node.op == "output":
            (result,) = node.args
            output = _encode(result[0] if isinstance(result, (list, tuple)) and len(result) == 1 else result, alias)
        elif node.op not in ("placeholder", "call_function"):
            raise ExportError("a flat graph of operator calls", f"a {node.op!r} node", None)
    return {"format": FORMAT, "inputs": inputs, "state": state, "placeholders": placeholders,
            "nodes": nodes, "output": output, "meta": meta}


def export_sampler(sampler: Sampler, path: str | Path, example_noise: torch.Tensor, *,
                   scale_noise: bool = True, dynamic_batch: bool = False, write_loader: bool = True,
                   **cond: Any) -> Path:
    """Trace ``sampler`` on an example input and save it to ``path`` (a torch-only file).

    The program's inputs are the initial state ``x`` (``Sampler.initial_state(noise)``)
    and, for stochastic solvers, the draws ``(K, B, ...)``, then the conditioning tensors
    ``cond`` by keyword (``loaded(x, draws, label=...)``).
    ``example_noise`` fixes shape and dtype (the batch size too, unless
    ``dynamic_batch``). With ``write_loader`` a copy of the torch-only loader is written
    beside it as ``<stem>_loader.py``. Load with :func:`load_sampler`, or without
    schedalg by that loader's ``load(path)``.
    """
    if not isinstance(sampler, Sampler):
        raise ExportError("a schedalg.sampling.Sampler", type(sampler).__name__,
                          "build one with Sampler(denoiser, grid, solver)")
    module = sampler.module().eval()
    x = sampler.initial_state(example_noise, scale_noise)
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
    meta = {"solver": sampler.solver.name, "schedule": grid.schedule.name, "grid": grid.label,
            "times": grid.times.clone(), "nfe": sampler.nfe, "noise_draws": sampler.plan.noise_draws,
            "start_scale": sampler.start_scale, "dtype": str(x.dtype).removeprefix("torch."),
            "shape": list(x.shape), "dynamic_batch": bool(dynamic_batch)}
    path = Path(path)
    torch.save(program_payload(program, meta, names), str(path))
    if write_loader:
        loader = Path(__file__).with_name("_standalone.py")
        path.with_name(f"{path.stem}_loader.py").write_text(loader.read_text())
    return path


def load_sampler(path: str | Path, device: torch.device | str | None = None) -> torch.nn.Module:
    """Load an exported sampler: a module ``(x, draws=None, **cond) -> sample`` (torch only)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError("an exported sampler file", f"{str(path)!r} does not exist", None)
    try:
        return load(str(path), device=device)
    except Exception as exc:  # noqa: BLE001
        raise ExportError("a file written by schedalg.sampling.export_sampler",
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
                          None) from exc
