"""Derivation cost and outcome per schedule: cold (fresh process, empty cache) and warm
(fresh processes reading the on-disk derivation cache), plus the CLI's ``list``/``show``.

For each library schedule and the user-written ones of :mod:`benchmarks._user_schedules`
(sigmoid, naive iDDPM cosine, SD3 shift, EDM rho-time), a fresh process times the *full
toolkit*: construct (validate) the schedule, derive ``t(lambda)``, compile alpha, sigma, their
derivatives, log-SNR and its derivative, evaluate the inverse once, and take the end values of
every compiled quantity. Three figures per schedule:

* cold: the toolkit with an empty cache, after the imports (wall seconds, and the process's
  CPU seconds beside it: on a shared machine the wall clock counts other processes' turns);
* warm, with imports: from before ``import torch, sympy, schedalg`` to the end of the toolkit,
  cache filled (median of ``--repeats`` processes);
* warm, after the declaration: from after the schedule is declared (``make()`` returned) to the
  end of the toolkit, cache filled (median of the same processes): the issue's <= 10 ms figure;
  wall and CPU milliseconds (on a loaded machine one lost time slice adds several ms of wall).

The machine's load average is printed beside them.

    python benchmarks/derivation_table.py [--repeats 3]      # prints markdown tables
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import time
first = time.perf_counter()
import json, sys, warnings
sys.path.insert(0, sys.argv[2])
warnings.simplefilter("ignore")
import torch, sympy as sp
import schedalg as sa
import schedalg.compile
from benchmarks._user_schedules import USER
name = sys.argv[1]
make = sa.schedules.LIBRARY[name] if name in sa.schedules.LIBRARY else USER[name]
start, cpu = time.perf_counter(), time.process_time()
schedule = make()
built, built_cpu = time.perf_counter(), time.process_time()
inverse = schedule.inverse_log_snr
compiled = schedule.compile()
compiled.function("alpha", "sigma", "d_alpha", "d_sigma", "log_snr", "d_log_snr")
compiled.t_of_log_snr(torch.tensor([0.0], dtype=torch.float64))
ends = {q: compiled.end_values(q) for q in sa.compile.QUANTITIES}
end, end_cpu = time.perf_counter(), time.process_time()
forms = {"inverse": inverse.kind, "method": inverse.method, "expr": str(inverse.expr) if inverse.expr is not None else ""}
print(json.dumps({"schedule": name, "seconds": end - start, "cpu": end_cpu - cpu, "with_import": end - first,
                  "after_build": end - built, "after_build_cpu": end_cpu - built_cpu, **forms}))
"""


def _child(name: str, cache: str) -> dict:
    env = dict(os.environ, SCHEDALG_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _CHILD, name, str(ROOT)], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(args: list[str], cache: str) -> float:
    env = dict(os.environ, SCHEDALG_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "schedalg", *args], capture_output=True, check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm processes per schedule (median)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import schedalg as sa
    from benchmarks._user_schedules import USER

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    names = list(sa.schedules.LIBRARY) + list(USER)
    print("| schedule | t(lambda) | how | closed form | cold toolkit (s) | cold, CPU (s) | "
          "warm, with imports (s) | warm, after the declaration (ms) | same, CPU (ms) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            cold = _child(name, cache)
            warm = [_child(name, cache) for _ in range(args.repeats)]
        assert all(cold["expr"] == w["expr"] for w in warm), name
        with_import = statistics.median(w["with_import"] for w in warm)
        after = statistics.median(w["after_build"] for w in warm)
        after_cpu = statistics.median(w["after_build_cpu"] for w in warm)
        print(f"| {name} | {cold['inverse']} | {cold['method']} | `{cold['expr']}` | "
              f"{cold['seconds']:.3f} | {cold['cpu']:.3f} | {with_import:.2f} | {1000 * after:.1f} | "
              f"{1000 * after_cpu:.1f} |")
    with tempfile.TemporaryDirectory() as cache:
        rows = []
        for label in (["list"], ["show", "vp_linear"]):
            cold_s = _cli(label, cache)
            rows.append((" ".join(label), cold_s, statistics.median(_cli(label, cache) for _ in range(args.repeats))))
    print()
    print("| command (whole process) | cold (s) | warm (s) |")
    print("|---|---:|---:|")
    for label, cold_s, warm_s in rows:
        print(f"| `python -m schedalg {label}` | {cold_s:.2f} | {warm_s:.2f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
