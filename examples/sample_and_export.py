"""Train a small flow model, sample it under three schedules with two solvers, export a sampler.

    .venv/bin/python examples/sample_and_export.py          # about a minute on one CPU thread

1. Train a velocity MLP by flow matching on the linear path ``x_t = t x0 + (1 - t) eps``
   (``sa.schedules.linear()``) on 2-D data: a ring of 8 Gaussians.
2. Wrap it once: ``NetworkDenoiser(net, linear, prediction="velocity")``.
3. Sample it under three schedules (its own linear one, the cosine schedule and EDM, the
   latter two through schedule conversion, which the sampler applies by itself when the
   grid is in another schedule) with Euler and DPM-Solver++(2M), and score each run by
   the energy distance to fresh data.
4. Export one sampler (DPM-Solver++(2M) on an EDM/Karras grid) to a torch-only file,
   reload it in a fresh Python process in which importing schedalg or SymPy fails, and
   check that it reproduces the in-library samples bit for bit.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # schedalg from a clone
import schedalg as sa  # noqa: E402
from schedalg.models import NetworkDenoiser  # noqa: E402
from schedalg.sampling import Sampler, TimeGrid, export_sampler, per_sample_normal  # noqa: E402


def ring_of_gaussians(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` points from 8 Gaussians (std 0.1) on the unit circle."""
    angle = torch.randint(0, 8, (n,), generator=generator) * (2 * math.pi / 8)
    centres = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + 0.1 * torch.randn(n, 2, generator=generator)


class VelocityNet(torch.nn.Module):
    """``v(x, t)``: an MLP on ``[x, sin/cos features of t]``."""

    def __init__(self, width: int = 128):
        super().__init__()
        self.register_buffer("freqs", torch.tensor([1.0, 4.0, 16.0]))
        self.net = torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                                       torch.nn.SiLU(), torch.nn.Linear(width, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        angle = t[:, None].to(x.dtype) * self.freqs
        return self.net(torch.cat([x, torch.sin(angle), torch.cos(angle)], dim=1))


def train(steps: int = 3000, batch: int = 256) -> VelocityNet:
    """Flow matching: ``t ~ U(0,1)``, loss ``|v(x_t, t) - (x0 - eps)|^2`` (Lipman et al. 2023)."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = VelocityNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        x0 = ring_of_gaussians(batch, generator)
        eps = torch.randn(batch, 2, generator=generator)
        t = torch.rand(batch, generator=generator)
        xt = t[:, None] * x0 + (1 - t[:, None]) * eps
        loss = (net(xt, t) - (x0 - eps)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return net.eval()


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``2 E|A - B| - E|A - A'| - E|B - B'|`` (0 iff the laws agree)."""
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


FRESH_PROCESS = textwrap.dedent('''
    import importlib.util, sys
    class Block:  # make `import schedalg` and `import sympy` fail in this process
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("schedalg", "sympy"):
                raise ImportError("blocked: " + name)
    sys.meta_path.insert(0, Block())
    import torch
    spec = importlib.util.spec_from_file_location("loader", sys.argv[1])
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    sampler = loader.load(sys.argv[2])
    inputs = torch.load(sys.argv[3], weights_only=True)
    out = sampler(inputs["noise"])  # called as the in-library sampler: noise in, sample out
    print("bitwise identical:", torch.equal(out, inputs["expected"]),
          "| schedalg or sympy imported:", any(m in sys.modules for m in ("schedalg", "sympy")))
''')


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    net = train()
    print(f"trained the velocity MLP in {time.perf_counter() - start:.1f} s")
    denoiser = NetworkDenoiser(net, sa.schedules.linear(), prediction="velocity")
    reference = ring_of_gaussians(2000, torch.Generator().manual_seed(1))
    noise = per_sample_normal((2000, 2), seed=0)
    print(f"energy distance of fresh data to itself (noise floor): "
          f"{energy_distance(ring_of_gaussians(2000, torch.Generator().manual_seed(2)), reference):.4f}")

    grids = {
        "linear (own), uniform t": TimeGrid.uniform(sa.schedules.linear(), 12),
        "cosine, uniform log-SNR": TimeGrid.log_snr_uniform(sa.schedules.cosine(), 12, t_start=0.999, t_end=0.001),
        "EDM, Karras rho=7": TimeGrid.karras(sa.schedules.edm(), 12),
    }
    print(f"\n{'schedule, grid':<26} {'solver':<9} {'NFE':>4}  energy distance")
    for label, grid in grids.items():
        for solver in ("euler", "dpmpp_2m"):
            sampler = Sampler(denoiser, grid, solver)
            samples = sampler(noise)
            print(f"{label:<26} {solver:<9} {sampler.nfe:>4}  {energy_distance(samples, reference):.4f}")

    exported = Sampler(denoiser, grids["EDM, Karras rho=7"], "dpmpp_2m")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = export_sampler(exported, folder / "edm_dpmpp2m.safetensors", noise[:64])
        torch.save({"noise": noise[:64], "expected": exported(noise[:64])}, folder / "inputs.pt")
        (folder / "run.py").write_text(FRESH_PROCESS)
        result = subprocess.run([sys.executable, str(folder / "run.py"), str(folder / "edm_dpmpp2m_loader.py"),
                                 str(path), str(folder / "inputs.pt")], capture_output=True, text=True, check=True)
        print(f"\nexported {path.name} ({path.stat().st_size / 1024:.0f} KiB); fresh process: {result.stdout.strip()}")


if __name__ == "__main__":
    main()
