"""schedalg in one page: declare schedules, derive, compile, tabulate and plot.

    python examples/demo.py            # prints tables, writes out/demo.png and out/trajectories.png
"""

from __future__ import annotations

import pathlib
import time

import sympy as sp
import torch

import schedalg as sa


def derivation_table() -> list[dict]:
    rows = []
    for name, make in sa.schedules.LIBRARY.items():
        start = time.perf_counter()
        schedule = make()
        inverse = schedule.inverse_log_snr
        compiled = schedule.compile()
        compiled.evaluate(torch.tensor([0.5], dtype=torch.float64) * float(schedule.domain[1]), *sa.compile.QUANTITIES)
        rows.append({"schedule": name, "direction": schedule.direction, "point_mass": schedule.is_point_mass,
                     "log_snr_range": schedule.log_snr_range, "inverse": inverse.kind,
                     "seconds": time.perf_counter() - start})
    return rows


def main() -> None:
    t = sa.t
    cosine = sa.Schedule(alpha=sp.cos(sp.pi * t / 2), sigma=sp.sin(sp.pi * t / 2), name="cosine")
    print("A schedule declared in one line:", cosine)
    print("  log-SNR        :", cosine.log_snr)
    print("  d log-SNR / dt :", sp.simplify(cosine.d_log_snr))
    print("  t(lambda)      :", cosine.inverse_log_snr.expr)
    print("  optimal e*(t)  :", sp.simplify(cosine.e_star))
    print("  forward SDE f  :", sp.simplify(cosine.drift_f), "  g^2:", sp.simplify(cosine.diffusion_g2))
    print("  generated torch source for (alpha, sigma, log_snr):")
    print("    " + cosine.compile().source("alpha", "sigma", "log_snr").replace("\n", "\n    "))

    print("\nEvery library schedule, derived and compiled:")
    print(f"{'schedule':18s} {'dir':>4s} {'point-mass':>10s} {'inverse':>9s} {'seconds':>8s}  log-SNR range")
    for row in derivation_table():
        low, high = row["log_snr_range"]
        print(f"{row['schedule']:18s} {row['direction']:+4d} {str(row['point_mass']):>10s} {row['inverse']:>9s} "
              f"{row['seconds']:8.3f}  [{low:.3g}, {high:.3g}]")

    out = pathlib.Path("out")
    out.mkdir(exist_ok=True)
    try:
        import schedalg.plot as splot

        library = sa.schedules.LIBRARY
        names = ("linear", "cosine", "vp_linear", "vp_cosine", "brownian_bridge", "polynomial_convex")
        splot.schedules({name: library[name]() for name in names}).savefig(out / "demo.png", dpi=110)
        splot.trajectories(*splot.record_trajectory(*_mixture_run())).savefig(out / "trajectories.png", dpi=110)
    except sa.errors.OptionalDependencyError as exc:
        print(f"\n(no plot: {exc})")
        return
    print(f"\nwrote {out / 'demo.png'} and {out / 'trajectories.png'}")


def _mixture_run():
    """A sampler on the exact denoiser of 300 digits (64 dims, a Gaussian mixture), and its noise."""
    from schedalg.denoisers import GaussianMixtureDenoiser
    from schedalg.sampling import Sampler, TimeGrid

    schedule = sa.schedules.linear()
    digits = sa.datasets.digits()[:300]
    sampler = Sampler(GaussianMixtureDenoiser(schedule, digits, 0.01), TimeGrid.uniform(schedule, 16), "heun")
    return sampler, torch.randn(8, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


if __name__ == "__main__":
    main()
