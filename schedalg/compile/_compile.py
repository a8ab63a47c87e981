"""SymPy expressions -> one torch function, with common-subexpression elimination.

``compile_exprs([e1, e2, ...], [t])`` writes the source of a Python function that
evaluates all expressions at once, sharing common subexpressions, and returns it as a
:class:`CompiledFunction`. The source is registered with ``linecache`` so tracebacks
show it, and is available as ``.source``. Results are cached per expression tuple:
compiling the same expressions again costs a dictionary lookup.

Evaluation calls torch only: no SymPy objects survive into the generated function.
"""

from __future__ import annotations

import itertools
import linecache
import math
import threading
from typing import Any, NamedTuple, Sequence

import sympy as sp
import torch

from ._printer import TorchPrinter, stabilize

__all__ = ["CompiledFunction", "compile_exprs", "clear_cache"]

_CACHE: dict[tuple, "CompiledFunction"] = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count()


class CompiledFunction:
    """A torch function of tensors, generated from SymPy expressions.

    Calling it with tensors returns a tuple of tensors (one per expression), each
    broadcast to the shape of the arguments and in their dtype and device. Python
    numbers are promoted to float64 tensors.
    """

    def __init__(self, exprs: tuple[sp.Expr, ...], args: tuple[sp.Symbol, ...], name: str,
                 prepared: "Prepared | None" = None):
        self.exprs = exprs
        self.args = args
        self.name = name
        self.prepared = prepared if prepared is not None else prepare(exprs, args)
        self.source, namespace = _generate_source(self.prepared, args, name)
        filename = f"<schedalg:{name}:{next(_COUNTER)}>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True), filename)
        code = compile(self.source, filename, "exec")
        exec(code, namespace)  # noqa: S102 - source generated above from SymPy trees
        self._fn = namespace[name]

    def __call__(self, *values: Any) -> tuple[torch.Tensor, ...]:
        tensors = [v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)
                   for v in values]
        return self._fn(*tensors)

    def __repr__(self) -> str:
        return f"CompiledFunction({self.name}, {len(self.exprs)} outputs)"


class Prepared(NamedTuple):
    """What the printer needs: common subexpressions ``(symbol, value)`` in order, the reduced
    outputs, and which outputs are constants (broadcast to the input's shape)."""

    replacements: list[tuple[sp.Symbol, sp.Expr]]
    reduced: list[sp.Expr]
    constant: list[bool]


def prepare(exprs: Sequence[sp.Expr], args: Sequence[sp.Symbol]) -> Prepared:
    """Stable forms (:func:`stabilize`), folded constants and common subexpressions of ``exprs``."""
    stable = [_fold_constants(stabilize(_fold_constants(sp.sympify(e, strict=True)))) for e in exprs]
    replacements, reduced = sp.cse(stable, optimizations="basic")
    # cse may factor constants back out (sqrt(3) from sqrt(3 a)): fold them again
    replacements = [(symbol, _fold_constants(value)) for symbol, value in replacements]
    reduced = [_fold_constants(expr) for expr in reduced]
    constant = [not (set(original.free_symbols) & set(args)) for original in stable]
    return Prepared(replacements, reduced, constant)


def _generate_source(prepared: Prepared, args: Sequence[sp.Symbol], name: str):
    printer = TorchPrinter()
    replacements, reduced, constant = prepared
    arg_names = [printer._print(a) for a in args]
    lines = [f"def {name}({', '.join(arg_names)}):"]
    for symbol, value in replacements:
        lines.append(f"    {printer._print(symbol)} = {printer._print(value)}")
    like = arg_names[0] if arg_names else None
    outs = []
    for is_constant, expr in zip(constant, reduced):
        text = printer._print(expr)
        if like is not None and is_constant:
            # a constant output still has the shape, dtype and device of the input
            text = f"torch.full_like({like}, {text})"
        elif like is not None and len(args) == 1:
            text = f"_broadcast({text}, {like})"
        outs.append(text)
    lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    namespace: dict[str, Any] = {"torch": torch, "math": math, "_broadcast": _broadcast}
    namespace.update(printer.namespace)
    return "\n".join(lines) + "\n", namespace


def _fold_constants(expr: sp.Expr) -> sp.Expr:
    """Replace constant subexpressions (``cos(pi/252)``, ``log(5000)``) by float64 values."""
    if not isinstance(expr, sp.Basic):
        return expr

    def constant(node: sp.Basic) -> bool:
        return (not node.is_Atom and not node.free_symbols and not node.atoms(sp.Symbol)
                and bool(node.is_real) and node.is_finite is not False)

    return expr.replace(constant, lambda node: sp.Float(sp.N(node, 20), 17))


def _broadcast(value: Any, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor) and value.shape == like.shape:
        return value
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(like).clone()


def compile_exprs(exprs: Sequence[sp.Expr], args: Sequence[sp.Symbol], name: str = "f") -> CompiledFunction:
    """Compile ``exprs`` (functions of ``args``) into one cached :class:`CompiledFunction`.

    Free symbols other than ``args`` must have been substituted before; an expression
    with leftover symbols raises ``ValueError`` naming them.
    """
    exprs = tuple(sp.sympify(e) for e in exprs)
    args = tuple(args)
    leftover = set().union(*(e.free_symbols for e in exprs)) - set(args) if exprs else set()
    if leftover:
        from ..errors import UnboundSymbolError

        raise UnboundSymbolError(
            f"expressions in {', '.join(map(str, args))} only",
            f"free symbols {sorted(map(str, leftover))}",
            "bind values to the parameters (Schedule.bind(...)) before compiling",
        )
    key = (tuple(sp.srepr(e) for e in exprs), tuple(sp.srepr(a) for a in args), name)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    compiled = CompiledFunction(exprs, args, name)
    with _LOCK:
        _CACHE.setdefault(key, compiled)
    return _CACHE[key]


def clear_cache() -> None:
    """Forget every compiled function (for cold-start timings)."""
    with _LOCK:
        _CACHE.clear()


def compile_cached(owner: Any, label: str, exprs: Any, args: Sequence[sp.Symbol], name: str) -> CompiledFunction:
    """:func:`compile_exprs` for quantities of a schedule, remembered in its derivation record.

    ``exprs()`` builds the expressions (called only when nothing valid is stored). The
    record (on disk: :mod:`schedalg.symbolic`'s derivation cache) keeps the prepared trees
    of :func:`prepare` as allowlisted JSON; the source is printed again from the decoded
    trees, never read from the file. Trees that do not decode are ignored and rebuilt.
    """
    from ..symbolic import CacheFormatError, derivation_record
    from ..symbolic import decode_expr as decode
    from ..symbolic import encode_expr as encode

    record = derivation_record(owner)
    if record.key is None:  # tabulated: nothing identifies the table, compile per object
        return compile_exprs(exprs(), args, name)
    stored = record.get("compiled", label)
    args = tuple(args)
    if isinstance(stored, dict):
        try:
            replacements = [(decode(["Symbol", s]), decode(v)) for s, v in stored["replacements"]]
            reduced = [decode(e) for e in stored["reduced"]]
            constant = [bool(c) for c in stored["constant"]]
            if not (len(constant) == len(reduced) and all(isinstance(s, sp.Symbol) for s, _ in replacements)):
                raise CacheFormatError("inconsistent lengths")
            prepared = Prepared(replacements, reduced, constant)
            allowed = set(args) | {s for s, _ in replacements}
            if any(e.free_symbols - allowed for e in reduced + [v for _, v in replacements]):
                raise CacheFormatError("unexpected symbols")
            key = ("record", label, record.key, name)
            with _LOCK:
                hit = _CACHE.get(key)
            if hit is None:
                hit = CompiledFunction(tuple(reduced), args, name, prepared)
                with _LOCK:
                    _CACHE.setdefault(key, hit)
            return _CACHE[key]
        except (CacheFormatError, KeyError, TypeError, ValueError):
            pass
    function = compile_exprs(exprs(), args, name)
    try:
        replacements, reduced, constant = function.prepared
        tree = {"replacements": [[s.name, encode(v)] for s, v in replacements],
                "reduced": [encode(e) for e in reduced], "constant": list(constant)}
    except CacheFormatError:
        return function
    record.put("compiled", label, tree)
    return function
