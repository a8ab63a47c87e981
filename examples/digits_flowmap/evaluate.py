"""Evaluate the distilled digits flow maps against their teacher; writes benchmarks/results/flowmap.json.

    nice -n 10 .venv/bin/python examples/digits_flowmap/evaluate.py      # a few minutes on one thread

For each committed flow map (``MAPS``, written by ``train.py``) and N in {1, 2, 4, 8} jumps (N
network evaluations, ``schedalg.flowmaps.FlowMapSampler``), and for the teacher
(``examples/digits_flow``) with ``schedalg.sampling.Sampler`` (euler, dpmpp_2m, midpoint, heun with
a corrector on every step; uniform in t) at every NFE in {1, 2, 4, 8, 16, 32} the solver can make
(``Sampler.nfe`` counts them), on ``len(SEEDS)`` independent batches of 500 noise draws (the first
is the noise of ``benchmarks/lazy.py``, seed 1234, so its teacher figures match
``benchmarks/results/lazy.json``):

* ``error``: RMS endpoint difference from the teacher's ODE solved by DOP853 (rtol = atol =
  1e-6; measured 6.6e-6 RMS from rtol = atol = 1e-8 on the first batch, at half the cost) from
  the same noise (for a flow map: how far it is from the map it distils);
* ``mmd`` (unbiased squared MMD) and ``swd`` (sliced Wasserstein-2) to the 397 held-out
  digits: the metric of ``benchmarks/lazy.py`` (same kernels and directions, batches of 500).

Each figure is given per seed, as the mean over the seeds and as the standard error of that
mean (std / sqrt(seeds)); the summary also gives the paired difference map - teacher (same
noise, per seed), whose standard error is what decides "at least as good".

The step count of each map is then chosen after training (``schedalg.geometry.choose_steps``)
on calibration noise that is not the evaluation noise (seed 4321), scored by squared MMD to
500 *training* digits (the held-out digits stay for the evaluation), tolerance 2e-3 (about the
metric's sampling noise at 500 samples): the fewest jumps within 2e-3 of the best.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]
import schedalg as sa  # noqa: E402
from benchmarks.lazy import BATCH, NOISE_SEED, Metrics, mmd2, reference_ode, save_grid  # noqa: E402
from model import load_flow_map, teacher_module  # noqa: E402
from schedalg.flowmaps import FlowMap, FlowMapSampler  # noqa: E402
from schedalg.geometry import choose_steps  # noqa: E402
from schedalg.models import NetworkDenoiser  # noqa: E402
from schedalg.sampling import Sampler  # noqa: E402

MAPS = ("trajectory", "lagrangian", "eulerian", "progressive")
STEPS = (1, 2, 4, 8)
# heun corrects on every step (2 NFE per step), as in benchmarks/lazy.py
TEACHER_SOLVERS = {"euler": {}, "dpmpp_2m": {}, "midpoint": {}, "heun": {"final_euler": False}}
TEACHER_NFES = (1, 2, 4, 8, 16, 32)
SEEDS = (NOISE_SEED, 1, 2, 3, 4, 5, 6, 7)
CALIBRATION_SEED = 4321
TOLERANCE = 2e-3
REFERENCE_TOLERANCE = 1e-6
OUT = ROOT / "benchmarks" / "results" / "flowmap.json"
METRICS = ("mmd", "swd", "error")


def mean_sem(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (std with n - 1, over sqrt(n))."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def main() -> None:
    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    example = teacher_module()
    teacher = example.load_model().double()
    train, held_out = (d.double() for d in example.load_digits_split())
    schedule = sa.schedules.linear()
    noises = [torch.randn(BATCH, 64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
              for seed in SEEDS]
    # one DOP853 solve of all batches together (the step size is shared; the tolerance is met by all)
    reference, ref_nfe = reference_ode(teacher, torch.cat(noises), REFERENCE_TOLERANCE)
    references = reference.split(BATCH)
    distances = Metrics(held_out)
    rows = []

    def row(kind: str, name: str, nfe: int, sample) -> None:
        per_seed = []
        for noise, ref in zip(noises, references):
            x = sample(noise)
            per_seed.append({"error": float((x - ref).square().mean().sqrt()), **distances(x)})
            if len(per_seed) == 1:
                first = x
        stats = {m: mean_sem([r[m] for r in per_seed]) for m in METRICS}
        rows.append({"kind": kind, "sampler": name, "nfe": nfe, **{m: stats[m][0] for m in METRICS},
                     **{f"{m}_sem": stats[m][1] for m in METRICS}, "per_seed": per_seed, "x": first})

    denoiser = NetworkDenoiser(teacher, schedule, "velocity", "t")
    shown = {"held-out digits": held_out, "teacher DOP853": references[0]}
    for solver, options in TEACHER_SOLVERS.items():
        for steps in range(1, max(TEACHER_NFES) + 1):  # the sampler counts its own evaluations
            sampler = Sampler(denoiser, steps, solver, **options)
            if sampler.nfe in TEACHER_NFES and not any(r["sampler"] == solver and r["nfe"] == sampler.nfe
                                                       for r in rows):
                row("teacher", solver, sampler.nfe, sampler)
                if (solver, sampler.nfe) in (("midpoint", 2), ("heun", 8)):
                    shown[f"{solver} NFE={sampler.nfe}"] = rows[-1]["x"]
    lookup = dict(zip((id(n) for n in noises), references))
    row("reference", "teacher_dop853", ref_nfe, lambda noise: lookup[id(noise)])

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
            row(f"flowmap_{name}", f"{name}_N{n}", n, FlowMapSampler(flow_map, n))
            if (name, n) in (("trajectory", 2), ("lagrangian", 2), ("progressive", 1), ("progressive", 2)):
                shown[f"{name} N={n}"] = rows[-1]["x"]
        choice = choose_steps(flow_map, calibration, lambda x: mmd2(x, calibration_data, bandwidths),
                              STEPS, TOLERANCE)
        choices[name] = {"steps": choice.steps, "calibration_mmd": choice.scores,
                         "training": payload["training"]}

    for r in rows:
        r.pop("x", None)

    def brief(r: dict) -> dict:
        return {"sampler": r["sampler"], "nfe": r["nfe"], **{k: r[k] for k in ("mmd", "mmd_sem", "error")}}

    summary = []
    for name in MAPS:
        for n in STEPS:
            mine = next(r for r in rows if r["sampler"] == f"{name}_N{n}")
            entry = {"map": name, "steps": n, **{k: mine[k] for k in ("mmd", "mmd_sem", "error", "error_sem")}}
            for tag, k in (("equal_nfe", n), ("4x_nfe", 4 * n)):
                best = min((r for r in rows if r["kind"] == "teacher" and r["nfe"] == k), key=lambda r: r["mmd"],
                           default=None)
                if best is None:
                    entry[f"teacher_best_at_{tag}"] = None
                    continue
                diff = mean_sem([a["mmd"] - b["mmd"] for a, b in zip(mine["per_seed"], best["per_seed"])])
                entry[f"teacher_best_at_{tag}"] = {**brief(best), "paired_mmd_difference": diff[0],
                                                   "paired_mmd_difference_sem": diff[1]}
            summary.append(entry)
    exact = next(r for r in rows if r["kind"] == "reference")
    # the teacher's samplers against its own exact ODE (same noise): where integration error helps the metric
    against_exact = [{"sampler": r["sampler"], "nfe": r["nfe"], "mmd": r["mmd"],
                      **dict(zip(("paired_mmd_difference", "paired_mmd_difference_sem"),
                                 mean_sem([a["mmd"] - b["mmd"] for a, b in zip(r["per_seed"], exact["per_seed"])])))}
                     for r in rows if r["kind"] == "teacher" and r["nfe"] >= 4]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"system": "digits flow map distilled from examples/digits_flow (linear, velocity)",
                               "command": "nice -n 10 python examples/digits_flowmap/evaluate.py",
                               "seeds": list(SEEDS), "batch": BATCH,
                               "reference_tolerance": REFERENCE_TOLERANCE, "summary": summary,
                               "teacher_vs_exact_ode": against_exact, "rows": rows,
                               "chosen_steps": choices, "tolerance": TOLERANCE, "seconds": round(seconds, 1),
                               "cpu_seconds": round(cpu_seconds, 1), "load_average": os.getloadavg()[0]},
                              indent=1) + "\n")
    save_grid(shown, OUT.with_name("flowmap_samples.png"))
    print(f"mean +- standard error over {len(SEEDS)} batches of {BATCH}")
    print(f"{'sampler':18s} {'nfe':>4s} {'error':>15s} {'mmd x1e3':>13s} {'swd':>15s}")
    for r in rows:
        print(f"{r['sampler']:18s} {r['nfe']:4d} {r['error']:7.4f}+-{r['error_sem']:.4f} "
              f"{1e3 * r['mmd']:6.2f}+-{1e3 * r['mmd_sem']:.2f} {r['swd']:7.4f}+-{r['swd_sem']:.4f}")
    for e in summary:
        parts = [f"{e['map']:12s} N={e['steps']}: {1e3 * e['mmd']:6.2f}+-{1e3 * e['mmd_sem']:.2f}"]
        for tag in ("equal_nfe", "4x_nfe"):
            b = e[f"teacher_best_at_{tag}"]
            if b is not None:
                diff, sem = 1e3 * b["paired_mmd_difference"], 1e3 * b["paired_mmd_difference_sem"]
                parts.append(f"vs {b['sampler']}@{b['nfe']} {1e3 * b['mmd']:.2f}: diff {diff:+.2f}+-{sem:.2f}")
        print("  ".join(parts))
    for e in against_exact:
        print(f"teacher {e['sampler']}@{e['nfe']} - exact ODE: {1e3 * e['paired_mmd_difference']:+.2f}"
              f"+-{1e3 * e['paired_mmd_difference_sem']:.2f}")
    for name, choice in choices.items():
        scores = ", ".join(f"N={n}: {1e3 * v:.2f}" for n, v in choice["calibration_mmd"].items())
        print(f"{name}: chosen N = {choice['steps']} (calibration mmd x1e3 {scores})")
    print(f"total {seconds:.0f}s wall, {cpu_seconds:.0f}s CPU, load average {os.getloadavg()[0]:.1f}; "
          f"wrote {OUT} and {OUT.with_name('flowmap_samples.png')}")


if __name__ == "__main__":
    main()
