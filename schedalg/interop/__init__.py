"""Interop with peer libraries: diffusers and k-diffusion (optional dependencies, imported lazily).

* :func:`schedule_from_diffusers`, :func:`diffusers_denoiser`, :func:`diffusers_grid`:
  a diffusers scheduler's training schedule, a wrapped diffusers network, and the
  scheduler's steps as a :class:`~schedalg.sampling.TimeGrid`;
* :func:`flow_match_schedule`: the shifted rectified-flow schedule of SD3-style models;
* :func:`from_kdiffusion` / :func:`to_kdiffusion`: k-diffusion-style denoisers
  ``D(x, sigma)`` in and out.
"""

from ._diffusers import DIFFUSERS_PREDICTIONS as DIFFUSERS_PREDICTIONS
from ._diffusers import diffusers_denoiser as diffusers_denoiser
from ._diffusers import diffusers_grid as diffusers_grid
from ._diffusers import diffusers_prediction as diffusers_prediction
from ._diffusers import flow_shift_from_config as flow_shift_from_config
from ._diffusers import is_flow_config as is_flow_config
from ._diffusers import schedule_from_diffusers as schedule_from_diffusers
from ._flow import flow_match_schedule as flow_match_schedule
from ._kdiffusion import KDiffusionModel as KDiffusionModel
from ._kdiffusion import from_kdiffusion as from_kdiffusion
from ._kdiffusion import load_kdiffusion_sampling as load_kdiffusion_sampling
from ._kdiffusion import to_kdiffusion as to_kdiffusion
from ._flow import shift_noise_level as shift_noise_level
from ._flow import unshift_noise_level as unshift_noise_level

__all__ = ["DIFFUSERS_PREDICTIONS", "diffusers_denoiser", "diffusers_grid", "diffusers_prediction",
           "flow_shift_from_config", "is_flow_config", "schedule_from_diffusers", "flow_match_schedule",
           "shift_noise_level", "unshift_noise_level", "KDiffusionModel", "from_kdiffusion",
           "load_kdiffusion_sampling", "to_kdiffusion"]


def __getattr__(name: str):  # SchedalgScheduler subclasses diffusers' classes: built on first use
    if name == "SchedalgScheduler":
        from . import _scheduler

        return _scheduler.SchedalgScheduler
    raise AttributeError(f"module 'schedalg.interop' has no attribute {name!r}")
