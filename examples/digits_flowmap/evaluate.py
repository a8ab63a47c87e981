"""Evaluate the distilled digits flow maps against their teacher; writes benchmarks/results/flowmap.json.

    nice -n 10 .venv/bin/python examples/digits_flowmap/evaluate.py      # a few minutes on one thread

For each committed flow map (``lagrangian.pt``, ``eulerian.pt``, ``progressive.pt``: ``train.py``) and N in
{1, 2, 4, 8} jumps (N network evaluations, ``schedalg.flowmaps.FlowMapSampler``), and for
the teacher (``examples/digits_flow``) with ``schedalg.sampling.Sampler`` (euler, dpmpp_2m,
midpoint, heun with a corrector on every step; uniform in t) at every NFE in
{1, 2, 4, 8, 16, 32} the solver can make (``Sampler.nfe`` counts them):

* ``error``: RMS endpoint difference from the teacher's ODE solved by DOP853 (rtol = atol =
  1e-8) from the same noise (for a flow map: how far it is from the map it distils);
* ``mmd`` (unbiased squared MMD) and ``swd`` (sliced Wasserstein-2) to the 397 held-out
  digits: the metric of ``benchmarks/lazy.py`` (same kernels, directions, noise seed and
  batch of 500, so the teacher rows match ``benchmarks/results/lazy.json``).

The step count of each map is then chosen after training (``schedalg.geometry.choose_steps``)
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
from benchmarks.lazy import BATCH, NOISE_SEED, Metrics, mmd2, reference_ode, save_grid  # noqa: E402
from model import load_flow_map, teacher_module  # noqa: E402
from schedalg.flowmaps import FlowMap, FlowMapSampler  # noqa: E402
from schedalg.geometry import choose_steps  # noqa: E402
from schedalg.models import NetworkDenoiser  # noqa: E402
from schedalg.sampling import Sampler  # noqa: E402

MAPS = ("lagrangian", "eulerian", "progressive")
STEPS = (1, 2, 4, 8)
# heun corrects on every step (2 NFE per step), as in benchmarks/lazy.py
TEACHER_SOLVERS = {"euler": {}, "dpmpp_2m": {}, "midpoint": {}, "heun": {"final_euler": False}}
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
                     "error": float((x - reference).square().mean().sqrt()), **distances(x), "x": x})

    denoiser = NetworkDenoiser(teacher, schedule, "velocity", "t")
    shown = {"held-out digits": held_out, "teacher DOP853": reference}
    for solver, options in TEACHER_SOLVERS.items():
        for steps in range(1, max(TEACHER_NFES) + 1):  # the sampler counts its own evaluations
            sampler = Sampler(denoiser, steps, solver, **options)
            if sampler.nfe in TEACHER_NFES and not any(r["sampler"] == solver and r["nfe"] == sampler.nfe
                                                       for r in rows):
                row("teacher", solver, sampler.nfe, sampler(noise))
                if sampler.nfe == 2 and solver in ("euler", "midpoint"):
                    shown[f"{solver} NFE=2"] = rows[-1]["x"]
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
            if n in (1, 2):
                shown[f"{name} N={n}"] = rows[-1]["x"]
        choice = choose_steps(flow_map, calibration, lambda x: mmd2(x, calibration_data, bandwidths),
                              STEPS, TOLERANCE)
        choices[name] = {"steps": choice.steps, "calibration_mmd": choice.scores,
                         "training": payload["training"]}

    for r in rows:
        r.pop("x", None)
    summary = []
    for name in MAPS:
        for n in STEPS:
            mine = next(r for r in rows if r["sampler"] == f"{name}_N{n}")
            best = {k: min((r for r in rows if r["kind"] == "teacher" and r["nfe"] == k), key=lambda r: r["mmd"],
                           default=None) for k in (n, 4 * n)}
            summary.append({"map": name, "steps": n, "mmd": mine["mmd"], "error": mine["error"],
                            **{f"teacher_best_at_{tag}": None if best[k] is None else
                               {"sampler": best[k]["sampler"], "nfe": k, "mmd": best[k]["mmd"],
                                "error": best[k]["error"]} for tag, k in (("equal_nfe", n), ("4x_nfe", 4 * n))}})
    seconds = time.perf_counter() - start
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"system": "digits flow map distilled from examples/digits_flow (linear, velocity)",
                               "command": "nice -n 10 python examples/digits_flowmap/evaluate.py",
                               "summary": summary, "rows": rows, "chosen_steps": choices, "tolerance": TOLERANCE,
                               "seconds": round(seconds, 1)}, indent=1) + "\n")
    save_grid(shown, OUT.with_name("flowmap_samples.png"))
    print(f"{'sampler':18s} {'nfe':>4s} {'error':>9s} {'mmd x1e3':>9s} {'swd':>7s}")
    for r in rows:
        print(f"{r['sampler']:18s} {r['nfe']:4d} {r['error']:9.4f} {1e3 * r['mmd']:9.2f} {r['swd']:7.4f}")
    for name, choice in choices.items():
        scores = ", ".join(f"N={n}: {1e3 * v:.2f}" for n, v in choice["calibration_mmd"].items())
        print(f"{name}: chosen N = {choice['steps']} (calibration mmd x1e3 {scores})")
    print(f"total {seconds:.0f}s; wrote {OUT} and {OUT.with_name('flowmap_samples.png')}")


if __name__ == "__main__":
    main()
