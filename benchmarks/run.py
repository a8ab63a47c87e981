"""Run every benchmark and write benchmarks/results/.

    python -m benchmarks.run            # the sampling-plan suite (tuning + held-out problems), then speed
    python -m benchmarks.run --quick    # quick: one problem, NFE 5 and 10, small batches (~2 minutes)
    python -m benchmarks.run --part held_out   # only the held-out problems (reported separately)
    python -m benchmarks.run --sweep    # the earlier digits sweep (every schedalg solver x grid vs peers)
    python -m benchmarks.run --report-only   # re-render quality.md and quality.png from quality.json

The suite (``benchmarks/_suite.py``) writes ``suite_<part>.json`` (every row) and
``suite.md`` (per problem and NFE: automatic plan, README recommendation, best peer,
ratios, planning cost, calibration vs evaluation error; held-out part separately).

Writes ``quality.json`` (rows: system, sampler, grid, nfe, error, budget, ...),
``quality.md`` (tables), ``quality.png`` (log-log error vs NFE), ``speed.json``
(derivation cost of new schedules; sampler overhead from ``benchmarks/overhead.py``
when that module is present). See ``benchmarks/_problem.py`` for the problem and the
error, ``_peers.py`` for the peer configurations, ``_schedalg_runs.py`` for schedalg's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def quality(batch: int, quick: bool, log) -> list[dict]:
    from ._peers import PEERS
    from ._problem import EVAL_SEED, Problem
    from ._report import BUDGETS
    from ._schedalg_runs import GitsCache, calibrated_runs, converted_runs, lazy_runs, schedalg_runs, selection_noise

    problem = Problem(batch)
    gits = GitsCache(problem, fine_points=81 if quick else 121, substeps=2 if quick else 4)
    schedule_names = ("linear", "edm") if quick else None
    calibration = selection_noise(problem, 64 if quick else 256)
    rows: list[dict] = []
    for budget in BUDGETS:
        groups = [(name, runner(problem, budget)) for name, runner in PEERS.items()]
        groups += [("schedalg", schedalg_runs(problem, budget, gits=gits, schedule_names=schedule_names)),
                   ("schedalg converted", converted_runs(problem, budget, gits=gits)),
                   ("schedalg lazy", lazy_runs(problem, budget)),
                   ("schedalg calibrated", calibrated_runs(problem, budget, calibration=calibration,
                                                           rhos=(1.0, 1.25, 1.5, 2.0) if quick else None))]
        for label, runs in groups:
            start = time.perf_counter()
            count = 0
            for run in runs:
                rows.append(dict(run.row(), budget=budget))
                count += 1
            log(f"  budget {budget:2d}: {label:18s} {count:3d} runs in {time.perf_counter() - start:6.1f} s")
    meta_seed = EVAL_SEED
    for row in rows:
        row["seed"] = meta_seed
    return rows


def speed(quick: bool, log, out_dir: Path) -> dict:
    from ._derivation import derivation_rows

    from ._memory import memory_rows

    out: dict = {"derivation": derivation_rows(repeats=1 if quick else 3, naive_budget=5.0 if quick else 20.0)}
    out["denoiser_memory"] = memory_rows((20_000,) if quick else (20_000, 80_000))
    for row in out["denoiser_memory"]:
        log(f"  optimal denoiser N={row['components']:6d} chunk={row['chunk_size']:6d}: "
            f"peak +{row['peak_growth_mib']:.1f} MiB (batch {row['batch']})")
    for row in out["derivation"]:
        if "status" in row:
            log(f"  derive {row['schedule']:32s} {row['status']}")
            continue
        log(f"  derive {row['schedule']:32s} cold {row['cold_s']:.3f} s, cached {row['cached_s']:.4f} s, "
            f"naive sympy.solve {row['naive_sympy_solve_s']:.3f} s ({row['naive_status']})")
    try:
        overhead = importlib.import_module("benchmarks.overhead")
    except ImportError:
        out["overhead"] = "benchmarks/overhead.py not present"
        return out
    # benchmarks/overhead.py (another engineer's) parses its own command line and writes
    # results/overhead.json; run it with just --quick and embed what it wrote
    argv = sys.argv
    sys.argv = ([str(Path(overhead.__file__))] + (["--quick"] if quick else [])
                + ["--out", str(out_dir / "overhead.json")])
    try:
        overhead.main()
    finally:
        sys.argv = argv
    out["overhead"] = json.loads((out_dir / "overhead.json").read_text())
    return out


def suite(args: argparse.Namespace, log) -> int:
    """The sampling-plan suite: every problem of the chosen part, NFE 5/10/20, rows and summary."""
    from . import _suite

    start = time.perf_counter()
    if args.quick:
        parts = {"quick": ("edm/digits",)}
        batch, calibration_batch, budgets, components = 32, 32, (5, 10), 300
    else:
        parts = {k: v for k, v in (("tuning", _suite.TUNING), ("held_out", _suite.HELD_OUT))
                 if args.part in (k, "all")}
        batch, calibration_batch, budgets, components = 128, 64, _suite.BUDGETS, None
    for part, names in parts.items():
        rows = []
        for name in names:  # written after every problem, so a late failure keeps the earlier rows
            rows += _suite.run_problem(name, batch, calibration_batch, budgets, log, components)
            (args.out / f"suite_{part}.json").write_text(json.dumps(rows, indent=1) + "\n")
    items = []
    for part in (("quick",) if args.quick else ("tuning", "held_out")):
        path = args.out / f"suite_{part}.json"
        if path.exists():
            items += _suite.summary(json.loads(path.read_text()))
    meta = {"command": "python -m benchmarks.run" + (" --quick" if args.quick else ""), "batch": batch,
            "calibration_batch": calibration_batch, "seconds": time.perf_counter() - start}
    (args.out / ("suite_quick.md" if args.quick else "suite.md")).write_text(_suite.markdown(items, meta))
    (args.out / ("suite_quick_summary.json" if args.quick else "suite_summary.json")).write_text(
        json.dumps(items, indent=1) + "\n")
    for it in items:
        log(f"{it['problem']:22s} NFE {it['budget']:2d}: auto {it['auto']:.3e} ({it['auto_plan']}) | README "
            f"{it['readme']:.3e} | best peer {it['best_peer']:.3e} ({it['best_peer_name']}) | ratio {it['ratio']:.2f}"
            f"{' [held out]' if it['held_out'] else ''}")
    if not args.skip_speed and not args.quick:
        log("speed benchmark")
        result = speed(False, log, args.out)
        (args.out / "speed.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    log(f"done in {time.perf_counter() - start:.0f} s; results in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batch, fewer schedules (a few minutes)")
    parser.add_argument("--skip-speed", action="store_true", help="only the quality benchmark")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--sweep", action="store_true", help="run the earlier digits sweep instead of the suite")
    parser.add_argument("--part", choices=("tuning", "held_out", "all"), default="all",
                        help="which problems of the suite to run")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render quality.md and quality.png from an existing quality.json (no runs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, flush=True)

    from ._problem import EVAL_SEED, SMOOTHING_STD
    from ._report import headline, markdown, plot

    if args.report_only:
        rows = json.loads((args.out / "quality.json").read_text())
        meta = json.loads((args.out / "quality_meta.json").read_text())
        (args.out / "quality.md").write_text(markdown(rows, meta))
        plot(rows, args.out / "quality.png")
        log(f"re-rendered quality.md and quality.png from {args.out / 'quality.json'}")
        return 0
    if not args.sweep:
        return suite(args, log)
    command = "python -m benchmarks.run --sweep" + (" --quick" if args.quick else "")
    batch = 64 if args.quick else 256
    start = time.perf_counter()
    log(f"quality benchmark (batch {batch})")
    rows = quality(batch, args.quick, log)
    seconds = time.perf_counter() - start
    meta = {"problem": f"8x8 digits in [-1, 1] (1797 x 64), Gaussian mixture with s = {SMOOTHING_STD}; "
                       "exact denoiser (schedalg.denoisers.GaussianMixtureDenoiser), float64",
            "command": command, "batch": batch, "seed": EVAL_SEED, "seconds": seconds,
            "python": sys.version.split()[0], "torch": torch.__version__, "machine": platform.machine()}
    (args.out / "quality.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "quality_meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    (args.out / "quality.md").write_text(markdown(rows, meta))
    plot(rows, args.out / "quality.png")
    for item in headline(rows):
        ours, peer = item["schedalg"], item["peer"]
        log(f"NFE <= {item['budget']:2d}: schedalg {ours['error']:.3e} ({ours['sampler']}, {ours['grid']}) | "
            f"best peer {peer['error']:.3e} ({peer['system']} {peer['sampler']}, {peer['grid']}) | "
            f"ratio {item['ratio']:.2f}")
    if not args.skip_speed:
        log("speed benchmark")
        result = speed(args.quick, log, args.out)
        result["meta"] = dict(meta, seconds=time.perf_counter() - start)
        (args.out / "speed.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    log(f"done in {time.perf_counter() - start:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
