"""Sampler overhead per step and peak memory against hand-written torch loops of the same method, same model.

The model is a small velocity MLP ``v(x, t)`` for the linear schedule (alpha = t,
sigma = 1 - t). The hand-written loops are what one would write by hand::

    euler: for i in range(N): x = x + dt[i] * net(x, t[i])
    rk4:   k1 = net(x, t); k2 = net(x + h/2 k1, t + h/2); k3 = net(x + h/2 k2, t + h/2)
           k4 = net(x + h k3, t + h); x = x + h/6 (k1 + 2 k2 + 2 k3 + k4)

and are compared in the same run, interleaved, with

- ``sampler``: ``Sampler(NetworkDenoiser(net, linear, "velocity"), grid, method)``, the
  full schedalg path as a user calls it, with the default deferred NaN/inf check;
- ``sampler_check_finite_off``: the same with the wrapper's NaN/inf check switched off;
- ``sampler_exported``: the same sampler exported with :func:`export_sampler` and loaded
  back (the torch-only interpreter);
- ``sampler_lean_denoiser``: the schedalg loop around a minimal prepared denoiser that
  turns the velocity into (x0_hat, eps_hat) itself (no raw output to fold into the
  solver's weights: isolates the loop's own cost on predictions).

RK4 is run with ``final_heun3=False`` so that it is the same method as the hand-written loop.
Times are CPU seconds of this process (``time.process_time``, one torch thread), so other
load on the machine counts less than in wall time. Overhead = time per step / hand-written
time per step - 1 (from the medians and from the minima), for 2-dim data at batch 16 and
4096 and 64-dim data at batch 4096.

Peak memory (``--memory``): each loop runs in a fresh process on a large state (batch
4096 x 1024 dims, float32: 16 MiB per copy); the growth of the process's peak resident set
(``VmHWM``) during one run, over its peak after the set-up, is reported in MiB and in
copies of the state.

Results go to ``benchmarks/results/overhead.json``.
Run: ``python benchmarks/overhead.py`` (``--quick`` for fewer repeats, ``--memory`` for the memory rows).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import schedalg as sa
from schedalg.models import NetworkDenoiser
from schedalg.sampling import Sampler, TimeGrid, export_sampler, get_solver, load_sampler

RESULTS = Path(__file__).with_name("results") / "overhead.json"
CASES = ((16, 2), (4096, 2), (4096, 64))  # (batch, dims)
METHODS = ("euler", "rk4")


class VelocityMlp(torch.nn.Module):
    """``v(x, t)``: a 3-layer MLP on ``[x, t]``."""

    def __init__(self, dims: int = 2, width: int = 128):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dims + 1, width), torch.nn.SiLU(),
                                       torch.nn.Linear(width, width), torch.nn.SiLU(), torch.nn.Linear(width, dims))

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


def hand_euler(net: torch.nn.Module, x: torch.Tensor, times: list[float], dts: list[float]) -> torch.Tensor:
    """Euler on ``dx/dt = net(x, t)``, as written by hand."""
    batch = x.shape[0]
    stamps = [torch.full((batch,), t) for t in times]
    for t, dt in zip(stamps, dts):
        x = x + dt * net(x, t)
    return x


def hand_rk4(net: torch.nn.Module, x: torch.Tensor, times: list[float], dts: list[float]) -> torch.Tensor:
    """The classical RK4 on ``dx/dt = net(x, t)``, as written by hand."""
    batch = x.shape[0]
    stamps = [(torch.full((batch,), t), torch.full((batch,), t + dt / 2), torch.full((batch,), t + dt))
              for t, dt in zip(times, dts)]
    for (t0, tm, t1), h in zip(stamps, dts):
        k1 = net(x, t0)
        k2 = net(x + (h / 2) * k1, tm)
        k3 = net(x + (h / 2) * k2, tm)
        k4 = net(x + h * k3, t1)
        x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


HAND = {"euler": hand_euler, "rk4": hand_rk4}


def _solver(method: str):
    return get_solver("rk4", final_heun3=False) if method == "rk4" else get_solver(method)


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.process_time()  # CPU time of this process: other load on the machine does not count
        fn()
        out.append(time.process_time() - start)
    return out


def measure(method: str, batch: int, dims: int, steps: int, repeats: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    net = VelocityMlp(dims).eval()
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, steps)
    noise = torch.randn(batch, dims)
    times, dts = grid.values("times")[:-1], grid.values("dt")
    sampler = Sampler(NetworkDenoiser(net, schedule, prediction="velocity"), grid, _solver(method))
    unchecked = Sampler(NetworkDenoiser(net, schedule, prediction="velocity", check_finite="off"), grid,
                        _solver(method))
    lean = Sampler(_LeanDenoiser(net, schedule), grid, _solver(method))
    exported = load_sampler(export_sampler(sampler, workdir / f"{method}_{batch}_{dims}.pt", noise,
                                           write_loader=False))
    hand = HAND[method]
    candidates = {
        "hand": lambda: hand(net, noise, times, dts),
        "sampler": lambda: sampler(noise, scale_noise=False),
        "sampler_check_finite_off": lambda: unchecked(noise, scale_noise=False),
        "sampler_exported": lambda: exported(noise, scale_noise=False),
        "sampler_lean_denoiser": lambda: lean(noise, scale_noise=False),
    }
    nfe = sampler.nfe
    with torch.no_grad():
        reference = candidates["hand"]()
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
        "method": method, "batch": batch, "dims": dims, "steps": steps, "nfe": nfe, "repeats": repeats,
        "median_seconds_per_step": median,
        "min_seconds_per_step": best,
        "overhead_vs_hand": {k: median[k] / median["hand"] - 1 for k in candidates if k != "hand"},
        "overhead_vs_hand_min": {k: best[k] / best["hand"] - 1 for k in candidates if k != "hand"},
        "max_abs_difference_vs_hand": agreement,
    }


_MEMORY_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[4])
from benchmarks.overhead import HAND, VelocityMlp, _solver
import schedalg as sa
from schedalg.models import NetworkDenoiser
from schedalg.sampling import Sampler, TimeGrid

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

method, kind, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
batch, dims = 4096, 1024
torch.manual_seed(0)
net = VelocityMlp(dims, width=64).eval()
schedule = sa.schedules.linear()
grid = TimeGrid.uniform(schedule, steps)
noise = torch.randn(batch, dims)
if kind == "hand":
    times, dts = grid.values("times")[:-1], grid.values("dt")
    run = lambda: HAND[method](net, noise, times, dts)
else:
    sampler = Sampler(NetworkDenoiser(net, schedule, prediction="velocity"), grid, _solver(method))
    run = lambda: sampler(noise, scale_noise=False)
with torch.no_grad():
    net(noise[:1], torch.zeros(1))  # load the kernels
    before = peak_mib()
    out = run()
    after = peak_mib()
state = batch * dims * 4 / 2**20
print(json.dumps({"method": method, "loop": kind, "batch": batch, "dims": dims, "state_mib": state,
                  "peak_growth_mib": after - before}))
"""


def memory_rows(steps: int = 4) -> list[dict]:
    """Peak-RSS growth of one run (hand-written loop and sampler), each in a fresh process."""
    rows = []
    root = str(Path(__file__).resolve().parents[1])
    for method in METHODS:
        for kind in ("hand", "sampler"):
            out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, method, kind, str(steps), root],
                                 check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (fresh processes)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 5 if args.quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(method, batch, dims, args.steps if method == "euler" else max(1, args.steps // 4),
                        repeats, Path(tmp)) for method in METHODS for batch, dims in CASES]
    report = {
        "benchmark": "schedalg sampler overhead per step vs hand-written torch loops (same velocity MLP)",
        "command": "python benchmarks/overhead.py" + (" --quick" if args.quick else "")
        + (" --memory" if args.memory else ""),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu",
        "machine": platform.processor() or platform.machine(),
        "runs": runs,
    }
    for run in runs:
        for key, label in (("overhead_vs_hand", "median"), ("overhead_vs_hand_min", "min")):
            ratios = ", ".join(f"{k} {100 * v:+.1f}%" for k, v in run[key].items())
            hand = run[f"{label}_seconds_per_step"]["hand"]
            print(f"{run['method']:>5} batch {run['batch']:>5} x {run['dims']:>2} ({label:>6}): "
                  f"hand {1e6 * hand:.1f} us/step; {ratios}")
    if args.memory:
        report["memory"] = memory_rows()
        for row in report["memory"]:
            print(f"memory {row['method']:>5} {row['loop']:>7}: peak growth {row['peak_growth_mib']:.0f} MiB "
                  f"= {row['peak_growth_mib'] / row['state_mib']:.1f} states")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
