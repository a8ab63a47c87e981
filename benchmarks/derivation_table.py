"""Derivation cost and outcome per schedule: cold (fresh process, empty cache) and warm
(fresh process reading the on-disk derivation cache), plus the CLI's ``list``/``show``.

For each library schedule and the user-written ones of :mod:`benchmarks._user_schedules`
(sigmoid, naive iDDPM cosine, SD3 shift, EDM rho-time), a fresh process times, after its
imports, the *full toolkit*: construct (validate) the schedule, derive ``t(lambda)``,
compile alpha, sigma, their derivatives, log-SNR and its derivative, evaluate the inverse
once, and take the end values of every compiled quantity. Wall-clock seconds
(``time.perf_counter``); the machine's load is printed beside them.

    python benchmarks/derivation_table.py      # prints markdown tables
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[2])
warnings.simplefilter("ignore")
import torch, sympy as sp
import schedalg as sa
import schedalg.compile
from benchmarks._user_schedules import USER
name = sys.argv[1]
make = sa.schedules.LIBRARY[name] if name in sa.schedules.LIBRARY else USER[name]
start = time.perf_counter()
schedule = make()
built = time.perf_counter()
inverse = schedule.inverse_log_snr
compiled = schedule.compile()
compiled.function("alpha", "sigma", "d_alpha", "d_sigma", "log_snr", "d_log_snr")
compiled.t_of_log_snr(torch.tensor([0.0], dtype=torch.float64))
ends = {q: compiled.end_values(q) for q in sa.compile.QUANTITIES}
seconds = time.perf_counter() - start
after = time.perf_counter() - built
forms = {"inverse": inverse.kind, "method": inverse.method, "expr": str(inverse.expr) if inverse.expr is not None else ""}
print(json.dumps({"schedule": name, "seconds": seconds, "after_build": after, **forms}))
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
    sys.path.insert(0, str(ROOT))
    import schedalg as sa
    from benchmarks._user_schedules import USER

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    names = list(sa.schedules.LIBRARY) + list(USER)
    print("| schedule | t(lambda) | how | closed form | cold toolkit (s) | warm toolkit (s) | "
          "warm, after SymPy built the declaration (s) |")
    print("|---|---|---|---|---:|---:|---:|")
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            cold = _child(name, cache)
            warm = _child(name, cache)
        assert cold["expr"] == warm["expr"], name
        print(f"| {name} | {cold['inverse']} | {cold['method']} | `{cold['expr']}` | "
              f"{cold['seconds']:.3f} | {warm['seconds']:.4f} | {warm['after_build']:.4f} |")
    with tempfile.TemporaryDirectory() as cache:
        rows = [("list", _cli(["list"], cache), _cli(["list"], cache)),
                ("show vp_linear", _cli(["show", "vp_linear"], cache), _cli(["show", "vp_linear"], cache))]
    print()
    print("| command (whole process) | cold (s) | warm (s) |")
    print("|---|---:|---:|")
    for label, cold_s, warm_s in rows:
        print(f"| `python -m schedalg {label}` | {cold_s:.2f} | {warm_s:.2f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
