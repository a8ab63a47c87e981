"""The OT expressway (schedalg.ot.Expressway), mode-mixture and memorisation measures, the classifier."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

import schedalg as sa
from benchmarks._schedalg_runs import CountingDenoiser
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.ot import Expressway, OTError, mixed_rate, nearest_distances
from schedalg.sampling import Sampler, TimeGrid

ROOT = Path(__file__).resolve().parents[1]


def clustered_data():
    """12 points in 2-D, pairwise at least ~1 apart (3 clusters of 4, jittered)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    offsets = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    return (centres[:, None] + offsets[None]).reshape(12, 2) + 0.05 * torch.randn(12, 2, generator=g,
                                                                                   dtype=torch.float64)


def start_time(schedule, level):
    """The time where sigma/alpha = level (log-SNR = -2 log level)."""
    lam = torch.tensor([-2 * math.log(level)], dtype=torch.float64)
    return float(schedule.compile().t_of_log_snr(lam))


@pytest.mark.parametrize("name", ["linear", "cosine", "vp_linear", "edm"])
def test_expressway_on_any_schedule_lands_on_its_cell_data_point(name):
    """Latents at noise level sigma/alpha = 0.05 of data points >= ~1 apart: the exact denoiser's
    posterior sits on the latent's own point, so the sampler finishes at that point (the
    expressway copies the data: the memorisation the benchmark reports)."""
    schedule = getattr(sa.schedules, name)()
    data = clustered_data()
    counted = CountingDenoiser(GaussianMixtureDenoiser(schedule, data, 1e-6))
    t0 = start_time(schedule, 0.05)
    sampler = Sampler(counted, TimeGrid.uniform(schedule, 6, t_start=t0), "heun")
    road = Expressway(sampler, data, seed=3)
    compiled = schedule.compile()
    tt = torch.tensor([t0], dtype=torch.float64)
    alpha0, sigma0 = float(compiled.alpha(tt)), float(compiled.sigma(tt))
    eps = torch.randn(data.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(road.latents, alpha0 * data + sigma0 * eps, rtol=1e-9, atol=1e-12)
    road.fit(tol=0.05, metric="l1", samples=1 << 13, max_samples=1 << 16)
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    counted.calls = 0
    out = road(noise)
    assert counted.calls == road.nfe == sampler.nfe  # the map costs no network evaluation
    cells = road.ot.assign(noise)
    assert float((out - data[cells]).norm(dim=1).max()) < 0.05
    assert road.fit_seconds is not None and road.fit_seconds > 0


def test_expressway_cells_are_balanced_and_starts_are_latents():
    schedule = sa.schedules.linear()
    data = clustered_data()
    sampler = Sampler(GaussianMixtureDenoiser(schedule, data, 0.01), TimeGrid.uniform(schedule, 4, t_start=0.5),
                      "euler")
    road = Expressway(sampler, data).fit(tol=0.05, metric="l1", samples=1 << 13, max_samples=1 << 16)
    masses = road.ot.cell_masses(1 << 16, seed=4)
    assert float((masses - 1 / 12).abs().sum()) < 0.05 + 0.03  # tol + sampling noise of the check
    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    starts = road.start(noise)
    assert torch.equal(starts, road.latents[road.ot.assign(noise)])
    # float32 cells, float64 starts
    single = Expressway(sampler, data, ot_dtype=torch.float32)
    single.ot.potential = road.ot.potential
    assert single.ot.targets.dtype == torch.float32 and single.start(noise).dtype == torch.float64
    assert torch.equal(single.start(noise), starts)
    # a stochastic sampler takes its seed through
    stochastic = Expressway(Sampler(GaussianMixtureDenoiser(schedule, data, 0.01),
                                    TimeGrid.uniform(schedule, 4, t_start=0.5), "euler_maruyama"), data)
    stochastic.ot.potential = road.ot.potential
    assert torch.equal(stochastic(noise, seed=5), stochastic(noise, seed=5))
    assert not torch.equal(stochastic(noise, seed=5), stochastic(noise, seed=6))


def test_expressway_bad_input():
    schedule = sa.schedules.linear()
    data = clustered_data()
    denoiser = GaussianMixtureDenoiser(schedule, data, 0.01)
    with pytest.raises(OTError, match="schedalg.sampling.Sampler"):
        Expressway(denoiser, data)
    with pytest.raises(OTError, match="alpha\\(t_0\\) > 0"):
        Expressway(Sampler(denoiser, TimeGrid.uniform(schedule, 4)), data)  # starts at pure noise
    with pytest.raises(OTError, match="floating tensor"):
        Expressway(Sampler(denoiser, TimeGrid.uniform(schedule, 4, t_start=0.5)), torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(OTError, match="ot_dtype"):
        Expressway(Sampler(denoiser, TimeGrid.uniform(schedule, 4, t_start=0.5)), data, ot_dtype=torch.long)
    road = Expressway(Sampler(denoiser, TimeGrid.uniform(schedule, 4, t_start=0.5)), data)
    with pytest.raises(OTError, match="shape \\(B, 2\\)"):
        road(torch.randn(4, 3, dtype=torch.float64))


def test_mixed_rate_counts_two_or_more_classes_over_tau():
    probabilities = torch.tensor([[0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.34, 0.33, 0.33], [0.6, 0.25, 0.15]])
    assert mixed_rate(probabilities, (0.1, 0.3, 0.5)) == {0.1: 0.75, 0.3: 0.5, 0.5: 0.0}
    with pytest.raises(OTError, match="thresholds tau"):
        mixed_rate(probabilities, (0.0,))
    with pytest.raises(OTError, match="\\(B, C\\)"):
        mixed_rate(torch.ones(3), (0.1,))


def test_nearest_distances_match_brute_force():
    g = torch.Generator().manual_seed(2)
    samples, reference = torch.randn(40, 3, 2, generator=g), torch.randn(100, 6, generator=g)
    distance, index = nearest_distances(samples, reference, chunk_size=7)
    brute = torch.cdist(samples.reshape(40, 6).double(), reference.double())
    torch.testing.assert_close(distance, brute.min(1).values)
    assert torch.equal(index, brute.argmin(1))
    with pytest.raises(OTError, match="same size"):
        nearest_distances(samples, torch.randn(5, 4))


def test_classifier_uses_the_flow_split_and_is_accurate():
    pytest.importorskip("sklearn", reason="scikit-learn provides the digits labels")
    spec = importlib.util.spec_from_file_location("digits_classifier_model",
                                                  ROOT / "examples" / "digits_classifier" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow_spec = importlib.util.spec_from_file_location("digits_flow_model",
                                                       ROOT / "examples" / "digits_flow" / "model.py")
    flow = importlib.util.module_from_spec(flow_spec)
    flow_spec.loader.exec_module(flow)
    train_x, _, test_x, test_y = module.load_digits_split()
    flow_train, flow_test = flow.load_digits_split()
    assert torch.equal(train_x, flow_train) and torch.equal(test_x, flow_test)
    classifier = module.load_classifier()
    probabilities = classifier.probabilities(test_x)
    assert float((probabilities.argmax(1) == test_y).double().mean()) > 0.97
    assert (ROOT / "examples" / "digits_classifier" / "weights.pt").stat().st_size < 1_000_000
