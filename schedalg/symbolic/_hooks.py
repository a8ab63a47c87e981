"""Where the symbolic layer finds its numeric (torch) view without importing it.

``Schedule.compile()`` and ``Conversion.compile()`` belong to the symbolic objects, but
the torch code lives in :mod:`schedalg.compile`, the layer above. That layer registers
its compilers here when it is imported (:func:`register_compiler`); the symbolic layer
never imports it (``import schedalg.symbolic`` loads no torch, and the two layers form
no import cycle). A compiler asked for before the layer was imported loads it by name.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["register_compiler", "compiler"]

_COMPILERS: dict[str, Callable[[Any], Any]] = {}

#: The package that registers the compilers.
NUMERIC_LAYER = "schedalg.compile"


def register_compiler(kind: str, function: Callable[[Any], Any]) -> None:
    """Register ``function`` as the numeric view of ``kind``: ``"schedule"`` and ``"conversion"``
    (``function(obj)`` compiles), ``"diffusion"`` (``function(diffusion, t)`` evaluates)."""
    _COMPILERS[kind] = function


def compiler(kind: str) -> Callable[[Any], Any]:
    """The registered compiler of ``kind``, loading the numeric layer first if needed."""
    if kind not in _COMPILERS:
        importlib.import_module(NUMERIC_LAYER)
    return _COMPILERS[kind]
