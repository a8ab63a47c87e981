"""Evaluate the distilled digits flow maps against their teacher; writes benchmarks/results/flowmap.json.

    nice -n 10 .venv/bin/python examples/digits_flowmap/evaluate.py      # a few minutes on one thread

For each committed flow map (``lagrangian.pt``, ``eulerian.pt``: ``train.py``) and N in
{1, 2, 4, 8} jumps (N network evaluations, ``schedalg.flowmaps.FlowMapSampler``), and for
the teacher (``examples/digits_flow``) with ``schedalg.sampling.Sampler`` (euler, midpoint,
heun, dpmpp_2m; uniform in t) at NFE in {1, 2, 4, 8, 16, 32}:

* ``error``: RMS endpoint difference from the teacher's ODE solved by DOP853 (rtol = atol =
  1e-8) from the same noise (for a flow map: how far it is from the map it distils);
* ``mmd`` (unbiased squared MMD) and ``swd`` (sliced Wasserstein-2) to the 397 held-out
  digits: the metric of ``benchmarks/lazy.py`` (same kernels, directions, noise seed and
  batch of 500, so the teacher rows match ``benchmarks/results/lazy.json``).

The step count of each map is then chosen after training (``schedalg.flowmaps.choose_steps``)
on calibration noise that is not the evaluation noise (seed 4321), scored by squared MMD to
500 *training* digits (the held-out digits stay for the evaluation), tolerance 2e-3 (about the
metric's sampling noise at 500 samples): the fewest jumps within 2e-3 of the best.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]
import schedalg as sa  # noqa: E402
from benchmarks.lazy import BATCH, NOISE_SEED, Metrics, mmd2, reference_ode  # noqa: E402
from model import load_flow_map, teacher_module  # noqa: E402
from schedalg.flowmaps import FlowMap, FlowMapSampler, choose_steps  # noqa: E402
from schedalg.models import NetworkDenoiser  # noqa: E402
from schedalg.sampling import Sampler  # noqa: E402

MAPS = ("lagrangian", "eulerian")
STEPS = (1, 2, 4, 8)
TEACHER_SOLVERS = {"euler": 1, "dpmpp_2m": 1, "midpoint": 2, "heun": 2}  # NFE per step
TEACHER_NFES = (1, 2, 4, 8, 16, 32)
CALIBRATION_SEED = 4321
TOLERANCE = 2e-3
OUT = ROOT / "benchmarks" / "results" / "flowmap.json"


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    example = teacher_module()
    teacher = example.load_model().double()
    train, held_out = (d.double() for d in example.load_digits_split())
    schedule = sa.schedules.linear()
    noise = torch.randn(BATCH, 64, generator=torch.Generator().manual_seed(NOISE_SEED), dtype=torch.float64)
    reference, ref_nfe = reference_ode(teacher, noise, 1e-8)
    distances = Metrics(held_out)
    rows = []

    def row(kind: str, name: str, nfe: int, x: torch.Tensor) -> None:
        rows.append({"kind": kind, "sampler": name, "nfe": nfe,
                     "error": float((x - reference).square().mean().sqrt()), **distances(x)})

    denoiser = NetworkDenoiser(teacher, schedule, "velocity", "t")
    for solver, per_step in TEACHER_SOLVERS.items():
        for nfe in TEACHER_NFES:
            if nfe % per_step == 0:
                row("teacher", solver, nfe, Sampler(denoiser, nfe // per_step, solver)(noise))
    rows.append({"kind": "reference", "sampler": "teacher_dop853", "nfe": ref_nfe, "error": 0.0,
                 **distances(reference)})

    calibration = torch.randn(BATCH, 64, generator=torch.Generator().manual_seed(CALIBRATION_SEED),
                              dtype=torch.float64)
    calibration_data = train[:BATCH]
    bandwidths = distances.bandwidths
    choices = {}
    for name in MAPS:
        path = HERE / f"{name}.pt"
        payload = torch.load(path, map_location="cpu", weights_only=True)
        flow_map = FlowMap(load_flow_map(path).double(), schedule)
        for n in STEPS:
            row(f"flowmap_{name}", f"{name}_N{n}", n, FlowMapSampler(flow_map, n)(noise))
        choice = choose_steps(flow_map, calibration, lambda x: mmd2(x, calibration_data, bandwidths),
                              STEPS, TOLERANCE)
        choices[name] = {"steps": choice.steps, "calibration_mmd": choice.scores,
                         "training": payload["training"]}

    seconds = time.perf_counter() - start
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"system": "digits flow map distilled from examples/digits_flow (linear, velocity)",
                               "rows": rows, "chosen_steps": choices, "tolerance": TOLERANCE,
                               "seconds": round(seconds, 1)}, indent=1) + "\n")
    print(f"{'sampler':18s} {'nfe':>4s} {'error':>9s} {'mmd x1e3':>9s} {'swd':>7s}")
    for r in rows:
        print(f"{r['sampler']:18s} {r['nfe']:4d} {r['error']:9.4f} {1e3 * r['mmd']:9.2f} {r['swd']:7.4f}")
    for name, choice in choices.items():
        scores = ", ".join(f"N={n}: {1e3 * v:.2f}" for n, v in choice["calibration_mmd"].items())
        print(f"{name}: chosen N = {choice['steps']} (calibration mmd x1e3 {scores})")
    print(f"total {seconds:.0f}s; wrote {OUT}")


if __name__ == "__main__":
    main()
