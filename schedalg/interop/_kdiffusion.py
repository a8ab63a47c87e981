"""k-diffusion-style denoisers ``D(x, sigma)``, both ways.

k-diffusion (Crowson) and EDM (Karras et al. 2022) write every model as a denoiser on
the EDM state: ``D(x, sigma) ~ E[x0 | x0 + sigma eps = x]``. For a schedule
``x_t = alpha x0 + sigma_t eps`` that is the state ``x_t / alpha`` at noise level
``sigma = sigma_t / alpha``, so

* :func:`from_kdiffusion` wraps ``D`` as an ``x0``-predicting
  :class:`~schedalg.models.NetworkDenoiser` with time input ``sigma`` and input
  scaling ``1/alpha`` (none on the default EDM schedule ``alpha = 1``, ``sigma = t``);
* :func:`to_kdiffusion` turns any schedalg denoiser into such a ``D`` (for k-diffusion's
  samplers): ``t = lambda^{-1}(-2 log sigma)``, then ``x0_hat`` at state ``alpha(t) x``.

k-diffusion's package ``__init__`` imports heavy optional packages; its samplers need
only ``utils.append_dims``, so :func:`load_kdiffusion_sampling` loads ``sampling.py`` by
file path beside a small stand-in ``utils`` module.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import torch

from ..errors import OptionalDependencyError, SchedalgError
from ..models import Denoiser, NetworkDenoiser
from ..schedules import edm
from ..symbolic import Schedule

__all__ = ["from_kdiffusion", "to_kdiffusion", "KDiffusionModel", "load_kdiffusion_sampling"]


def from_kdiffusion(model: Any, schedule: Schedule | None = None, *, sigma_max: float = 80.0,
                    **options: Any) -> NetworkDenoiser:
    """Wrap a denoiser ``model(x, sigma, **cond) -> x0_hat`` on the EDM state.

    ``schedule`` (default :func:`schedalg.schedules.edm` up to ``sigma_max``) is the
    schedule whose coordinates the wrapped denoiser serves; ``options`` go to
    :class:`~schedalg.models.NetworkDenoiser` (guidance, ``check_finite``, ...).
    """
    schedule = schedule if schedule is not None else edm(sigma_max)
    scaling = None if schedule.alpha == 1 else "to_edm"
    return NetworkDenoiser(model, schedule, "x0", "sigma", input_scaling=scaling, **options)


class KDiffusionModel:
    """A schedalg :class:`~schedalg.models.Denoiser` as a k-diffusion model ``D(x, sigma)``.

    Each call maps the noise levels to the denoiser's times on the host (this adapter
    serves k-diffusion's loops, which sync anyway) and prepares the denoiser there.
    """

    def __init__(self, denoiser: Denoiser):
        if not hasattr(denoiser, "schedule") or not hasattr(denoiser, "prepare"):
            raise SchedalgError("a schedalg Denoiser (with .schedule and .prepare)", type(denoiser).__name__,
                                "wrap the network with schedalg.models.NetworkDenoiser first")
        self.denoiser = denoiser
        self.compiled = denoiser.schedule.compile()

    def __call__(self, x: torch.Tensor, sigma: Any, **cond: Any) -> torch.Tensor:
        levels = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1)
        if levels.numel() == 1:
            levels = levels.expand(x.shape[0])
        if levels.numel() != x.shape[0]:
            raise SchedalgError(f"one noise level per sample ({x.shape[0]}) or one for all",
                                f"{levels.numel()} levels", None)
        times = self.compiled.t_of_log_snr(-2 * torch.log(levels))
        alpha = self.compiled.alpha(times)
        if bool((levels == levels[0]).all()):
            return self._denoise(x, times[:1], alpha[0], cond)
        return torch.cat([self._denoise(x[b:b + 1], times[b:b + 1], alpha[b],
                                        {k: (v[b:b + 1] if isinstance(v, torch.Tensor) and v.dim() and
                                             v.shape[0] == x.shape[0] else v) for k, v in cond.items()})
                          for b in range(x.shape[0])])

    def _denoise(self, x: torch.Tensor, times: torch.Tensor, alpha: torch.Tensor, cond: dict) -> torch.Tensor:
        prepared = self.denoiser.prepare(times)
        x0, _ = prepared(x * alpha.to(x.dtype), 0, **cond)
        finish = getattr(prepared, "finish", None)
        if callable(finish):
            finish()
        return x0


def to_kdiffusion(denoiser: Denoiser) -> KDiffusionModel:
    """``D(x, sigma)`` for k-diffusion's samplers from any schedalg denoiser (see :class:`KDiffusionModel`)."""
    return KDiffusionModel(denoiser)


def load_kdiffusion_sampling() -> types.ModuleType:
    """k-diffusion's ``sampling`` module, loaded by path with a stand-in ``utils`` (cached).

    Needs the ``k-diffusion`` distribution (``pip install --no-deps k-diffusion``) and its
    samplers' own imports (scipy, torchdiffeq, torchsde, tqdm).
    """
    name = "_schedalg_kdiffusion"
    if f"{name}.sampling" in sys.modules:
        return sys.modules[f"{name}.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise OptionalDependencyError("the optional package 'k_diffusion' is needed for k-diffusion's samplers, "
                                      "but it is not installed. Fix: pip install --no-deps k-diffusion "
                                      "torchsde torchdiffeq")
    folder = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    utils = types.ModuleType(f"{name}.utils")
    utils.append_dims = _append_dims  # type: ignore[attr-defined]
    sys.modules[name] = package
    sys.modules[f"{name}.utils"] = utils
    module_spec = importlib.util.spec_from_file_location(f"{name}.sampling", folder / "sampling.py")
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    sys.modules[f"{name}.sampling"] = module
    module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    """``x`` with trailing singleton dimensions up to ``target_dims``."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise SchedalgError(f"a tensor with at most {target_dims} dimensions", f"{x.ndim}", None)
    return x[(...,) + (None,) * missing]
