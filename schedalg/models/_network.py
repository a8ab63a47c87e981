"""Any network + its training schedule, prediction type and time input -> the Denoiser contract.

A network trained on ``x_t = alpha(t) x0 + sigma(t) eps`` is called as

    p = net(c_in(t) * x_t, tau(t), **cond)

and predicts ``p = a(t) x0 + b(t) eps`` for one of the prediction types of
:mod:`schedalg.symbolic` (eps, x0, v, velocity, score). Given ``x_t`` the pair
``(x0, eps)`` is then

    x0_hat  = cx0_x(t) x_t + cx0_p(t) p,     eps_hat = ce_x(t) x_t + ce_p(t) p,

with the coefficients derived by SymPy (:meth:`CompiledSchedule.prediction_coefficients`).
:meth:`NetworkDenoiser.prepare` evaluates ``tau``, ``c_in`` and the four coefficients on
the whole time grid in float64, before the loop; a call then indexes these tables, runs
the network once (classifier-free guidance: once on a doubled batch) and forms
``(x0_hat, eps_hat)`` in the dtype of ``x`` with no SymPy work and no host sync.
:meth:`PreparedNetwork.raw` and :meth:`PreparedNetwork.affine_output` expose the two
halves (the checked network output ``p`` and the four coefficients as floats), so that a
sampler can fold the coefficients into its solver's weights (:meth:`schedalg.sampling.Program.fuse`).
"""

from __future__ import annotations

from typing import Any, Mapping

import sympy as sp
import torch

from ..errors import DomainError, PredictionError, SchedalgError
from ..symbolic import Schedule, check_prediction_kind, end_values
from ._checks import FiniteGuard, NetworkOutputError, check_output, extract_output
from ._guidance import guide, stack_conditions
from ._time_inputs import input_scaling_function, time_input_function

__all__ = ["NetworkDenoiser", "PreparedNetwork"]


class NetworkDenoiser:
    """Wrap ``network`` (any callable or ``nn.Module``) as a :class:`~schedalg.models.Denoiser`.

    Example: a DDPM eps-network on 1000 discrete steps, and an EDM-preconditioned one::

        ddpm = NetworkDenoiser(unet, sa.schedules.from_betas(betas), "eps", "t")
        s, sd = sa.t, 0.5  # EDM's raw network F: D = c_skip x + c_out F(c_in x, log(sigma)/4)
        edm = NetworkDenoiser(F, sa.schedules.edm(80.0), "x0", "c_noise", input_scaling="edm", sigma_data=sd,
                              output_skip=sd**2 / (s**2 + sd**2), output_scaling=s * sd / sp.sqrt(s**2 + sd**2))
        x = schedalg.sampling.sample(ddpm, torch.randn(16, 3, 32, 32), grid, "dpmpp_2m")

    Parameters
    ----------
    network:
        Called as ``network(x_in, time, **network_kwargs, **cond)``; returns a tensor of
        ``x_in``'s shape (or an object with a ``.sample`` tensor, or a tuple whose first
        element is the tensor).
    schedule:
        The schedule the network was trained with (symbolic, or tabulated via
        :func:`schedalg.schedules.from_betas` / :func:`~schedalg.schedules.tabulated`).
        States passed to the prepared denoiser are in its coordinates and its time.
    prediction:
        ``"eps"``, ``"x0"``, ``"v"``, ``"velocity"`` or ``"score"``.
    time_input:
        What the network reads as time (see :mod:`schedalg.models._time_inputs`): ``"t"``,
        ``"index"``, ``"sigma"``, ``"log_sigma"``, ``"c_noise"``, ``"noise_level"``, a SymPy
        expression in :data:`schedalg.t`, or a callable on a float64 tensor of times.
    time_scale:
        Multiplies the time input (e.g. 1000 for flow models fed ``1000 sigma``).
    num_steps:
        ``N`` for ``time_input="index"`` on a continuous-time schedule.
    round_time:
        Round the time input to the nearest integer (networks trained on integer steps).
    time_dtype:
        dtype of the time tensor handed to the network (default: the network's dtype;
        ``torch.long`` for integer step embeddings).
    input_scaling:
        ``c_in``: ``None``, ``"edm"`` (``1/sqrt(sigma^2 + sigma_data^2 alpha^2)``),
        ``"to_edm"`` (``1/alpha``), a SymPy expression in ``t`` or a callable.
    output_scaling, output_skip:
        ``c_out`` and ``c_skip``: the prediction is ``c_skip(t) x_t + c_out(t) F`` for the
        network's (guided) output ``F`` (EDM's preconditioning, Karras et al. 2022, with
        ``prediction="x0"``); same forms as ``input_scaling`` (SymPy expressions in ``t``
        or callables; a VP-trained v-network served in EDM coordinates has
        ``c_out = sqrt(1 + sigma_edm^2)``). Default: ``c_skip = 0``, ``c_out = 1``.
    sigma_data:
        The data scale in ``input_scaling="edm"``.
    guidance_scale, uncond:
        Classifier-free guidance ``p_u + w (p_c - p_u)`` with ``w = guidance_scale``;
        ``uncond`` holds the keyword arguments that differ in the unconditional half
        (tensors with a leading batch dimension, or 1 to broadcast). ``w = 1`` is the
        conditional model. ``batched_guidance=False`` makes two calls instead of one.
    network_kwargs:
        Fixed keyword arguments for every call (e.g. ``{"return_dict": False}``).
    network_dtype:
        dtype the network computes in; ``x`` is cast to it and the output cast back.
        Default: the dtype of the first floating parameter of an ``nn.Module``, else
        the dtype of ``x``.
    strict_dtype:
        Raise when the output dtype differs from the input's (default True).
    check_finite:
        ``"deferred"`` (default), ``"eager"`` or ``"off"``. Detecting NaN/inf needs the
        values on the host, a sync the sampling loop must not make; so by default each
        call only records the output (small CPU outputs by reference, others as a float64
        sum on the device; see :class:`~schedalg.models._checks.FiniteGuard`; no sync), and
        :meth:`PreparedNetwork.finish` (which samplers call once after the loop) raises
        :class:`~schedalg.models.NetworkOutputError` naming the first bad step and its
        time. ``"eager"`` raises at the bad step itself at one sync per step (debugging).

    Raises
    ------
    PredictionError
        An unknown prediction type, or guidance without ``uncond``.
    """

    def __init__(self, network: Any, schedule: Schedule, prediction: str = "eps", time_input: Any = "t", *,
                 time_scale: float = 1.0, num_steps: int | None = None, round_time: bool = False,
                 time_dtype: torch.dtype | None = None, input_scaling: Any = None, output_scaling: Any = None,
                 output_skip: Any = None, sigma_data: float = 1.0,
                 guidance_scale: float | None = None, uncond: Mapping[str, Any] | None = None,
                 batched_guidance: bool = True, network_kwargs: Mapping[str, Any] | None = None,
                 network_dtype: torch.dtype | None = None, strict_dtype: bool = True,
                 check_finite: Any = "deferred"):
        if not callable(network):
            raise SchedalgError("a callable network (function or nn.Module)", f"{type(network).__name__}", None)
        if not isinstance(schedule, Schedule):
            raise SchedalgError("the network's training schedule as a schedalg Schedule",
                                f"{type(schedule).__name__}",
                                "build it with sa.Schedule(...), sa.schedules.*, or sa.schedules.from_betas(...)")
        schedule.require_bound("wrap a network trained with it")
        self.network = network
        self.schedule = schedule
        self.prediction = check_prediction_kind(prediction)
        self.time_input = time_input
        self._time_fn = time_input_function(time_input, schedule, num_steps=num_steps, scale=time_scale)
        self._c_in_fn = input_scaling_function(input_scaling, schedule, sigma_data=sigma_data)
        self._c_out_fn = input_scaling_function(output_scaling, schedule, sigma_data=sigma_data)
        self._c_skip_fn = input_scaling_function(output_skip, schedule, sigma_data=sigma_data)
        self.round_time = bool(round_time)
        self.time_dtype = time_dtype
        if guidance_scale is not None and not uncond:
            raise PredictionError("uncond={...}: the keyword arguments of the unconditional half, for "
                                  "classifier-free guidance", f"guidance_scale={guidance_scale} with uncond={uncond!r}",
                                  "e.g. uncond={'class_labels': torch.tensor([null_class])}")
        self.guidance_scale = guidance_scale
        self.uncond = dict(uncond or {})
        self.batched_guidance = bool(batched_guidance)
        self.network_kwargs = dict(network_kwargs or {})
        self.network_dtype = network_dtype if network_dtype is not None else _module_dtype(network)
        self.strict_dtype = bool(strict_dtype)
        FiniteGuard(check_finite, torch.zeros(0))  # validate the mode now, not at prepare
        self.check_finite = check_finite

    def prepare(self, times: torch.Tensor) -> "PreparedNetwork":
        """Evaluate ``tau``, ``c_in`` and the prediction coefficients on ``times`` (float64, 1-D)."""
        times = torch.as_tensor(times, dtype=torch.float64)
        if times.dim() != 1 or times.numel() == 0:
            raise DomainError("a non-empty 1-D tensor of times", f"shape {tuple(times.shape)}", None)
        compiled = self.schedule.compile()
        tables: dict[str, torch.Tensor] = {}
        for dst in ("x0", "eps"):
            function = compiled.prediction_coefficients(self.prediction, dst)
            tables[f"{dst}_x"], tables[f"{dst}_p"] = (_end_limits(self.schedule, e, times, v)
                                                      for e, v in zip(function.exprs, function(times)))
        for name, fn in (("time", self._time_fn), ("c_in", self._c_in_fn), ("c_out", self._c_out_fn),
                         ("c_skip", self._c_skip_fn)):
            if fn is not None:
                tables[name] = _end_limits(self.schedule, getattr(fn, "expr", None), times, fn(times))
        # fold p = c_skip x + c_out F into the coefficients: dst = (c_x + c_p c_skip) x + (c_p c_out) F
        c_skip, c_out = tables.pop("c_skip", None), tables.pop("c_out", None)
        for dst in ("x0", "eps"):
            if c_skip is not None:
                tables[f"{dst}_x"] = tables[f"{dst}_x"] + tables[f"{dst}_p"] * c_skip
            if c_out is not None:
                tables[f"{dst}_p"] = tables[f"{dst}_p"] * c_out
        if self.round_time:
            tables["time"] = torch.round(tables["time"])
        return PreparedNetwork(self, times, tables)

    def __repr__(self) -> str:
        return (f"NetworkDenoiser({type(self.network).__name__}, schedule={self.schedule.name!r}, "
                f"prediction={self.prediction!r}, time_input={self.time_input!r})")


class PreparedNetwork:
    """A :class:`NetworkDenoiser` bound to a time grid (see :class:`~schedalg.models.PreparedDenoiser`).

    ``tables`` holds float64 tensors, one value per grid time: ``time`` (the network's
    time input), ``c_in`` (if any) and the coefficients ``x0_x, x0_p, eps_x, eps_p``.
    """

    def __init__(self, owner: NetworkDenoiser, times: torch.Tensor, tables: dict[str, torch.Tensor | None]):
        self.owner = owner
        self.times = times
        self.tables = {k: v for k, v in tables.items() if v is not None}
        self._time_list = times.tolist()
        # host-side, once: which grid points can be evaluated at all (e.g. eps -> x0 needs alpha > 0)
        finite = torch.stack([torch.isfinite(v) for v in self.tables.values()])
        self._bad_quantity = [None if bool(ok.all()) else sorted(k for k, f in zip(self.tables, ok) if not f)
                              for ok in finite.T]
        self._calls: dict[tuple, tuple] = {}  # per (dtype, device) of the states: see _call_inputs
        self._guard = FiniteGuard(owner.check_finite, times)
        # what _run calls on each output: the deferred record, the eager check, or nothing
        self._record = {"deferred": self._guard.record, "eager": self._guard.observe}.get(self._guard.mode)
        unscaled = owner._c_out_fn is None and owner._c_skip_fn is None
        self._x0_is_output = unscaled and owner.prediction == "x0"
        self._eps_is_output = unscaled and owner.prediction == "eps"
        # per-step scalars as Python floats (read once, here): scalar-tensor arithmetic
        # in the loop then needs no indexing and no extra kernels
        self._scalars = {k: v.tolist() for k, v in self.tables.items() if k != "time" and v.dim() == 1}

    def __call__(self, x: torch.Tensor, i: int, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, eps_hat)`` at grid time ``times[i]`` for states ``x`` (B, ...)."""
        out = self.raw(x, i, **cond)
        scalars = self._scalars
        x0 = out if self._x0_is_output else torch.add(x * scalars["x0_x"][i], out, alpha=scalars["x0_p"][i])
        eps = out if self._eps_is_output else torch.add(x * scalars["eps_x"][i], out, alpha=scalars["eps_p"][i])
        return x0, eps

    def raw(self, x: torch.Tensor, i: int, **cond: Any) -> torch.Tensor:
        """The network's (guided) output ``F`` at ``times[i]`` for states ``x``, in the dtype of ``x``.

        Shape, dtype and finiteness are checked as in :meth:`__call__`, which returns
        ``(x0_x[i] x + x0_p[i] F, eps_x[i] x + eps_p[i] F)`` (see :meth:`affine_output`).
        """
        if self._bad_quantity[i] is not None:
            self._raise_undefined(i)
        owner = self.owner
        batch = x.shape[0]
        call = self._calls.get((x.dtype, x.device))
        if call is None:
            call = self._call_inputs(x.dtype, x.device)
        net_dtype, stamps, c_in = call
        x_in = x if c_in is None else x * c_in[i]
        if x_in.dtype != net_dtype:
            x_in = x_in.to(net_dtype)
        if owner.guidance_scale is None:
            out = self._run(x_in, stamps, batch, cond, i)
            return out if out.dtype == x.dtype else out.to(x.dtype)
        if owner.batched_guidance:
            kwargs = stack_conditions(cond, owner.uncond, batch)
            out = guide(self._run(torch.cat([x_in, x_in]), stamps, 2 * batch, kwargs, i), owner.guidance_scale)
        else:
            conditional = self._run(x_in, stamps, batch, cond, i)
            unconditional = self._run(x_in, stamps, batch, {**cond, **_broadcast(owner.uncond, batch)}, i)
            out = unconditional + owner.guidance_scale * (conditional - unconditional)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    def raw_for(self, like: torch.Tensor) -> Any:
        """:meth:`raw` as a function ``F = f(x, i)`` for states of ``like``'s dtype, device and batch size, with
        no conditioning (None with classifier-free guidance, or where ``raw`` was replaced on this object:
        use :meth:`raw`).

        The same call and the same checks (undefined steps, output type, shape and dtype, the finite
        check), with every per-run choice made once here: a sampler binds it once per run.
        """
        owner = self.owner
        if owner.guidance_scale is not None or "raw" in vars(self):
            return None
        dtype, batch = like.dtype, like.shape[0]
        net_dtype, stamps, c_in = self._calls.get((dtype, like.device)) or self._call_inputs(dtype, like.device)
        per_step = stamps.get(batch) if type(batch) is int else None
        if per_step is None:
            per_step = self._time_inputs(stamps, batch) or tuple(t.expand(batch) for t in stamps[None])
        bad, network, kwargs, record = self._bad_quantity, owner.network, owner.network_kwargs, self._record
        cast = net_dtype != dtype

        def raw(x: torch.Tensor, i: int) -> torch.Tensor:
            if bad[i] is not None:
                self._raise_undefined(i)
            x_in = x if c_in is None else x * c_in[i]
            if cast:
                x_in = x_in.to(net_dtype)
            out = network(x_in, per_step[i], **kwargs)
            if type(out) is not torch.Tensor:
                out = extract_output(out, i, self._time_list[i])
            if out.shape != x_in.shape or out.dtype != x_in.dtype:  # (an output of the input's dtype is float)
                check_output(out, x_in.shape, x_in.dtype, owner.strict_dtype, i, self._time_list[i])
            if record is not None:
                record(out, i)
            return out if out.dtype == dtype else out.to(dtype)

        return raw

    def affine_output(self, i: int) -> tuple[float, float, float, float] | None:
        """``(x0_x, x0_p, eps_x, eps_p)`` at ``times[i]`` as Python floats: ``x0_hat = x0_x x + x0_p F``,
        ``eps_hat = eps_x x + eps_p F`` with ``F = raw(x, i)``; None where they are undefined (non-finite).

        Lets a sampler fold these maps into its solver's weights (:meth:`schedalg.sampling.Program.fuse`).
        """
        if self._bad_quantity[i] is not None:
            return None
        scalars = self._scalars
        x0 = (0.0, 1.0) if self._x0_is_output else (scalars["x0_x"][i], scalars["x0_p"][i])
        eps = (0.0, 1.0) if self._eps_is_output else (scalars["eps_x"][i], scalars["eps_p"][i])
        return x0 + eps

    def finish(self, final: torch.Tensor | None = None, covered: Any = ()) -> None:
        """After the loop: raise :class:`NetworkOutputError` if a deferred NaN/inf check failed.

        One host sync. Samplers call this once when the loop ends; calling it again is a no-op.
        ``final`` and ``covered``: the run's result and the grid indices whose outputs all reach it
        through sums with nonzero weights (:attr:`schedalg.sampling.Program.propagated`); when
        ``final`` is finite their records are not read (see :meth:`FiniteGuard.raise_if_bad`).
        """
        self._guard.raise_if_bad(final, covered)

    # ------------------------------------------------------------------ internals

    def _run(self, x_in: torch.Tensor, stamps: dict, batch: Any, cond: Mapping[str, Any], i: int) -> torch.Tensor:
        owner = self.owner
        per_step = stamps.get(batch) if type(batch) is int else None
        if per_step is None:
            per_step = self._time_inputs(stamps, batch)
        time = per_step[i] if per_step is not None else stamps[None][i].expand(batch)
        kwargs = owner.network_kwargs
        raw = owner.network(x_in, time, **kwargs, **cond) if kwargs else owner.network(x_in, time, **cond)
        out = raw if type(raw) is torch.Tensor else extract_output(raw, i, self._time_list[i])
        if out.shape != x_in.shape or out.dtype != x_in.dtype:  # (an output of the input's dtype is float)
            check_output(out, x_in.shape, x_in.dtype, owner.strict_dtype, i, self._time_list[i])
        if self._record is not None:
            self._record(out, i)
        return out

    #: largest ``batch x times`` for which the time inputs are kept per batch size (contiguous copies)
    BATCHED_TIMES_MAX = 1 << 20

    def _call_inputs(self, dtype: torch.dtype, device: torch.device) -> tuple:
        """For states of ``dtype`` on ``device`` (cached): the network's dtype, the time inputs and the input
        scaling ``c_in`` per step (Python floats; None without one).

        The time table is cast once to the network's time dtype and device; its per-step scalars are kept
        under the key None and, per batch size, a contiguous ``(batch,)`` tensor per step (see
        :meth:`_time_inputs`).
        """
        net_dtype = self.owner.network_dtype or dtype
        time_dtype = self.owner.time_dtype or net_dtype
        time = self.tables["time"]
        if not (time_dtype.is_floating_point or time_dtype.is_complex):
            time = torch.round(time)  # integer step embeddings: nearest step, not truncation
        time = time.to(device=device, dtype=time_dtype)
        call = self._calls[(dtype, device)] = (net_dtype, {None: time.unbind(0)}, self._scalars.get("c_in"))
        return call

    def _time_inputs(self, stamps: dict, batch: Any) -> tuple[torch.Tensor, ...] | None:
        """The time input of every step for ``batch`` states: contiguous ``(batch,)`` tensors, made once per
        batch size (a network reads them faster than a stride-0 ``expand``: about 5 us a call at batch 16 on
        CPU); None (expand at each call) for very large batches and symbolic sizes (tracing)."""
        scalars = stamps[None]
        if type(batch) is not int or batch * len(scalars) > self.BATCHED_TIMES_MAX:
            return None
        per_step = stamps[batch] = torch.stack(scalars).reshape(-1, 1).expand(-1, batch).contiguous().unbind(0)
        return per_step

    def _raise_undefined(self, i: int) -> None:
        owner = self.owner
        labels = {"x0_x": "x0_hat", "x0_p": "x0_hat", "eps_x": "eps_hat", "eps_p": "eps_hat",
                  "time": "time input", "c_in": "input scaling"}
        names = sorted({labels[name] for name in self._bad_quantity[i]})
        raise NetworkOutputError(
            f"finite {' and '.join(names)} for a {owner.prediction!r} network with time input {owner.time_input!r}",
            "a non-finite value (alpha or sigma vanishes at this end of the schedule, or the time lies "
            "outside what the network was trained on)",
            "end the grid just inside this end of the domain, or use a prediction type defined there "
            "(x0 at the noise end, eps at the data end; v is defined at both)",
            step=i, time=self._time_list[i])


def _end_limits(schedule: Schedule, expr: sp.Expr | None, times: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` with the end values of ``expr`` (the one rule, :func:`schedalg.symbolic.end_values`)
    at grid times on the domain's ends.

    Floating point leaves e.g. ``1/cos(pi t/2)`` at ``t = 1`` as ``1.6e16`` instead of
    ``inf``; the end value makes an undefined conversion visible (host side, in ``prepare``).
    """
    if expr is None:
        return values
    ends = (float(schedule.domain[0]), float(schedule.domain[1]))
    hits = [bool((times == end).any()) for end in ends]
    if not any(hits):
        return values
    exact = end_values(schedule, sp.sympify(expr))
    values = values.clone()
    for hit, end, value in zip(hits, ends, exact):
        if hit:
            values = torch.where(times == end, torch.full_like(values, value), values)
    return values


def _broadcast(uncond: Mapping[str, Any], batch: int) -> dict[str, Any]:
    return {k: (v.expand((batch,) + tuple(v.shape[1:]))
                if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == 1 else v)
            for k, v in uncond.items()}


def _module_dtype(network: Any) -> torch.dtype | None:
    if isinstance(network, torch.nn.Module):
        for tensor in list(network.parameters()) + list(network.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return None
