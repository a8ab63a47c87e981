"""Sampler overhead per step against a bare hand-written torch Euler loop, same model.

The model is a small velocity MLP ``v(x, t)`` for the linear schedule (alpha = t,
sigma = 1 - t). The bare loop is what one would write by hand::

    for i in range(N): x = x + dt[i] * net(x, t[i].expand(B))

and is compared in the same run, interleaved, with

- ``sampler``: ``Sampler(NetworkDenoiser(net, linear, "velocity"), grid, "euler")``, the
  full schedalg path as a user calls it, with the default deferred NaN/inf check. Euler
  and the velocity wrapper are both affine, so a plain call runs the fused loop
  (:mod:`schedalg.sampling._fused`): per step the wrapper's raw network call (time input,
  shape/dtype checks, finite-check record) and one ``torch.add(x, out, alpha=B_i)`` with
  ``B_i`` folded before the loop from the solver's and the wrapper's coefficients, instead
  of forming ``(x0_hat, eps_hat)`` and combining them;
- ``sampler_check_finite_off``: the same with the wrapper's NaN/inf check switched off;
- ``sampler_exported``: the same sampler exported with :func:`export_sampler` and loaded
  back (the torch-only interpreter);
- ``sampler_lean_denoiser``: the schedalg step-by-step loop around a minimal prepared
  denoiser that turns the velocity into (x0_hat, eps_hat) itself (it declares no raw
  output, so it is not fused: isolates the unfused loop's own cost).

Times are CPU seconds of this process (``time.process_time``, one torch thread), so other
load on the machine counts less than in wall time. Overhead = time per step / bare time
per step - 1 (from the medians and from the minima), for a small (16) and a large (4096)
batch. Results go to ``benchmarks/results/overhead.json``.

Run: ``python benchmarks/overhead.py`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import schedalg as sa
from schedalg.models import NetworkDenoiser
from schedalg.sampling import Sampler, TimeGrid, export_sampler, load_sampler

RESULTS = Path(__file__).with_name("results") / "overhead.json"


class VelocityMlp(torch.nn.Module):
    """``v(x, t)`` for 2-D data: a 3-layer MLP on ``[x, t]``."""

    def __init__(self, width: int = 128):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                                       torch.nn.SiLU(), torch.nn.Linear(width, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


class _LeanPrepared:
    """(x0_hat, eps_hat) from a velocity on the linear schedule: x0 = x + (1-t) v, eps = x - t v."""

    def __init__(self, net: torch.nn.Module, times: torch.Tensor):
        self.net = net
        self.times = times
        self.t = times.to(torch.float32)
        self.a = (1 - times).tolist()
        self.b = (-times).tolist()

    def __call__(self, x, i, **cond):
        v = self.net(x, self.t[i].expand(x.shape[0]))
        return torch.add(x, v, alpha=self.a[i]), torch.add(x, v, alpha=self.b[i])


class _LeanDenoiser:
    def __init__(self, net, schedule):
        self.net = net
        self.schedule = schedule

    def prepare(self, times):
        return _LeanPrepared(self.net, times)


def bare_euler(net: torch.nn.Module, x: torch.Tensor, times: list[torch.Tensor], dts: list[float]) -> torch.Tensor:
    batch = x.shape[0]
    for t, dt in zip(times, dts):
        x = x + dt * net(x, t.expand(batch))
    return x


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.process_time()  # CPU time of this process: other load on the machine does not count
        fn()
        out.append(time.process_time() - start)
    return out


def measure(batch: int, steps: int, repeats: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    net = VelocityMlp().eval()
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, steps)
    noise = torch.randn(batch, 2)
    times = [torch.tensor(v, dtype=torch.float32) for v in grid.values("times")[:-1]]
    dts = grid.values("dt")
    sampler = Sampler(NetworkDenoiser(net, schedule, prediction="velocity"), grid, "euler")
    unchecked = Sampler(NetworkDenoiser(net, schedule, prediction="velocity", check_finite="off"), grid, "euler")
    lean = Sampler(_LeanDenoiser(net, schedule), grid, "euler")
    exported = load_sampler(export_sampler(sampler, workdir / f"euler_{batch}.pt", noise, write_loader=False))
    candidates = {
        "bare": lambda: bare_euler(net, noise, times, dts),
        "sampler": lambda: sampler(noise, scale_noise=False),
        "sampler_check_finite_off": lambda: unchecked(noise, scale_noise=False),
        "sampler_exported": lambda: exported(noise, scale_noise=False),
        "sampler_lean_denoiser": lambda: lean(noise, scale_noise=False),
    }
    with torch.no_grad():
        reference = candidates["bare"]()
        agreement = {k: float((fn() - reference).abs().max()) for k, fn in candidates.items()}
        for fn in candidates.values():  # warm-up
            fn()
        samples: dict[str, list[float]] = {k: [] for k in candidates}
        for _ in range(repeats):  # interleaved, so drifts in machine load hit all alike
            for key, fn in candidates.items():
                samples[key].extend(_time(fn, 1))
    median = {k: statistics.median(v) / steps for k, v in samples.items()}
    best = {k: min(v) / steps for k, v in samples.items()}
    return {
        "batch": batch, "steps": steps, "repeats": repeats,
        "median_seconds_per_step": median,
        "min_seconds_per_step": best,
        "overhead_vs_bare": {k: median[k] / median["bare"] - 1 for k in candidates if k != "bare"},
        "overhead_vs_bare_min": {k: best[k] / best["bare"] - 1 for k in candidates if k != "bare"},
        "max_abs_difference_vs_bare": agreement,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 5 if args.quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(batch, args.steps, repeats, Path(tmp)) for batch in (16, 4096)]
    report = {
        "benchmark": "schedalg sampler overhead per step vs a bare torch Euler loop (same velocity MLP)",
        "command": "python benchmarks/overhead.py" + (" --quick" if args.quick else ""),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu",
        "machine": platform.processor() or platform.machine(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for run in runs:
        for key, label in (("overhead_vs_bare", "median"), ("overhead_vs_bare_min", "min")):
            ratios = ", ".join(f"{k} {100 * v:+.1f}%" for k, v in run[key].items())
            bare = run[f"{label}_seconds_per_step"]["bare"]
            print(f"batch {run['batch']:>5} ({label:>6}): bare {1e6 * bare:.1f} us/step; {ratios}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
