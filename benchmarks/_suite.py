"""The sampling-plan suite: several models and data sets, peers, and a held-out part.

Problems (model kind / data set). Every model is a :class:`schedalg.models.NetworkDenoiser`
around a "network" (the exact posterior of a Gaussian mixture of the data, or the trained
digits flow MLP), declared on its real span:

- ``edm``: an x0 model on EDM's ``sigma in [0.002, 80]`` (``edm(sigma_max=80, sigma_min=0.002)``);
- ``linear``: an x0 model on the linear path ``x = t x0 + (1 - t) eps``, ``t in [0, 1]``
  (not in the suite; used by ``benchmarks/dpmpp3m.py``);
- ``ve``: an x0 model on the VE schedule ``sigma = 0.002 (40000)^t``, ``t in [0, 1]``;
- ``ddpm_linear`` / ``ddpm_cosine``: a discrete eps model on a 1000-step beta table as
  diffusers configures it (``linear`` 1e-4..0.02; ``squaredcos_cap_v2``), time = step index;
- ``flow_net``: the trained digits flow network (``examples/digits_flow``), velocity on
  the linear path ``t in [0, 1]``.

Data sets: scikit-learn's 8x8 digits in [-1, 1] (mixture std 0.1), 8x8 grayscale patches
of scikit-learn's two sample images in [-1, 1] (std 0.1), and a synthetic 64-dimensional
mixture of 16 Gaussians (std 0.3).

:data:`HELD_OUT` was fixed before any default of :func:`schedalg.geometry.select_sampler`
or the README recommendation was decided, and none of those decisions looked at it; its
rows are reported separately.

Every system starts from its own start (the model's noise end when it can represent it)
and ends at the model's data end; its endpoint is mapped to the model's coordinates and
compared with a DOP853 solve (rtol = atol = 1e-9) of the same probability-flow ODE from
the same start, integrated in the coordinates of the linear path (where the velocity
``x0_hat - eps_hat`` is finite at both ends). Error = mean over samples of the RMS per
dimension. NFE are counted by a wrapper around the network.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

import schedalg as sa
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.geometry import PlannedSampler, sampling_schedules, select_sampler
from schedalg.models import NetworkDenoiser
from schedalg.sampling import TimeGrid

from ._problem import Counter

TUNING = ("edm/digits", "flow_net/digits", "ddpm_linear/digits")
HELD_OUT = ("edm/patches", "ddpm_cosine/patches", "ve/synthetic")
BUDGETS = (5, 10, 20)
EVAL_SEED, CALIBRATION_SEED = 2026, 4242
#: The README's recommended few-step plan (fixed on the tuning problems only): see :func:`recommended`.
RECOMMENDED = ("linear", "uniform", "ipndm")


# ---------------------------------------------------------------------- data


def digits_data(count: int = 500) -> tuple[torch.Tensor, float]:
    """The first ``count`` digits (all 1797 make every evaluation 3.6x slower on a shared 2-core machine)."""
    from schedalg.datasets import digits

    return digits()[:count], 0.1


def patches_data(count: int = 1000) -> tuple[torch.Tensor, float]:
    """8x8 grayscale patches of scikit-learn's sample images (stride 4), ``count`` at random, in [-1, 1]."""
    from sklearn.datasets import load_sample_images

    out = []
    for image in load_sample_images().images:
        gray = torch.as_tensor(np.asarray(image, dtype=np.float64).mean(axis=2) / 127.5 - 1.0)
        tiles = gray.unfold(0, 8, 4).unfold(1, 8, 4).reshape(-1, 64)
        out.append(tiles)
    allp = torch.cat(out)
    pick = torch.randperm(allp.shape[0], generator=torch.Generator().manual_seed(0))[:count]
    return allp[pick].contiguous(), 0.1


def synthetic_data() -> tuple[torch.Tensor, float]:
    means = torch.randn(16, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    return means, 0.3


DATA: dict[str, Callable[[], tuple[torch.Tensor, float]]] = {
    "digits": digits_data, "patches": patches_data, "synthetic": synthetic_data}


# ---------------------------------------------------------------------- models


@dataclass
class SuiteProblem:
    """A model (schedalg denoiser) plus ``pair(x, alpha, sigma) -> (x0_hat, eps_hat)`` at any noise level."""

    name: str
    model: Any
    pair: Callable[[torch.Tensor, Any, Any], tuple[torch.Tensor, torch.Tensor]]
    held_out: bool
    dim: int
    _references: dict = field(default_factory=dict)

    @property
    def schedule(self) -> sa.Schedule:
        return self.model.schedule

    def end_values(self) -> tuple[float, float, float, float]:
        """``(alpha, sigma)`` of the model at its noise end, then at its data end."""
        compiled = self.schedule.compile()
        tt = torch.tensor([float(self.schedule.t_noise), float(self.schedule.t_data)], dtype=torch.float64)
        alpha, sigma = compiled.evaluate_grid(tt, "alpha", "sigma")
        return float(alpha[0]), float(sigma[0]), float(alpha[1]), float(sigma[1])

    def reference(self, noise: torch.Tensor, alpha0: float, sigma0: float, scale: float,
                  end: tuple[float, float] | None = None) -> torch.Tensor:
        """Model-coordinate endpoint of the ODE from ``scale * noise`` at ``(alpha0, sigma0)`` (DOP853),
        at the model's data end or at ``end = (alpha, sigma)`` of the model's schedule."""
        end = tuple(self.end_values()[2:]) if end is None else (float(end[0]), float(end[1]))
        key = (round(alpha0 / (alpha0 + sigma0), 12), round(scale / (alpha0 + sigma0), 12), noise.shape[0],
               round(end[0] / (end[0] + end[1]), 12))
        if key not in self._references:
            self._references[key] = self._solve(noise, alpha0, sigma0, scale, end)
        return self._references[key]

    def _solve(self, noise, alpha0, sigma0, scale, end):
        from scipy.integrate import solve_ivp

        a_end, s_end = end
        t0 = alpha0 / (alpha0 + sigma0)
        t1 = a_end / (a_end + s_end)
        x = (scale / (alpha0 + sigma0) * noise).numpy().reshape(-1)
        shape = noise.shape

        def velocity(t, flat):
            state = torch.from_numpy(flat.reshape(shape))
            x0, eps = self.pair(state, torch.tensor(t, dtype=torch.float64), torch.tensor(1.0 - t, dtype=torch.float64))
            return (x0 - eps).numpy().reshape(-1)

        solution = solve_ivp(velocity, (t0, t1), x, method="DOP853", rtol=1e-9, atol=1e-9)
        if not solution.success:
            raise RuntimeError(solution.message)
        return torch.from_numpy(solution.y[:, -1].reshape(shape).copy()) * (a_end + s_end)

    def error(self, endpoint: torch.Tensor, reference: torch.Tensor) -> float:
        diff = (endpoint.to(torch.float64) - reference).reshape(reference.shape[0], -1)
        return float(diff.pow(2).mean(1).sqrt().mean())


def _mixture_pair(mixture: GaussianMixtureDenoiser):
    return lambda x, alpha, sigma: mixture.denoise(x, alpha, sigma)


def make_problem(name: str, components: int | None = None) -> SuiteProblem:
    """Build a problem by ``"kind/data"`` name (``components`` trims the data, for quick runs)."""
    kind, data_name = name.split("/")
    held_out = name in HELD_OUT
    if kind == "flow_net":
        return _flow_problem(name, held_out)
    data, std = DATA[data_name]()
    data = data[:components].to(torch.float64)
    if kind == "edm":
        schedule = sa.schedules.edm(sigma_max=80.0, sigma_min=0.002)
    elif kind == "linear":
        schedule = sa.schedules.linear()
    elif kind == "ve":
        schedule = sa.schedules.ve(sigma_min=0.002, sigma_max=80.0)
    elif kind.startswith("ddpm_"):
        betas = sa.schedules.discrete_betas("linear" if kind == "ddpm_linear" else "squaredcos_cap_v2", 1000)
        schedule = sa.schedules.from_betas(betas, name=kind)
    else:
        raise ValueError(name)
    mixture = GaussianMixtureDenoiser(schedule, data, std**2, chunk_size=2048)
    compiled = schedule.compile()
    if kind.startswith("ddpm_"):
        def network(x, tt):  # eps prediction at the (continuous) training step
            alpha, sigma = compiled.evaluate(tt.to(torch.float64).reshape(-1), "alpha", "sigma")
            return mixture.denoise(x, alpha, sigma)[1]
        model = NetworkDenoiser(network, schedule, "eps", "t")
    else:
        def network(x, tt):  # x0 prediction at time t
            alpha, sigma = compiled.evaluate(tt.to(torch.float64).reshape(-1), "alpha", "sigma")
            return mixture.denoise(x, alpha, sigma)[0]
        model = NetworkDenoiser(network, schedule, "x0", "t")
    return SuiteProblem(name, model, _mixture_pair(mixture), held_out, data.shape[1])


def _flow_problem(name: str, held_out: bool) -> SuiteProblem:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "digits_flow" / "model.py"
    spec = importlib.util.spec_from_file_location("digits_flow_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = module.load_model().double()

    def pair(x, alpha, sigma):
        alpha = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1, 1)  # scalars or one per sample
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)
        c = 1.0 / (alpha + sigma)
        tt = alpha * c
        y = x * c
        with torch.no_grad():
            v = network(y, tt.reshape(-1))
        return y + (1 - tt) * v, y - tt * v

    model = NetworkDenoiser(network, sa.schedules.linear(), "velocity", "t")
    return SuiteProblem(name, model, pair, held_out, 64)


# ---------------------------------------------------------------------- rows


@dataclass
class Row:
    problem: str
    held_out: bool
    budget: int
    system: str
    sampler: str
    grid: str
    nfe: int
    error: float
    note: str = ""
    calibration_error: float | None = None
    planning_cost: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(vars(self))




class CountingModel:
    """A schedalg denoiser whose prepared calls are counted."""

    def __init__(self, inner):
        self.inner = inner
        self.schedule = inner.schedule
        self.calls = 0

    def prepare(self, times, *args, **kwargs):
        prepared = self.inner.prepare(times, *args, **kwargs)
        owner = self

        def call(x, i, **cond):
            owner.calls += 1
            return prepared(x, i, **cond)

        call.finish = getattr(prepared, "finish", lambda: None)
        return call


def recommended(model: Any, budget: int) -> PlannedSampler:
    """The README recommendation: ``ipndm`` on the linear path truncated to the model's span, uniform steps."""
    linear = sampling_schedules(model.schedule)["linear"]
    return PlannedSampler.for_model(model, TimeGrid.uniform(linear, budget), "ipndm")


def schedalg_rows(problem: SuiteProblem, budget: int, noise: torch.Tensor, calibration: torch.Tensor,
                  log: Callable[[str], None], plan_options: dict | None = None) -> Iterator[Row]:
    a0, s0, _, _ = problem.end_values()
    reference = problem.reference(noise, a0, s0, s0)
    start = time.perf_counter()
    plan = select_sampler(problem.model, calibration, budget, **(plan_options or {}))
    planning_s = time.perf_counter() - start
    best = plan.best
    counted = CountingModel(problem.model)
    sampler = PlannedSampler.for_model(counted, best.grid, sa.sampling.get_solver(best.solver, **dict(best.options)))
    out = sampler(noise)
    log(f"    plan {best.label} nfe={counted.calls} cost={plan.cost} ({planning_s:.0f} s)")
    yield Row(problem.name, problem.held_out, budget, "schedalg auto", best.solver + "".join(
        f"({k}={v})" for k, v in best.options), f"{best.schedule}/{best.label.split('/')[-1]}", counted.calls,
        problem.error(out, reference), f"{len(plan.candidates)} stable, {len(plan.unstable)} unstable candidates",
        best.error, plan.cost, planning_s)
    counted = CountingModel(problem.model)
    out = recommended(counted, budget)(noise)
    yield Row(problem.name, problem.held_out, budget, "schedalg README", RECOMMENDED[2], "linear(span)/uniform",
              counted.calls, problem.error(out, reference))


# ---------------------------------------------------------------------- peers


def _edm_sigma_range(problem: SuiteProblem) -> tuple[float, float]:
    """``(sigma_min, sigma_max)`` of the model's span in EDM levels (80 where the noise end is pure noise)."""
    a0, s0, a1, s1 = problem.end_values()
    sigma_max = s0 / a0 if a0 > 0 else 80.0
    return s1 / a1, sigma_max


def k_diffusion_rows(problem: SuiteProblem, budget: int, noise: torch.Tensor) -> Iterator[Row]:
    from ._peers import k_sampling

    k = k_sampling()
    sigma_min, sigma_max = _edm_sigma_range(problem)
    _, _, a1, s1 = problem.end_values()
    reaches = s1 == 0.0
    reference = problem.reference(noise, 1.0, sigma_max, sigma_max)
    samplers = [("euler", k.sample_euler, 1), ("heun", k.sample_heun, 2), ("dpm_2", k.sample_dpm_2, 2),
                ("lms", k.sample_lms, 1), ("dpmpp_2m", k.sample_dpmpp_2m, 1)]
    for name, fn, stages in samplers:
        steps = budget // stages if reaches or stages == 1 else budget // stages
        if steps < 1:
            continue
        for grid_name, make in (("karras(rho=7)", k.get_sigmas_karras), ("exponential", k.get_sigmas_exponential)):
            if reaches:
                sigmas = make(steps, max(sigma_min, 0.002), sigma_max, device="cpu").double()
            else:  # end at the model's sigma_min (no final jump to 0)
                sigmas = make(steps + 1, sigma_min, sigma_max, device="cpu").double()[:-1]
            model = Counter(lambda x, sigma: problem.pair(x, torch.ones_like(sigma), sigma)[0])
            out = fn(model, sigma_max * noise.clone(), sigmas, disable=True)
            if model.calls > budget:
                continue
            yield Row(problem.name, problem.held_out, budget, "k-diffusion", name, grid_name, model.calls,
                      problem.error(out * (a1 if not reaches else 1.0), reference))


def _vp_table(problem: SuiteProblem) -> tuple[np.ndarray | None, str]:
    """The beta table diffusers runs on: the model's own (DDPM) or one spanning its EDM levels geometrically."""
    schedule = problem.schedule
    if isinstance(schedule, sa.schedules.TabulatedSchedule):
        abar = schedule.alphas_cumprod
    else:
        sigma_min, sigma_max = _edm_sigma_range(problem)
        levels = np.exp(np.linspace(np.log(sigma_min if sigma_min > 0 else 0.002), np.log(sigma_max), 1000))
        abar = 1.0 / (1.0 + levels**2)
    betas = 1.0 - abar / np.concatenate([[1.0], abar[:-1]])
    return betas, "table"


def diffusers_rows(problem: SuiteProblem, budget: int, noise: torch.Tensor) -> Iterator[Row]:
    from diffusers import DEISMultistepScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

    betas, _ = _vp_table(problem)
    _, _, a1, s1 = problem.end_values()
    reaches = s1 == 0.0
    final = "zero" if reaches else "sigma_min"
    makers = []
    for karras in (False, True):
        tag = "karras" if karras else "linspace"
        common = dict(num_train_timesteps=1000, trained_betas=betas.tolist(), use_karras_sigmas=karras)
        makers += [(f"DPMSolverMultistep(2M)|{tag}", lambda c=common: DPMSolverMultistepScheduler(
                        solver_order=2, final_sigmas_type=final, **c)),
                   (f"DPMSolverMultistep(3M)|{tag}", lambda c=common: DPMSolverMultistepScheduler(
                        solver_order=3, final_sigmas_type=final, **c)),
                   (f"UniPCMultistep(bh2,p3)|{tag}", lambda c=common: UniPCMultistepScheduler(
                        solver_order=3, final_sigmas_type=final, **c)),
                   (f"UniPCMultistep(bh2,p2)|{tag}", lambda c=common: UniPCMultistepScheduler(
                        solver_order=2, final_sigmas_type=final, **c))]
    if not reaches:  # DEIS ends at the table's first entry: the model's data end only for truncated spans
        makers.append(("DEISMultistep(3)|linspace", lambda: DEISMultistepScheduler(
            solver_order=3, num_train_timesteps=1000, trained_betas=betas.tolist())))
    for label, make in makers:
        scheduler = make()
        name, grid_name = label.split("|")
        try:
            scheduler.set_timesteps(budget)
        except Exception:  # noqa: BLE001 - a peer configuration it refuses is left out
            continue
        sigmas = scheduler.sigmas.to(torch.float64)
        s0 = float(sigmas[0])
        alpha0 = 1.0 / math.sqrt(1.0 + s0**2)
        x = noise * float(scheduler.init_noise_sigma)
        reference = problem.reference(noise, alpha0, s0 * alpha0, float(scheduler.init_noise_sigma))

        def network(x_in, i):
            s = sigmas[i]
            alpha = 1.0 / torch.sqrt(1.0 + s**2)
            return problem.pair(x_in, alpha, s * alpha)[1]

        model = Counter(network)
        try:
            for i, timestep in enumerate(scheduler.timesteps):
                x = scheduler.step(model(scheduler.scale_model_input(x, timestep).to(torch.float64), i), timestep,
                                   x).prev_sample
        except IndexError:  # diffusers cannot run this configuration (e.g. duplicate Karras timesteps)
            continue
        s_end = float(sigmas[-1])
        a_end = 1.0 / math.sqrt(1.0 + s_end**2)
        # x is in VP coordinates at the model's data end (same log-SNR): map to the model's
        out = x / (a_end + s_end * a_end) * (a1 + s1)
        yield Row(problem.name, problem.held_out, budget, "diffusers", name, grid_name, model.calls,
                  problem.error(out, reference))


def flow_matching_rows(problem: SuiteProblem, budget: int, noise: torch.Tensor) -> Iterator[Row]:
    """flow_matching's ODESolver on the change of variables: uniform linear time over the model's span."""
    from flow_matching.solver import ODESolver

    a0, s0, a1, s1 = problem.end_values()
    t0, t1 = a0 / (a0 + s0), a1 / (a1 + s1)
    reference = problem.reference(noise, a0, s0, s0)
    for method, stages in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        steps = budget // stages
        if steps < 1:
            continue

        def velocity(x, t):
            tt = t.to(torch.float64)
            x0, eps = problem.pair(x, tt, 1.0 - tt)
            return x0 - eps

        model = Counter(velocity)
        grid = torch.linspace(t0, t1, steps + 1, dtype=torch.float64)
        start = s0 / (a0 + s0) * noise
        out = ODESolver(velocity_model=model).sample(x_init=start.clone(), step_size=None, method=method,
                                                     time_grid=grid)
        yield Row(problem.name, problem.held_out, budget, "flow_matching", method, "uniform(linear time)",
                  model.calls, problem.error(out * (a1 + s1), reference))


def ipndm_reference_rows(problem: SuiteProblem, budget: int, noise: torch.Tensor) -> Iterator[Row]:
    """The seed authors' iPNDM written here from the published rule: EDM sigma time, Karras rho = 7
    levels over the model's span, d = (x - D(x))/sigma, Adams-Bashforth weights 1; (3,-1)/2;
    (23,-16,5)/12; (55,-59,37,-9)/24 while the history fills."""
    weights = ((1.0,), (1.5, -0.5), (23 / 12, -16 / 12, 5 / 12), (55 / 24, -59 / 24, 37 / 24, -9 / 24))
    sigma_min, sigma_max = _edm_sigma_range(problem)
    _, _, a1, s1 = problem.end_values()
    reaches = s1 == 0.0
    count = budget if reaches else budget + 1
    ramp = np.linspace(0, 1, count)
    low = max(sigma_min, 0.002)
    levels = (sigma_max ** (1 / 7) + ramp * (low ** (1 / 7) - sigma_max ** (1 / 7))) ** 7
    if reaches:
        levels = np.append(levels, 0.0)
    reference = problem.reference(noise, 1.0, sigma_max, sigma_max)
    model = Counter(lambda x, sigma: problem.pair(x, 1.0, sigma)[0])
    x = sigma_max * noise.clone()
    history: list[torch.Tensor] = []
    for i in range(len(levels) - 1):
        s, s_next = float(levels[i]), float(levels[i + 1])
        d = (x - model(x, torch.tensor(s, dtype=torch.float64))) / s
        history = [d] + history[:3]
        w = weights[len(history) - 1]
        x = x + (s_next - s) * sum(c * h for c, h in zip(w, history))
    yield Row(problem.name, problem.held_out, budget, "iPNDM reference", "ipndm", "karras(rho=7)", model.calls,
              problem.error(x * (a1 if not reaches else 1.0), reference))


PEERS = (k_diffusion_rows, diffusers_rows, flow_matching_rows, ipndm_reference_rows)


def run_problem(name: str, batch: int, calibration_batch: int, budgets: tuple[int, ...], log,
                components: int | None = None, plan_options: dict | None = None) -> list[dict]:
    """Every system on problem ``name`` at each budget (``plan_options``: narrow the planner, for tests)."""
    problem = make_problem(name, components)
    noise = torch.randn(batch, problem.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(EVAL_SEED))
    calibration = torch.randn(calibration_batch, problem.dim, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(CALIBRATION_SEED))
    rows: list[dict] = []
    for budget in budgets:
        log(f"  {name} NFE {budget}")
        for runner in PEERS:
            try:
                for row in runner(problem, budget, noise):
                    rows.append(row.as_dict())
            except Exception as exc:  # noqa: BLE001 - a peer that fails on a configuration is reported, not fatal
                log(f"    [peer failed] {runner.__name__}: {type(exc).__name__}: {exc}")
        for row in schedalg_rows(problem, budget, noise, calibration, log, plan_options):
            rows.append(row.as_dict())
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per problem and budget: auto plan, README plan, best peer, ratio, cost, calibration vs evaluation."""
    out = []
    keys = sorted({(r["problem"], r["budget"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for problem, budget in keys:
        group = [r for r in rows if r["problem"] == problem and r["budget"] == budget]
        peers = [r for r in group if not r["system"].startswith("schedalg") and r["nfe"] <= budget
                 and math.isfinite(r["error"])]
        auto = next(r for r in group if r["system"] == "schedalg auto")
        readme = next(r for r in group if r["system"] == "schedalg README")
        best = min(peers, key=lambda r: r["error"])
        out.append({"problem": problem, "held_out": auto["held_out"], "budget": budget,
                    "auto": auto["error"], "auto_plan": f"{auto['sampler']} on {auto['grid']}",
                    "readme": readme["error"], "best_peer": best["error"],
                    "best_peer_name": f"{best['system']} {best['sampler']} ({best['grid']})",
                    "ratio": auto["error"] / best["error"], "readme_ratio": readme["error"] / best["error"],
                    "planning_cost": auto["planning_cost"], "calibration": auto["calibration_error"],
                    "evaluation_over_calibration": auto["error"] / auto["calibration_error"]})
    return out


def markdown(items: list[dict], meta: dict) -> str:
    lines = [f"# Sampling-plan suite ({meta['command']})", "",
             f"Evaluation batch {meta['batch']}, calibration batch {meta['calibration_batch']} (separate seeds); "
             f"error = mean RMS per dimension in the model's coordinates at its span's data end, against DOP853 "
             f"(rtol 1e-9) from the same start. {meta['seconds']:.0f} s.", ""]
    for title, held in (("Tuning problems", False), ("Held-out problems (never used for any default)", True)):
        lines += [f"## {title}", "",
                  "| problem | NFE | auto plan | auto | README (ipndm, linear, uniform) | best peer | auto/peer "
                  "| README/peer | planning cost (evals) | calibration | eval/calib |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for it in items:
            if it["held_out"] != held:
                continue
            lines.append(f"| {it['problem']} | {it['budget']} | {it['auto_plan']} | {it['auto']:.3e} | "
                         f"{it['readme']:.3e} | {it['best_peer']:.3e} {it['best_peer_name']} | {it['ratio']:.2f} | "
                         f"{it['readme_ratio']:.2f} | {it['planning_cost']} | {it['calibration']:.3e} | "
                         f"{it['evaluation_over_calibration']:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"
