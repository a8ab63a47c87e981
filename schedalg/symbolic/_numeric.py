"""SymPy functions whose values are computed numerically.

A tabulated schedule (a table of betas or ``alphas_cumprod``) has no closed form, yet
it should take part in the same derivations as a symbolic one: ``alpha = sqrt(sigmoid
(Lambda(t)))`` differentiates by the chain rule like any expression. ``Lambda`` is then a
:class:`NumericFunction`: SymPy treats it as an opaque function of ``t``, ``fdiff``
returns another numeric function (its derivative), and the compile layer calls
``torch_impl`` (float64 tensors in and out) where the expression is evaluated.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import sympy as sp

__all__ = ["NumericFunction", "numpy_namespace"]


class NumericFunction(sp.Function):
    """Base class of numerically evaluated SymPy functions.

    Subclasses (made by :func:`schedalg.schedules.tabulated`) set ``torch_impl`` and, for
    differentiation, ``derivative`` (another subclass).
    """

    torch_impl: Callable[..., Any]
    derivative: type["NumericFunction"] | None = None
    is_real = True

    def fdiff(self, argindex=1):
        if self.derivative is None:
            raise NotImplementedError(f"{type(self).__name__} has no derivative")
        return self.derivative(*self.args)

    @classmethod
    def torch_name(cls) -> str:
        return f"_fn_{cls.__name__}"


def numpy_namespace(*exprs: sp.Expr) -> dict[str, Callable[..., Any]]:
    """A ``lambdify`` module dict evaluating the numeric functions in ``exprs`` with numpy."""
    names: dict[str, Callable[..., Any]] = {}
    for expr in exprs:
        for fn in sp.sympify(expr).atoms(sp.Function):
            cls = type(fn)
            if isinstance(fn, NumericFunction) and cls.__name__ not in names:
                names[cls.__name__] = _numpy_wrapper(cls.torch_impl)
    return names


def _numpy_wrapper(impl: Callable[..., Any]) -> Callable[..., Any]:
    def call(x):
        import torch  # the implementation is torch code; only called for numeric checks

        return impl(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()

    return call
