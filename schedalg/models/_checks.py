"""Checks on what a network returns: its type, shape, dtype, and finiteness.

Shape and dtype are tensor metadata, checked on the host at every call for free.
Finiteness needs the values: reading a device flag back on the host (``bool(t)``,
``.item()``) blocks until the device catches up, which the sampling loop must not do.
:class:`FiniteGuard` therefore offers three modes:

* ``"deferred"`` (the default): each call writes ``sum(output)`` (float64) into a per-step
  slot on the device with one reduction kernel and no sync. NaN and inf propagate through
  a sum (``inf - inf`` is NaN), so a slot is non-finite exactly when its output had a
  non-finite value (a float64 sum of finite network outputs cannot overflow in practice).
  :meth:`FiniteGuard.raise_if_bad` reads the slots once, after the loop, and raises
  naming the first bad step and its time.
* ``"eager"``: check at every call and raise at the bad step itself (one sync per step;
  for debugging).
* ``"off"``: no check.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..errors import PredictionError

__all__ = ["NetworkOutputError", "FiniteGuard", "extract_output", "check_output", "FINITE_MODES"]

FINITE_MODES = ("deferred", "eager", "off")


class NetworkOutputError(PredictionError):
    """A network returned something unusable (wrong type, shape, dtype, or non-finite values).

    ``step`` and ``time`` name the grid index and schedule time of the offending call.
    """

    def __init__(self, expected: str, got: str, fix: str | None = None, *, step: int | None = None,
                 time: float | None = None):
        self.step = step
        self.time = time
        where = "" if step is None else f" at step {step} (t = {time:.6g})"
        super().__init__(expected + where, got, fix)


def extract_output(raw: Any, step: int, time: float) -> torch.Tensor:
    """The prediction tensor inside a network's return value.

    A tensor is used as is; an object with a ``.sample`` tensor (diffusers'
    ``UNet2DOutput``) gives that; a tuple or list gives its first element.
    """
    if isinstance(raw, torch.Tensor):
        return raw
    sample = getattr(raw, "sample", None)
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(raw, (tuple, list)) and raw and isinstance(raw[0], torch.Tensor):
        return raw[0]
    raise NetworkOutputError("the network to return a tensor (or an object with a .sample tensor, "
                             "or a tuple whose first element is a tensor)", f"{type(raw).__name__}",
                             "wrap the network in a function returning the prediction tensor",
                             step=step, time=time)


def check_output(out: torch.Tensor, shape: Sequence[int], dtype: torch.dtype, strict_dtype: bool,
                 step: int, time: float) -> None:
    """Raise :class:`NetworkOutputError` unless ``out`` has ``shape`` and a usable dtype."""
    if tuple(out.shape) != tuple(shape):
        raise NetworkOutputError(f"a network output of the input's shape {tuple(shape)}",
                                 f"shape {tuple(out.shape)}",
                                 "check in/out channels; the output must predict one value per input entry",
                                 step=step, time=time)
    if not out.is_floating_point():
        raise NetworkOutputError("a floating-point network output", f"dtype {out.dtype}",
                                 "return a float tensor", step=step, time=time)
    if strict_dtype and out.dtype != dtype:
        raise NetworkOutputError(f"a network output in its input dtype {dtype}", f"dtype {out.dtype}",
                                 "set network_dtype to the dtype the network computes in, or pass "
                                 "strict_dtype=False to accept the cast", step=step, time=time)


class FiniteGuard:
    """Watches network outputs for NaN/inf without host syncs (see the module docstring).

    Deferred mode keeps one float64 slot per grid step on the output's device and
    accumulates ``sum(out)`` into it (a step evaluated twice keeps a failure: NaN + x is NaN).
    """

    def __init__(self, mode: Any, times: torch.Tensor):
        if mode is True:
            mode = "deferred"
        elif mode is False or mode is None:
            mode = "off"
        if mode not in FINITE_MODES:
            raise PredictionError(f"check_finite one of {FINITE_MODES} (or True/False)", repr(mode), None)
        self.mode = mode
        self._times = times.tolist()
        self._sums: torch.Tensor | None = None

    def observe(self, out: torch.Tensor, step: int) -> None:
        """Record whether ``out`` (the raw network output at ``step``) is finite."""
        if self.mode == "off":
            return
        if self.mode == "eager":
            if not bool(torch.isfinite(out).all()):
                self._raise(step)
            return
        if self._sums is None or self._sums.device != out.device:
            self._sums = torch.zeros(len(self._times), dtype=torch.float64, device=out.device)
        self._sums[step] += out.sum(dtype=torch.float64)

    def raise_if_bad(self) -> None:
        """Read the deferred flags (one host sync) and raise if any step was non-finite; then reset."""
        if self._sums is None:
            return
        bad = torch.nonzero(~torch.isfinite(self._sums)).reshape(-1).tolist()
        self._sums = None
        if bad:
            self._raise(bad[0])

    def _raise(self, step: int) -> None:
        raise NetworkOutputError("finite network outputs", "NaN or inf values",
                                 "check the network's time input and input scaling at this time "
                                 "(and its weights/dtype); later bad steps are not reported",
                                 step=step, time=self._times[step])
