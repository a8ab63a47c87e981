"""Augmented-space (PSLD) samplers vs scalar-schedule (VP) samplers on a digits Gaussian mixture.

Data: 500 digits (scikit-learn, scaled to [-1, 1], 64 dimensions) as the means of an isotropic
Gaussian mixture with smoothing variance 0.01; the exact score in augmented space is again a
mixture (AugmentedMixtureModel), and on VP the foundation's GaussianMixtureDenoiser.
Each sampler runs from the same initial noise of its process (64 samples) to t_eps = 1e-3
with a budget of 10, 20, 50, 100 network evaluations (steps = budget // NFE per step);
error = RMS per data dimension of the endpoint's data block against a reference solve of the
same probability-flow ODE from the same noise (classical RK4, 1000 steps on a grid
quadratic towards the data; its own accuracy, RK4 1000 vs 500 steps, is reported as
``reference_error``).

Run:  .venv/bin/python benchmarks/augmented.py       (about 1-3 minutes on one core)
Writes benchmarks/results/augmented.json.
"""

from __future__ import annotations

import json
import pathlib
import time

import torch

import schedalg as sa
import schedalg.augmented as aug

BUDGETS = (10, 20, 50, 100)
T, T_EPS, BATCH, COMPONENTS, SMOOTHING = 1.0, 1e-3, 64, 500, 0.01
AUGMENTED = ["euler", "heun", "exponential", ("lambda_ddim", {"lam": 2.0}), "symmetric_splitting",
             "naive_symplectic_euler", "reduced_symplectic_euler", "naive_velocity_verlet",
             "reduced_velocity_verlet", "conjugate_splitting"]
SCALAR = ["euler", "heun", "ddim", "dpmpp_2m"]


def _rms(x: torch.Tensor, reference: torch.Tensor) -> float:
    return float(((x - reference) ** 2).mean().sqrt())


def _reference(model, z: torch.Tensor) -> tuple[torch.Tensor, float]:
    fine = aug.sample_augmented(model, z, aug.time_grid(T, T_EPS, 1000), "rk4")
    coarse = aug.sample_augmented(model, z, aug.time_grid(T, T_EPS, 500), "rk4")
    return fine, _rms(coarse[:, 0], fine[:, 0])


def run() -> list[dict]:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    from schedalg.datasets import digits

    data = digits()
    means = data[torch.randperm(data.shape[0], generator=gen)[:COMPONENTS]]
    rows: list[dict] = []

    # ---- augmented space: PSLD, z_T ~ N(0, S) (its stationary law)
    psld = aug.psld()
    model = aug.AugmentedMixtureModel(psld, means, SMOOTHING)
    S = aug.equilibrium(psld).S
    z = torch.randn(BATCH, 2, 64, generator=gen, dtype=torch.float64) * S.diagonal().sqrt()[None, :, None]
    start = time.perf_counter()
    reference, ref_error = _reference(model, z)
    print(f"psld reference: {time.perf_counter() - start:.1f}s, rk4 1000 vs 500 steps: {ref_error:.2e}")
    for entry in AUGMENTED:
        name, options = (entry, {}) if isinstance(entry, str) else entry
        solver = aug.get_solver(name, **options)
        label = name if not options else f"{name}({', '.join(f'{k}={v}' for k, v in options.items())})"
        for budget in BUDGETS:
            steps = budget // solver.nfe_per_step
            out = aug.sample_augmented(model, z, aug.time_grid(T, T_EPS, steps), solver)
            rows.append({"system": "schedalg", "process": "psld", "sampler": label, "nfe": steps * solver.nfe_per_step,
                         "steps": steps, "error": _rms(out[:, 0], reference[:, 0]), "reference_error": ref_error})
            print(f"psld {label:28s} nfe={rows[-1]['nfe']:4d} error={rows[-1]['error']:.4e}")

    # ---- scalar schedule: VP (linear beta), schedalg.sampling with the exact mixture denoiser
    from schedalg.denoisers import GaussianMixtureDenoiser
    from schedalg.sampling import TimeGrid, get_solver, sample

    vp = sa.schedules.vp_linear()
    vp_sde = aug.LinearSDE.from_schedule(vp)
    x = torch.randn(BATCH, 64, generator=gen, dtype=torch.float64) * float(vp.compile().sigma(torch.tensor(T)))
    start = time.perf_counter()
    reference, ref_error = _reference(aug.AugmentedMixtureModel(vp_sde, means, SMOOTHING), x[:, None])
    print(f"vp reference: {time.perf_counter() - start:.1f}s, rk4 1000 vs 500 steps: {ref_error:.2e}")
    denoiser = GaussianMixtureDenoiser(vp, means, SMOOTHING)
    for name in SCALAR:
        for budget in BUDGETS:
            probe = get_solver(name)
            steps = budget
            while steps > 1 and probe.nfe(TimeGrid.log_snr_uniform(vp, steps, t_start=T, t_end=T_EPS)) > budget:
                steps -= 1
            grid = TimeGrid.log_snr_uniform(vp, steps, t_start=T, t_end=T_EPS)
            out = sample(denoiser, x, grid, name, scale_noise=False)
            rows.append({"system": "schedalg", "process": "vp", "sampler": f"vp/{name}", "nfe": probe.nfe(grid),
                         "steps": steps, "error": _rms(out, reference[:, 0]), "reference_error": ref_error})
            print(f"vp   {name:28s} nfe={rows[-1]['nfe']:4d} error={rows[-1]['error']:.4e}")
    return rows


if __name__ == "__main__":
    start = time.perf_counter()
    results = run()
    path = pathlib.Path(__file__).parent / "results" / "augmented.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {len(results)} rows to {path} in {time.perf_counter() - start:.0f}s")
