"""Peer weak spot: the same model written as eps, x0, v, velocity or score must sample identically.

Each network below returns one prediction type of the same exact (Gaussian-data)
model. Wrapped with its prediction type, every one of them must give the same samples
as the eps network, for every solver and schedule, to float64 precision, and the same
as the exact denoiser itself.
"""

from __future__ import annotations

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.models import NetworkDenoiser
from schedalg.sampling import TimeGrid, sample

MEAN = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
VAR = torch.tensor([0.3, 1.0, 2.5, 0.05], dtype=torch.float64)

BETAS = sa.schedules.discrete_betas("linear", 200, beta_start=1e-4, beta_end=0.04)
SCHEDULES = {
    "vp_linear": (sa.schedules.vp_linear(), dict(steps=12)),
    "cosine": (sa.schedules.cosine(), dict(steps=12, t_start=0.98)),  # alpha = 0 at t = 1: eps -> x0 undefined
    "linear_flow": (sa.schedules.linear(), dict(steps=12, t_start=0.02, t_end=0.995)),
    "tabulated": (sa.schedules.from_betas(BETAS), dict(steps=12)),
}
KINDS = ("x0", "v", "velocity", "score")


class KindNetwork:
    """The exact Gaussian model, reporting its prediction as ``kind`` (time input: t)."""

    def __init__(self, schedule, kind):
        self.exact = GaussianDenoiser(schedule, MEAN, VAR)
        self.compiled = schedule.compile()
        self.kind = kind

    def __call__(self, x, tau):
        x0, eps = self.exact.posterior(x, tau)
        alpha, sigma, d_alpha, d_sigma = (v[:, None] for v in self.compiled.evaluate(
            tau, "alpha", "sigma", "d_alpha", "d_sigma"))
        return {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0, "velocity": d_alpha * x0 + d_sigma * eps,
                "score": -eps / sigma}[self.kind]


def _grid(name):
    schedule, options = SCHEDULES[name]
    return schedule, TimeGrid.uniform(schedule, **options)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("solver", ["euler", "heun", "midpoint", "ddim", "dpmpp_2m", "dpmpp_3m"])
def test_every_prediction_type_gives_the_same_samples(name, solver):
    schedule, grid = _grid(name)
    noise = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = sample(GaussianDenoiser(schedule, MEAN, VAR), noise, grid, solver)
    as_eps = sample(NetworkDenoiser(KindNetwork(schedule, "eps"), schedule, "eps"), noise, grid, solver)
    torch.testing.assert_close(as_eps, exact, rtol=1e-10, atol=1e-10)
    for kind in KINDS:
        other = sample(NetworkDenoiser(KindNetwork(schedule, kind), schedule, kind), noise, grid, solver)
        torch.testing.assert_close(other, as_eps, rtol=1e-10, atol=1e-10, msg=lambda m, k=kind: f"{k}: {m}")


def test_a_mislabelled_prediction_type_is_caught():
    """The comparison above can fail: a v network declared as eps samples something else."""
    schedule, grid = _grid("vp_linear")
    noise = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    right = sample(NetworkDenoiser(KindNetwork(schedule, "v"), schedule, "v"), noise, grid, "ddim")
    wrong = sample(NetworkDenoiser(KindNetwork(schedule, "v"), schedule, "eps"), noise, grid, "ddim")
    assert (right - wrong).abs().max() > 1e-2
