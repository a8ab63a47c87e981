"""SymPy expressions -> one torch function, with common-subexpression elimination.

``compile_exprs([e1, e2, ...], [t])`` writes the source of a Python function that
evaluates all expressions at once, sharing common subexpressions, and returns it as a
:class:`CompiledFunction`. The source is registered with ``linecache`` so tracebacks
show it, and is available as ``.source``. Results are cached per expression tuple:
compiling the same expressions again costs a dictionary lookup.

A schedule's quantities go through :func:`compile_cached`: their prepared expressions are
kept as allowlisted trees in the schedule's derivation record (on disk), and the function is
printed from those trees (:meth:`CompiledFunction.from_tree`), so a second process compiles
without building SymPy objects or running SymPy's printer (for VP-linear's ten quantities,
0.6 ms against 3 ms in a warmed-up process, and more in a fresh one).

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

from ..symbolic import CSE_NAME, CacheFormatError
from ..symbolic import decode_expr as decode
from ..symbolic import encode_expr as encode
from ._printer import TorchPrinter, TreeSourceBuilder, python_name, stabilize

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
        self._exprs = exprs
        self.args = args
        self.name = name
        self._prepared = prepared if prepared is not None else prepare(exprs, args)
        self._tree = None
        printer = TorchPrinter()
        replacements, reduced, constant = self._prepared
        source = _assemble(name, [printer._print(a) for a in args],
                           [(printer._print(symbol), printer._print(value)) for symbol, value in replacements],
                           [printer._print(e) for e in reduced], constant)
        self._load(source, printer.namespace)

    @classmethod
    def from_tree(cls, tree: dict, args: Sequence[sp.Symbol], name: str) -> "CompiledFunction":
        """The function of a prepared tree ``{"replacements": [[name, tree], ...], "reduced": [tree, ...],
        "constant": [bool, ...]}`` (the derivation cache's form of :class:`Prepared`), printed by
        :class:`TreeSourceBuilder` without building SymPy objects (they are decoded on demand:
        :attr:`exprs`, :attr:`prepared`). Raises :class:`CacheFormatError` for a malformed tree."""
        try:
            pairs = [(str(symbol), value) for symbol, value in tree["replacements"]]
            reduced, constant = list(tree["reduced"]), [bool(c) for c in tree["constant"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheFormatError(f"not a prepared tree ({exc})") from exc
        if len(constant) != len(reduced) or not reduced:
            raise CacheFormatError("inconsistent lengths")
        names = {a.name for a in args}
        lines = []
        for symbol, value in pairs:
            if not CSE_NAME.match(symbol) or symbol in names:
                raise CacheFormatError(f"bad subexpression name {symbol!r}")
            lines.append((symbol, decode(value, TreeSourceBuilder(names))))
            names = names | {symbol}
        outputs = [decode(e, TreeSourceBuilder(names)) for e in reduced]
        self = cls.__new__(cls)
        self._exprs = self._prepared = None
        self._tree = {"replacements": [[s, v] for s, v in pairs], "reduced": reduced, "constant": constant}
        self.args, self.name = tuple(args), name
        self._load(_assemble(name, [python_name(a.name) for a in args], lines, outputs, constant), {})
        return self

    def _load(self, source: str, extra: dict[str, Any]) -> None:
        self.source = source
        namespace: dict[str, Any] = {"torch": torch, "math": math, "_broadcast": _broadcast, **extra}
        filename = f"<schedalg:{self.name}:{next(_COUNTER)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = compile(source, filename, "exec")
        exec(code, namespace)  # noqa: S102 - source printed above from SymPy objects or validated trees
        self._fn = namespace[self.name]

    @property
    def prepared(self) -> "Prepared":
        """The :class:`Prepared` expressions the source was printed from."""
        if self._prepared is None:
            tree = self._tree
            self._prepared = Prepared([(sp.Symbol(s), decode(v)) for s, v in tree["replacements"]],
                                      [decode(e) for e in tree["reduced"]], list(tree["constant"]))
        return self._prepared

    @property
    def exprs(self) -> tuple[sp.Expr, ...]:
        """The expressions computed (for a function printed from a tree: the reduced outputs with the
        common subexpressions substituted back)."""
        if self._exprs is None:
            replacements, reduced, _ = self.prepared
            self._exprs = tuple(e.subs(list(reversed(replacements))) for e in reduced)
        return self._exprs

    def __call__(self, *values: Any) -> tuple[torch.Tensor, ...]:
        tensors = [v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)
                   for v in values]
        return self._fn(*tensors)

    def __repr__(self) -> str:
        count = len(self._tree["reduced"]) if self._tree is not None else len(self._exprs)
        return f"CompiledFunction({self.name}, {count} outputs)"


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


def _assemble(name: str, arg_names: Sequence[str], replacements: Sequence[tuple[str, str]],
              outputs: Sequence[str], constant: Sequence[bool]) -> str:
    """The source of ``def name(args)``: one line per common subexpression, then the outputs
    (constants broadcast to the first argument's shape, dtype and device)."""
    lines = [f"def {name}({', '.join(arg_names)}):"]
    lines += [f"    {symbol} = {value}" for symbol, value in replacements]
    like = arg_names[0] if arg_names else None
    outs = []
    for is_constant, text in zip(constant, outputs):
        if like is not None and is_constant:
            # a constant output still has the shape, dtype and device of the input
            text = f"torch.full_like({like}, {text})"
        elif like is not None and len(arg_names) == 1:
            text = f"_broadcast({text}, {like})"
        outs.append(text)
    lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    return "\n".join(lines) + "\n"


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


#: What printing a tree may raise: a node outside the allowlist, or a tree nested beyond Python's
#: recursion or the parser's parenthesis limit.
_UNPRINTABLE = (CacheFormatError, RecursionError, SyntaxError, MemoryError)


def compile_cached(owner: Any, label: str, exprs: Any, args: Sequence[sp.Symbol], name: str) -> CompiledFunction:
    """:func:`compile_exprs` for quantities of a schedule, remembered in its derivation record.

    ``exprs()`` builds the expressions (called only when nothing valid is stored). The
    record (on disk: :mod:`schedalg.symbolic`'s derivation cache) keeps the prepared trees
    of :func:`prepare` as allowlisted JSON, and the function is printed from those trees
    (:meth:`CompiledFunction.from_tree`) whether they were just made or read back, so a warm
    process builds no SymPy object and gets the same source as the cold one; nothing read
    from the file is executed. Trees that do not validate are ignored and rebuilt.
    """
    from ..symbolic import derivation_record

    record = derivation_record(owner)
    if record.key is None:  # tabulated: nothing identifies the table, compile per object
        return compile_exprs(exprs(), args, name)
    args = tuple(args)
    key = ("record", label, record.key, name)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    stored = record.get("compiled", label)
    function = None
    if isinstance(stored, dict):
        try:
            function = CompiledFunction.from_tree(stored, args, name)
        except _UNPRINTABLE:
            function = None
    if function is None:
        built = tuple(sp.sympify(e) for e in exprs())
        prepared = prepare(built, args)
        replacements, reduced, constant = prepared
        try:
            tree = {"replacements": [[s.name, encode(v)] for s, v in replacements],
                    "reduced": [encode(e) for e in reduced], "constant": list(constant)}
            function = CompiledFunction.from_tree(tree, args, name)
        except _UNPRINTABLE:  # outside the allowlist (e.g. Piecewise), or too deep: printed from SymPy, not stored
            function = CompiledFunction(built, args, name, prepared)
        else:
            record.put("compiled", label, tree)
    with _LOCK:
        _CACHE.setdefault(key, function)
        return _CACHE[key]
