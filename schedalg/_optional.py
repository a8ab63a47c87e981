"""Lazy import of optional dependencies with a message that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import OptionalDependencyError

# module name -> pip requirement that provides it
_PIP_NAMES = {
    "diffusers": "diffusers",
    "flow_matching": "flow_matching",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "torchdiffeq": "torchdiffeq",
    "torchsde": "torchsde",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`OptionalDependencyError` naming the pip package.

    ``purpose`` completes the sentence "... is needed for <purpose>".
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised with monkeypatched imports
        pip_name = _PIP_NAMES.get(module.split(".")[0], module.split(".")[0])
        raise OptionalDependencyError(
            f"the optional package {module!r} is needed for {purpose}, but it is not installed. "
            f"Fix: pip install {pip_name}  (or pip install 'schedalg[all]')"
        ) from exc
