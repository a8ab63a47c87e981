"""schedalg.plot draws what the package computes (Agg backend, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import schedalg as sa  # noqa: E402
import schedalg.plot as splot  # noqa: E402
from schedalg.denoisers import GaussianMixtureDenoiser  # noqa: E402
from schedalg.sampling import Sampler  # noqa: E402


def test_schedule_panels_show_the_compiled_values_against_generation_progress():
    vp = sa.schedules.vp_cosine()  # data at t = 0: progress runs against its own time
    fig = splot.schedules({"vp": vp, "linear": sa.schedules.linear()})
    alpha_axis, sigma_axis, _, path_axis = fig.axes
    progress = np.asarray(alpha_axis.lines[0].get_xdata())
    compiled = vp.compile()
    times = torch.as_tensor(compiled.t_noise + progress * (compiled.t_data - compiled.t_noise))
    alpha, sigma = compiled.evaluate_grid(times, "alpha", "sigma")
    np.testing.assert_allclose(alpha_axis.lines[0].get_ydata(), alpha.numpy(), rtol=1e-12, atol=1e-12)
    assert alpha_axis.lines[0].get_ydata()[-1] == pytest.approx(1.0)  # progress 1 = the data end
    np.testing.assert_allclose(path_axis.lines[1].get_xdata(), sigma_axis.lines[1].get_ydata())
    assert [line.get_label() for line in alpha_axis.lines] == ["vp", "linear"]


def test_trajectory_geometry_panels_on_a_mixture_model():
    schedule = sa.schedules.linear()
    means = torch.tensor([[-2.0, 0.5], [2.0, -0.5]], dtype=torch.float64)
    model = GaussianMixtureDenoiser(schedule, means, 0.05)
    sampler = Sampler(model, sa.sampling.TimeGrid.uniform(schedule, 12), "heun")
    noise = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    states, eps = splot.record_trajectory(sampler, noise)
    assert states.shape == (13, 6, 2) and eps.shape == (12, 6, 2)
    fig = splot.trajectories(states, eps, samples=4)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 4
    deviation = sa.geometry.chord_deviation(states) / (states[0] - states[-1]).norm(dim=-1)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), deviation[:, 0].numpy())


def test_error_vs_nfe_draws_one_line_per_method_and_refuses_diverged_runs():
    fig = splot.error_vs_nfe({"euler": {5: 0.3, 10: 0.15, 20: 0.07}, "heun": [(10, 0.05), (20, 0.012)]},
                             reference_slope=2)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["euler", "heun", "slope -2"]
    with pytest.raises(sa.SchedalgError, match="positive finite"):
        splot.error_vs_nfe({"bad": {5: float("nan")}})
    with pytest.raises(sa.SchedalgError, match="Schedule"):
        splot.schedules(["linear"])
