"""schedalg's solvers reproduce diffusers' schedulers step by step on a random UNet2DModel (float64).

Same network, same timesteps, same starting latents: the whole trajectory (every
intermediate state, not only the sample) must agree to 1e-5. diffusers computes its
coefficients from float32 tables and casts the state to float32 inside ``step`` for
Euler and DPM-Solver, so agreement is at float32 level, well inside the tolerance.

What each diffusers scheduler is in schedalg:

* ``DDIMScheduler`` (eta = 0, ``clip_sample=False``: schedalg does not clip x0) = ``"ddim"``: in native coordinates (tabulated schedule,
  ``t`` = timestep) when its last step stays in the table (``set_alpha_to_one=False``), and
  in EDM coordinates for the default final step to ``alphas_cumprod = 1``;
* ``EulerDiscreteScheduler`` = ``"euler"`` in EDM coordinates (it steps ``x/alpha`` in
  ``sigma_edm``; the model reads ``x/sqrt(1 + sigma^2)``);
* ``DPMSolverMultistepScheduler`` (dpmsolver++, midpoint, order 2) = ``"dpmpp_2m"``;
* ``FlowMatchEulerDiscreteScheduler`` = ``"euler"`` on the flow path in its noise level.
"""

from __future__ import annotations

import diffusers  # a test dependency (pyproject [test]): these tests must run, never skip
import pytest
import torch

import schedalg as sa
from schedalg.interop import (diffusers_denoiser, diffusers_grid, flow_match_schedule, schedule_from_diffusers,
                              shift_noise_level)
from schedalg.sampling import Sampler

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = diffusers.UNet2DModel(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1,
                                  block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                  up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    return model.double().eval()


class Recorder(torch.nn.Module):
    """The UNet, recording the timesteps it is called with."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.timesteps: list[float] = []

    def forward(self, sample, timestep, **kw):
        timestep = torch.as_tensor(timestep)
        self.timesteps.append(float(timestep.reshape(-1)[0]))
        return self.net(sample, timestep, **kw)


def _latents(seed=1):
    return torch.randn(2, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def run_diffusers(scheduler, net, latents, steps):
    scheduler.set_timesteps(steps)
    x = latents * getattr(scheduler, "init_noise_sigma", 1.0)
    scale_input = getattr(scheduler, "scale_model_input", lambda sample, timestep: sample)
    states = [x]
    for timestep in scheduler.timesteps:
        out = net(scale_input(x, timestep), timestep).sample
        x = scheduler.step(out, timestep, x).prev_sample
        states.append(x)
    return states


def run_schedalg(denoiser, grid, solver, x_start):
    sampler = Sampler(denoiser, grid, solver)
    steps = list(sampler.iterate(x_start, scale_noise=False))
    return [steps[0].x] + [step.x_next for step in steps]


def _vp_from_edm(states, grid):
    """EDM states x/alpha back to the VP states diffusers keeps (alpha = 1/sqrt(1 + s^2))."""
    return [x / torch.sqrt(1 + s**2) for x, s in zip(states, grid.times)]


def _assert_trajectories(ours, theirs):
    """Every state equal to 1e-5, relative to the state's own scale (max(1, max |x_i|)).

    A random UNet's eps prediction makes x0_hat = (x - sigma eps)/alpha large where alpha
    is small, so states can reach 1e4 while diffusers computes in float32: the
    tolerance scales with each state's magnitude, not with each element.
    """
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b.to(a.dtype), rtol=TOL["rtol"], atol=TOL["atol"] * scale,
                                   msg=lambda m, i=i: f"state {i}: {m}")


# ---------------------------------------------------------------------- DDIM


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_ddim_native_coordinates(unet, prediction):
    scheduler = diffusers.DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                        set_alpha_to_one=False, steps_offset=1, prediction_type=prediction,
                                        clip_sample=False)
    latents = _latents()
    theirs = run_diffusers(scheduler, Recorder(unet), latents, 10)
    recorder = Recorder(unet)
    denoiser = diffusers_denoiser(recorder, scheduler, coordinates="native")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    ours = run_schedalg(denoiser, grid, "ddim", latents)
    assert recorder.timesteps == scheduler.timesteps.double().tolist()
    _assert_trajectories(ours, theirs)


def test_ddim_last_step_from_zero_to_alphas_cumprod_zero_is_a_no_op(unet):
    """steps_offset=0: diffusers' last DDIM step goes from t = 0 to abar[0]; the grid omits it."""
    scheduler = diffusers.DDIMScheduler(set_alpha_to_one=False, clip_sample=False)
    latents = _latents(8)
    theirs = run_diffusers(scheduler, unet, latents, 5)
    denoiser = diffusers_denoiser(unet, scheduler, coordinates="native")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    assert grid.n_steps == 4 and float(grid.times[-1]) == 0.0
    torch.testing.assert_close(theirs[-1], theirs[-2], rtol=1e-6, atol=1e-6)
    _assert_trajectories(run_schedalg(denoiser, grid, "ddim", latents), theirs[:-1])


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_ddim_to_alpha_one_in_edm_coordinates(unet, prediction):
    """The default last DDIM step goes to alphas_cumprod = 1 (x = x0_hat): the EDM grid ends at sigma = 0."""
    scheduler = diffusers.DDIMScheduler(prediction_type=prediction, clip_sample=False)  # set_alpha_to_one=True
    latents = _latents(2)
    theirs = run_diffusers(scheduler, unet, latents, 8)
    recorder = Recorder(unet)
    denoiser = diffusers_denoiser(recorder, scheduler, coordinates="edm")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    assert float(grid.times[-1]) == 0.0
    ours = run_schedalg(denoiser, grid, "ddim", latents * torch.sqrt(1 + grid.times[0] ** 2))
    assert recorder.timesteps == scheduler.timesteps.double().tolist()
    _assert_trajectories(_vp_from_edm(ours, grid), theirs)


# ---------------------------------------------------------------------- Euler


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_euler_discrete(unet, spacing):
    """Euler in (x/alpha, sigma_edm), with fractional timesteps for "linspace" spacing."""
    scheduler = diffusers.EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                                 beta_end=0.012, timestep_spacing=spacing)
    latents = _latents(3)
    theirs = run_diffusers(scheduler, unet, latents, 9)
    recorder = Recorder(unet)
    denoiser = diffusers_denoiser(recorder, scheduler, coordinates="edm")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    ours = run_schedalg(denoiser, grid, "euler", theirs[0])
    torch.testing.assert_close(torch.tensor(recorder.timesteps, dtype=torch.float64), scheduler.timesteps.double(), rtol=1e-6, atol=1e-4)
    _assert_trajectories(ours, theirs)


@pytest.mark.parametrize("prediction", ["v_prediction", "sample"])
def test_euler_v_and_x0_prediction(unet, prediction):
    scheduler = diffusers.EulerDiscreteScheduler(prediction_type=prediction)
    latents = _latents(4)
    theirs = run_diffusers(scheduler, unet, latents, 7)
    denoiser = diffusers_denoiser(unet, scheduler, coordinates="edm")
    ours = run_schedalg(denoiser, diffusers_grid(scheduler, denoiser.schedule), "euler", theirs[0])
    _assert_trajectories(ours, theirs)


# ---------------------------------------------------------------------- DPM-Solver++(2M)


def test_dpmpp_2m_default_config_in_edm_coordinates(unet):
    """Default config: 2M steps, first-order last step to sigma = 0 (h = inf in schedalg)."""
    scheduler = diffusers.DPMSolverMultistepScheduler()
    latents = _latents(5)
    theirs = run_diffusers(scheduler, unet, latents, 10)
    recorder = Recorder(unet)
    denoiser = diffusers_denoiser(recorder, scheduler, coordinates="edm")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    ours = run_schedalg(denoiser, grid, "dpmpp_2m", latents * torch.sqrt(1 + grid.times[0] ** 2))
    assert recorder.timesteps == scheduler.timesteps.double().tolist()
    _assert_trajectories(_vp_from_edm(ours, grid), theirs)


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_dpmpp_2m_native_coordinates(unet, prediction):
    """Second order to the last step (final sigma = the table's first, lower_order_final off)."""
    scheduler = diffusers.DPMSolverMultistepScheduler(beta_schedule="squaredcos_cap_v2", prediction_type=prediction,
                                                      final_sigmas_type="sigma_min", lower_order_final=False)
    latents = _latents(6)
    theirs = run_diffusers(scheduler, unet, latents, 8)
    denoiser = diffusers_denoiser(unet, scheduler, coordinates="native")
    ours = run_schedalg(denoiser, diffusers_grid(scheduler, denoiser.schedule), "dpmpp_2m", latents)
    _assert_trajectories(ours, theirs)


# ---------------------------------------------------------------------- flow matching and the shift


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_match_euler_applies_the_shift_once(unet, shift):
    """Same trajectory and the same network timesteps (1000 u, shifted once) as diffusers."""
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    latents = _latents(7)
    theirs_net = Recorder(unet)
    theirs = run_diffusers(scheduler, theirs_net, latents, 6)
    recorder = Recorder(unet)
    denoiser = diffusers_denoiser(recorder, scheduler, coordinates="native")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    ours = run_schedalg(denoiser, grid, "euler", latents)
    torch.testing.assert_close(torch.tensor(recorder.timesteps, dtype=torch.float64), torch.tensor(theirs_net.timesteps, dtype=torch.float64),
                               rtol=1e-6, atol=1e-4)
    _assert_trajectories(ours, theirs)
    # in the shifted schedule's own time, the same steps are the unshifted levels: one shift in all
    shifted = flow_match_schedule(shift)
    grid_t = diffusers_grid(scheduler, shifted)
    levels = shifted.compile().sigma(grid_t.times)
    torch.testing.assert_close(levels, scheduler.sigmas.double(), rtol=1e-12, atol=1e-12)


class Floored(Recorder):
    """The UNet fed floor(timestep): what DPMSolverMultistep's int64 timesteps do to 1000 sigma."""

    def forward(self, sample, timestep, **kw):
        return super().forward(sample, torch.floor(torch.as_tensor(timestep).double()), **kw)


def test_dpmpp_2m_on_flow_sigmas(unet):
    """DPMSolverMultistepScheduler(use_flow_sigmas, flow_shift=3): same steps, shift applied once.

    Peer weak spot: diffusers steps with the exact sigmas but feeds the network
    ``int64(1000 sigma)``, a truncated timestep. schedalg feeds ``1000 sigma`` itself; the
    trajectories agree once both networks see the truncated value (``Floored``).
    """
    scheduler = diffusers.DPMSolverMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction",
                                                      flow_shift=3.0)
    latents = _latents(11)
    theirs_net = Floored(unet)
    theirs = run_diffusers(scheduler, theirs_net, latents, 7)
    exact = Recorder(unet)
    denoiser = diffusers_denoiser(exact, scheduler, coordinates="native")
    grid = diffusers_grid(scheduler, denoiser.schedule)
    run_schedalg(denoiser, grid, "dpmpp_2m", latents)
    torch.testing.assert_close(torch.tensor(exact.timesteps, dtype=torch.float64), 1000 * grid.times[:-1],
                               rtol=1e-12, atol=0)
    assert exact.timesteps != theirs_net.timesteps  # diffusers truncates 1000 sigma
    floored = Floored(unet)
    ours = run_schedalg(diffusers_denoiser(floored, scheduler, coordinates="native"), grid, "dpmpp_2m", latents)
    assert floored.timesteps == theirs_net.timesteps
    _assert_trajectories(ours, theirs)


def test_flow_schedule_from_config_is_shifted_once_and_diffusers_shifts_its_last_level_twice():
    """Peer weak spot: diffusers' FlowMatchEuler shifts sigma_min, then shifts the whole grid again."""
    shift, n, steps = 3.0, 1000, 5
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift, num_train_timesteps=n)
    scheduler.set_timesteps(steps)
    schedule = schedule_from_diffusers(scheduler)
    grid = sa.sampling.TimeGrid.uniform(schedule, steps - 1, t_start=1.0, t_end=1.0 / n)
    ours = schedule.compile().sigma(grid.times)
    once = shift_noise_level(torch.linspace(1.0, 1.0 / n, steps, dtype=torch.float64), shift)
    torch.testing.assert_close(ours, once, rtol=1e-12, atol=1e-14)
    theirs = scheduler.sigmas[:-1].double()
    torch.testing.assert_close(theirs[:-1], ours[:-1], rtol=0.05, atol=0)  # same shape of grid ...
    # ... but the last level is shifted twice there: shift_m(shift_m(1/n)) = shift_{m^2}(1/n)
    torch.testing.assert_close(theirs[-1], torch.tensor(shift_noise_level(1.0 / n, shift**2), dtype=torch.float64),
                               rtol=1e-6, atol=0)
    assert abs(float(ours[-1]) - float(theirs[-1])) > 1e-3


# ---------------------------------------------------------------------- schedules from configs


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_schedule_from_config_matches_diffusers_tables(kind):
    """float64 betas rebuilt from the config agree with diffusers' float32 table to float32 precision."""
    scheduler = diffusers.DDIMScheduler(beta_schedule=kind, beta_start=0.00085, beta_end=0.012)
    schedule = schedule_from_diffusers(dict(scheduler.config))
    torch.testing.assert_close(torch.as_tensor(schedule.alphas_cumprod), scheduler.alphas_cumprod.double(),
                               rtol=2e-5, atol=1e-7)
    exact = schedule_from_diffusers(scheduler)
    assert (torch.as_tensor(exact.alphas_cumprod) == scheduler.alphas_cumprod.double()).all()


def test_schedule_from_trained_betas():
    betas = diffusers.DDIMScheduler().betas.double().numpy()[::10].copy()
    schedule = schedule_from_diffusers({"trained_betas": betas.tolist(), "num_train_timesteps": len(betas)})
    torch.testing.assert_close(torch.as_tensor(schedule.alphas_cumprod),
                               torch.cumprod(1 - torch.as_tensor(betas), 0), rtol=1e-12, atol=0)


def test_schedule_interpolation_follows_the_scheduler():
    assert schedule_from_diffusers(diffusers.EulerDiscreteScheduler()).interpolation == "edm_sigma"
    assert schedule_from_diffusers(diffusers.DDIMScheduler()).interpolation == "log_snr"


def test_unsupported_configs_are_rejected():
    with pytest.raises(sa.SchedalgError, match="rescale_betas_zero_snr"):
        schedule_from_diffusers(diffusers.DDIMScheduler(rescale_betas_zero_snr=True))
    with pytest.raises(sa.errors.PredictionError, match="prediction_type"):
        diffusers_denoiser(lambda x, t: x, {"prediction_type": "noise", "beta_schedule": "linear"})
    with pytest.raises(sa.SchedalgError, match="mu"):
        schedule_from_diffusers(diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True))


def test_dynamic_shift_matches_diffusers():
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    scheduler.set_timesteps(4, mu=0.7)
    schedule = schedule_from_diffusers(scheduler, mu=0.7)
    grid = diffusers_grid(scheduler, schedule)
    torch.testing.assert_close(schedule.compile().sigma(grid.times), scheduler.sigmas.double(), rtol=1e-6, atol=1e-7)


def test_final_step_to_data_in_native_coordinates_is_rejected():
    scheduler = diffusers.DDIMScheduler()  # set_alpha_to_one=True
    scheduler.set_timesteps(5)
    with pytest.raises(sa.SchedalgError, match="coordinates='edm'"):
        diffusers_grid(scheduler, schedule_from_diffusers(scheduler))


def test_ddim_trailing_spacing_mismatch_is_reported():
    """Peer weak spot: DDIM with "trailing" spacing steps to t - N//k, not to its next timestep."""
    scheduler = diffusers.DDIMScheduler(timestep_spacing="trailing", set_alpha_to_one=False)
    scheduler.set_timesteps(3)
    with pytest.raises(sa.SchedalgError, match="leading"):
        diffusers_grid(scheduler, schedule_from_diffusers(scheduler))
    with pytest.raises(sa.SchedalgError, match="leading"):
        diffusers_grid(scheduler, diffusers_denoiser(lambda x, t: x, scheduler, coordinates="edm").schedule)


def test_edm_wrapper_agrees_with_schedule_conversion(unet):
    """coordinates='edm' (a v network with c_out) == the native wrapper converted to EDM by sa.convert."""
    scheduler = diffusers.EulerDiscreteScheduler(prediction_type="v_prediction")
    scheduler.set_timesteps(6)
    edm_denoiser = diffusers_denoiser(unet, scheduler, coordinates="edm")
    full = diffusers_grid(scheduler, edm_denoiser.schedule)
    grid = sa.sampling.TimeGrid(edm_denoiser.schedule, full.times[1:-1])  # inside the table's log-SNR range
    latents = _latents(9)
    direct = Sampler(edm_denoiser, grid, "heun")(latents, scale_noise=False)
    converted = Sampler(diffusers_denoiser(unet, scheduler, coordinates="native"), grid, "heun")(latents, scale_noise=False)
    torch.testing.assert_close(direct, converted, rtol=1e-10, atol=1e-10)


def test_classifier_free_guidance_matches_a_diffusers_style_loop():
    """CFG through NetworkDenoiser (one batched call) == the pipeline recipe uncond + w (cond - uncond) + DDIM."""
    torch.manual_seed(1)
    net = diffusers.UNet2DModel(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                num_class_embeds=4).double().eval()
    scheduler = diffusers.DDIMScheduler(set_alpha_to_one=False, steps_offset=1, clip_sample=False)
    scheduler.set_timesteps(6)
    latents, labels, null, w = _latents(10), torch.tensor([0, 2]), torch.tensor([3, 3]), 4.0
    theirs = [latents]
    with torch.no_grad():
        x = latents
        for timestep in scheduler.timesteps:
            both = net(torch.cat([x, x]), timestep, class_labels=torch.cat([labels, null])).sample
            cond, uncond = both.chunk(2)
            x = scheduler.step(uncond + w * (cond - uncond), timestep, x).prev_sample
            theirs.append(x)
    denoiser = diffusers_denoiser(net, scheduler, coordinates="native", guidance_scale=w, uncond={"class_labels": null[:1]})
    grid = diffusers_grid(scheduler, denoiser.schedule)
    steps = list(Sampler(denoiser, grid, "ddim").iterate(latents, scale_noise=False, class_labels=labels))
    _assert_trajectories([steps[0].x] + [s.x_next for s in steps], theirs)


def test_interop_bad_inputs_are_rejected():
    flow = diffusers.FlowMatchEulerDiscreteScheduler()
    with pytest.raises(sa.SchedalgError, match="coordinates='native' for a flow"):
        diffusers_denoiser(lambda x, t: x, flow, coordinates="edm")
    with pytest.raises(sa.SchedalgError, match="coordinates 'auto', 'native' or 'edm'"):
        diffusers_denoiser(lambda x, t: x, diffusers.DDIMScheduler(), coordinates="vp")
    with pytest.raises(sa.SchedalgError, match="time_shift_type"):
        schedule_from_diffusers({"use_dynamic_shifting": True, "time_shift_type": "cubic", "shift": 1.0}, mu=0.5)
    with pytest.raises(sa.SchedalgError, match="scheduler instance"):
        schedule_from_diffusers({"beta_schedule": "linear"}, exact_table=True)
    with pytest.raises(sa.SchedalgError, match="scheduler or its config"):
        schedule_from_diffusers(3)
    with pytest.raises(sa.SchedalgError, match="set_timesteps"):
        diffusers_grid(diffusers.DDIMScheduler(clip_sample=False), schedule_from_diffusers(diffusers.DDIMScheduler()))
    scheduler = diffusers.DDIMScheduler(clip_sample=False)
    scheduler.set_timesteps(4)
    with pytest.raises(sa.SchedalgError, match="tabulated, EDM or flow-matching"):
        diffusers_grid(scheduler, sa.schedules.vp_linear())


def test_clipping_schedulers_warn_that_trajectories_differ():
    scheduler = diffusers.DDIMScheduler()  # clip_sample=True by default
    scheduler.set_timesteps(4)
    with pytest.warns(UserWarning, match="clip"):
        diffusers_grid(scheduler, diffusers_denoiser(lambda x, t: x, scheduler, coordinates="edm").schedule)
