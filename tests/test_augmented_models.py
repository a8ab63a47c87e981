"""Exact augmented-space models (Gaussian, Gaussian mixture) and the network wrapper."""

import pytest
import torch

import schedalg.augmented as aug
from schedalg.augmented import SamplerError



SDE = aug.psld()
MEAN = torch.tensor([0.5, -0.3, 0.1], dtype=torch.float64)
VAR = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
TIMES = torch.tensor([1.0, 0.4, 0.05, 1e-3], dtype=torch.float64)


def _log_density_mixture(z, means, variance, weights, tt):
    """log p(z_t) of the mixture, written directly with MultivariateNormal (autograd reference)."""
    c = SDE.compile()
    a, sigma = c.mean_coefficient(tt), c.covariance(tt)
    C = variance * torch.outer(a, a) + sigma
    dist = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), C)
    # z: (B, 2, D); per component j and coordinate d: z[:, :, d] - a means[j, d]
    diff = z[:, None, :, :] - a[None, None, :, None] * means[None, :, None, :]     # (B, K, 2, D)
    logp = dist.log_prob(diff.transpose(-1, -2)).sum(-1)                              # (B, K)
    return torch.logsumexp(logp + torch.log(weights), dim=1)


@pytest.mark.parametrize("i", range(len(TIMES)))
def test_mixture_score_is_the_gradient_of_the_log_density(i):
    gen = torch.Generator().manual_seed(i)
    means = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    weights = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15], dtype=torch.float64)
    model = aug.AugmentedMixtureModel(SDE, means, 0.05, weights)
    z = torch.randn(6, 2, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    score = torch.autograd.grad(_log_density_mixture(z, means, 0.05, weights, TIMES[i]).sum(), z)[0]
    x0_hat, eps_hat = model.prepare(TIMES)(z.detach(), i)
    L_inv_t = SDE.compile().cholesky_inv_t(TIMES[i])
    torch.testing.assert_close(-torch.einsum("ij,bjd->bid", L_inv_t, eps_hat), score, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("i", range(len(TIMES)))
def test_gaussian_model_reconstructs_the_state_and_matches_the_mixture(i):
    """a x0_hat + L eps_hat = z (posterior means of the two parts of z = a x0 + L eps), and a
    one-component mixture with isotropic variance is the Gaussian model."""
    gen = torch.Generator().manual_seed(10 + i)
    z = torch.randn(4, 2, 3, generator=gen, dtype=torch.float64)
    gaussian = aug.AugmentedGaussianModel(SDE, MEAN, VAR).prepare(TIMES)
    x0_hat, eps_hat = gaussian(z, i)
    c = SDE.compile()
    rebuilt = c.mean_coefficient(TIMES[i])[None, :, None] * x0_hat[:, None, :] + torch.einsum(
        "ij,bjd->bid", c.cholesky(TIMES[i]), eps_hat)
    torch.testing.assert_close(rebuilt, z, rtol=1e-9, atol=1e-9)
    iso = aug.AugmentedGaussianModel(SDE, MEAN, 0.7).prepare(TIMES)(z, i)
    mix = aug.AugmentedMixtureModel(SDE, MEAN[None], 0.7).prepare(TIMES)(z, i)
    torch.testing.assert_close(iso[0], mix[0])
    torch.testing.assert_close(iso[1], mix[1])


def test_gaussian_flow_reference_converges_at_fourth_order():
    model = aug.AugmentedGaussianModel(SDE, MEAN, VAR)
    z = model.sample(4, 1.0, torch.Generator().manual_seed(0))
    coarse, fine, finest = (model.flow(z, 1.0, 1e-3, steps=n) for n in (250, 500, 1000))
    ratio = (coarse - fine).abs().max() / (fine - finest).abs().max()
    assert 12 < float(ratio) < 20          # 2^4 = 16
    assert float((fine - finest).abs().max()) < 1e-7


def test_network_wrapper_uses_the_full_state_parameterization():
    """A 'network' returning the exact eps gives the exact eps and the same x0 (least squares)."""
    exact = aug.AugmentedGaussianModel(SDE, MEAN, VAR)
    prepared_exact = exact.prepare(TIMES)
    index = {float(v): j for j, v in enumerate(TIMES)}

    def network(z, tt):
        return prepared_exact(z, index[float(tt)])[1]

    wrapped = aug.AugmentedEpsModel(SDE, network).prepare(TIMES)
    z = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for i in range(len(TIMES)):
        x0, eps = wrapped(z, i)
        x0_ref, eps_ref = prepared_exact(z, i)
        torch.testing.assert_close(eps, eps_ref)
        torch.testing.assert_close(x0, x0_ref, rtol=1e-8, atol=1e-8)


def test_bad_inputs_raise():
    with pytest.raises(SamplerError, match="positive data variances"):
        aug.AugmentedGaussianModel(SDE, MEAN, -VAR)
    with pytest.raises(SamplerError, match="smoothing variance"):
        aug.AugmentedMixtureModel(SDE, MEAN[None], 0.0)
    with pytest.raises(SamplerError, match="means of shape"):
        aug.AugmentedMixtureModel(SDE, MEAN, 0.1)
    with pytest.raises(SamplerError, match="positive weights"):
        aug.AugmentedMixtureModel(SDE, MEAN[None], 0.1, weights=[1.0, 2.0])
    prepared = aug.AugmentedGaussianModel(SDE, MEAN, VAR).prepare(TIMES)
    with pytest.raises(SamplerError, match="augmented state"):
        prepared(torch.zeros(2, 3, 3, dtype=torch.float64), 0)
    bad = aug.AugmentedEpsModel(SDE, lambda z, tt: z[:, :1]).prepare(TIMES)
    with pytest.raises(SamplerError, match="network output"):
        bad(torch.zeros(2, 2, 3, dtype=torch.float64), 0)
