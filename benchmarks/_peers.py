"""Peer samplers driven by the exact denoiser: k-diffusion, diffusers, flow_matching.

Each runner takes the :class:`Problem` and a network-evaluation budget, runs the peer's
sampler with its recommended time grid on the evaluation noise, counts network calls
with a :class:`Counter`, and returns a :class:`Run` whose error is measured against the
reference ODE endpoint from the same starting state. Peers are given the exact noise
level of every call (diffusers: the scheduler's own ``sigmas[i]`` rather than a rounded
integer timestep), which is the most favourable reading of each peer.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
import types
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import torch

from ._problem import Counter, Problem, Run


# ---------------------------------------------------------------------- k-diffusion

@lru_cache(maxsize=1)
def k_sampling() -> types.ModuleType:
    """``k_diffusion/sampling.py`` loaded by file path with a stub ``utils`` (``append_dims``).

    The package's ``__init__`` imports heavy optional packages; the sampling module only
    needs ``utils.append_dims``, given here as a small stand-in.
    """
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed (pip install --no-deps k-diffusion)")
    folder = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType("_kdiff_bench")
    package.__path__ = [str(folder)]
    utils = types.ModuleType("_kdiff_bench.utils")

    def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
        missing = target_dims - x.ndim
        if missing < 0:
            raise ValueError(f"tensor has {x.ndim} dims, more than {target_dims}")
        return x[(...,) + (None,) * missing]

    utils.append_dims = append_dims
    sys.modules["_kdiff_bench"] = package
    sys.modules["_kdiff_bench.utils"] = utils
    module_spec = importlib.util.spec_from_file_location("_kdiff_bench.sampling", folder / "sampling.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["_kdiff_bench.sampling"] = module
    module_spec.loader.exec_module(module)
    return module


# (name, function, nfe(steps), steps for a budget, extra kwargs)
def _k_samplers(k) -> list[tuple[str, Callable, Callable[[int], int], dict]]:
    zero_noise = {"noise_sampler": lambda sigma, sigma_next: 0.0}
    return [
        ("euler", k.sample_euler, lambda b: b, {}),
        ("heun", k.sample_heun, lambda b: (b + 1) // 2, {}),
        ("dpm_2", k.sample_dpm_2, lambda b: (b + 1) // 2, {}),
        ("lms", k.sample_lms, lambda b: b, {}),
        ("dpmpp_2m", k.sample_dpmpp_2m, lambda b: b, {}),
        ("dpmpp_2m_sde(eta=0)", k.sample_dpmpp_2m_sde, lambda b: b, dict(eta=0.0, **zero_noise)),
        ("dpmpp_3m_sde(eta=0)", k.sample_dpmpp_3m_sde, lambda b: b, dict(eta=0.0, **zero_noise)),
    ]


def k_diffusion_runs(problem: Problem, budget: int, only: tuple[str, ...] | None = None) -> Iterator[Run]:
    """k-diffusion samplers on Karras (rho = 7, 0.002..80, recommended) and exponential grids.

    ``only``: sampler names to run; default all.
    """
    k = k_sampling()
    x_start = 80.0 * problem.noise
    reference = problem.reference(1.0, 80.0, 80.0)
    for name, fn, steps_for, kwargs in _k_samplers(k):
        if only is not None and name not in only:
            continue
        steps = steps_for(budget)
        grids = {"karras(rho=7)": k.get_sigmas_karras(steps, 0.002, 80.0, rho=7.0, device="cpu").double(),
                 "exponential": k.get_sigmas_exponential(steps, 0.002, 80.0, device="cpu").double()}
        for grid_name, sigmas in grids.items():
            model = Counter(lambda x, sigma: problem.edm_denoise(x, sigma))
            start = time.perf_counter()
            out = fn(model, x_start.clone(), sigmas, disable=True, **kwargs)
            seconds = time.perf_counter() - start
            yield Run("k-diffusion", name, grid_name, model.calls, problem.error(out, reference), seconds)


# ---------------------------------------------------------------------- diffusers

def _diffusers_schedulers() -> list[tuple[str, Callable[[], object]]]:
    from diffusers import (DEISMultistepScheduler, DPMSolverMultistepScheduler, EDMDPMSolverMultistepScheduler,
                           UniPCMultistepScheduler)

    out: list[tuple[str, Callable[[], object]]] = []
    for karras in (False, True):
        tag = "karras" if karras else "linspace"
        out += [
            (f"DPMSolverMultistep(2M)|{tag}",
             lambda k=karras: DPMSolverMultistepScheduler(solver_order=2, use_karras_sigmas=k)),
            (f"DPMSolverMultistep(3M)|{tag}",
             lambda k=karras: DPMSolverMultistepScheduler(solver_order=3, use_karras_sigmas=k)),
            (f"UniPCMultistep(bh2,p2)|{tag}",
             lambda k=karras: UniPCMultistepScheduler(solver_order=2, use_karras_sigmas=k)),
            (f"UniPCMultistep(bh2,p3)|{tag}",
             lambda k=karras: UniPCMultistepScheduler(solver_order=3, use_karras_sigmas=k)),
        ]
    out += [("DEISMultistep(3)|linspace", lambda: DEISMultistepScheduler(solver_order=3)),
            ("EDMDPMSolverMultistep(2M)|karras", lambda: EDMDPMSolverMultistepScheduler(solver_order=2)),
            ("EDMDPMSolverMultistep(3M)|karras", lambda: EDMDPMSolverMultistepScheduler(solver_order=3))]
    return out


def diffusers_runs(problem: Problem, budget: int, only: tuple[str, ...] | None = None) -> Iterator[Run]:
    """diffusers' multistep schedulers (default DDPM training schedule: linear betas, 1000 steps).

    ``only``: labels (``"name|grid"``) to run; default all.
    """
    for label, make in _diffusers_schedulers():
        if only is not None and label not in only:
            continue
        scheduler = make()
        name, grid_name = label.split("|")
        scheduler.set_timesteps(budget)
        edm = "EDM" in name
        sigmas = scheduler.sigmas.to(torch.float64)
        if edm:
            # EDM scheduler: x = x0 + sigma eps; the network output F is preconditioned,
            # D = c_skip x + c_out F; we return F so that D is exact.
            sigma_data = scheduler.config.sigma_data
            x = problem.noise * float(scheduler.init_noise_sigma)
            ref = problem.reference(1.0, float(sigmas[0]), float(scheduler.init_noise_sigma))
        else:
            # VP: x = alpha x0 + sigma_vp eps with alpha = 1/sqrt(1 + s^2), s = scheduler.sigmas[i]
            x = problem.noise * float(scheduler.init_noise_sigma)
            s0 = float(sigmas[0])
            a0 = 1.0 / math.sqrt(1.0 + s0**2)
            ref = problem.reference(a0, s0 * a0, float(scheduler.init_noise_sigma))

        def network(x_in: torch.Tensor, i: int) -> torch.Tensor:
            s = sigmas[i]
            if edm:
                c_in = 1.0 / torch.sqrt(s**2 + sigma_data**2)
                c_skip = sigma_data**2 / (s**2 + sigma_data**2)
                c_out = s * sigma_data / torch.sqrt(s**2 + sigma_data**2)
                state = x_in / c_in
                return (problem.edm_denoise(state, s) - c_skip * state) / c_out
            alpha = 1.0 / torch.sqrt(1.0 + s**2)
            return problem.mixture.denoise(x_in, alpha, s * alpha)[1]  # epsilon prediction

        model = Counter(network)
        start = time.perf_counter()
        for i, timestep in enumerate(scheduler.timesteps):
            x_in = scheduler.scale_model_input(x, timestep)
            x = scheduler.step(model(x_in.to(torch.float64), i), timestep, x).prev_sample
        seconds = time.perf_counter() - start
        yield Run("diffusers", name, grid_name, model.calls, problem.error(x, ref), seconds)


# ---------------------------------------------------------------------- flow_matching

def flow_matching_runs(problem: Problem, budget: int) -> Iterator[Run]:
    """flow_matching's ODESolver on the CondOT path (x_t = t x1 + (1 - t) x0), uniform grid."""
    from flow_matching.solver import ODESolver

    reference = problem.reference(0.0, 1.0, 1.0)
    for method, stages in (("euler", 1), ("midpoint", 2), ("heun3", 3), ("rk4", 4)):
        steps = budget // stages
        if steps < 1:
            continue

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x0_hat, eps_hat = problem.mixture.denoise(x, t.to(torch.float64), 1.0 - t.to(torch.float64))
            return x0_hat - eps_hat

        model = Counter(velocity)
        grid = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        start = time.perf_counter()
        out = ODESolver(velocity_model=model).sample(x_init=problem.noise.clone(), step_size=None, method=method,
                                                     time_grid=grid)
        seconds = time.perf_counter() - start
        yield Run("flow_matching", method, "uniform", model.calls, problem.error(out, reference), seconds)


PEERS: dict[str, Callable[[Problem, int], Iterator[Run]]] = {
    "k-diffusion": k_diffusion_runs,
    "diffusers": diffusers_runs,
    "flow_matching": flow_matching_runs,
}
