"""Run an exported schedalg sampler with torch alone.

This file imports nothing but torch and the standard library, so it can be copied
next to an exported sampler and used where schedalg and SymPy are not installed
(``export_sampler`` writes a copy beside the file it exports)::

    from schedalg_sampler_loader import load   # this file, under any name
    sampler = load("sampler.pt")                # a torch.nn.Module
    x = sampler(noise)                          # deterministic solvers
    x = sampler(noise, draws)                   # stochastic: draws (K, B, ...)

File format (``torch.save`` of plain containers, read with ``weights_only=True``: no
arbitrary pickle): ``format``, ``inputs`` (user input names in call order), ``state``
(name -> tensor: network weights and constant tables), ``placeholders`` (graph input
name -> ``["state", key]``, ``["input", name]`` or ``["constant", value]``), ``nodes`` (``[name, target, args,
kwargs]`` of an ATen graph traced by ``torch.export``, in execution order), ``output``
and ``meta``. Each node calls ``torch.ops.<namespace>.<op>.<overload>`` (or one of a few
``operator`` functions on sizes), so the loaded sampler runs exactly the tensor
operations the in-library sampler ran, and ``torch.compile`` can trace it.
"""

from __future__ import annotations

import operator
from typing import Any

import torch

__all__ = ["FORMAT", "load", "ExportedSampler"]

FORMAT = "schedalg.sampler/1"

_OPERATORS = {name: getattr(operator, name) for name in
              ("add", "sub", "mul", "floordiv", "truediv", "mod", "neg", "getitem", "ge", "gt", "le", "lt",
               "eq", "ne", "and_", "or_", "pow")}


def _resolve(target: str):
    namespace, _, rest = target.partition(".")
    if namespace == "operator":
        if rest not in _OPERATORS:
            raise ValueError(f"expected a supported operator target; got {target!r}.")
        return _OPERATORS[rest]
    op_name, _, overload = rest.partition(".")
    try:
        return getattr(getattr(getattr(torch.ops, namespace), op_name), overload or "default")
    except AttributeError as exc:
        raise ValueError(f"expected a torch operator available in this torch build; got {target!r}. "
                         "Fix: load the sampler with the torch version that exported it (or newer).") from exc


def _static(value: Any, device: torch.device | None) -> Any:
    """Decode a value that holds no node reference (tags -> dtypes, devices, tuples)."""
    if isinstance(value, list):
        return [_static(v, device) for v in value]
    if isinstance(value, dict):
        (tag, payload), = value.items()
        if tag == "tuple":
            return tuple(_static(v, device) for v in payload)
        if tag in ("dtype", "layout", "memory_format"):
            return getattr(torch, payload)
        if tag == "device":
            return device if device is not None else torch.device(payload)
        raise ValueError(f"expected a known argument tag; got {tag!r}.")
    return value


class _Program:
    """Writes the graph as the source of one Python function, to run it without interpretation.

    The source holds only generated identifiers: ``t<k>`` for values, ``f<k>`` for the
    operators (resolved by :func:`_resolve` from the ``torch.ops`` namespace) and ``c<k>``
    for constants (decoded from the file's plain containers); no text read from the file is
    ever placed in the source, so compiling it cannot run code the file supplies.
    Values are deleted after their last use, so memory is reused as in eager mode.
    """

    def __init__(self, device: torch.device | None):
        self.device = device
        self.namespace: dict[str, Any] = {}
        self.slots: dict[str, str] = {}
        self._functions: dict[str, str] = {}

    def constant(self, value: Any) -> str:
        name = f"c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def function(self, target: str) -> str:
        if target not in self._functions:
            name = f"f{len(self.namespace)}"
            self.namespace[name] = _resolve(target)
            self._functions[target] = name
        return self._functions[target]

    def value(self, node: str) -> str:
        if node not in self.slots:
            self.slots[node] = f"t{len(self.slots)}"
        return self.slots[node]

    def expression(self, value: Any, used: list[str]) -> str:
        """Source of an argument: node references as value names, everything else as constants."""
        if isinstance(value, list):
            return "[" + ", ".join(self.expression(v, used) for v in value) + "]"
        if isinstance(value, dict):
            (tag, payload), = value.items()
            if tag == "node":
                if payload not in self.slots:
                    raise ValueError(f"expected nodes in execution order; {payload!r} is used before it is made.")
                name = self.slots[payload]
                if name.startswith("t"):  # values, not load-time constants, are freed after their last use
                    used.append(name)
                return name
            if tag == "tuple":
                return "(" + "".join(self.expression(v, used) + ", " for v in payload) + ")"
        return self.constant(_static(value, self.device))


def _compile(payload: dict, device: torch.device | None) -> tuple[Any, list[tuple[str, str]]]:
    """The program as a Python function of its placeholders, and their ``(kind, key)`` in order."""
    program = _Program(device)
    order, parameters = [], []
    for name, kind, key in payload["placeholders"]:
        if kind == "constant":  # a fixed non-tensor input (e.g. no draws), bound at load time
            program.slots[name] = program.constant(_static(key, device))
            continue
        if kind not in ("state", "input"):
            raise ValueError(f"expected placeholders of kind 'state', 'input' or 'constant'; got {kind!r}.")
        parameters.append(program.value(name))
        order.append((kind, key))
    lines: list[tuple[str, list[str]]] = []
    for name, target, args, kwargs in payload["nodes"]:
        used: list[str] = []
        call = [program.expression(v, used) for v in args]
        for key, value in kwargs.items():
            if not (isinstance(key, str) and key.isidentifier()):
                raise ValueError(f"expected keyword names that are identifiers; got {key!r}.")
            call.append(f"{key}=" + program.expression(value, used))
        lines.append((f"    {program.value(name)} = {program.function(target)}({', '.join(call)})", used))
    returned: list[str] = []
    result = program.expression(payload["output"], returned)
    last_use: dict[str, int] = {}
    for index, (_, used) in enumerate(lines):
        for value in used:
            last_use[value] = index
    body = []
    for index, (line, used) in enumerate(lines):
        body.append(line)
        dead = sorted({v for v in used if last_use[v] == index and v not in returned})
        if dead:
            body.append(f"    del {', '.join(dead)}")
    source = "def program(" + ", ".join(parameters) + "):\n" + "\n".join(body) + f"\n    return {result}\n"
    namespace = dict(program.namespace)
    exec(compile(source, "<schedalg exported sampler>", "exec"), namespace)  # noqa: S102 - generated names only
    program_fn = namespace["program"]
    program_fn.source = source
    return program_fn, order


class ExportedSampler(torch.nn.Module):
    """An exported sampling program: ``forward(x, draws=None, **cond)`` returns the sample."""

    def __init__(self, payload: dict, device: torch.device | str | None = None):
        super().__init__()
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"expected a schedalg sampler file (format {FORMAT!r}); got {got!r}.")
        self.meta = dict(payload.get("meta", {}))
        self.input_names = list(payload["inputs"])
        device = torch.device(device) if device is not None else None
        buffers = {}
        for index, (key, tensor) in enumerate(payload["state"].items()):
            buffers[key] = f"state_{index}"
            self.register_buffer(buffers[key], tensor.to(device) if device is not None else tensor)
        self._program, order = _compile(payload, device)
        self._order = [(kind, buffers[key] if kind == "state" else key) for kind, key in order]

    @property
    def source(self) -> str:
        """The generated Python source of the program (for inspection)."""
        return self._program.source

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        given = dict(zip(self.input_names, args))
        given.update(kwargs)
        missing = [key for kind, key in self._order if kind == "input" and given.get(key) is None]
        if missing:
            raise TypeError(f"expected the inputs {self.input_names}; missing {missing}.")
        return self._program(*(getattr(self, key) if kind == "state" else given[key] for kind, key in self._order))


def load(path: str, device: torch.device | str | None = None) -> ExportedSampler:
    """Load an exported sampler (``weights_only`` torch file); ``device`` moves it (default: as exported)."""
    payload = torch.load(path, map_location=device or "cpu", weights_only=True)
    return ExportedSampler(payload, device=device)
