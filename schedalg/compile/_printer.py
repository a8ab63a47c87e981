"""Printers that write torch code: from SymPy expressions, and from cached expression trees.

A printer is a visitor: ``_print_<Class>`` returns the source text of one node. This
one extends SymPy's Python printer with torch calls, and prints the numerically stable
functions that :func:`stabilize` introduces (``expm1``, ``log1p``, ``exp2``, ``log2``)
as their torch counterparts, so that e.g. ``log(1 - exp(-x))`` is evaluated as
``log(-expm1(-x))`` without cancellation near ``x = 0``.

:class:`TreeSourceBuilder` writes the same kind of source from the allowlisted JSON trees
of the derivation cache (the module ``schedalg.symbolic._cache``) as :func:`schedalg.symbolic.decode_expr`
validates them, without building SymPy objects: every token comes from a fixed template, a
validated symbol name, ``repr`` of a number converted from a checked string, or the function
table below, never from the file's text.
"""

from __future__ import annotations

import keyword
from typing import Any

import sympy as sp
from sympy.codegen import cfunctions
from sympy.printing.pycode import PythonCodePrinter

from ..symbolic import CacheFormatError, CacheTreeBuilder, NumericFunction, stabilize

__all__ = ["TorchPrinter", "TreeSourceBuilder", "python_name", "stabilize"]


_TORCH_FUNCTIONS = {
    "exp": "torch.exp",
    "log": "torch.log",
    "expm1": "torch.expm1",
    "log1p": "torch.log1p",
    "exp2": "torch.exp2",
    "log2": "torch.log2",
    "sin": "torch.sin",
    "cos": "torch.cos",
    "tan": "torch.tan",
    "asin": "torch.asin",
    "acos": "torch.acos",
    "atan": "torch.atan",
    "sinh": "torch.sinh",
    "cosh": "torch.cosh",
    "tanh": "torch.tanh",
    "asinh": "torch.asinh",
    "acosh": "torch.acosh",
    "atanh": "torch.atanh",
    "erf": "torch.erf",
    "erfc": "torch.erfc",
    "Abs": "torch.abs",
    "sign": "torch.sign",
    "sqrt": "torch.sqrt",
    "Sqrt": "torch.sqrt",
}


class TorchPrinter(PythonCodePrinter):
    """Print SymPy expressions as torch source, collecting numeric callables it references."""

    printmethod = "_torchcode"

    def __init__(self, settings: dict | None = None):
        super().__init__(settings or {})
        self.namespace: dict[str, Any] = {}

    def _print_Function(self, expr):  # noqa: N802 - SymPy's visitor naming
        name = type(expr).__name__
        if isinstance(expr, NumericFunction):
            key = type(expr).torch_name()
            self.namespace[key] = type(expr).torch_impl
            return f"{key}({', '.join(self._print(a) for a in expr.args)})"
        if name in _TORCH_FUNCTIONS:
            return f"{_TORCH_FUNCTIONS[name]}({', '.join(self._print(a) for a in expr.args)})"
        raise NotImplementedError(
            f"schedalg cannot compile the function {name!r} to torch; "
            "write the schedule with exp/log/sqrt/trig functions, or subclass NumericFunction"
        )

    # sympy dispatches known classes to their own _print_ methods first
    for _name in _TORCH_FUNCTIONS:
        locals()[f"_print_{_name}"] = _print_Function
    del _name

    def _print_atan2(self, expr):  # noqa: N802
        return f"torch.atan2({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Max(self, expr):  # noqa: N802
        out = self._print(expr.args[0])
        for arg in expr.args[1:]:
            out = f"torch.maximum(torch.as_tensor({out}), torch.as_tensor({self._print(arg)}))"
        return out

    def _print_Min(self, expr):  # noqa: N802
        out = self._print(expr.args[0])
        for arg in expr.args[1:]:
            out = f"torch.minimum(torch.as_tensor({out}), torch.as_tensor({self._print(arg)}))"
        return out

    def _print_Piecewise(self, expr):  # noqa: N802
        # innermost default first; torch.where needs a tensor condition
        *pairs, last = expr.args
        if last.cond != sp.true:
            raise NotImplementedError("a Piecewise without a default branch cannot be compiled")
        out = self._print(last.expr)
        for value, cond in reversed(pairs):
            out = f"torch.where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, expr):  # noqa: N802
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        base, exponent = expr.as_base_exp()
        if exponent == sp.S.Half:
            return f"torch.sqrt({self._print(base)})"
        if exponent == -sp.S.Half:
            return f"torch.rsqrt({self._print(base)})"
        if exponent.is_Number and base.is_Number:
            return repr(float(expr))
        if base.is_Number and not exponent.is_Number:
            return f"torch.pow({float(base)!r}, {self._print(exponent)})"
        return f"({self._print(base)})**({self._print(exponent)})"

    def _print_Exp1(self, expr):  # noqa: N802
        return "math.e"

    def _print_Pi(self, expr):  # noqa: N802
        return "math.pi"

    def _print_Infinity(self, expr):  # noqa: N802
        return "math.inf"

    def _print_NegativeInfinity(self, expr):  # noqa: N802
        return "(-math.inf)"

    def _print_Integer(self, expr):  # noqa: N802
        # big integers (exact rationals from nsimplify) would overflow torch scalars
        return str(int(expr)) if abs(int(expr)) < 2**53 else repr(float(expr))

    def _print_Rational(self, expr):  # noqa: N802
        return repr(float(expr))

    def _print_Float(self, expr):  # noqa: N802
        return repr(float(expr))


# make the stable functions printable by name
for _cls in (cfunctions.expm1, cfunctions.log1p, cfunctions.exp2, cfunctions.log2, cfunctions.Sqrt):
    setattr(TorchPrinter, f"_print_{_cls.__name__}", TorchPrinter._print_Function)


def python_name(name: str) -> str:
    """A symbol's name as a Python identifier (``lambda`` -> ``lambda_``, as :class:`TorchPrinter`)."""
    return name + "_" if keyword.iskeyword(name) else name


class TreeSourceBuilder(CacheTreeBuilder):
    """Torch source text of a validated cache tree (a :class:`schedalg.symbolic.CacheTreeBuilder`).

    Every subexpression is parenthesised, so the text needs no precedence rules; numbers are
    printed as float64 literals (integers beyond 2^53 too, as :class:`TorchPrinter` does).
    ``names`` are the identifiers the expression may read (the function's arguments and the
    common subexpressions defined before it); any other symbol is refused.
    """

    def __init__(self, names: set[str]):
        self.names = names

    def symbol(self, name: str) -> str:
        if name not in self.names:
            raise CacheFormatError(f"symbol {name!r} not defined at this point")
        return python_name(name)

    def integer(self, value: int) -> str:
        return _Number(value, str(value) if abs(value) < 2**53 else repr(_as_float(value, 1)))

    def rational(self, p: int, q: int) -> str:
        value = _as_float(p, q)
        return _Number(value, repr(value))

    def float(self, value: float) -> str:
        return _Number(value, repr(value) if value == value and abs(value) != float("inf")
                       else {"nan": "math.nan", "inf": "math.inf", "-inf": "-math.inf"}[repr(value)])

    def constant(self, name: str) -> str:
        return _Number(None, {"pi": "math.pi", "E": "math.e", "oo": "math.inf", "-oo": "-math.inf"}[name])

    def node(self, head: str, children: list[str]) -> str:
        if head == "Add":
            return "(" + " + ".join(children) + ")"
        if head == "Mul":
            return "(" + "*".join(children) + ")"
        if head == "Pow":
            base, exponent = children
            value = getattr(exponent, "value", None)
            if value == 0.5:
                return f"torch.sqrt({base})"
            if value == -0.5:
                return f"torch.rsqrt({base})"
            if value == -1:
                return f"(1/{base})"
            if isinstance(base, _Number) and not isinstance(exponent, _Number):
                return f"torch.pow({base}, {exponent})"
            return f"({base}**{exponent})"
        if head in ("Max", "Min"):
            out = children[0]
            for child in children[1:]:
                out = f"torch.{'maximum' if head == 'Max' else 'minimum'}(torch.as_tensor({out}), torch.as_tensor({child}))"
            return out
        if head == "atan2" and len(children) == 2:
            return f"torch.atan2({children[0]}, {children[1]})"
        if head in _TORCH_FUNCTIONS and len(children) == 1:
            return f"{_TORCH_FUNCTIONS[head]}({children[0]})"
        raise CacheFormatError(f"no torch function for {head!r} with {len(children)} arguments")


def _as_float(p: int, q: int) -> float:
    """``p / q`` as a float64; a tree whose number does not fit one is malformed (no printer writes it)."""
    try:
        return p / q
    except OverflowError as exc:
        raise CacheFormatError(f"number {p}/{q} beyond float64") from exc


class _Number(str):
    """The parenthesised source text of a number or constant, with its float value (None for a constant)."""

    value: float | None

    def __new__(cls, value: float | None, text: str) -> "_Number":
        out = super().__new__(cls, f"({text})")
        out.value = value
        return out
