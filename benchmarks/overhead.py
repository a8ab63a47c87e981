"""Sampler overhead per step and peak memory against hand-written torch loops of the same method, same model.

The model is a small velocity MLP ``v(x, t)`` for the linear schedule (alpha = t,
sigma = 1 - t). The hand-written loops are what one would write by hand::

    euler: for i in range(N): x = x + dt[i] * net(x, t[i])
    rk4:   k1 = net(x, t); k2 = net(x + h/2 k1, t + h/2); k3 = net(x + h/2 k2, t + h/2)
           k4 = net(x + h k3, t + h); x = x + h/6 (k1 + 2 k2 + 2 k3 + k4)

and are compared in the same process, with

- ``sampler``: ``Sampler(NetworkDenoiser(net, linear, "velocity"), grid, method)``, the
  full schedalg path as a user calls it, with the default deferred NaN/inf check;
- ``sampler_check_finite_off``: the same with the wrapper's NaN/inf check switched off;
- ``sampler_exported``: the same sampler exported with :func:`export_sampler` and loaded
  back (the torch-only interpreter);
- ``sampler_lean_denoiser``: the schedalg loop around a minimal prepared denoiser that
  turns the velocity into (x0_hat, eps_hat) itself (no raw output to fold into the
  solver's weights: isolates the loop's own cost on predictions).

RK4 is run with ``final_heun3=False`` so that it is the same method as the hand-written loop.

**Paired A/B.** Machine load drifts on a scale of seconds, so every repeat times each candidate
right next to a run of the hand-written loop (the pair's order drawn at random, the candidates'
order shuffled; the in-library samplers and the others in two passes, see :data:`PASSES`), and the overhead is the **median over repeats of the paired ratio**
``candidate time / hand time - 1``, with its interquartile range and a 95 % confidence interval
of the median (order statistics of the binomial). Each timed run is ``inner`` calls long (about
10 ms at least). Times are CPU seconds of this process (``time.process_time``, one torch
thread), so other processes' load counts less than in wall time. Cases: Euler (50 steps) and
RK4 (12 steps, 48 evaluations) at batch 16 and 4096 on 2- and 64-dim data. The exported
sampler against the in-library one is the median of the ratio of their paired ratios.
The load average (``os.getloadavg``) before and after is recorded. glibc's allocator is set to
reuse a never-trimmed heap for the timings (:func:`steady_allocator`; memory rows are measured
the other way, in their own processes).

Peak memory (``--memory``): each loop runs in a fresh process on a large state (batch
4096 x 1024 dims, float32: 16 MiB per copy); the growth of the process's peak resident set
(``VmHWM``) during one run, over its peak after the set-up, is reported in MiB and in
copies of the state (glibc's mmap threshold fixed at 64 KiB, so that freed buffers leave the
resident set at once and the peak follows the live tensors), for Euler, Heun, RK4 (against
hand-written loops), DPM-Solver++(2M), (3M) and iPNDM. Each sampler row also gives the solver's
declared memory (the most earlier-step registers a step reads besides the state).

Results go to ``benchmarks/results/overhead.json``.
Run: ``nice -n 10 python benchmarks/overhead.py --memory`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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
CASES = ((16, 2), (16, 64), (4096, 2), (4096, 64))  # (batch, dims)
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


def hand_heun(net: torch.nn.Module, x: torch.Tensor, times: list[float], dts: list[float]) -> torch.Tensor:
    """Heun's method on ``dx/dt = net(x, t)`` (Euler on the last step, as schedalg's ``heun``), by hand."""
    batch = x.shape[0]
    stamps = [(torch.full((batch,), t), torch.full((batch,), t + dt)) for t, dt in zip(times, dts)]
    for n, ((t0, t1), h) in enumerate(zip(stamps, dts)):
        k1 = net(x, t0)
        if n == len(dts) - 1:
            x = x + h * k1
            break
        k2 = net(x + h * k1, t1)
        x = x + (h / 2) * (k1 + k2)
    return x


HAND = {"euler": hand_euler, "rk4": hand_rk4, "heun": hand_heun}


def _solver(method: str):
    return get_solver("rk4", final_heun3=False) if method == "rk4" else get_solver(method)


#: candidates timed together (one pass each, in this order): the in-library samplers, then the loops that run
#: other code (the exported interpreter, the lean denoiser). Interleaved with those, the checked in-library
#: sampler ran 13-15 % over the hand-written loop at batch 4096 (Euler) against 1.5 % in its own pass (heap
#: layout left by the other loops; the check-off sampler and the hand-written loop were not affected).
PASSES = (("sampler", "sampler_check_finite_off"), ("sampler_exported", "sampler_lean_denoiser"))


def _timed(fn, inner: int) -> float:
    start = time.process_time()  # CPU time of this process: other load on the machine does not count
    for _ in range(inner):
        fn()
    return time.process_time() - start


def _spread(ratios: list[float]) -> dict:
    """Median of paired ratios - 1, its interquartile range and a 95 % CI of the median (order statistics)."""
    ordered = sorted(ratios)
    n = len(ordered)
    q1, _, q3 = statistics.quantiles(ordered, n=4)
    half = 0.98 * n ** 0.5  # 1.96 sqrt(n) / 2: ranks of the CI of the median
    lo, hi = max(0, int(n / 2 - half)), min(n - 1, int(n / 2 + half))
    return {"median": statistics.median(ordered) - 1, "q25": q1 - 1, "q75": q3 - 1,
            "ci95": [ordered[lo] - 1, ordered[hi] - 1], "pairs": n}


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
    others = [k for k in candidates if k != "hand"]
    nfe = sampler.nfe
    rng = random.Random(f"{method}{batch}x{dims}")
    with torch.no_grad():
        reference = candidates["hand"]()
        agreement = {k: float((fn() - reference).abs().max()) for k, fn in candidates.items()}
        for fn in candidates.values():  # warm-up
            fn()
        single = _timed(candidates["hand"], 1)
        inner = max(1, int(0.01 / max(single, 1e-6)))  # each timed run at least about 10 ms
        seconds: dict[str, list[float]] = {k: [] for k in candidates}
        ratios: dict[str, list[float]] = {k: [] for k in others}
        for group in PASSES:
            for _ in range(repeats):
                keys = list(group)
                rng.shuffle(keys)
                for key in keys:  # each candidate next to its own hand-written run, in random order
                    pair = ["hand", key] if rng.random() < 0.5 else [key, "hand"]
                    took = {k: _timed(candidates[k], inner) / (inner * steps) for k in pair}
                    seconds["hand"].append(took["hand"])
                    seconds[key].append(took[key])
                    ratios[key].append(took[key] / took["hand"])
    keys = sorted(others)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    exported_vs_sampler = [e / s for e, s in zip(ratios["sampler_exported"], ratios["sampler"])]
    return {
        "method": method, "batch": batch, "dims": dims, "steps": steps, "nfe": nfe, "repeats": repeats,
        "calls_per_timing": inner,
        "median_seconds_per_step": median,
        "overhead_vs_hand": {k: _spread(ratios[k]) for k in keys},
        "exported_vs_in_library": _spread(exported_vs_sampler),
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
declared = None
if kind == "hand":
    times, dts = grid.values("times")[:-1], grid.values("dt")
    run = lambda: HAND[method](net, noise, times, dts)
else:
    sampler = Sampler(NetworkDenoiser(net, schedule, prediction="velocity"), grid, _solver(method))
    program = sampler.program()
    declared = max(len(program.memory(i)) for i in range(program.n_steps))
    run = lambda: sampler(noise, scale_noise=False)
with torch.no_grad():
    net(noise[:1], torch.zeros(1))  # load the kernels
    before = peak_mib()
    out = run()
    after = peak_mib()
state = batch * dims * 4 / 2**20
print(json.dumps({"method": method, "loop": kind, "batch": batch, "dims": dims, "state_mib": state,
                  "peak_growth_mib": after - before, "peak_growth_states": (after - before) / state,
                  "declared_memory": declared}))
"""


MEMORY_METHODS = ("euler", "heun", "rk4", "dpmpp_2m", "dpmpp_3m", "ipndm")


def memory_rows(steps: int = 6) -> list[dict]:
    """Peak-RSS growth of one run (hand-written loop where there is one, and sampler), each in a fresh process.

    ``declared_memory``: the most registers a step of the sampler's program reads from earlier steps
    besides the state (:meth:`schedalg.sampling.Program.memory`; e.g. 1 for DPM-Solver++(2M)).
    """
    rows = []
    root = str(Path(__file__).resolve().parents[1])
    # a fixed mmap threshold: every state-sized buffer is mapped on allocation and unmapped when freed, so the
    # peak resident set follows the live tensors (glibc's adaptive threshold would reuse freed heap instead)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    for method in MEMORY_METHODS:
        for kind in (("hand",) if method in HAND else ()) + ("sampler",):
            out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, method, kind, str(steps), root],
                                 check=True, capture_output=True, text=True, env=env)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def steady_allocator() -> str:
    """Fix glibc's malloc for the timings: large buffers from a heap that is never trimmed (no mmap).

    By default glibc maps buffers above an adaptive threshold with ``mmap`` and unmaps them when freed, and
    trims the heap top, so whether a state-sized buffer costs fresh page faults depends on the history of
    allocations: at batch 4096 the same loop then runs at about 1.6 or 2.6 ms a step from one object to the
    next (seen for the hand-written loop and for every sampler alike). With the threshold and trimming fixed
    all loops reuse warm memory. Returns what was set (or why not).
    """
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = all(libc.mallopt(option, value) == 1 for option, value in (
            (m_mmap_threshold, 1 << 30), (m_trim_threshold, 1 << 30), (m_top_pad, 1 << 28)))
    except (OSError, AttributeError):
        return "default (mallopt unavailable)"
    return "glibc mallopt: mmap threshold 1 GiB, trim threshold 1 GiB, top pad 256 MiB" if ok else "default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (fresh processes)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    allocator = steady_allocator()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for method in METHODS:
            for batch, dims in CASES:
                small = batch * dims <= 16 * 64
                repeats = (40 if small else 8) if args.quick else (200 if small else 40)
                runs.append(measure(method, batch, dims, args.steps if method == "euler" else max(1, args.steps // 4),
                                    repeats, Path(tmp)))
                _print_run(runs[-1])
    report = {
        "benchmark": "schedalg sampler overhead per step vs hand-written torch loops (same velocity MLP), paired A/B",
        "command": "nice -n 10 python benchmarks/overhead.py" + (" --quick" if args.quick else "")
        + (" --memory" if args.memory else ""),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu",
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "allocator": allocator,
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "runs": runs,
    }
    if args.memory:
        report["memory"] = memory_rows()
        for row in report["memory"]:
            extra = "" if row["declared_memory"] is None else f" (declared memory {row['declared_memory']})"
            print(f"memory {row['method']:>8} {row['loop']:>7}: peak growth {row['peak_growth_mib']:.0f} MiB "
                  f"= {row['peak_growth_states']:.1f} states{extra}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _print_run(run: dict) -> None:
    hand = run["median_seconds_per_step"]["hand"]
    cells = ", ".join(f"{k.replace('sampler_', '')} {100 * v['median']:+.1f}% [{100 * v['q25']:+.1f}, {100 * v['q75']:+.1f}]"
                      for k, v in run["overhead_vs_hand"].items())
    e = run["exported_vs_in_library"]
    print(f"{run['method']:>5} {run['batch']:>4} x {run['dims']:>2}: hand {1e6 * hand:.1f} us/step; "
          f"median paired overhead [IQR]: {cells}; exported/in-library {100 * e['median']:+.1f}%", flush=True)


if __name__ == "__main__":
    main()
