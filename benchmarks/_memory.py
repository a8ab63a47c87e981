"""Peak memory of the streamed optimal denoiser: chunked vs one chunk holding the whole data set.

Each measurement runs in a fresh Python process and reads its peak resident set
(``VmHWM``; ``ru_maxrss`` would include the parent's peak, which Linux keeps across exec): it builds a synthetic data set (N points, 64 dimensions, float64), a batch of
256 states, takes the resident-set peak after setup, then calls the denoiser once and
reports the growth of the peak. With chunking the extra memory is ``O(batch x chunk)``,
independent of N; with ``chunk_size = N`` it is ``O(batch x N)``. The growth is measured
against the setup's own peak (which includes the data set's temporaries), so a call that
needs less than that reads as 0.
"""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = r"""
import json, resource, sys, torch
torch.set_num_threads(1)

def peak_mib():
    # VmHWM (this process image's peak RSS; ru_maxrss would carry over the parent's peak across exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

import schedalg as sa
from schedalg.denoisers import OptimalDenoiser
n, chunk = int(sys.argv[1]), int(sys.argv[2])
data = torch.randn(n, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
x = torch.randn(256, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
den = OptimalDenoiser(sa.schedules.edm(), data, chunk_size=chunk)
den.edm_denoiser(x[:1], 1.0)  # warm up (device copies, compiled schedule)
before = peak_mib()
den.edm_denoiser(x, 0.5)
after = peak_mib()
print(json.dumps({"components": n, "chunk_size": chunk, "batch": 256, "peak_growth_mib": after - before}))
"""


def memory_rows(sizes: tuple[int, ...] = (20_000, 80_000), chunk: int = 1024) -> list[dict]:
    """Peak-RSS growth of one call, chunked (``chunk``) and unchunked (``chunk_size = N``)."""
    rows = []
    for n in sizes:
        for chunk_size in (chunk, n):
            out = subprocess.run([sys.executable, "-c", _SCRIPT, str(n), str(chunk_size)], check=True,
                                 capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows
