"""The run: seeding, batch-size independence, iteration, conditioning, conversion, dtypes, bad input."""

from __future__ import annotations

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianDenoiser
from schedalg.models import NetworkDenoiser
from schedalg.sampling import SOLVERS, Sampler, SamplingError, TimeGrid, per_sample_normal, sample

MEAN = torch.tensor([0.3, -0.5], dtype=torch.float64)
VARIANCE = torch.tensor([0.2, 2.0], dtype=torch.float64)


def _setup(solver="euler", steps=5):
    schedule = sa.schedules.linear()
    grid = TimeGrid.uniform(schedule, steps, t_start=0.05, t_end=0.95)
    return Sampler(GaussianDenoiser(schedule, MEAN, VARIANCE), grid, solver)


@pytest.mark.parametrize("solver", ["euler_maruyama", "ancestral"])
def test_stochastic_samples_do_not_change_with_the_batch_size(solver):
    sampler = _setup(solver)
    big = per_sample_normal((12, 2), 7)
    small = per_sample_normal((5, 2), 7)
    torch.testing.assert_close(small, big[:5], rtol=0, atol=0)
    out_big = sampler(big, seed=11)
    out_small = sampler(small, seed=11)
    assert torch.equal(out_small, out_big[:5])
    assert not torch.equal(sampler(small, seed=12), out_small)


def test_per_sample_normal_streams_and_seeds_differ():
    a = per_sample_normal((3, 4), 0)
    assert not torch.equal(a, per_sample_normal((3, 4), 1))
    assert not torch.equal(a, per_sample_normal((3, 4), 0, stream=1))
    assert torch.equal(a, per_sample_normal((3, 4), 0))
    draws = per_sample_normal((3, 4), 0, count=6, dtype=torch.float64)
    assert draws.shape == (6, 3, 4) and draws.dtype == torch.float64
    assert torch.equal(per_sample_normal((2, 4), 0, count=6, dtype=torch.float64), draws[:, :2])


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seeds_raise(seed):
    with pytest.raises(SamplingError, match="seed"):
        per_sample_normal((2, 2), seed)


def test_iterate_and_callback_expose_every_state_and_prediction():
    sampler = _setup("heun", steps=4)
    noise = per_sample_normal((3, 2), 0, dtype=torch.float64)
    steps = list(sampler.iterate(noise))
    assert [s.index for s in steps] == [0, 1, 2, 3]
    assert steps[0].t == pytest.approx(0.05) and steps[-1].t_next == pytest.approx(0.95)
    for before, after in zip(steps, steps[1:]):
        assert torch.equal(before.x_next, after.x)
    seen = []
    out = sampler(noise, callback=seen.append)
    assert torch.equal(out, steps[-1].x_next) and len(seen) == 4
    expected_x0, _ = sampler.prepared(steps[2].x, 2)
    torch.testing.assert_close(steps[2].x0_hat, expected_x0)


def test_start_state_is_sigma_times_noise():
    sampler = _setup("euler")
    noise = per_sample_normal((3, 2), 0, dtype=torch.float64)
    first = next(iter(sampler.iterate(noise)))
    torch.testing.assert_close(first.x, noise * 0.95)
    assert torch.equal(next(iter(sampler.iterate(noise, scale_noise=False))).x, noise)


def test_state_keeps_the_noise_dtype_and_the_network_its_own():
    schedule = sa.schedules.linear()
    seen = []

    class Velocity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 2).double()

        def forward(self, x, t):
            seen.append(x.dtype)
            return self.layer(torch.cat([x, t[:, None].to(x.dtype)], dim=1))

    denoiser = NetworkDenoiser(Velocity(), schedule, prediction="velocity")
    grid = TimeGrid.uniform(schedule, 3, t_start=0.05, t_end=0.95)
    out = sample(denoiser, torch.randn(4, 2), grid, "dpmpp_2m")
    assert out.dtype == torch.float32 and set(seen) == {torch.float64}


def test_conditioning_reaches_the_network():
    schedule = sa.schedules.linear()
    labels_seen = []

    def network(x, t, label):
        labels_seen.append(label)
        return x * 0 + label[:, None]

    denoiser = NetworkDenoiser(network, schedule, prediction="x0")
    label = torch.tensor([1.0, 2.0])
    out = sample(denoiser, torch.zeros(2, 3), TimeGrid.uniform(schedule, 3), "ddim", label=label)
    assert len(labels_seen) == 3 and all(lab is label for lab in labels_seen)
    torch.testing.assert_close(out, label[:, None].expand(2, 3))


def test_a_grid_in_another_schedule_converts_the_denoiser():
    """Linear-trained exact denoiser on a cosine grid: same run as the cosine denoiser, near the exact flow."""
    linear, cosine = sa.schedules.linear(), sa.schedules.cosine()
    grid = TimeGrid.log_snr_uniform(cosine, 48, t_start=0.97, t_end=0.03)
    sampler = Sampler(GaussianDenoiser(linear, MEAN, VARIANCE), grid, "dpmpp_3m")
    assert type(sampler.denoiser).__name__ == "ConvertedDenoiser"
    noise = per_sample_normal((4, 2), 0, dtype=torch.float64)
    state = noise * float(grid.sigma[0])
    direct = GaussianDenoiser(cosine, MEAN, VARIANCE)
    out = sampler(state, scale_noise=False)
    torch.testing.assert_close(out, Sampler(direct, grid, "dpmpp_3m")(state, scale_noise=False), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out, direct.flow(state, 0.97, 0.03), rtol=1e-3, atol=1e-3)


def test_an_int_grid_means_uniform_steps_in_the_denoisers_time():
    schedule = sa.schedules.linear()
    sampler = Sampler(GaussianDenoiser(schedule), 6, "euler")
    torch.testing.assert_close(sampler.grid.times, torch.linspace(0, 1, 7, dtype=torch.float64))


def test_generator_noise_for_stochastic_solvers():
    sampler = _setup("ancestral")
    noise = per_sample_normal((3, 2), 0)
    a = sampler(noise, generator=torch.Generator().manual_seed(0))
    b = sampler(noise, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_progress_bar_switch(capsys):
    sampler = _setup("euler")
    noise = per_sample_normal((2, 2), 0)
    assert torch.equal(sampler(noise, progress=True), sampler(noise, progress=False))


def test_bad_run_inputs_raise_clear_errors():
    deterministic, stochastic = _setup("euler"), _setup("euler_maruyama")
    noise = per_sample_normal((3, 2), 0)
    with pytest.raises(SamplingError, match="floating-point tensor"):
        deterministic([[0.0, 1.0]])  # type: ignore[arg-type]
    with pytest.raises(SamplingError, match="floating-point tensor"):
        deterministic(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(SamplingError, match="no draws"):
        deterministic(noise, draws=torch.zeros(5, 3, 2))
    with pytest.raises(SamplingError, match="seed or a torch.Generator"):
        stochastic(noise)
    with pytest.raises(SamplingError, match=r"draws of shape"):
        stochastic(noise, draws=torch.zeros(4, 3, 2))
    with pytest.raises(SamplingError, match="Denoiser"):
        Sampler(object(), TimeGrid.uniform(sa.schedules.linear(), 2), "euler")  # type: ignore[arg-type]
    with pytest.raises(SamplingError, match="TimeGrid"):
        Sampler(GaussianDenoiser(sa.schedules.linear()), [0.0, 1.0], "euler")  # type: ignore[arg-type]


def test_every_registered_solver_samples_finite_values():
    for name in SOLVERS:
        out = _setup(name)(per_sample_normal((3, 2), 0), seed=0)
        assert bool(torch.isfinite(out).all()), name


def test_an_int_grid_needs_a_denoiser():
    with pytest.raises(SamplingError, match="Denoiser"):
        Sampler(object(), 4, "euler")  # type: ignore[arg-type]


def test_progress_bar_without_tqdm_says_how_to_install_it(monkeypatch):
    import sys

    from schedalg.errors import OptionalDependencyError

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    with pytest.raises(OptionalDependencyError, match="pip install tqdm"):
        _setup("euler")(per_sample_normal((2, 2), 0), progress=True)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_inputs_are_never_modified_in_place(solver):
    sampler = _setup(solver)
    noise = per_sample_normal((3, 2), 0)
    draws = sampler.draws(noise, seed=0)
    kept = (noise.clone(), None if draws is None else draws.clone())
    sampler(noise, draws=draws, scale_noise=False)
    assert torch.equal(noise, kept[0]) and (draws is None or torch.equal(draws, kept[1]))


@pytest.mark.parametrize("solver", sorted(set(SOLVERS) - {"euler_maruyama"}))
def test_one_step_over_the_whole_domain_is_finite(solver):
    """linear schedule, t = 0 -> 1 in one step (lambda from -inf to +inf): no NaN anywhere."""
    schedule = sa.schedules.linear()
    sampler = Sampler(GaussianDenoiser(schedule, MEAN, VARIANCE), TimeGrid.uniform(schedule, 1), solver)
    out = sampler(per_sample_normal((3, 2), 0, dtype=torch.float64), seed=0)
    assert bool(torch.isfinite(out).all())
    if solver in ("ddim", "dpmpp_2m", "dpmpp_3m", "ancestral"):  # one exponential step to sigma = 0: x0_hat
        torch.testing.assert_close(out, MEAN.expand(3, 2))
