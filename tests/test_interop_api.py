"""The public names of schedalg.interop and of the model wrappers import and carry docstrings."""

from __future__ import annotations

import inspect

import pytest

import schedalg as sa
import schedalg.interop
import schedalg.models

NAMES = [("interop", name) for name in schedalg.interop.__all__] + [
    ("models", name) for name in ("NetworkDenoiser", "PreparedNetwork", "NetworkOutputError")]


@pytest.mark.parametrize("package, name", NAMES)
def test_public_name_has_a_docstring(package, name):
    obj = getattr(getattr(sa, package), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert inspect.getdoc(obj), f"schedalg.{package}.{name} has no docstring"


def test_interop_imports_no_peer_library_eagerly():
    import subprocess
    import sys

    code = ("import sys, schedalg, schedalg.interop; "
            "print(sorted(m for m in ('diffusers', 'k_diffusion', '_schedalg_kdiffusion') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
