"""A SymPy printer that writes torch code.

A printer is a visitor: ``_print_<Class>`` returns the source text of one node. This
one extends SymPy's Python printer with torch calls, and prints the numerically stable
functions that :func:`stabilize` introduces (``expm1``, ``log1p``, ``exp2``, ``log2``)
as their torch counterparts, so that e.g. ``log(1 - exp(-x))`` is evaluated as
``log(-expm1(-x))`` without cancellation near ``x = 0``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.codegen import cfunctions
from sympy.printing.pycode import PythonCodePrinter

from ..symbolic import NumericFunction, stabilize

__all__ = ["TorchPrinter", "stabilize"]


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
