"""The OT expressway (DPM-OT) on 8x8 digits: mode mixture, distance to held-out data, memorisation.

    nice -n 10 .venv/bin/python benchmarks/ot.py      # a few minutes on one CPU thread

Systems (both on the linear schedule ``x_t = t x0 + (1 - t) eps``, data at t = 1; the split of
``examples/digits_flow``: 1400 training digits, 397 held out):

* ``mixture``: the exact denoiser of the training digits smoothed into
  ``(1/1400) sum_i N(y_i, 0.1^2 I)`` (``GaussianMixtureDenoiser``; the smoothing of
  ``benchmarks/_problem.py``): a model that has memorised its training set by construction;
* ``flow``: the trained flow-matching MLP of ``examples/digits_flow`` (committed weights).

Samplers at 5, 10 and 20 network evaluations (NFE, counted by a wrapper around the
denoiser; each grid has the most uniform-in-t steps whose exact NFE fits the budget):

* plain ``euler``, ``midpoint``, ``dpmpp_2m`` from pure noise;
* ``plan``: ``schedalg.geometry.select_sampler``'s best (schedule grid warp x solver) for
  the budget, chosen on 32 separate calibration noises (defaults of ``select_sampler``);
* ``expressway(level=s)+solver``: the training digits pushed to the time ``t_0`` where
  ``sigma/alpha = s`` (s = 2, 1, 0.5: ``t_0`` = 1/3, 1/2, 2/3) with noise drawn once,
  ``schedalg.ot.SemiDiscreteOT`` fitted from N(0, I) to these 1400 latents (float32 cells,
  L1 marginal error <= 0.12; one fit per level, shared by both systems: the latents do not
  depend on the model), each evaluation
  noise mapped to its cell's latent, then the solver from ``t_0`` to the data end;
* two controls at each level with midpoint: ``random_latent`` (the same latents, the cell
  index drawn uniformly instead of by the OT map: the same law of samples as a balanced
  OT map, so any difference is sampling noise) and ``renoised`` (a uniform index and
  fresh noise, ``t_0 y_j + (1 - t_0) xi``: the exact forward marginal of the training set).

Metrics on 500 samples from one fixed noise batch (seed 1234, as ``benchmarks/lazy.py``):

* ``mixed@tau``: mixed-sample rate of ``examples/digits_classifier`` (a sample is mixed
  when two or more classes have softmax >= tau), tau = 0.05, 0.1, 0.2, 0.3;
* ``mmd`` (unbiased squared MMD, kernels of ``benchmarks/lazy.py``) and ``swd`` to the 397
  held-out digits;
* memorisation: Euclidean distance of each sample to its nearest training digit
  (``nn_median``), the fraction closer than the 5 % quantile of the held-out digits' own
  nearest-training distances (``copy_rate``: a held-out digit is that close only 5 % of the
  time), and the number of distinct samples (``distinct``, rounded to 1e-4) and of distinct
  nearest training digits (``distinct_nn``).

Floors: the held-out digits themselves (mixed rate, distances to the training set), 500
training digits (MMD / SWD floor; their copy rate is 1 by definition), and ``midpoint`` with
100 NFE (the model's own law).
Writes ``benchmarks/results/ot.json`` and prints a table.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import schedalg as sa  # noqa: E402
from benchmarks._problem import SMOOTHING_STD  # noqa: E402
from benchmarks._schedalg_runs import CountingDenoiser, _fit_budget  # noqa: E402
from benchmarks.lazy import NOISE_SEED, Metrics, load_example  # noqa: E402
from schedalg.denoisers import GaussianMixtureDenoiser  # noqa: E402
from schedalg.geometry import select_sampler  # noqa: E402
from schedalg.models import NetworkDenoiser  # noqa: E402
from schedalg.ot import Expressway, mixed_rate, nearest_distances  # noqa: E402
from schedalg.sampling import Sampler, TimeGrid  # noqa: E402

NFES = (5, 10, 20)
BATCH = 500
TAUS = (0.05, 0.1, 0.2, 0.3)
LEVELS = (2.0, 1.0, 0.5)  # sigma/alpha at the expressway's start
PLAIN = ("euler", "midpoint", "dpmpp_2m")
EXPRESS = ("euler", "midpoint", "dpmpp_2m")
CALIBRATION_SEED = 98765
LATENT_SEED = 0
CONTROL_SEED = 4321
OT_FIT = {"tol": 0.12, "metric": "l1", "samples": 1 << 14, "max_samples": 1 << 18, "seed": 0}
RESULTS = ROOT / "benchmarks" / "results"


def load_classifier():
    spec = importlib.util.spec_from_file_location("digits_classifier_model",
                                                  ROOT / "examples" / "digits_classifier" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_classifier()


class Scores:
    """Every metric of a batch of samples (see the module docstring)."""

    def __init__(self, train: torch.Tensor, held_out: torch.Tensor):
        self.train, self.distances, self.classifier = train, Metrics(held_out), load_classifier()
        held_nn, _ = nearest_distances(held_out, train)
        self.copy_threshold = float(torch.quantile(held_nn, 0.05))

    def __call__(self, x: torch.Tensor) -> dict[str, float]:
        x = x.to(torch.float64)
        rates = mixed_rate(self.classifier.probabilities(x), TAUS)
        nn, index = nearest_distances(x, self.train)
        return {**{f"mixed@{tau:g}": rate for tau, rate in rates.items()}, **self.distances(x),
                "nn_median": float(nn.median()), "copy_rate": float((nn < self.copy_threshold).double().mean()),
                "distinct": int(torch.unique(torch.round(x * 1e4), dim=0).shape[0]),
                "distinct_nn": int(torch.unique(index).numel())}


def counted_run(denoiser, grid: TimeGrid, solver, start: torch.Tensor, scale_noise: bool) -> tuple[torch.Tensor, int]:
    counted = CountingDenoiser(denoiser)
    sampler = Sampler(counted, grid, solver)
    out = sampler(start, scale_noise=scale_noise)
    if counted.calls != sampler.nfe:
        raise RuntimeError(f"NFE mismatch: counted {counted.calls}, planned {sampler.nfe}")
    return out, counted.calls


def level_time(level: float) -> float:
    """t_0 with sigma/alpha = level on the linear schedule: (1 - t)/t = level."""
    return 1.0 / (1.0 + level)


def main() -> None:
    torch.set_num_threads(1)
    began = time.perf_counter()
    example = load_example()
    train, held_out = (d.double() for d in example.load_digits_split())
    linear = sa.schedules.linear()
    systems = {
        "mixture": GaussianMixtureDenoiser(linear, train, SMOOTHING_STD**2, chunk_size=2048),
        "flow": NetworkDenoiser(example.load_model().double(), linear, "velocity", "t"),
    }
    noise = torch.randn(BATCH, 64, generator=torch.Generator().manual_seed(NOISE_SEED), dtype=torch.float64)
    calibration = torch.randn(32, 64, generator=torch.Generator().manual_seed(CALIBRATION_SEED), dtype=torch.float64)
    scores = Scores(train, held_out)
    held = scores(held_out)
    held.update(mmd=None, swd=None)  # (against itself)
    rows: list[dict] = [{"system": "data", "sampler": "held_out_digits", "nfe": 0, **held},
                        {"system": "data", "sampler": "training_digits[:500]", "nfe": 0, **scores(train[:BATCH])}]

    # one OT fit per level (the latents depend on the data, the level and the seed only)
    potentials, fits = {}, {}
    for level in LEVELS:
        grid = TimeGrid.uniform(linear, 1, t_start=level_time(level))
        road = Expressway(Sampler(systems["mixture"], grid, "euler"), train, seed=LATENT_SEED, ot_dtype=torch.float32)
        road.fit(**OT_FIT)
        check = road.ot.cell_masses(1 << 18, seed=77)
        potentials[level] = road.ot.potential
        fits[level] = {"fit_seconds": road.fit_seconds, "steps": len(road.ot.history),
                       "converged": road.ot.converged, "marginal_error_l1_fit": road.ot.marginal_error,
                       "marginal_error_l1_check": float((check - road.ot.weights).abs().sum()),
                       "empty_cells_check": int((check == 0).sum()), "final_samples": road.ot.history[-1]["samples"],
                       # residual imbalance aligned with the latents' norms biases the expressway's law
                       "corr_cell_mass_latent_norm": float(torch.corrcoef(torch.stack(
                           [check, road.latents.norm(dim=1)]))[0, 1])}
        print(f"OT fit level {level}: {fits[level]}", flush=True)

    for system, denoiser in systems.items():
        out, nfe = counted_run(denoiser, TimeGrid.uniform(linear, 50), "midpoint", noise, True)
        rows.append({"system": system, "sampler": "midpoint_reference", "nfe": nfe, **scores(out)})
        for budget in NFES:
            for solver in PLAIN:
                grid = _fit_budget(lambda steps: TimeGrid.uniform(linear, steps), solver, budget)
                out, nfe = counted_run(denoiser, grid, solver, noise, True)
                rows.append({"system": system, "sampler": solver, "nfe": nfe, **scores(out)})
            plan = select_sampler(denoiser, calibration, budget).best
            out, nfe = counted_run(denoiser, plan.grid, get_plan_solver(plan), noise, True)
            rows.append({"system": system, "sampler": f"plan: {plan.label}", "nfe": nfe, **scores(out)})
            for level in LEVELS:
                t0 = level_time(level)
                for solver in EXPRESS:
                    grid = _fit_budget(lambda steps: TimeGrid.uniform(linear, steps, t_start=t0), solver, budget)
                    road = Expressway(Sampler(denoiser, grid, solver), train, seed=LATENT_SEED, ot_dtype=torch.float32)
                    road.ot.potential = potentials[level]
                    out, nfe = counted_run(denoiser, grid, solver, road.start(noise), False)
                    rows.append({"system": system, "sampler": f"expressway(level={level:g})+{solver}", "nfe": nfe,
                                 "t0": t0, "ot_fit_seconds": fits[level]["fit_seconds"], **scores(out)})
                    if solver != "midpoint":
                        continue
                    g = torch.Generator().manual_seed(CONTROL_SEED)
                    index = torch.randint(0, train.shape[0], (BATCH,), generator=g)
                    out, nfe = counted_run(denoiser, grid, solver, road.latents[index], False)
                    rows.append({"system": system, "sampler": f"random_latent(level={level:g})+{solver}", "nfe": nfe,
                                 "t0": t0, **scores(out)})
                    fresh = t0 * train[index] + (1 - t0) * torch.randn(BATCH, 64, generator=g, dtype=torch.float64)
                    out, nfe = counted_run(denoiser, grid, solver, fresh, False)
                    rows.append({"system": system, "sampler": f"renoised(level={level:g})+{solver}", "nfe": nfe,
                                 "t0": t0, **scores(out)})
            print(f"{system} NFE {budget} done ({time.perf_counter() - began:.0f}s)", flush=True)

    seconds = time.perf_counter() - began
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"command": "nice -n 10 .venv/bin/python benchmarks/ot.py", "seconds_total": round(seconds, 1),
               "batch": BATCH, "taus": list(TAUS), "copy_threshold": scores.copy_threshold,
               "ot_fits": {f"{level:g}": fit for level, fit in fits.items()}, "rows": rows}
    (RESULTS / "ot.json").write_text(json.dumps(payload, indent=1) + "\n")
    head = f"{'system':8s} {'sampler':44s} {'nfe':>4s} " + " ".join(f"{'mix@' + format(t, 'g'):>8s}" for t in TAUS)
    print(head + f" {'mmd':>9s} {'swd':>7s} {'nn_med':>7s} {'copy':>6s} {'dist':>5s} {'d_nn':>5s}")
    for row in rows:
        rates = " ".join(f"{row[f'mixed@{t:g}']:8.3f}" for t in TAUS)
        mmd, swd = (f"{row[k]:{spec}}" if row[k] is not None else "-" for k, spec in (("mmd", "9.2e"), ("swd", "7.4f")))
        print(f"{row['system']:8s} {row['sampler'][:44]:44s} {row['nfe']:4d} {rates} {mmd:>9s} "
              f"{swd:>7s} {row['nn_median']:7.3f} {row['copy_rate']:6.3f} {row['distinct']:5d} "
              f"{row['distinct_nn']:5d}")
    print(f"total {seconds:.0f}s; wrote {RESULTS / 'ot.json'}")


def get_plan_solver(plan):
    """The selected candidate's solver with its options."""
    return sa.sampling.get_solver(plan.solver, **dict(plan.options))


if __name__ == "__main__":
    main()
