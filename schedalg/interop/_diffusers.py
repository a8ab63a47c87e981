"""diffusers interop: schedules from scheduler configs, wrapped UNets, and diffusers' time steps as grids.

diffusers (optional; imported lazily) describes a model's training process in a
scheduler config and the sampling steps in ``scheduler.timesteps``/``sigmas`` after
``set_timesteps``. In schedalg terms:

* **beta schedules** (``linear``, ``scaled_linear``, ``squaredcos_cap_v2``, or
  ``trained_betas``) are a tabulated variance-preserving schedule whose time ``t`` is the
  training timestep (:func:`schedalg.schedules.from_betas`); a scheduler instance gives
  its own (float32) ``alphas_cumprod`` table so that trajectories match it bit for bit
  in the schedule.
* **flow matching** (``FlowMatchEulerDiscreteScheduler``, ``use_flow_sigmas``) is the
  rectified-flow path in its noise level ``u`` with ``x_u = (1 - u) x0 + u eps``, the network
  fed ``1000 u`` and predicting ``eps - x0`` (``velocity`` of that path); the config's
  shift is a reparameterization of ``u`` (:func:`~schedalg.interop.flow_match_schedule`)
  and is applied exactly once, by whichever of schedule or grid carries it.
* diffusers' Euler-type schedulers step in the EDM variables ``x/alpha`` and
  ``sigma_edm = sigma/alpha`` (Karras et al. 2022), with a final step to ``sigma = 0``
  that a table of ``alphas_cumprod < 1`` cannot represent. ``coordinates="edm"`` wraps a
  UNet directly in EDM coordinates (schedule ``alpha = 1``, ``sigma = t`` up to the
  table's largest noise level): the network gets ``x/sqrt(1 + s^2)`` (the VP state) and
  the training timestep ``t(s)`` found by inverting the table.

Prediction names: ``epsilon -> eps``, ``sample -> x0``, ``v_prediction -> v``,
``flow_prediction -> velocity``.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import sympy as sp
import torch

from .._optional import require
from ..errors import PredictionError, ScheduleError
from ..models import NetworkDenoiser
from ..sampling import GridError, TimeGrid
from ..schedules import TabulatedSchedule, discrete_betas, edm, from_betas, tabulated
from ..symbolic import Schedule, t
from ._flow import flow_match_schedule, unshift_noise_level

__all__ = ["DIFFUSERS_PREDICTIONS", "schedule_from_diffusers", "diffusers_denoiser", "diffusers_grid", "diffusers_prediction",
           "is_flow_config", "flow_shift_from_config"]

#: diffusers ``prediction_type`` -> schedalg prediction kind.
DIFFUSERS_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v", "flow_prediction": "velocity"}

_EDM_MARGIN = 1e-6  # relative head-room above the table's largest noise level (float32 sigmas round up)


def _config(scheduler: Any) -> Mapping[str, Any]:
    config = getattr(scheduler, "config", scheduler)
    if not isinstance(config, Mapping):
        raise ScheduleError("a diffusers scheduler or its config (a mapping)", f"{type(scheduler).__name__}",
                            "pass scheduler or scheduler.config")
    return config


def is_flow_config(scheduler: Any) -> bool:
    """True for flow-matching schedulers (``x_u = (1 - u) x0 + u eps``)."""
    config = _config(scheduler)
    if config.get("use_flow_sigmas") or config.get("prediction_type") == "flow_prediction":
        return True
    name = type(scheduler).__name__ if hasattr(scheduler, "config") else config.get("_class_name", "")
    return str(name).startswith("FlowMatch") or ("shift" in config and "beta_schedule" not in config)


def flow_shift_from_config(scheduler: Any, mu: float | None = None) -> float:
    """The shift ``m`` of a flow scheduler: ``shift``/``flow_shift``, or from ``mu`` under dynamic shifting.

    Dynamic shifting maps ``u -> e^mu / (e^mu + 1/u - 1)`` ("exponential") or
    ``mu / (mu + 1/u - 1)`` ("linear"): the shift map with ``m = e^mu`` or ``m = mu``.
    """
    config = _config(scheduler)
    if config.get("use_dynamic_shifting"):
        if mu is None:
            raise ScheduleError("mu for a scheduler with use_dynamic_shifting=True", "mu=None",
                                "pass the same mu as to scheduler.set_timesteps(..., mu=mu)")
        kind = config.get("time_shift_type", "exponential")
        if kind == "exponential":
            return float(np.exp(mu))
        if kind == "linear":
            return float(mu)
        raise ScheduleError("time_shift_type 'exponential' or 'linear'", repr(kind), None)
    return float(config.get("shift", config.get("flow_shift", 1.0)))


def schedule_from_diffusers(scheduler: Any, *, interpolation: str | None = None, mu: float | None = None,
                            exact_table: bool | None = None) -> Schedule:
    """The schedule a diffusers scheduler describes.

    Beta schedules give a :class:`~schedalg.schedules.TabulatedSchedule` in the training
    timestep. With ``exact_table`` (default for scheduler instances) the instance's own
    ``alphas_cumprod`` is used (diffusers computes it in float32); otherwise the betas are
    rebuilt in float64 by :func:`~schedalg.schedules.discrete_betas`. ``interpolation``
    between timesteps defaults to ``"edm_sigma"`` for schedulers that interpolate sigma
    linearly (``interpolation_type="linear"``: Euler, Heun, ...) and ``"log_snr"`` else.

    Flow-matching configs give :func:`~schedalg.interop.flow_match_schedule` with the
    config's shift (``mu`` under dynamic shifting), so that uniform steps in ``t`` are
    diffusers' shifted noise levels.
    """
    config = _config(scheduler)
    if is_flow_config(scheduler):
        return flow_match_schedule(flow_shift_from_config(scheduler, mu))
    if config.get("rescale_betas_zero_snr"):
        raise ScheduleError("a table with alphas_cumprod < 1 and > 0 at every step",
                            "rescale_betas_zero_snr=True (alphas_cumprod reaches 0 at the last step)",
                            "build the schedule from a table clipped away from 0, e.g. "
                            "sa.schedules.tabulated(np.clip(abar, 1e-12, None))")
    if interpolation is None:
        interpolation = "edm_sigma" if config.get("interpolation_type") == "linear" else "log_snr"
    if exact_table is None:
        exact_table = hasattr(scheduler, "alphas_cumprod")
    kind = config.get("beta_schedule", "linear")
    name = f"diffusers[{kind}, {config.get('num_train_timesteps', 1000)}]"
    if exact_table:
        table = getattr(scheduler, "alphas_cumprod", None)
        if table is None:
            raise ScheduleError("a scheduler instance (with alphas_cumprod) for exact_table=True",
                                f"{type(scheduler).__name__}", "pass the scheduler, or exact_table=False")
        return tabulated(torch.as_tensor(table).double().numpy(), interpolation=interpolation, name=name)
    if config.get("trained_betas") is not None:
        return from_betas(np.asarray(config["trained_betas"], dtype=np.float64), interpolation=interpolation,
                          name=name)
    betas = discrete_betas(kind, int(config.get("num_train_timesteps", 1000)),
                           beta_start=float(config.get("beta_start", 1e-4)),
                           beta_end=float(config.get("beta_end", 0.02)))
    return from_betas(betas, interpolation=interpolation, name=name)


def diffusers_prediction(scheduler: Any) -> str:
    """The schedalg prediction kind of a scheduler's ``prediction_type`` (flow schedulers: ``velocity``)."""
    default = "flow_prediction" if is_flow_config(scheduler) else "epsilon"
    name = _config(scheduler).get("prediction_type", default)
    if name not in DIFFUSERS_PREDICTIONS:
        raise PredictionError(f"a diffusers prediction_type among {sorted(DIFFUSERS_PREDICTIONS)}", repr(name), None)
    return DIFFUSERS_PREDICTIONS[name]


def diffusers_denoiser(network: Any, scheduler: Any, *, coordinates: str = "auto", mu: float | None = None,
                       **options: Any) -> NetworkDenoiser:
    """Wrap a diffusers network (``UNet2DModel``, ...: ``net(sample, timestep, **cond).sample``).

    ``coordinates="auto"`` (default): ``"native"`` for flow-matching schedulers, ``"edm"`` for
    beta schedules, whose diffusers grids usually end at ``sigma = 0`` (``x0``), a level the
    table itself cannot represent; both give the same trajectories where both apply.
    ``coordinates="native"``: the training schedule (:func:`schedule_from_diffusers` for beta
    schedules; the unshifted flow path for flow matching), time input = the timestep.
    ``coordinates="edm"`` (beta schedules): the EDM schedule ``alpha = 1, sigma = s``, in which
    diffusers' Euler-type schedulers step; input ``x / sqrt(1 + s^2)``, timestep ``t(s)``
    (table inverse, snapped to the nearest integer within ``1e-4``), and for ``v`` networks
    ``c_out = sqrt(1 + s^2)``. ``options`` go to :class:`~schedalg.models.NetworkDenoiser`
    (guidance, ``check_finite``, ...).
    """
    require("diffusers", "wrapping a diffusers model")
    config = _config(scheduler)
    prediction = diffusers_prediction(scheduler)
    steps = int(config.get("num_train_timesteps", 1000))
    if coordinates == "auto":
        coordinates = "native" if is_flow_config(scheduler) else "edm"
    if is_flow_config(scheduler):
        if coordinates != "native":
            raise ScheduleError("coordinates='native' for a flow-matching scheduler", repr(coordinates), None)
        # the network's own path: x_u = (1 - u) x0 + u eps, fed 1000 u; the shift lives in the grid
        return NetworkDenoiser(network, flow_match_schedule(1.0), prediction, "noise_level", time_scale=steps,
                               **options)
    training = schedule_from_diffusers(scheduler, mu=mu)
    if coordinates == "native":
        return NetworkDenoiser(network, training, prediction, "t", **options)
    if coordinates != "edm":
        raise ScheduleError("coordinates 'auto', 'native' or 'edm'", repr(coordinates), None)
    if prediction not in ("eps", "x0", "v"):
        raise PredictionError("an eps, x0 or v network for coordinates='edm'", repr(prediction), None)
    table = torch.as_tensor(training.alphas_cumprod, dtype=torch.float64)
    sigma_max = float(torch.sqrt((1 - table.min()) / table.min())) * (1 + _EDM_MARGIN)
    sampling = edm(sigma_max)
    # eps and x0 are the same in every coordinate system; v of the VP table is v_edm / sqrt(1 + s^2)
    c_out = sp.sqrt(1 + t**2) if prediction == "v" else None
    return NetworkDenoiser(network, sampling, prediction, _TableTime(training), input_scaling="edm",
                           output_scaling=c_out, **options)


class _TableTime:
    """``s -> t``: the training timestep whose EDM noise level is ``s`` (float64, host side, in prepare).

    Noise levels outside the table (``s = 0`` at the end of a grid) give NaN, so the
    network cannot be called there (a clear error names the step); values within
    ``1e-4`` of an integer are snapped to it (diffusers feeds integer timesteps).
    """

    def __init__(self, schedule: TabulatedSchedule):
        self.compiled = schedule.compile()
        self.low, self.high = schedule.log_snr_range

    def __call__(self, levels: torch.Tensor) -> torch.Tensor:
        lam = -2 * torch.log(levels.to(torch.float64))
        slack = 4 * _EDM_MARGIN
        inside = (lam >= self.low - slack) & (lam <= self.high + slack)
        times = self.compiled.t_of_log_snr(lam.clamp(self.low, self.high), check=False)
        nearest = torch.round(times)
        times = torch.where((times - nearest).abs() < 1e-4, nearest, times)
        return torch.where(inside, times, torch.full_like(times, float("nan")))

    def __repr__(self) -> str:
        return "table_timestep(sigma)"


def diffusers_grid(scheduler: Any, schedule: Schedule) -> TimeGrid:
    """The steps of ``scheduler`` (after ``set_timesteps``) as a :class:`TimeGrid` of ``schedule``.

    ``schedule`` is the sampling schedule of a :func:`diffusers_denoiser`:

    * a tabulated schedule (native beta coordinates): ``t_i`` = diffusers' timesteps, then
      the time of the last step's target (``DDIMScheduler``: ``t - N // k``, or the
      ``final_alpha_cumprod``; others: their last sigma). A final step to ``sigma = 0``
      raises: use ``coordinates="edm"``.
    * an EDM schedule (``alpha = 1``): diffusers' ``sigmas`` (for DDIM, the noise levels of
      its timesteps and of its final ``alphas_cumprod``), ending at 0 where diffusers does.
    * a flow-matching schedule with shift ``m``: diffusers' noise levels ``u_i`` (already
      shifted by diffusers) mapped back to ``t_i = unshift(u_i)``; for ``m = 1`` these are ``u_i``.

    A last step of length zero (DDIM from ``t = 0`` to ``alphas_cumprod[0]`` with
    ``steps_offset=0``; Euler/DPM from ``sigma_min`` to ``final_sigmas_type="sigma_min"``)
    leaves diffusers' state unchanged and is omitted.
    """
    config = _config(scheduler)
    if config.get("clip_sample") or config.get("thresholding"):
        warnings.warn(f"{type(scheduler).__name__} clips or thresholds its x0 prediction "
                      "(clip_sample/thresholding); schedalg's solvers do not, so trajectories will differ. "
                      "Configure the scheduler with clip_sample=False, thresholding=False to compare.",
                      stacklevel=2)
    timesteps = getattr(scheduler, "timesteps", None)
    if timesteps is None or getattr(scheduler, "num_inference_steps", None) is None:
        raise GridError("a scheduler after set_timesteps(...)", "its training timesteps (num_inference_steps=None)",
                        "call scheduler.set_timesteps(k) first")
    timesteps = torch.as_tensor(timesteps).double()
    if is_flow_config(scheduler):
        levels = torch.as_tensor(scheduler.sigmas).double()
        shift = _schedule_shift(schedule)
        return _grid(schedule, unshift_noise_level(levels, shift), "diffusers(flow)")
    final_level = _final_level(scheduler, timesteps)
    if isinstance(schedule, TabulatedSchedule):
        if final_level == 0.0:
            raise GridError("a last diffusers step that stays inside the table (alphas_cumprod < 1)",
                            "a final step to sigma = 0 (set_alpha_to_one=True or final_sigmas_type='zero')",
                            "wrap with coordinates='edm' (its grid ends at sigma = 0), or configure the "
                            "scheduler with set_alpha_to_one=False / final_sigmas_type='sigma_min'")
        final_time = _final_timestep(scheduler, timesteps)
        return _grid(schedule, torch.cat([timesteps, torch.tensor([final_time], dtype=torch.float64)]),
                     f"diffusers({type(scheduler).__name__})")
    if schedule.alpha == 1:
        sigmas = getattr(scheduler, "sigmas", None)
        if sigmas is not None:
            levels = torch.as_tensor(sigmas).double()
        else:  # DDIM: noise levels of its timesteps
            table = torch.as_tensor(scheduler.alphas_cumprod).double()
            abar = table[timesteps.long()]
            levels = torch.cat([torch.sqrt((1 - abar) / abar), torch.tensor([final_level], dtype=torch.float64)])
        return _grid(schedule, levels, f"diffusers({type(scheduler).__name__}, edm)")
    raise GridError("a tabulated, EDM or flow-matching schedule from diffusers_denoiser", repr(schedule),
                    "build the denoiser with schedalg.interop.diffusers_denoiser")


def _grid(schedule: Schedule, times: torch.Tensor, label: str) -> TimeGrid:
    """A grid without diffusers' zero-length last step (e.g. from ``t = 0`` to ``alphas_cumprod[0]``)."""
    if times.numel() > 2 and float(times[-1]) == float(times[-2]):
        times = times[:-1]
    return TimeGrid(schedule, times, label=label)


def _schedule_shift(schedule: Schedule) -> float:
    """The shift ``m`` of a :func:`flow_match_schedule` (``sigma(1/2) = m / (m + 1)``)."""
    half = float(schedule.compile().sigma(torch.tensor(0.5, dtype=torch.float64)))
    sum_ok = abs(float(schedule.compile().alpha(torch.tensor(0.5, dtype=torch.float64))) + half - 1) < 1e-12
    if not sum_ok:
        raise GridError("a flow-matching schedule (alpha + sigma = 1)", repr(schedule),
                        "use schedalg.interop.flow_match_schedule(shift)")
    return half / (1 - half)


def _is_ddim(scheduler: Any) -> bool:
    return type(scheduler).__name__.startswith("DDIM")


def _ddim_targets(scheduler: Any, timesteps: torch.Tensor) -> torch.Tensor:
    """Where each DDIM step goes: ``t - N // k``; it must be the next timestep for one grid to describe it."""
    config = _config(scheduler)
    previous = timesteps - int(config["num_train_timesteps"]) // int(scheduler.num_inference_steps)
    if not torch.equal(previous[:-1], timesteps[1:]):
        raise GridError("DDIM timesteps spaced by num_train_timesteps // steps (its step goes to t - N//k)",
                        f"timesteps {timesteps.tolist()} with spacing {config.get('timestep_spacing')!r}",
                        "use timestep_spacing='leading' for DDIM (other spacings step to a different "
                        "time than the next model evaluation)")
    return previous


def _final_timestep(scheduler: Any, timesteps: torch.Tensor) -> float:
    if _is_ddim(scheduler):
        previous = _ddim_targets(scheduler, timesteps)
        return float(previous[-1]) if float(previous[-1]) >= 0 else 0.0
    return 0.0


def _final_level(scheduler: Any, timesteps: torch.Tensor) -> float:
    """The EDM noise level diffusers' last step goes to (0 for a step to the data)."""
    config = _config(scheduler)
    if _is_ddim(scheduler):
        previous = int(_ddim_targets(scheduler, timesteps)[-1])
        table = torch.as_tensor(scheduler.alphas_cumprod).double()
        if previous >= 0:
            abar = table[previous]
        elif config.get("set_alpha_to_one", True):
            return 0.0
        else:
            abar = table[0]
        return float(torch.sqrt((1 - abar) / abar))
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is None:
        raise GridError("a DDIM scheduler or one with sigmas", type(scheduler).__name__, None)
    return float(torch.as_tensor(sigmas)[-1])
