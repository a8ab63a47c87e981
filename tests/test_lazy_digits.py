"""The digits flow example: safe, small weights, and the committed benchmark rows reproduce."""

import importlib.util
import json
from pathlib import Path

import torch

import schedalg as sa
from schedalg.lazy import Standardization, lazy_ode_sample
from schedalg.models import NetworkDenoiser
from schedalg.sampling import TimeGrid, sample

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weights_are_small_and_load_safely():
    example = _load("digits_flow_model", "examples/digits_flow/model.py")
    assert example.WEIGHTS.stat().st_size < 2_000_000
    payload = torch.load(example.WEIGHTS, map_location="cpu", weights_only=True)
    assert payload["training"]["schedule"] == "linear" and payload["training"]["prediction"] == "velocity"
    model = example.load_model()
    x = torch.zeros(3, 64)
    assert model(x, torch.full((3,), 0.5)).shape == (3, 64)


def test_committed_rows_cover_every_sampler_and_reproduce():
    bench = _load("bench_lazy", "benchmarks/lazy.py")
    rows = json.loads((ROOT / "benchmarks/results/lazy.json").read_text())
    samplers = {"euler", "heun", "midpoint", "dpmpp_2m", "lazy_euler", "lazy_heun", "lazy_midpoint",
                "lazy_dpmpp_2m", "euler_lazy_grid", "lazy_sde"}
    for name in samplers:
        assert sorted(r["nfe"] for r in rows if r["sampler"] == name) == list(bench.NFES)
    assert all({"system", "sampler", "nfe", "error", "mmd", "swd"} <= set(r) for r in rows)

    example = bench.load_example()
    network = example.load_model().double()
    train, held_out = (d.double() for d in example.load_digits_split())
    denoiser = NetworkDenoiser(network, sa.schedules.linear(), "velocity", "t")
    std = Standardization.estimate(train)
    noise = torch.randn(bench.BATCH, 64, generator=torch.Generator().manual_seed(bench.NOISE_SEED),
                        dtype=torch.float64)
    metric = bench.Metrics(held_out)
    recomputed = {"lazy_euler": lazy_ode_sample(denoiser, noise, std, steps=2),
                  "euler": sample(denoiser, noise, TimeGrid.uniform(denoiser.schedule, 2), "euler")}
    for name, x in recomputed.items():
        (row,) = [r for r in rows if r["sampler"] == name and r["nfe"] == 2]
        again = metric(x)
        assert abs(again["mmd"] - row["mmd"]) < 1e-6 and abs(again["swd"] - row["swd"]) < 1e-6, (name, again, row)
