"""k-diffusion-style denoisers D(x, sigma): wrapped into schedalg, and schedalg denoisers handed to k-diffusion."""

from __future__ import annotations

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.interop import from_kdiffusion, load_kdiffusion_sampling, to_kdiffusion
from schedalg.sampling import TimeGrid, sample

MEAN = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
VAR = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
EDM = sa.schedules.edm(80.0)
VP = sa.schedules.vp_linear()


def gaussian_D(x, sigma):
    """The exact EDM denoiser of N(MEAN, diag(VAR)) data: mu + var/(var + s^2) (x - mu)."""
    s2 = sigma.reshape((-1,) + (1,) * (x.dim() - 1)) ** 2
    return MEAN + VAR / (VAR + s2) * (x - MEAN)


@pytest.fixture(scope="module")
def k():
    return load_kdiffusion_sampling()


def _noise(batch=4):
    return torch.randn(batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("ours, theirs", [("euler", "sample_euler"), ("heun", "sample_heun"),
                                          ("dpmpp_2m", "sample_dpmpp_2m")])
def test_wrapped_kdiffusion_denoiser_matches_kdiffusion_samplers(k, ours, theirs):
    steps = 12
    grid = TimeGrid.karras(EDM, steps, sigma_min=0.002, sigma_max=80.0)
    # k-diffusion builds the same levels in float32: same grid to float32 precision; run both on ours
    torch.testing.assert_close(grid.times, k.get_sigmas_karras(steps, 0.002, 80.0).double(), rtol=1e-6, atol=0)
    sigmas = grid.times
    noise = _noise()
    reference = getattr(k, theirs)(gaussian_D, noise * 80.0, sigmas, disable=True)
    got = sample(from_kdiffusion(gaussian_D, sigma_max=80.0), noise, grid, ours)
    torch.testing.assert_close(got, reference, rtol=1e-10, atol=1e-10)


def test_to_kdiffusion_gives_the_schedule_free_edm_denoiser():
    """For Gaussian data D(x, sigma) does not depend on the schedule the model was trained in."""
    D = to_kdiffusion(GaussianDenoiser(VP, MEAN, VAR))
    x = 3 * _noise()
    for level in (0.05, 1.0, 30.0):
        sigma = torch.full((4,), level, dtype=torch.float64)
        torch.testing.assert_close(D(x, sigma), gaussian_D(x, sigma), rtol=1e-9, atol=1e-9)
    mixed = torch.tensor([0.1, 0.5, 2.0, 9.0], dtype=torch.float64)
    torch.testing.assert_close(D(x, mixed), gaussian_D(x, mixed), rtol=1e-9, atol=1e-9)


def test_kdiffusion_sampler_on_a_schedalg_denoiser_matches_schedalg(k):
    """k-diffusion's Euler on to_kdiffusion(VP model) == schedalg's Euler on the EDM-wrapped same model."""
    model = GaussianDenoiser(VP, MEAN, VAR)
    D = to_kdiffusion(model)
    grid = TimeGrid.karras(EDM, 8, sigma_min=0.01, sigma_max=50.0)
    noise = _noise()
    theirs = k.sample_euler(D, noise * 50.0, grid.times, disable=True)
    ours = sample(from_kdiffusion(D, sigma_max=80.0), noise, grid, "euler")
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_kdiffusion_denoiser_in_vp_coordinates_reads_the_edm_state():
    """On a VP schedule the wrapper feeds D the state x_t / alpha and sigma_t / alpha."""
    times = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    wrapped = from_kdiffusion(gaussian_D, schedule=VP).prepare(times)
    exact = GaussianDenoiser(VP, MEAN, VAR)
    x = _noise()
    for i, tt in enumerate(times):
        x0, eps = wrapped(x, i)
        x0_ref, eps_ref = exact.posterior(x, tt)
        torch.testing.assert_close(x0, x0_ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(eps, eps_ref, rtol=1e-9, atol=1e-9)


def test_to_kdiffusion_rejects_non_denoisers_and_bad_sigma_shapes():
    with pytest.raises(sa.SchedalgError, match="schedalg Denoiser"):
        to_kdiffusion(gaussian_D)
    D = to_kdiffusion(GaussianDenoiser(VP, MEAN, VAR))
    with pytest.raises(sa.SchedalgError, match="one noise level per sample"):
        D(_noise(4), torch.ones(3, dtype=torch.float64))
