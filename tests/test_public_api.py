"""Every public name imports and documents itself."""

import importlib
import inspect

import pytest

import schedalg

PACKAGES = ["schedalg", "schedalg.symbolic", "schedalg.compile", "schedalg.schedules", "schedalg.models",
            "schedalg.denoisers", "schedalg.errors"]
OPTIONAL_PACKAGES = ["schedalg.sampling", "schedalg.interop", "schedalg.augmented", "schedalg.lazy",
                     "schedalg.geometry", "schedalg.datasets", "schedalg.flowmaps", "schedalg.ot", "schedalg.distributed",
                     "schedalg.testing", "schedalg.plot"]


def _public(module_name):
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", []):
        yield module_name, name, getattr(module, name)


@pytest.mark.parametrize("module_name", PACKAGES + [m for m in OPTIONAL_PACKAGES
                                                    if importlib.util.find_spec(m) is not None])
def test_public_names_import_and_have_docstrings(module_name):
    for _, name, obj in _public(module_name):
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


def test_py_typed_marker():
    import pathlib

    assert (pathlib.Path(schedalg.__file__).parent / "py.typed").exists()


def test_design_public_face():
    import sympy as sp
    import torch

    import schedalg as sa

    t = sa.t
    cosine = sa.Schedule(alpha=sp.cos(sp.pi * t / 2), sigma=sp.sin(sp.pi * t / 2))
    assert isinstance(cosine.log_snr, sp.Expr)
    num = cosine.compile()
    tt = torch.tensor([0.25], dtype=torch.float32)
    assert num.alpha(tt).dtype == torch.float32


def test_import_pulls_in_no_optional_package():
    """diffusers, k-diffusion, flow_matching, sklearn, matplotlib load only when a feature needs them.

    (tqdm is not checked: torch itself imports it when it is installed.)"""
    import subprocess
    import sys

    code = ("import sys, schedalg; bad = [m for m in ('diffusers', 'k_diffusion', 'flow_matching', 'sklearn', "
            "'matplotlib', 'torchdiffeq', 'torchsde') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_optional_package_gives_install_hint(monkeypatch):
    import builtins

    from schedalg._optional import require
    from schedalg.errors import OptionalDependencyError

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.delitem(__import__("sys").modules, "matplotlib", raising=False)
    with pytest.raises(OptionalDependencyError, match="pip install matplotlib"):
        require("matplotlib", "plots")
