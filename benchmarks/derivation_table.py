"""Derivation cost of every library schedule: cold (fresh process) and cached.

For each schedule, in a fresh Python process: construct it (validation), derive the
log-SNR inverse (closed form or numeric fallback), compile every quantity to torch and
evaluate once. Then the same again in the same process (caches warm). CPU seconds.

    python benchmarks/derivation_table.py      # prints a markdown table
"""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = r"""
import json, sys, time, torch
import schedalg as sa
name = sys.argv[1]
def once():
    start = time.process_time()
    schedule = sa.schedules.LIBRARY[name]()
    inverse = schedule.inverse_log_snr
    compiled = schedule.compile()
    tt = torch.tensor([0.3], dtype=torch.float64) * float(schedule.domain[1])
    compiled.evaluate(tt, *sa.compile.QUANTITIES)
    compiled.t_of_log_snr(compiled.log_snr(tt))
    return time.process_time() - start, inverse
cold, inverse = once()
cached, _ = once()
print(json.dumps({"schedule": name, "inverse": inverse.kind, "method": inverse.method,
                  "cold_s": cold, "cached_s": cached}))
"""


def main() -> None:
    import schedalg as sa

    rows = []
    for name in sa.schedules.LIBRARY:
        out = subprocess.run([sys.executable, "-c", _CHILD, name], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| schedule | t(lambda) | how | cold (CPU s) | cached (CPU s) |")
    print("|---|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['schedule']} | {row['inverse']} | {row['method']} | {row['cold_s']:.3f} | {row['cached_s']:.4f} |")


if __name__ == "__main__":
    main()
