"""schedalg in one page: declare schedules, derive, compile, tabulate and plot.

    python examples/demo.py            # prints tables, writes out/demo.png
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
        plt = sa._optional.require("matplotlib.pyplot", "the demo's plot")
    except ImportError as exc:
        print(f"\n(no plot: {exc})")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("linear", "cosine", "vp_linear", "vp_cosine", "brownian_bridge", "polynomial_convex"):
        schedule = sa.schedules.LIBRARY[name]()
        compiled = schedule.compile()
        u = torch.linspace(0.001, 0.999, 400, dtype=torch.float64)
        tt = float(schedule.domain[0]) + u * float(schedule.domain[1] - schedule.domain[0])
        # plot against generation progress (0 = noise end, 1 = data end)
        progress = u if schedule.direction > 0 else 1 - u
        axes[0].plot(progress, compiled.log_snr(tt), label=name)
        axes[1].plot(progress, compiled.alpha(tt), label=name)
    axes[0].set(xlabel="generation progress", ylabel="log-SNR lambda", ylim=(-15, 15))
    axes[1].set(xlabel="generation progress", ylabel="alpha (data coefficient)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=110)
    print(f"\nwrote {out / 'demo.png'}")


if __name__ == "__main__":
    main()
