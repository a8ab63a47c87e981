"""What a network reads as "time", and how its input is scaled: per-step functions of ``t``.

A pretrained network is called as ``net(c_in(t) * x_t, tau(t), **cond)``: ``tau`` is the
time input it was trained with, ``c_in`` an optional input scaling. Both are functions
of the schedule's own time ``t`` only, so :class:`~schedalg.models.NetworkDenoiser`
evaluates them once per time grid, in float64, before the sampling loop.

Time inputs by name (``lambda = log(alpha^2/sigma^2)``, ``sigma_edm = sigma/alpha``):

===============  ==============================================  ==========================
name             value                                           used by
===============  ==============================================  ==========================
``t``            ``t`` itself (a tabulated schedule's t is the   continuous-time models,
                 training step index)                            diffusers UNets
``index``        ``(t - t_min)/(t_max - t_min) (N - 1)``         DDPM-style step indices
``sigma``        ``sigma_edm = sigma/alpha``                     k-diffusion, EDM (Karras
                                                                 et al. 2022)
``log_sigma``    ``log sigma_edm = -lambda/2``                   k-diffusion log-sigma nets
``c_noise``      ``log(sigma_edm)/4 = -lambda/8``                EDM's ``c_noise``
``noise_level``  ``sigma(t)``, the noise coefficient             flow-matching nets
                                                                 (diffusers: ``1000 sigma``)
===============  ==============================================  ==========================

Besides a name, a time input may be a SymPy expression in :data:`schedalg.t` (compiled
like the schedule, e.g. ``1000 * schedule.sigma``) or a Python callable mapping a
float64 tensor of times to a tensor of the same shape. Input scalings take the same
three forms; the names are ``"edm"`` (``1/sqrt(sigma^2 + sigma_data^2 alpha^2)``, EDM's
``c_in`` written on the state ``x_t = alpha x0 + sigma eps``; with ``alpha = 1`` it is
Karras et al.'s ``1/sqrt(sigma^2 + sigma_data^2)``) and ``"to_edm"`` (``1/alpha``: the
network reads the EDM state ``x_t/alpha = x0 + sigma_edm eps``, as a k-diffusion denoiser
does).
"""

from __future__ import annotations

from typing import Any, Callable

import sympy as sp
import torch

from ..compile import compile_exprs
from ..errors import SchedalgError
from ..symbolic import Schedule, t

__all__ = ["TIME_INPUTS", "INPUT_SCALINGS", "time_input_function", "input_scaling_function"]

PerStep = Callable[[torch.Tensor], torch.Tensor]

#: Named time inputs: name -> SymPy expression in t for a given schedule.
TIME_INPUTS: dict[str, Callable[[Schedule], sp.Expr]] = {
    "t": lambda schedule: t,
    "sigma": lambda schedule: schedule.edm_sigma,
    "log_sigma": lambda schedule: -schedule.log_snr / 2,
    "c_noise": lambda schedule: -schedule.log_snr / 8,
    "noise_level": lambda schedule: schedule.sigma,
}


def _edm_c_in(schedule: Schedule, sigma_data: float) -> sp.Expr:
    return 1 / sp.sqrt(schedule.sigma**2 + sp.sympify(sigma_data) ** 2 * schedule.alpha**2)


#: Named input scalings: name -> (schedule, sigma_data) -> SymPy expression in t.
INPUT_SCALINGS: dict[str, Callable[[Schedule, float], sp.Expr]] = {
    "edm": _edm_c_in,
    "to_edm": lambda schedule, sigma_data: 1 / schedule.alpha,
}


def _compiled(expr: sp.Expr, name: str) -> PerStep:
    function = compile_exprs([expr], [t], name=name)

    def evaluate(times: torch.Tensor) -> torch.Tensor:
        return function(times)[0]

    evaluate.expr = expr  # type: ignore[attr-defined]  # for exact limits at the domain's ends
    return evaluate


def _from_callable(fn: Callable[..., Any], what: str) -> PerStep:
    def evaluate(times: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(fn(times), dtype=torch.float64, device=times.device)
        if value.shape != times.shape:
            try:
                value = value.expand(times.shape)
            except RuntimeError:
                raise SchedalgError(f"the {what} function to return one value per time, shape "
                                    f"{tuple(times.shape)}", f"shape {tuple(value.shape)}",
                                    "map a 1-D float64 tensor of times elementwise") from None
        return value

    return evaluate


def _check_expr(expr: sp.Expr, what: str) -> sp.Expr:
    extra = expr.free_symbols - {t}
    if extra:
        raise SchedalgError(f"a {what} expression in schedalg.t only",
                            f"free symbols {sorted(map(str, extra))}", "substitute numbers for them")
    return expr


def time_input_function(spec: Any, schedule: Schedule, num_steps: int | None = None,
                        scale: float = 1.0) -> PerStep:
    """``tau(t)``: the network's time input as a float64 function of schedule time.

    ``spec`` is a name from :data:`TIME_INPUTS` (or ``"index"``), a SymPy expression in
    ``t`` or a callable; ``scale`` multiplies the result (e.g. 1000 for networks trained
    on ``1000 sigma``). ``num_steps`` is ``N`` of ``"index"``; a tabulated schedule's
    time already is the index, so it defaults to the table length there.
    """
    if isinstance(spec, str):
        if spec == "index":
            expr = _index_expr(schedule, num_steps)
        elif spec in TIME_INPUTS:
            expr = TIME_INPUTS[spec](schedule)
        else:
            raise SchedalgError(f"a time input among {sorted(TIME_INPUTS) + ['index']}, a SymPy expression "
                                "in schedalg.t, or a callable", repr(spec),
                                "e.g. time_input='sigma' for a k-diffusion-style network")
        return _compiled(sp.sympify(scale) * expr, f"time_input_{spec}")
    if isinstance(spec, sp.Basic):
        return _compiled(sp.sympify(scale) * _check_expr(spec, "time input"), "time_input_expr")
    if callable(spec):
        inner = _from_callable(spec, "time input")
        return inner if scale == 1.0 else (lambda times: scale * inner(times))
    raise SchedalgError("a time input name, SymPy expression or callable", f"{type(spec).__name__}", None)


def _index_expr(schedule: Schedule, num_steps: int | None) -> sp.Expr:
    table = getattr(schedule, "alphas_cumprod", None)
    if num_steps is None:
        if table is None:
            raise SchedalgError("num_steps (the N of the training table) for time_input='index' "
                                "on a continuous-time schedule",
                                f"num_steps=None with schedule {schedule.name!r}",
                                "pass num_steps=1000 (say), or use a tabulated schedule")
        num_steps = len(table)
    if not isinstance(num_steps, int) or num_steps < 2:
        raise SchedalgError("num_steps an integer >= 2", repr(num_steps), None)
    lo, hi = schedule.domain
    return (t - lo) / (hi - lo) * (num_steps - 1)


def input_scaling_function(spec: Any, schedule: Schedule, sigma_data: float = 1.0) -> PerStep | None:
    """``c_in(t)`` as a float64 function of schedule time, or ``None`` for no scaling."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in INPUT_SCALINGS:
            raise SchedalgError(f"an input scaling among {sorted(INPUT_SCALINGS)}, a SymPy expression in "
                                "schedalg.t, a callable or None", repr(spec), None)
        return _compiled(INPUT_SCALINGS[spec](schedule, sigma_data), f"c_in_{spec}")
    if isinstance(spec, sp.Basic):
        return _compiled(_check_expr(spec, "input scaling"), "c_in_expr")
    if callable(spec):
        return _from_callable(spec, "input scaling")
    raise SchedalgError("an input scaling name, SymPy expression, callable or None",
                        f"{type(spec).__name__}", None)
