"""Run one script in fresh processes under several hash seeds, beside a busy process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Hash seeds of the determinism tests (the default one, another, and an arbitrary one).
SEEDS = ("0", "1", "4242")


def outputs_under_hash_seeds(script: Path, seeds=SEEDS, timeout: float = 300) -> list:
    """The JSON each run of ``script`` prints, one run per ``PYTHONHASHSEED`` in ``seeds``, all
    started together with the derivation cache off (each process derives everything itself) and
    a CPU-bound process beside them (the load under which a time budget used to change results)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        runs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=dict(os.environ, PYTHONHASHSEED=seed, SCHEDALG_CACHE_DIR="off",
                                                     PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")))
                for seed in seeds]
        outputs = []
        for run in runs:
            stdout, stderr = run.communicate(timeout=timeout)
            assert run.returncode == 0, stderr[-2000:]
            outputs.append(json.loads(stdout))
    finally:
        busy.kill()
        busy.wait()
    return outputs
