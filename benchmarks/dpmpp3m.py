"""DPM-Solver++(3M): the exact third-order weight against the published one, at the step counts users run.

    nice -n 10 python -m benchmarks.dpmpp3m        # about 3 minutes on one CPU thread

``dpmpp_3m`` weights the second difference ``D2`` by ``2 h phi_3(-h)`` (exact for a quadratic
``x0_hat`` in log-SNR, global order 3); ``published=True`` uses ``h phi_3(-h)`` as DPM-Solver's
code, diffusers and k-diffusion do (global order 2). See ``schedalg/sampling/solvers/_dpmpp.py``.

Problems (from :mod:`benchmarks._suite`, float64, batch 256, noise seed :data:`SEED`):

* ``linear/digits``: the exact posterior mean of 500 scikit-learn digits smoothed into a
  Gaussian mixture of variance 0.01, as an x0 model on the linear path (span ``t in [0, 1]``);
* ``edm/digits``: the same mixture as an x0 model on ``edm(sigma_max=80, sigma_min=0.002)``;
* ``flow_net/digits``: the trained digits flow network (``examples/digits_flow``), velocity
  on the linear path.

Grids, for 5, 10, 20, 40, 80, 160 and 320 steps (NFE = steps for both variants), both starting at the
noise level ``sigma/alpha = 80`` (the linear path's ``t = 0`` has infinite log-SNR):

* ``log_snr``: ``TimeGrid.log_snr_uniform`` from level 80 to level 0.002 (on the linear path
  ``t_end = 500/501``, just inside the data end; on EDM its own data end);
* ``karras``: ``TimeGrid.karras(sigma_max=80, sigma_min=0.002)`` (rho = 7); on the linear path
  it ends at the data end ``sigma = 0`` (its last step, of infinite log-SNR length, is first
  order for both variants), on EDM at 0.002.

Error: mean over samples of the RMS per dimension of the endpoint minus a DOP853 solve
(rtol = atol = 1e-9) of the same probability-flow ODE from the same start to the same end
(:meth:`benchmarks._suite.SuiteProblem.reference`), per sample; the table gives its mean (as the
other benchmarks) and its median over samples. ``slope_40_80`` is ``log2(error(40) / error(80))``,
the observed order between 40 and 80 steps, likewise ``slope_160_320``. 160 and 320 steps are
there because on the 500-component mixture a few samples still end in a different component
at 40-80 steps, so the mean is not yet in the asymptotic regime there (the median shows it;
``max`` in the JSON rows is the worst sample's error: one sample at about 0.44 adds 1.7e-3 to a
mean over 256).
Two floors are properties of the problems, not of the weights: Karras on the linear path ends
with the first-order step from 0.002 to the data end (the same for both variants), and the flow
network's ODE is not resolved by either variant, nor by RK4, at these step counts (the
``control`` rows: RK4 and both 3M variants on the flow network's log-SNR grids up to 640 steps;
the network's time features reach 1000 rad per unit time).

Writes ``benchmarks/results/dpmpp3m.json`` and ``benchmarks/results/dpmpp3m.md``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from benchmarks._suite import make_problem
from schedalg.sampling import Sampler, TimeGrid

PROBLEMS = ("linear/digits", "edm/digits", "flow_net/digits")
STEPS = (5, 10, 20, 40, 80, 160, 320)
SLOPE_PAIRS = ((40, 80), (160, 320))
CONTROL_STEPS = (80, 160, 320, 640)
VARIANTS = {"exact": {}, "published": {"published": True}}
BATCH, SEED, COMPONENTS = 256, 2026, 500
LEVEL_MAX, LEVEL_MIN = 80.0, 0.002
RESULTS = Path(__file__).resolve().parent / "results"


def _time_of_level(schedule, level: float) -> float:
    """The time where ``sigma/alpha = level`` (``lambda = -2 log level``)."""
    lam = torch.tensor([-2.0 * math.log(level)], dtype=torch.float64)
    return float(schedule.compile().t_of_log_snr(lam)[0])


def grids(schedule, steps: int) -> dict[str, TimeGrid]:
    return {
        "log_snr": TimeGrid.log_snr_uniform(schedule, steps, t_start=_time_of_level(schedule, LEVEL_MAX),
                                            t_end=_time_of_level(schedule, LEVEL_MIN)),
        "karras": TimeGrid.karras(schedule, steps, sigma_max=LEVEL_MAX, sigma_min=LEVEL_MIN),
    }


def run(problems: dict, noise: torch.Tensor) -> list[dict]:
    rows = []
    for name, problem in problems.items():
        for steps in STEPS:
            for grid_name, grid in grids(problem.schedule, steps).items():
                alpha, sigma = grid.alpha.tolist(), grid.sigma.tolist()
                start = time.perf_counter()
                reference = problem.reference(noise, alpha[0], sigma[0], sigma[0], end=(alpha[-1], sigma[-1]))
                ref_s = time.perf_counter() - start
                for variant, options in VARIANTS.items():
                    sampler = Sampler(problem.model, grid, "dpmpp_3m", **options)
                    with torch.no_grad():
                        out = sampler(noise)
                    per_sample = (out - reference).reshape(BATCH, -1).pow(2).mean(1).sqrt()
                    rows.append({"problem": name, "grid": grid_name, "steps": steps, "nfe": sampler.nfe,
                                 "variant": variant, "error": problem.error(out, reference),
                                 "median": per_sample.median().item(), "max": per_sample.max().item(),
                                 "t_start": grid.times[0].item(), "t_end": grid.times[-1].item()})
                print(f"{name:16s} {grid_name:8s} {steps:3d}  exact {rows[-2]['error']:.3e}  "
                      f"published {rows[-1]['error']:.3e}  (reference {ref_s:.1f} s)", flush=True)
    return rows


def control(problem, noise: torch.Tensor) -> list[dict]:
    """RK4 (4 NFE per step) and both 3M variants on the flow network's log-SNR grids, up to 640 steps."""
    rows = []
    for steps in CONTROL_STEPS:
        grid = grids(problem.schedule, steps)["log_snr"]
        alpha, sigma = grid.alpha.tolist(), grid.sigma.tolist()
        reference = problem.reference(noise, alpha[0], sigma[0], sigma[0], end=(alpha[-1], sigma[-1]))
        for label, solver, options in (("rk4", "rk4", {}), *(("dpmpp_3m " + v, "dpmpp_3m", o)
                                                            for v, o in VARIANTS.items())):
            sampler = Sampler(problem.model, grid, solver, **options)
            with torch.no_grad():
                out = sampler(noise)
            rows.append({"problem": "flow_net/digits", "grid": "log_snr", "steps": steps, "nfe": sampler.nfe,
                         "solver": label, "error": problem.error(out, reference)})
        print("control", steps, *(f"{r['solver']} {r['error']:.3e}" for r in rows[-3:]), flush=True)
    return rows


def slopes(rows: list[dict], stat: str) -> dict[tuple, tuple[float, ...]]:
    """``log2(e(n) / e(2n))`` per (problem, grid, variant) for each pair of :data:`SLOPE_PAIRS`."""
    err = {(r["problem"], r["grid"], r["variant"], r["steps"]): r[stat] for r in rows}
    keys = {key[:3] for key in err}
    return {k: tuple(math.log2(err[k + (a,)] / err[k + (b,)]) for a, b in SLOPE_PAIRS) for k in sorted(keys)}


def table(rows: list[dict], stat: str) -> list[str]:
    err = {(r["problem"], r["grid"], r["variant"], r["steps"]): r[stat] for r in rows}
    order = slopes(rows, stat)
    lines = ["| problem | grid | variant | " + " | ".join(f"{n}" for n in STEPS) + " | "
             + " | ".join(f"slope {a}-{b}" for a, b in SLOPE_PAIRS) + " |",
             "|" + "---|" * (len(STEPS) + 3 + len(SLOPE_PAIRS))]
    for problem in PROBLEMS:
        for grid in ("log_snr", "karras"):
            for variant in VARIANTS:
                cells = " | ".join(f"{err[(problem, grid, variant, n)]:.2e}" for n in STEPS)
                fits = " | ".join(f"{v:.2f}" for v in order[(problem, grid, variant)])
                lines.append(f"| {problem} | {grid} | {variant} | {cells} | {fits} |")
            cells = " | ".join(f"**{err[(problem, grid, 'exact', n)] / err[(problem, grid, 'published', n)]:.2f}**"
                               for n in STEPS)
            lines.append(f"| {problem} | {grid} | exact/published | {cells} |" + " |" * len(SLOPE_PAIRS))
    return lines


def markdown(rows: list[dict], controls: list[dict], meta: dict) -> str:
    lines = ["# DPM-Solver++(3M): exact vs published D2 weight\n",
             f"Command: `{meta['command']}` ({meta['seconds']:.0f} s). Batch {BATCH}, float64, noise seed {SEED}; "
             "per sample, RMS per dimension of the endpoint minus a DOP853 solve (rtol = atol = 1e-9) from the same "
             "start to the same end. Columns: steps (= NFE). `exact/published` < 1: the exact weight is better. "
             "Slope a-b = log2(error(a) / error(b)), the observed order.\n",
             "## Mean over samples\n", *table(rows, "error"),
             "\n## Median over samples\n", *table(rows, "median"),
             "\n## Control: flow network, log-SNR grid, mean error (RK4 takes 4 NFE per step)\n",
             "| solver | " + " | ".join(f"{n} steps" for n in CONTROL_STEPS) + " |",
             "|" + "---|" * (len(CONTROL_STEPS) + 1)]
    err = {(r["solver"], r["steps"]): r["error"] for r in controls}
    for label in dict.fromkeys(r["solver"] for r in controls):
        lines.append(f"| {label} | " + " | ".join(f"{err[(label, n)]:.2e}" for n in CONTROL_STEPS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    noise = torch.randn(BATCH, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(SEED))
    problems = {name: make_problem(name, components=COMPONENTS) for name in PROBLEMS}
    rows = run(problems, noise)
    controls = control(problems["flow_net/digits"], noise)  # shares its reference solves
    meta = {"command": "nice -n 10 python -m benchmarks.dpmpp3m", "seconds": time.perf_counter() - start,
            "batch": BATCH, "seed": SEED, "components": COMPONENTS, "mixture_variance": 0.01,
            "reference": "scipy DOP853 rtol = atol = 1e-9", "levels": [LEVEL_MAX, LEVEL_MIN]}
    order = [{"problem": k[0], "grid": k[1], "variant": k[2], "stat": stat,
              **{f"slope_{a}_{b}": v for (a, b), v in zip(SLOPE_PAIRS, fits)}}
             for stat in ("error", "median") for k, fits in slopes(rows, stat).items()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dpmpp3m.json").write_text(json.dumps({"meta": meta, "rows": rows, "slopes": order, "control": controls}, indent=1) + "\n")
    table = markdown(rows, controls, meta)
    (RESULTS / "dpmpp3m.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
