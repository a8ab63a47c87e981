"""SchedalgScheduler inside real diffusers pipelines (tiny random components, CPU, float32).

Two claims, each on DDPM, DDIM, a Stable-Diffusion-style (classifier-free guidance, prompt
embeddings) and a Stable-Diffusion-3 flow pipeline (``sigmas`` and ``mu`` passed):

* the pipeline's output equals schedalg's own ``Sampler`` on the same plan (same wrapped
  network, grid and solver) from the same latents. The scheduler replays the sampler's
  own step code, so only float32 rounding of the state's round trip through the network
  input (``x / c_in * c_in``) separates them: tolerance 1e-5;
* with ``solver="euler"`` it equals diffusers' own Euler-type scheduler (DDIM with eta = 0
  is Euler in EDM coordinates), which computes in float32 from float32 tables: 1e-4.
"""

from __future__ import annotations

import copy

import diffusers
import pytest
import torch

from schedalg.interop import SchedalgScheduler, diffusers_denoiser, diffusers_grid
from schedalg.interop._scheduler import SchedulerError
from schedalg.sampling import Sampler

SAME_PLAN = dict(rtol=1e-5, atol=1e-5)
SAME_METHOD = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4).eval()


def _noise(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _same_plan(scheduler, network, latents, **set_kwargs):
    """What schedalg's Sampler gives on the scheduler's plan, from the pipeline's first latents."""
    sampler, _ = scheduler._planned
    reference = scheduler._reference(set_kwargs.get("num_inference_steps"), set_kwargs.get("timesteps"),
                                     set_kwargs.get("sigmas"), set_kwargs.get("mu"))
    coordinates = "native" if scheduler.config.flow else "edm"
    denoiser = diffusers_denoiser(network, reference, coordinates=coordinates, mu=set_kwargs.get("mu"))
    grid = diffusers_grid(reference, denoiser.schedule)
    torch.testing.assert_close(grid.times, sampler.grid.times, rtol=0, atol=0)
    ours = Sampler(denoiser, grid, scheduler.config.solver)
    c_in = ours.prepared.tables.get("c_in")
    start = latents if c_in is None else latents / float(c_in[0])
    with torch.no_grad():
        return ours(start, scale_noise=False)


# ---------------------------------------------------------------------- DDPM / DDIM pipelines


@pytest.mark.parametrize("solver", ["dpmpp_2m", "heun", "dpmpp_3m"])
def test_ddpm_pipeline_equals_the_sampler_on_the_same_plan(unet, solver):
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler())
    pipe.scheduler = scheduler = SchedalgScheduler.from_config(pipe.scheduler.config, solver=solver)
    out = pipe(batch_size=2, num_inference_steps=6, generator=torch.Generator().manual_seed(3), output_type="np",
               return_dict=False)[0]
    noise = _noise((2, 2, 8, 8), 3)
    expected = _same_plan(scheduler, unet, noise, num_inference_steps=6)
    expected = (expected / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()  # DDPMPipeline's post-processing
    torch.testing.assert_close(torch.as_tensor(out), torch.as_tensor(expected), **SAME_PLAN)
    assert len(scheduler.timesteps) == scheduler._planned[0].nfe


def test_ddim_pipeline_with_euler_equals_diffusers_ddim(unet):
    config = diffusers.DDIMScheduler(clip_sample=False, steps_offset=1, timestep_spacing="leading").config
    theirs = diffusers.DDIMPipeline(unet=unet, scheduler=diffusers.DDIMScheduler.from_config(config))
    ours = diffusers.DDIMPipeline(unet=unet, scheduler=diffusers.DDIMScheduler.from_config(config))
    ours.scheduler = SchedalgScheduler.from_config(ours.scheduler.config, solver="euler")  # the one-line swap
    assert isinstance(ours.scheduler, SchedalgScheduler)
    kwargs = dict(batch_size=2, num_inference_steps=8, eta=0.0, output_type="np", return_dict=False)
    a = theirs(generator=torch.Generator().manual_seed(5), **kwargs)[0]
    b = ours(generator=torch.Generator().manual_seed(5), **kwargs)[0]
    torch.testing.assert_close(torch.as_tensor(b), torch.as_tensor(a), **SAME_METHOD)


def test_ddim_eta_is_refused_with_a_pointer_to_the_stochastic_solvers(unet):
    pipe = diffusers.DDIMPipeline(unet=unet, scheduler=diffusers.DDIMScheduler())
    pipe.scheduler = SchedalgScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(SchedulerError, match="ancestral"):
        pipe(batch_size=1, num_inference_steps=3, eta=0.5, output_type="np")


# ---------------------------------------------------------------------- Stable Diffusion (guidance, embeddings)


@pytest.fixture(scope="module")
def sd_parts():
    torch.manual_seed(1)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, norm_num_groups=4, attention_head_dim=2).eval()
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                                  up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), latent_channels=4,
                                  norm_num_groups=4, layers_per_block=1).eval()
    embeds = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(2))
    return unet, vae, embeds, -embeds


def _sd(parts, scheduler):
    unet, vae, _, _ = parts
    return diffusers.StableDiffusionPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler,
                                             safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)


def _sd_run(parts, scheduler, latents, steps, guidance=3.0):
    _, _, embeds, negative = parts
    pipe = _sd(parts, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, num_inference_steps=steps,
                guidance_scale=guidance, output_type="latent", height=8, width=8, latents=latents.clone()).images


SD_CONFIG = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                 timestep_spacing="leading")


def test_stable_diffusion_with_euler_equals_diffusers_euler(sd_parts):
    config = diffusers.EulerDiscreteScheduler(**SD_CONFIG).config
    latents = _noise((1, 4, 8, 8), 4)
    theirs = _sd_run(sd_parts, diffusers.EulerDiscreteScheduler.from_config(config), latents, 7)
    ours = _sd_run(sd_parts, SchedalgScheduler.from_config(config, solver="euler"), latents, 7)
    torch.testing.assert_close(ours, theirs, **SAME_METHOD)


@pytest.mark.parametrize("solver", ["dpmpp_2m", "heun"])
def test_stable_diffusion_with_guidance_equals_the_sampler(sd_parts, solver):
    unet, _, embeds, negative = sd_parts
    scheduler = SchedalgScheduler.from_config(diffusers.PNDMScheduler(**SD_CONFIG).config, solver=solver)
    latents = _noise((1, 4, 8, 8), 6)
    out = _sd_run(sd_parts, scheduler, latents, 5)

    def guided(x, t, **_):  # the pipeline's guidance: one call on [uncond, cond], then combine
        both = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([negative, embeds])).sample
        uncond, cond = both.chunk(2)
        return uncond + 3.0 * (cond - uncond)

    expected = _same_plan(scheduler, guided, latents * scheduler.init_noise_sigma, num_inference_steps=5)
    torch.testing.assert_close(out, expected, **SAME_PLAN)


# ---------------------------------------------------------------------- a flow-matching pipeline (SD3)


@pytest.fixture(scope="module")
def sd3_parts():
    torch.manual_seed(2)
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=4, num_attention_heads=2,
        joint_attention_dim=8, caption_projection_dim=8, pooled_projection_dim=8, out_channels=4,
        pos_embed_max_size=16).eval()
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                                  up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), latent_channels=4,
                                  norm_num_groups=4, layers_per_block=1, shift_factor=0.0, scaling_factor=1.0).eval()
    g = torch.Generator().manual_seed(3)
    return transformer, vae, torch.randn(1, 3, 8, generator=g), torch.randn(1, 8, generator=g)


def _sd3_run(parts, scheduler, latents, sigmas, mu):
    transformer, vae, embeds, pooled = parts
    pipe = diffusers.StableDiffusion3Pipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=None,
                                              tokenizer=None, text_encoder_2=None, tokenizer_2=None,
                                              text_encoder_3=None, tokenizer_3=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt_embeds=embeds, negative_prompt_embeds=-embeds, pooled_prompt_embeds=pooled,
                negative_pooled_prompt_embeds=-pooled, num_inference_steps=len(sigmas), sigmas=sigmas, mu=mu,
                guidance_scale=2.0, output_type="latent", height=16, width=16, latents=latents.clone()).images


FLOW = dict(shift=3.0, use_dynamic_shifting=True)
SIGMAS = [1.0, 0.8, 0.6, 0.4, 0.2]


def test_sd3_with_euler_equals_diffusers_flow_match_euler(sd3_parts):
    config = diffusers.FlowMatchEulerDiscreteScheduler(**FLOW).config
    latents = _noise((1, 4, 16, 16), 7)
    theirs = _sd3_run(sd3_parts, diffusers.FlowMatchEulerDiscreteScheduler.from_config(config), latents, SIGMAS, 0.7)
    scheduler = SchedalgScheduler.from_config(config, solver="euler")
    assert scheduler.config.flow
    ours = _sd3_run(sd3_parts, scheduler, latents, SIGMAS, 0.7)
    torch.testing.assert_close(ours, theirs, **SAME_METHOD)


def test_sd3_with_heun_equals_the_sampler(sd3_parts):
    transformer, _, embeds, pooled = sd3_parts
    config = diffusers.FlowMatchEulerDiscreteScheduler(**FLOW).config
    scheduler = SchedalgScheduler.from_config(config, solver="heun")
    latents = _noise((1, 4, 16, 16), 8)
    out = _sd3_run(sd3_parts, scheduler, latents, SIGMAS, 0.7)

    def guided(x, t, **_):
        both = transformer(hidden_states=torch.cat([x, x]), timestep=t.expand(2), encoder_hidden_states=torch.cat(
            [-embeds, embeds]), pooled_projections=torch.cat([-pooled, pooled])).sample
        uncond, cond = both.chunk(2)
        return uncond + 2.0 * (cond - uncond)

    expected = _same_plan(scheduler, guided, latents, sigmas=SIGMAS, mu=0.7)
    torch.testing.assert_close(out, expected, **SAME_PLAN)


# ---------------------------------------------------------------------- configuration and misuse


def test_config_round_trip(tmp_path):
    scheduler = SchedalgScheduler.from_config(diffusers.DDIMScheduler(**SD_CONFIG).config, solver="ancestral",
                                              solver_options={"eta": 0.5}, grid="karras")
    scheduler.save_config(tmp_path)
    again = SchedalgScheduler.from_pretrained(tmp_path)
    public = lambda config: {k: v for k, v in config.items() if not k.startswith('_')}  # noqa: E731
    assert public(again.config) == public(scheduler.config)
    again.set_timesteps(4)
    assert again.config.solver == "ancestral" and len(again.timesteps) == 4


@pytest.mark.parametrize("grid", ["karras", "log_snr", "uniform"])
def test_schedalg_grids_start_at_the_tables_largest_noise_level_and_end_at_the_data(grid):
    scheduler = SchedalgScheduler.from_config(diffusers.DDPMScheduler().config, solver="dpmpp_2m", grid=grid)
    scheduler.set_timesteps(6)
    sampler = scheduler._planned[0]
    assert sampler.grid.n_steps == 6 and float(sampler.grid.sigma[-1]) == 0.0
    assert float(scheduler.timesteps[0]) == pytest.approx(999.0, abs=1e-3)


def test_misuse_gives_clear_errors():
    scheduler = SchedalgScheduler.from_config(diffusers.DDPMScheduler().config, solver="euler")
    x = torch.zeros(1, 2)
    with pytest.raises(SchedulerError, match="set_timesteps"):
        scheduler.step(x, 999, x)
    with pytest.raises(SchedulerError, match="exactly one"):
        scheduler.set_timesteps(4, sigmas=[1.0, 0.5])
    with pytest.raises(SchedulerError, match="num_inference_steps"):
        scheduler.set_timesteps(0)
    scheduler.set_timesteps(2)
    for t in scheduler.timesteps:
        x = scheduler.step(torch.zeros(1, 2), t, x).prev_sample
    with pytest.raises(SchedulerError, match="at most 2 step calls"):
        scheduler.step(x, 0, x)
    with pytest.raises(Exception, match="solver"):
        SchedalgScheduler(solver="no_such_solver")
    flow = SchedalgScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).config)
    with pytest.raises(SchedulerError, match="mu"):
        flow.set_timesteps(4)


def test_independent_copies_run_interleaved(unet):
    """One generation per instance: two deep copies stepped alternately give the results of two single runs."""
    scheduler = SchedalgScheduler.from_config(diffusers.DDPMScheduler().config, solver="dpmpp_2m")
    scheduler.set_timesteps(4)
    a, b = copy.deepcopy(scheduler), copy.deepcopy(scheduler)
    xa, xb = _noise((1, 2, 8, 8), 1), _noise((1, 2, 8, 8), 2)
    with torch.no_grad():
        for t in scheduler.timesteps:
            xa = a.step(unet(xa, t).sample, t, xa).prev_sample
            xb = b.step(unet(xb, t).sample, t, xb).prev_sample
        single = copy.deepcopy(scheduler)
        x = _noise((1, 2, 8, 8), 2)
        for t in scheduler.timesteps:
            x = single.step(unet(x, t).sample, t, x).prev_sample
    torch.testing.assert_close(xb, x, rtol=0, atol=0)
    assert not torch.equal(xa, xb)


def test_default_coordinates_wrap_a_diffusers_model_without_options(unet):
    """diffusers_denoiser(net, scheduler) with defaults reproduces EulerDiscreteScheduler (no coordinates=)."""
    scheduler = diffusers.EulerDiscreteScheduler()
    scheduler.set_timesteps(5)
    denoiser = diffusers_denoiser(unet, scheduler)
    grid = diffusers_grid(scheduler, denoiser.schedule)
    latents = _noise((1, 2, 8, 8), 9)
    x = latents * scheduler.init_noise_sigma
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(unet(scheduler.scale_model_input(x, t), t).sample, t, x).prev_sample
        ours = Sampler(denoiser, grid, "euler")(latents * scheduler.init_noise_sigma, scale_noise=False)
    torch.testing.assert_close(ours, x, **SAME_METHOD)


def test_img2img_begins_mid_schedule_like_diffusers_euler(sd_parts):
    """StableDiffusionImg2ImgPipeline: add_noise + set_begin_index + sliced timesteps, as diffusers' Euler."""
    unet, vae, embeds, negative = sd_parts
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(11))
    outputs = []
    config = diffusers.EulerDiscreteScheduler(**SD_CONFIG).config
    for scheduler in (diffusers.EulerDiscreteScheduler.from_config(config),
                      SchedalgScheduler.from_config(config, solver="euler")):
        pipe = diffusers.StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet,
                                                        scheduler=scheduler, safety_checker=None,
                                                        feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        outputs.append(pipe(image=image, prompt_embeds=embeds, negative_prompt_embeds=negative, strength=0.6,
                            num_inference_steps=10, guidance_scale=2.0, output_type="latent",
                            generator=torch.Generator().manual_seed(12)).images)
    torch.testing.assert_close(outputs[1], outputs[0], **SAME_METHOD)
