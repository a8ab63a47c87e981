"""The network and data of the digits flow-matching example.

A small residual MLP ``v_theta(x_t, t)`` trained with flow matching on the linear path
``x_t = t x0 + (1 - t) eps`` (data at ``t = 1``) to predict the velocity
``d x_t / dt = x0 - eps`` (Lipman et al. 2023). Data: scikit-learn's 8x8 digits, pixel
values 0..16 mapped to [-1, 1], flattened to 64 numbers, with a fixed held-out split
that the benchmark uses as the reference distribution.

Imported by ``train.py`` (which writes ``weights.pt``) and by ``benchmarks/lazy.py``
(which loads it with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

#: Where train.py writes the trained (EMA) weights and their configuration.
WEIGHTS = Path(__file__).with_name("weights.pt")
#: Digits kept out of training: the reference set of the distribution distances.
HELD_OUT = 397
SPLIT_SEED = 0


def load_digits_split(seed: int = SPLIT_SEED, held_out: int = HELD_OUT) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, held_out)``: the 1797 digits as (N, 64) float32 in [-1, 1], split at random."""
    from schedalg.datasets import digits

    images = digits().to(torch.float32)  # p / 8 - 1 is exact in float32
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    return images[order[held_out:]], images[order[:held_out]]


class TimeFeatures(nn.Module):
    """Sinusoidal features of ``t`` in [0, 1] at geometric frequencies 1..1000."""

    def __init__(self, size: int):
        super().__init__()
        half = size // 2
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(1000.0), half)), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


class Block(nn.Module):
    """``h + W2 silu(W1 norm(h) + time)``."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return h + self.outer(nn.functional.silu(self.inner(self.norm(h)) + time))


class VelocityMLP(nn.Module):
    """``v_theta(x, t)``: (B, 64) states and (B,) times in [0, 1] -> (B, 64) velocities."""

    def __init__(self, dim: int = 64, width: int = 256, depth: int = 3, time_features: int = 64):
        super().__init__()
        self.config = {"dim": dim, "width": width, "depth": depth, "time_features": time_features}
        self.time = nn.Sequential(TimeFeatures(time_features), nn.Linear(time_features, width), nn.SiLU())
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t.reshape(-1)
        time = self.time(t.to(x.dtype))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, time)
        return self.out(h)


def load_model(path: Path = WEIGHTS) -> VelocityMLP:
    """The trained network from ``path`` (safe loading: tensors and plain values only)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = VelocityMLP(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval().requires_grad_(False)
