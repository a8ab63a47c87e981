"""Lazy schedules on real data: fewer-step sampling of a trained flow model without retraining.

    .venv/bin/python benchmarks/lazy.py          # ~1-3 minutes on one CPU thread

Model: the small flow-matching MLP of ``examples/digits_flow`` (linear schedule, velocity
prediction, trained on scikit-learn's 8x8 digits; committed weights, no retraining).
Samplers at 2, 4, 8, 16 and 32 network evaluations (NFE):

* ``euler``, ``heun``, ``midpoint``, ``dpmpp_2m``: schedalg.sampling on the training
  schedule, uniform in t (``heun`` with a corrector on every step: 2 NFE per step);
* ``lazy_euler``, ``lazy_heun``, ``lazy_midpoint``: the lazy ODE (variance-preserving
  family; data standardized with the training set's mean image and scalar std),
  uniform in the angle;
* ``lazy_dpmpp_2m``: schedalg.sampling's DPM-Solver++(2M) on the lazy view, angle-uniform
  grid (DPM-Solver++ is invariant under standardization and schedule conversion, so this
  is DPM-Solver++ on the training schedule with the lazy grid's log-SNRs);
* ``euler_lazy_grid``: Euler in the training schedule's t at the lazy grid's network
  times (separates the effect of the grid from that of the lazy parameterization);
* ``lazy_sde``: the point-mass family, Euler-Maruyama from the point mass, uniform in alpha.

Metrics:

* ``error`` (ODE samplers): RMS difference of the endpoint from a high-accuracy adaptive
  solve (scipy DOP853, rtol = atol = 1e-8) of the same model's ODE from the same noise:
  pure integration error. For ``lazy_sde`` it is the strong error against Euler-Maruyama
  with 512 steps driven by the same Brownian path (the coarse steps use the summed
  increments): the SDE's own integration error, not comparable with the ODE rows.
* ``mmd``: unbiased squared MMD to the 397 held-out digits (sum of Gaussian kernels with
  bandwidths 1/4, 1/2, 1 and 2 times the held-out median pairwise distance); ``swd``:
  sliced Wasserstein-2 over 512 fixed random directions (seed 0). Rows for the
  reference ODE samples, the reference SDE samples and 500 training digits give the
  floors set by the model and by the sample size.

Writes ``benchmarks/results/lazy.json`` (one object per sampler and NFE) and
``benchmarks/results/lazy_samples.png``; prints the table.
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
from schedalg._optional import require  # noqa: E402
from schedalg.lazy import LazyDenoiser, Standardization, lazy_ode_sample, point_mass_sample  # noqa: E402
from schedalg.models import NetworkDenoiser  # noqa: E402
from schedalg.sampling import TimeGrid, sample  # noqa: E402

NFES = (2, 4, 8, 16, 32)
BATCH = 500
NOISE_SEED = 1234
METRIC_SEED = 0
SDE_FINE_STEPS = 512
SYSTEM = "digits_flow_mlp (linear, velocity; sklearn 8x8 digits)"
RESULTS = ROOT / "benchmarks" / "results"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_flow_model", ROOT / "examples" / "digits_flow" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- metrics


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...]) -> float:
    """Unbiased squared MMD with a sum of Gaussian kernels exp(-|u - v|^2 / (2 b^2))."""
    def kernel(u, v):
        d2 = torch.cdist(u, v).square()
        return sum(torch.exp(-d2 / (2 * b * b)) for b in bandwidths)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    n, m = x.shape[0], y.shape[0]
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
                 + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())


def sliced_w2(x: torch.Tensor, y: torch.Tensor, directions: torch.Tensor) -> float:
    """Sliced Wasserstein-2 between empirical measures (quantiles matched on a common grid)."""
    px, py = x @ directions, y @ directions
    q = torch.linspace(0, 1, 256, dtype=x.dtype)
    qx = torch.quantile(px, q, dim=0)
    qy = torch.quantile(py, q, dim=0)
    return float((qx - qy).square().mean().sqrt())


class Metrics:
    """``x -> {"mmd", "swd"}`` against the held-out digits, with fixed kernels and directions."""

    def __init__(self, held_out: torch.Tensor):
        self.held_out = held_out
        g = torch.Generator().manual_seed(METRIC_SEED)
        directions = torch.randn(held_out.shape[1], 512, generator=g, dtype=torch.float64)
        self.directions = directions / directions.norm(dim=0, keepdim=True)
        median = float(torch.cdist(held_out, held_out).median())
        self.bandwidths = tuple(median * f for f in (0.25, 0.5, 1.0, 2.0))

    def __call__(self, x: torch.Tensor) -> dict[str, float]:
        return {"mmd": mmd2(x, self.held_out, self.bandwidths), "swd": sliced_w2(x, self.held_out, self.directions)}


# ---------------------------------------------------------------- reference solves


def reference_ode(network, noise: torch.Tensor, tol: float = 1e-10) -> tuple[torch.Tensor, int]:
    """DOP853 solve of dx/dt = v(x, t) from t = 0 (noise) to t = 1 (data), all samples at once."""
    from scipy.integrate import solve_ivp

    shape = noise.shape
    calls = [0]

    def rhs(tt, flat):
        calls[0] += 1
        x = torch.from_numpy(flat).reshape(shape)
        with torch.no_grad():
            return network(x, torch.full((shape[0],), tt, dtype=torch.float64)).reshape(-1).numpy()

    out = solve_ivp(rhs, (0.0, 1.0), noise.reshape(-1).numpy(), method="DOP853", rtol=tol, atol=tol)
    if not out.success:
        raise RuntimeError(out.message)
    return torch.from_numpy(out.y[:, -1]).reshape(shape), calls[0]


def coarse_increments(fine: torch.Tensor, steps: int) -> torch.Tensor:
    """Standard normal draws of a uniform ``steps``-step grid from a finer one's (same Brownian path)."""
    group = fine.shape[0] // steps
    return fine.reshape(steps, group, *fine.shape[1:]).sum(1) / group**0.5


# ---------------------------------------------------------------- samplers


def run_samplers(denoiser, standardization, noise, fine_draws):
    lazy_view = LazyDenoiser(denoiser, standardization, "ode")
    linear = denoiser.schedule
    out = {}
    for nfe in NFES:
        half = nfe // 2
        out[("euler", nfe)] = sample(denoiser, noise, TimeGrid.uniform(linear, nfe), "euler")
        out[("heun", nfe)] = sample(denoiser, noise, TimeGrid.uniform(linear, half), "heun",
                                    solver_options={"final_euler": False})
        out[("dpmpp_2m", nfe)] = sample(denoiser, noise, TimeGrid.uniform(linear, nfe), "dpmpp_2m")
        out[("lazy_euler", nfe)] = lazy_ode_sample(denoiser, noise, standardization, steps=nfe, solver="euler")
        out[("lazy_heun", nfe)] = lazy_ode_sample(denoiser, noise, standardization, steps=half, solver="heun")
        out[("lazy_midpoint", nfe)] = lazy_ode_sample(denoiser, noise, standardization, steps=half,
                                                      solver="midpoint")
        out[("midpoint", nfe)] = sample(denoiser, noise, TimeGrid.uniform(linear, half), "midpoint")
        angle_grid = lazy_view.time_grid(lazy_view.uniform_grid(nfe))
        out[("lazy_dpmpp_2m", nfe)] = standardization.invert(sample(lazy_view, noise, angle_grid, "dpmpp_2m"))
        out[("euler_lazy_grid", nfe)] = sample(denoiser, noise, linear_times_of(lazy_view, nfe), "euler")
        out[("lazy_sde", nfe)] = point_mass_sample(denoiser, coarse_increments(fine_draws, nfe), standardization)
    return out


def linear_times_of(lazy_view: LazyDenoiser, steps: int) -> TimeGrid:
    """The training schedule's times of the lazy angle-uniform grid (same network times, Euler in t)."""
    times = lazy_view.prepare(lazy_view.uniform_grid(steps)).source_times
    return TimeGrid.from_times(lazy_view.inner.schedule, times)


def save_grid(images: dict[str, torch.Tensor], path: Path, columns: int = 10) -> None:
    plt = require("matplotlib.pyplot", "the sample grid of benchmarks/lazy.py")
    names = list(images)
    fig, axes = plt.subplots(len(names), 1, figsize=(columns * 0.55 + 2.2, len(names) * 0.62 + 0.2))
    for ax, name in zip(axes, names):
        tiles = images[name][:columns].reshape(columns, 8, 8).clamp(-1, 1)
        ax.imshow(torch.cat(list(tiles), dim=1).numpy(), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=0.3, right=0.99, top=0.99, bottom=0.01, hspace=0.15)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    example = load_example()
    network = example.load_model().double()
    train, held_out = (d.double() for d in example.load_digits_split())
    denoiser = NetworkDenoiser(network, sa.schedules.linear(), "velocity", "t")
    standardization = Standardization.estimate(train)  # mean image, scalar std

    gen = torch.Generator().manual_seed(NOISE_SEED)
    noise = torch.randn(BATCH, 64, generator=gen, dtype=torch.float64)
    fine_draws = torch.randn(SDE_FINE_STEPS, BATCH, 64, generator=gen, dtype=torch.float64)

    reference, ref_nfe = reference_ode(network, noise, 1e-8)
    ref_loose, _ = reference_ode(network, noise, 1e-6)
    ref_check = float((reference - ref_loose).square().mean().sqrt())
    sde_reference = point_mass_sample(denoiser, fine_draws, standardization)

    distances = Metrics(held_out)

    outputs = run_samplers(denoiser, standardization, noise, fine_draws)
    rows = []
    for (name, nfe), x in outputs.items():
        target = sde_reference if name == "lazy_sde" else reference
        rows.append({"system": SYSTEM, "sampler": name, "nfe": nfe,
                     "error": float((x - target).square().mean().sqrt()),
                     "error_kind": ("strong error vs Euler-Maruyama with 512 steps, same Brownian path"
                                    if name == "lazy_sde" else "RMS endpoint error vs DOP853 ODE solve, same noise"),
                     **distances(x)})
    rows.append({"system": SYSTEM, "sampler": "reference_ode_dop853", "nfe": ref_nfe, "error": ref_check,
                 "error_kind": "RMS difference rtol 1e-8 vs 1e-6 (bounds the reference's own error)", **distances(reference)})
    rows.append({"system": SYSTEM, "sampler": "reference_sde_em512", "nfe": SDE_FINE_STEPS, "error": None,
                 "error_kind": "the SDE reference itself", **distances(sde_reference)})
    rows.append({"system": SYSTEM, "sampler": "training_digits", "nfe": 0, "error": None,
                 "error_kind": "data floor: training digits vs held-out digits", **distances(train[:BATCH])})
    seconds = time.perf_counter() - start
    for row in rows:
        row["seconds_total"] = round(seconds, 1)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lazy.json").write_text(json.dumps(rows, indent=1) + "\n")
    shown = {"held-out digits": held_out, "reference ODE (DOP853)": reference}
    for nfe in (2, 8):
        for name in ("euler", "heun", "midpoint", "dpmpp_2m", "lazy_euler", "lazy_midpoint", "lazy_sde"):
            shown[f"{name} NFE={nfe}"] = outputs[(name, nfe)]
    save_grid(shown, RESULTS / "lazy_samples.png")

    print(f"{'sampler':22s} {'nfe':>4s} {'error':>10s} {'mmd':>10s} {'swd':>8s}")
    for row in rows:
        err = "-" if row["error"] is None else f"{row['error']:.3e}"
        print(f"{row['sampler']:22s} {row['nfe']:4d} {err:>10s} {row['mmd']:10.2e} {row['swd']:8.4f}")
    print(f"total {seconds:.0f}s; wrote {RESULTS / 'lazy.json'} and {RESULTS / 'lazy_samples.png'}")


if __name__ == "__main__":
    main()
