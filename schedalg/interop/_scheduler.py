"""A diffusers scheduler backed by schedalg: ``pipe.scheduler = SchedalgScheduler.from_config(...)``.

A diffusers pipeline owns the loop: for each ``t`` in ``scheduler.timesteps`` it calls

    out = net(scheduler.scale_model_input(x, t), t);     x = scheduler.step(out, t, x).prev_sample

so a scheduler sees one network evaluation per ``step`` call, while a schedalg solver
asks for evaluations itself (``denoise(x, k)``), possibly several per step (Heun, RK4).
:class:`SchedalgScheduler` turns the one into the other without running the network
twice: the schedalg :class:`~schedalg.sampling.Sampler` is built on a *relay* network
that returns the outputs the pipeline has handed over so far in the current solver step
and, when the solver asks for one more, stops with the network input it wanted. That
input is returned as ``prev_sample`` (so ``scale_model_input`` is the identity), and the
pipeline's next output resumes the step: the step is replayed from its start with one
more recorded output (a few tensor additions per stage, no network call). Every state,
coefficient and time input therefore comes from the same sampler a plain
``Sampler(...)(noise)`` call runs, and the pipeline's images equal that call's samples.

Coordinates: beta-schedule models are sampled in the EDM variables ``x/alpha`` and
``sigma_edm = sigma/alpha`` (:func:`~schedalg.interop.diffusers_denoiser`), so grids end
at ``sigma = 0`` like diffusers' own schedulers; flow models in their (shifted) noise
level. ``timesteps`` are the network's time inputs in evaluation order; the first one is
the pipeline's initial latents' time, and ``init_noise_sigma = 1``: as in diffusers, those
latents are the first network input at unit scale (``schedalg.sampling.Sampler`` instead
starts at ``sigma(t_0) * noise``, the pure-noise state; the two differ where ``alpha(t_0)``
is not negligible, e.g. "leading" spacings).

State: like every diffusers scheduler, an instance holds one generation at a time (its
step counter and the solver's memory). For concurrent generations use one instance each
(``SchedalgScheduler.from_config(s.config)`` or ``copy.deepcopy(s)``); a ``step`` after
the last timestep, or before ``set_timesteps``, raises. ``step`` does no host-device
synchronization: every coefficient is a Python float computed in ``set_timesteps``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from .._optional import require
from ..errors import SchedalgError
from ..sampling import Sampler, TimeGrid, get_solver
from ._diffusers import diffusers_denoiser, diffusers_grid, flow_shift_from_config, is_flow_config

__all__ = ["SchedalgScheduler", "SchedulerError"]

_GRIDS = ("diffusers", "karras", "log_snr", "uniform")


class SchedulerError(SchedalgError):
    """Misuse of :class:`SchedalgScheduler` (order of calls, arguments, unsupported options)."""


class _NeedEvaluation(Exception):
    """Raised inside a replayed solver step: the solver asks for one more network evaluation."""

    def __init__(self, network_input: torch.Tensor):
        super().__init__("network evaluation requested")
        self.network_input = network_input


class _Relay:
    """A stand-in network: hands back recorded outputs in order, then asks for the next one."""

    def __init__(self) -> None:
        self.outputs: list[torch.Tensor] = []
        self.cursor = 0
        self.dry_run = False
        self.time_inputs: list[torch.Tensor] = []

    def __call__(self, x_in: torch.Tensor, time: torch.Tensor, **_: Any) -> torch.Tensor:
        if self.dry_run:  # planning: record the time input, return anything finite of the right shape
            self.time_inputs.append(time[:1].clone())
            return torch.zeros_like(x_in)
        if self.cursor < len(self.outputs):
            out = self.outputs[self.cursor]
            self.cursor += 1
            return out
        raise _NeedEvaluation(x_in)


@dataclass
class SchedulerOutput:
    """What :meth:`SchedalgScheduler.step` returns with ``return_dict=True`` (diffusers' field name)."""

    prev_sample: torch.Tensor

    def __getitem__(self, index: int) -> torch.Tensor:
        return (self.prev_sample,)[index]


def _base_classes() -> tuple[type, ...]:
    diffusers = require("diffusers", "SchedalgScheduler (a diffusers scheduler)")
    return diffusers.SchedulerMixin, diffusers.ConfigMixin


def _make_class() -> type:
    from diffusers.configuration_utils import register_to_config

    scheduler_mixin, config_mixin = _base_classes()

    class SchedalgScheduler(scheduler_mixin, config_mixin):
        """A diffusers scheduler that samples with any schedalg solver on any schedalg grid.

        ``SchedalgScheduler.from_config(pipe.scheduler.config, solver="dpmpp_3m")`` reads the
        model's training schedule from any diffusers scheduler config (beta schedules, or
        flow matching with its shift / dynamic shifting) and samples it with ``solver``
        (any name in :data:`schedalg.sampling.SOLVERS`, options in ``solver_options``) on
        ``grid``:

        * ``"diffusers"`` (default): the noise levels diffusers' own Euler scheduler
          (``EulerDiscreteScheduler``, or ``FlowMatchEulerDiscreteScheduler`` for flow models)
          would use for the same ``set_timesteps`` arguments, config spacing and Karras/shift
          options included; so ``solver="euler"`` reproduces that scheduler;
        * ``"karras"`` (rho = 7), ``"log_snr"`` (uniform in log-SNR) or ``"uniform"`` in the
          sampling time, from the model's largest noise level to the data.

        The state the pipeline sees is the network input (``scale_model_input`` is the
        identity); the last ``step`` returns the sample. See the module docstring for how
        multi-evaluation solvers are driven and how state is held.
        """

        _compatibles: list[str] = []
        order = 1

        @register_to_config
        def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                     beta_schedule: str = "linear", trained_betas: Any = None, prediction_type: str | None = None,
                     timestep_spacing: str = "linspace", steps_offset: int = 0, use_karras_sigmas: bool = False,
                     flow: bool = False, shift: float = 1.0, use_dynamic_shifting: bool = False,
                     time_shift_type: str = "exponential", base_shift: float = 0.5, max_shift: float = 1.15,
                     base_image_seq_len: int = 256, max_image_seq_len: int = 4096,
                     solver: str = "dpmpp_2m", grid: str = "diffusers", solver_options: Mapping[str, Any] | None = None):
            if grid not in _GRIDS:
                raise SchedulerError(f"grid among {_GRIDS}", repr(grid), None)
            get_solver(solver, **dict(solver_options or {}))  # validate now, with schedalg's message
            self._reset(None)
            self.timesteps = torch.zeros(0)
            self.num_inference_steps: int | None = None
            self._begin_index: int | None = None

        # ------------------------------------------------------------ diffusers' constructor conventions

        @classmethod
        def from_config(cls, config: Any = None, return_unused_kwargs: bool = False, **kwargs: Any):
            """From any diffusers scheduler's config (a flow-matching config sets ``flow=True``)."""
            mapping = dict(config) if config is not None else {}
            if "flow" not in kwargs and "flow" not in mapping:
                kwargs["flow"] = is_flow_config(mapping)
            return super().from_config(mapping, return_unused_kwargs=return_unused_kwargs, **kwargs)

        def __len__(self) -> int:
            return int(self.config.num_train_timesteps)

        # ------------------------------------------------------------ planning

        def _reference(self, num_inference_steps: int | None, timesteps: Any, sigmas: Any, mu: float | None):
            """diffusers' own Euler scheduler for this config, with its steps set."""
            import diffusers

            cls = diffusers.FlowMatchEulerDiscreteScheduler if self.config.flow else diffusers.EulerDiscreteScheduler
            accepted = set(inspect.signature(cls.__init__).parameters)
            config = {k: v for k, v in self.config.items() if k in accepted}
            if not self.config.flow:
                config["prediction_type"] = self._prediction_type()
            reference = cls.from_config(config)
            kwargs: dict[str, Any] = {}
            if mu is not None:
                kwargs["mu"] = mu
            if timesteps is not None:
                kwargs["timesteps"] = list(np.asarray(timesteps, dtype=np.float64).tolist()) if self.config.flow \
                    else [int(v) for v in np.asarray(timesteps).tolist()]
            if sigmas is not None:
                kwargs["sigmas"] = list(np.asarray(sigmas, dtype=np.float64).tolist())
            if timesteps is None and sigmas is None:
                kwargs["num_inference_steps"] = num_inference_steps
            try:
                reference.set_timesteps(**kwargs)
            except (TypeError, ValueError) as exc:
                raise SchedulerError("set_timesteps arguments this config's diffusers scheduler accepts",
                                     f"{sorted(kwargs)}", str(exc)) from exc
            return reference

        def _prediction_type(self) -> str:
            if self.config.prediction_type is not None:
                return self.config.prediction_type
            return "flow_prediction" if self.config.flow else "epsilon"

        def set_timesteps(self, num_inference_steps: int | None = None, device: Any = None, timesteps: Any = None,
                          sigmas: Any = None, mu: float | None = None) -> None:
            """Plan the sampling: grid, solver coefficients, and the network's time inputs.

            Exactly one of ``num_inference_steps`` (solver steps), ``timesteps`` (training
            timesteps, beta schedules) or ``sigmas`` (noise levels) chooses the grid; ``mu`` is
            the dynamic shift of flow models (as in diffusers).
            """
            given = [name for name, value in (("num_inference_steps", num_inference_steps),
                                              ("timesteps", timesteps), ("sigmas", sigmas)) if value is not None]
            if len(given) != 1:
                raise SchedulerError("exactly one of num_inference_steps, timesteps, sigmas",
                                     f"{given or 'none'}", "e.g. set_timesteps(20)")
            if num_inference_steps is not None and (isinstance(num_inference_steps, bool)
                                                    or not isinstance(num_inference_steps, (int, np.integer))
                                                    or num_inference_steps < 1):
                raise SchedulerError("num_inference_steps, an int >= 1", repr(num_inference_steps), None)
            if self.config.use_dynamic_shifting and mu is None:
                raise SchedulerError("mu for a config with use_dynamic_shifting=True", "mu=None",
                                     "pass mu (the pipeline computes it from the image size)")
            reference = self._reference(num_inference_steps, timesteps, sigmas, mu)
            relay = _Relay()
            coordinates = "native" if self.config.flow else "edm"
            denoiser = diffusers_denoiser(relay, reference, coordinates=coordinates, mu=mu, check_finite="off",
                                          strict_dtype=False)
            grid = self._grid(reference, denoiser, num_inference_steps)
            sampler = Sampler(denoiser, grid, self.config.solver, **dict(self.config.solver_options or {}))
            # dry run on a 1-element state: the time input of every evaluation, in call order
            relay.dry_run = True
            sampler(torch.zeros(1, 1, dtype=torch.float64), seed=0)
            relay.dry_run = False
            times = torch.cat(relay.time_inputs).to(torch.float32)
            self._reset((sampler, relay))
            self.timesteps = times.to(device) if device is not None else times
            self.num_inference_steps = grid.n_steps
            self.order = sampler.nfe // grid.n_steps if sampler.nfe % grid.n_steps == 0 else 1
            self._begin_index = None

        def _grid(self, reference: Any, denoiser: Any, steps: int | None) -> TimeGrid:
            schedule = denoiser.schedule
            kind = self.config.grid
            if kind == "diffusers" or steps is None:  # explicit timesteps/sigmas are diffusers' grid too
                return diffusers_grid(reference, schedule)
            # smallest nonzero noise level the network was trained at (beta tables: the first entry)
            s_min = 1e-3 if self.config.flow else float(((1 - reference.alphas_cumprod[0]) / reference.alphas_cumprod[0])
                                                        .double().sqrt())
            if kind == "karras":
                return TimeGrid.karras(schedule, steps, sigma_min=s_min) if not self.config.flow \
                    else TimeGrid.karras(schedule, steps)
            if kind == "log_snr":  # lambda = inf at the data end: uniform down to s_min, then one step there
                compiled = schedule.compile()
                level = s_min if not self.config.flow else s_min / (1 - s_min)
                end = compiled.t_of_log_snr(torch.tensor([-2 * math.log(level)], dtype=torch.float64))
                body = (TimeGrid.log_snr_uniform(schedule, steps - 1, t_end=float(end[0])).times if steps > 1
                        else torch.tensor([compiled.t_noise], dtype=torch.float64))
                data = torch.tensor([compiled.t_data], dtype=torch.float64)
                return TimeGrid(schedule, torch.cat([body, data]), label="log_snr_uniform+data")
            return TimeGrid.uniform(schedule, steps)

        # ------------------------------------------------------------ the loop

        def _reset(self, planned: Any) -> None:
            self._planned = planned
            self._calls = 0
            self._step = 0
            self._registers: list | None = None
            self._returned: torch.Tensor | None = None

        #: The pipeline's first latents are the first network input, drawn at unit scale (diffusers'
        #: convention: a variance-preserving state of unit-variance data), whatever the grid's first level.
        init_noise_sigma = 1.0

        @property
        def step_index(self) -> int | None:
            return self._calls if self._planned is not None else None

        @property
        def begin_index(self) -> int | None:
            return self._begin_index

        def set_begin_index(self, begin_index: int = 0) -> None:
            """Start at evaluation ``begin_index`` (img2img): it must open a solver step that reads
            nothing from earlier steps (one-step solvers; a multistep solver's history would be missing)."""
            if self._planned is None:
                raise SchedulerError("set_timesteps(...) before set_begin_index", "no timesteps", None)
            program = self._planned[0].plan
            starts = [sum(program.evaluations[:i]) for i in range(program.n_steps)]
            if begin_index not in starts or program.memory(starts.index(begin_index)):
                raise SchedulerError("a begin index at the start of a solver step that needs no earlier memory",
                                     f"begin_index={begin_index} with {self._planned[0].solver.name!r} (steps "
                                     f"start at evaluations {starts[:6]}...)",
                                     "use a one-step solver (euler, heun, ...) for img2img, or begin at 0")
            step = starts.index(begin_index)
            self._begin_index = begin_index
            self._calls, self._step = begin_index, step

        def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
            """The identity: ``prev_sample`` is already the network input."""
            return sample

        def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
            """``alpha(t) x0 + sigma(t) eps`` on the training path at the network time inputs ``timesteps``.

            Beta schedules: ``t`` is a training step (table ``alphas_cumprod``); flow models:
            ``t = 1000 u`` for the noise level ``u`` (``alpha = 1 - u``, ``sigma = u``).
            """
            times = torch.as_tensor(timesteps, dtype=torch.float64).reshape(-1).cpu()
            if self.config.flow:
                level = times / float(self.config.num_train_timesteps)
                alpha, sigma = 1 - level, level
            else:
                table = self._reference(1, None, None, None).alphas_cumprod.double()
                abar = table[times.round().long().clamp(0, table.numel() - 1)]
                alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
            shape = (-1,) + (1,) * (original_samples.dim() - 1)
            alpha = alpha.to(original_samples.device, original_samples.dtype).reshape(shape)
            sigma = sigma.to(original_samples.device, original_samples.dtype).reshape(shape)
            return alpha * original_samples + sigma * noise

        def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor,
                 generator: torch.Generator | None = None, return_dict: bool = True, **kwargs: Any):
            """Hand over one network output; returns the next network input (the sample after the last)."""
            if self._planned is None:
                raise SchedulerError("set_timesteps(...) before step", "no timesteps", "call set_timesteps first")
            eta = kwargs.get("eta", 0.0)
            if eta:
                raise SchedulerError("eta=0 (the solver decides the noise)", f"eta={eta}",
                                     "configure solver='ancestral' with solver_options={'eta': ...}")
            sampler, relay = self._planned
            if self._calls >= len(self.timesteps):
                raise SchedulerError(f"at most {len(self.timesteps)} step calls after set_timesteps",
                                     f"call {self._calls + 1}", "call set_timesteps again for a new generation")
            program = sampler.program()
            compute = torch.float32 if sample.dtype in (torch.float16, torch.bfloat16) else sample.dtype
            if self._registers is None:  # the first call: the pipeline's latents are the first network input
                x = self._state_from_input(sampler, sample.to(compute))
                draws = None
                if program.noise_draws:  # all draws at once, as Sampler.draws(x, generator=...)
                    draws = (sampler.draws(x, generator=generator) if generator is not None
                             else torch.randn((program.noise_draws,) + tuple(x.shape), dtype=x.dtype, device=x.device))
                self._registers = program.start(x, draws)
                self._registers[program.ends[self._step][0]] = x  # a later first step (set_begin_index)
            elif relay.cursor == 0 and sample is not self._returned:  # latents changed between steps (inpainting)
                self._registers[program.ends[self._step][0]] = self._state_from_input(sampler, sample.to(compute))
            relay.outputs.append(model_output.to(compute))
            self._calls += 1
            prev = self._advance(sampler, program, relay)
            self._returned = prev = prev.to(sample.dtype)
            if not return_dict:
                return (prev,)
            return SchedulerOutput(prev_sample=prev)

        def _state_from_input(self, sampler: Sampler, network_input: torch.Tensor) -> torch.Tensor:
            """The solver state whose network input (``c_in x``) at the current step's first evaluation is given."""
            c_in = sampler.prepared.tables.get("c_in")
            k = sampler.plan.evaluation_indices(self._step)[0]
            return network_input if c_in is None else network_input / float(c_in[k])

        def _advance(self, sampler: Sampler, program: Any, relay: _Relay) -> torch.Tensor:
            """Replay the current solver step with the outputs so far; go on while steps complete."""
            while True:
                relay.cursor = 0
                registers = list(self._registers)  # registers are written once: a shallow copy replays
                try:
                    program.run_step(self._step, registers, sampler.prepared, {})
                except _NeedEvaluation as need:
                    return need.network_input
                program.end_step(self._step, registers)
                x_next = registers[program.ends[self._step][1]]
                self._registers, self._step = registers, self._step + 1
                relay.outputs, relay.cursor = [], 0
                if self._step == program.n_steps:
                    return x_next

    return SchedalgScheduler


_CLASS: type | None = None


def __getattr__(name: str) -> Any:  # the class is built on first use, so diffusers stays optional
    global _CLASS
    if name == "SchedalgScheduler":
        if _CLASS is None:
            _CLASS = _make_class()
        return _CLASS
    raise AttributeError(name)
