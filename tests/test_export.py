"""Exported samplers: torch-only files, bitwise round trips, a fresh process without schedalg/SymPy.

(Safety of loading untrusted or damaged files: tests/test_export_safety.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.flowmaps import FlowMapSampler, gaussian_flow_map
from schedalg.models import NetworkDenoiser
from schedalg.sampling import (SOLVERS, ExportError, Sampler, TimeGrid, export_sampler, load_sampler,
                               per_sample_normal)
from schedalg.sampling import _standalone


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def _network_sampler(solver: str, steps: int = 4) -> Sampler:
    schedule = sa.schedules.linear()
    denoiser = NetworkDenoiser(_Mlp(), schedule, prediction="velocity")
    return Sampler(denoiser, TimeGrid.uniform(schedule, steps, t_start=0.05, t_end=0.95), solver)


def _run(sampler: Sampler, noise: torch.Tensor, seed: int = 3):
    x = sampler.initial_state(noise)
    draws = sampler.draws(x, seed=seed)
    return x, draws, sampler(noise, seed=seed)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_exported_sampler_is_bitwise_identical_on_cpu(solver, tmp_path):
    """One calling convention: ``loaded(noise, seed=s)`` is ``sampler(noise, seed=s)``, bitwise."""
    sampler = _network_sampler(solver)
    noise = per_sample_normal((5, 2), 0)
    path = export_sampler(sampler, tmp_path / "sampler.safetensors", noise)
    x, draws, expected = _run(sampler, noise)
    loaded = load_sampler(path)
    assert torch.equal(loaded(noise, seed=3), expected)
    assert torch.equal(loaded.sample_from_state(x, draws), expected)  # the graph itself, from the state
    assert loaded.meta["solver"] == solver and loaded.meta["nfe"] == sampler.nfe


FRESH_PROCESS = textwrap.dedent('''
    import importlib.util, sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("schedalg", "sympy"):
                raise ImportError("blocked: " + name)
            return None
    sys.meta_path.insert(0, Block())
    import torch
    for name in ("schedalg", "sympy"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(name + " is importable: the test would prove nothing")
    for case in sys.argv[1:]:
        spec = importlib.util.spec_from_file_location("loader_" + case, case + "/sampler_loader.py")
        loader = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loader)
        sampler = loader.load(case + "/sampler.safetensors")
        inputs = torch.load(case + "/inputs.pt", weights_only=True)
        out = sampler(inputs["noise"], seed=3)
        print("BITWISE" if torch.equal(out, inputs["expected"]) else "DIFFERENT")
    assert "sympy" not in sys.modules and "schedalg" not in sys.modules
''')


def test_fresh_process_without_schedalg_or_sympy_gives_the_same_samples(tmp_path):
    """A deterministic network sampler, a stochastic converted point-mass sampler and a flow map's jumps
    on another schedule's grid (the exact Gaussian map, converted), loaded by the
    torch-only loader in a process where importing schedalg or SymPy fails."""
    grid = TimeGrid.uniform(sa.schedules.brownian_bridge(), 6, t_end=0.95)
    cases = {"network_dpmpp_2m": _network_sampler("dpmpp_2m", steps=6),
             "converted_euler_maruyama": Sampler(GaussianDenoiser(sa.schedules.linear(), 0.3, 0.5), grid,
                                                 "euler_maruyama"),
             "converted_flow_map": FlowMapSampler(gaussian_flow_map(sa.schedules.linear(), 0.3, 0.5),
                                                  TimeGrid.uniform(sa.schedules.cosine(), 3, t_start=0.99,
                                                                   t_end=0.01))}
    noise = per_sample_normal((4, 2), 1)
    for name, sampler in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        export_sampler(sampler, folder / "sampler.safetensors", noise)
        # the shipped loader is the library's own loader, byte for byte (no drift)
        assert (folder / "sampler_loader.py").read_bytes() == Path(_standalone.__file__).read_bytes()
        torch.save({"noise": noise, "expected": sampler(noise, seed=3)}, folder / "inputs.pt")
    script = tmp_path / "run.py"
    script.write_text(FRESH_PROCESS)
    result = subprocess.run([sys.executable, str(script), *cases], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["BITWISE"] * 3


def test_torch_compile_runs_the_loaded_sampler(tmp_path):
    sampler = _network_sampler("heun")
    noise = per_sample_normal((3, 2), 0)
    loaded = load_sampler(export_sampler(sampler, tmp_path / "s.safetensors", noise))
    x, _, expected = _run(sampler, noise)
    compiled = torch.compile(loaded, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(noise), expected)
    stochastic = _network_sampler("euler_maruyama")
    loaded = load_sampler(export_sampler(stochastic, tmp_path / "m.safetensors", noise))
    x, draws, expected = _run(stochastic, noise)
    compiled = torch.compile(loaded.sample_from_state, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, loaded.draws(x, seed=3)), expected)


def test_dynamic_batch_export_runs_other_batch_sizes(tmp_path):
    sampler = _network_sampler("ancestral")
    path = export_sampler(sampler, tmp_path / "s.safetensors", per_sample_normal((4, 2), 0), dynamic_batch=True)
    loaded = load_sampler(path)
    noise = per_sample_normal((7, 2), 2)
    x, draws, expected = _run(sampler, noise)
    assert torch.equal(loaded(noise, seed=3), expected)


def test_export_and_load_errors(tmp_path):
    with pytest.raises(ExportError, match="Sampler"):
        export_sampler("sampler", tmp_path / "x.safetensors", torch.zeros(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="not a file"):
        load_sampler(tmp_path / "missing.safetensors")


def test_untraceable_networks_are_reported(tmp_path):
    schedule = sa.schedules.linear()

    def branching(x, t):
        if bool(x.sum() > 0):  # data-dependent Python control flow
            return x
        return -x

    sampler = Sampler(NetworkDenoiser(branching, schedule, prediction="x0"),
                      TimeGrid.uniform(schedule, 2, t_start=0.1, t_end=0.9), "euler")
    with pytest.raises(ExportError, match="torch.export can trace"):
        export_sampler(sampler, tmp_path / "x.safetensors", torch.randn(2, 2), dynamic_batch=True)


class _Conditional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.layer = torch.nn.Linear(4, 2)

    def forward(self, x, t, label):
        return self.layer(torch.cat([x, t[:, None].to(x.dtype), label[:, None].to(x.dtype)], dim=1))


@pytest.mark.parametrize("solver", ["dpmpp_2m", "euler_maruyama"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_conditioning_tensors_become_keyword_inputs(solver, dynamic, tmp_path):
    schedule = sa.schedules.linear()
    options = {"diffusion": 0.1} if solver == "euler_maruyama" else {}
    sampler = Sampler(NetworkDenoiser(_Conditional(), schedule, prediction="velocity"),
                      TimeGrid.uniform(schedule, 3), solver, **options)
    noise, label = per_sample_normal((3, 2), 0), torch.tensor([0.0, 1.0, 2.0])
    loaded = load_sampler(export_sampler(sampler, tmp_path / "c.safetensors", noise, dynamic_batch=dynamic,
                                         label=label))
    assert loaded.input_names[-1] == "label"
    if dynamic:
        noise, label = per_sample_normal((5, 2), 1), torch.arange(5.0)
    assert torch.equal(loaded(noise, seed=2, label=label), sampler(noise, seed=2, label=label))


def test_non_tensor_conditioning_cannot_be_exported(tmp_path):
    schedule = sa.schedules.linear()
    sampler = Sampler(NetworkDenoiser(_Conditional(), schedule, prediction="velocity"), TimeGrid.uniform(schedule, 2),
                      "euler")
    with pytest.raises(ExportError, match="tensors"):
        export_sampler(sampler, tmp_path / "c.safetensors", torch.zeros(2, 2), label=3)


def test_torch_compile_runs_the_in_library_sampler_module():
    from schedalg.sampling import SamplerModule

    sampler = _network_sampler("dpmpp_3m")
    noise = per_sample_normal((3, 2), 0)
    x, _, expected = _run(sampler, noise)
    compiled = torch.compile(SamplerModule(sampler), backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), expected)


class _ConvAttention(torch.nn.Module):
    """Common layers (convolution, group/layer norm, attention, GELU) and tensors created in forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 4)
        self.layer_norm = torch.nn.LayerNorm(16)
        self.qkv = torch.nn.Linear(4, 12)
        self.out = torch.nn.Conv2d(4, 1, 1)

    def forward(self, x, t):
        h = torch.nn.functional.gelu(self.norm(self.conv(x) + t[:, None, None, None].to(x.dtype)))
        tokens = h.flatten(2).transpose(1, 2)
        q, k, v = (part.unflatten(2, (2, 2)).transpose(1, 2) for part in self.qkv(tokens).chunk(3, dim=2))
        attended = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        h = h + attended.transpose(1, 2).reshape(h.shape)
        h = self.layer_norm(h.reshape(h.shape[0], 4, 16)).reshape(h.shape)
        bias = torch.zeros(h.shape[0], 1, 4, 4, device=x.device) + torch.ones_like(x) * 0.1
        return torch.tanh(self.out(h)) + bias


@pytest.mark.parametrize("dynamic", [False, True])
def test_common_layers_export_and_round_trip_bitwise(dynamic, tmp_path):
    schedule = sa.schedules.linear()
    sampler = Sampler(NetworkDenoiser(_ConvAttention(), schedule, prediction="velocity"),
                      TimeGrid.uniform(schedule, 2, t_start=0.05, t_end=0.95), "dpmpp_2m")
    loaded = load_sampler(export_sampler(sampler, tmp_path / "c.safetensors", per_sample_normal((2, 1, 4, 4), 0),
                                         dynamic_batch=dynamic))
    noise = per_sample_normal((3 if dynamic else 2, 1, 4, 4), 1)
    assert torch.equal(loaded(noise), sampler(noise))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loaded_sampler_runs_on_cuda(tmp_path):
    """Weights move with ``device=``; device arguments in the graph follow the input's device."""
    sampler = _network_sampler("euler_maruyama")
    noise = per_sample_normal((5, 2), 0)
    loaded = load_sampler(export_sampler(sampler, tmp_path / "s.safetensors", noise), device="cuda")
    out = loaded(noise.cuda(), seed=3)
    assert out.device.type == "cuda"
    # other kernels, other rounding: float32 closeness, not bitwise
    torch.testing.assert_close(out.cpu(), sampler(noise, seed=3), rtol=1e-5, atol=1e-5)
