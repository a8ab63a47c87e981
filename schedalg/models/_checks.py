"""Checks on what a network returns: its type, shape, dtype, and finiteness.

Shape and dtype are tensor metadata, checked on the host at every call for free.
Finiteness needs the values: reading a device flag back on the host (``bool(t)``,
``.item()``) blocks until the device catches up, which the sampling loop must not do.
:class:`FiniteGuard` therefore offers three modes:

* ``"deferred"`` (the default): no sync and at most one reduction kernel per call. A
  small CPU output (at most :attr:`FiniteGuard.KEEP_NUMEL` entries, while the outputs kept
  hold at most :attr:`FiniteGuard.KEEP_BUDGET` entries in all) is kept by reference, at
  no cost per call; any other output is reduced on its device to the sums of its blocks of
  1024 entries in the output's dtype (one kernel, one read of the output, no full-size float64
  copy; the few block sums are added in float64 after the loop; see :func:`_total`). NaN and inf propagate through a sum
  (``inf - inf`` is NaN), so a sum is non-finite exactly when its output had a non-finite
  value (block sums of finite network outputs do not overflow in practice). :meth:`FiniteGuard.raise_if_bad`
  checks what was kept with a few batched operations and one host read per group, after
  the loop, and raises naming the first bad step and its time. A denoiser called many
  times without :meth:`~FiniteGuard.raise_if_bad` keeps bounded memory: past
  :attr:`FiniteGuard.FOLD_AT` records they are folded into one slot per step.
  (A network that returns the same CPU buffer, overwritten at every call, would defeat
  the keeping by reference; use ``"eager"`` for such a network.)
* ``"eager"``: check at every call and raise at the bad step itself (one sync per step;
  for debugging).
* ``"off"``: no check.
"""

from __future__ import annotations

import math
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


#: block length of the deferred check's partial sums
_BLOCK = 1024
#: reduced-precision outputs are summed in float32 (converted in the kernel)
_SUM_DTYPES = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


def _total(out: torch.Tensor, size: Any) -> torch.Tensor:
    """A small tensor that is non-finite exactly when ``out`` has a NaN or inf entry (in practice).

    The sums of blocks of :data:`_BLOCK` entries in the output's dtype (float32 for half types):
    one kernel and one read, no full-size copy; :meth:`FiniteGuard.raise_if_bad` adds them in
    float64. A block sum overflows only for entries of order ``1e35`` (float32). Sizes that are
    not a multiple of the block (or symbolic while tracing) are summed in float64 at once.
    """
    if type(size) is int and size % _BLOCK == 0 and out.is_contiguous():
        return out.view(-1, _BLOCK).sum(1, dtype=_SUM_DTYPES.get(out.dtype))
    return out.sum(dtype=torch.float64)


class FiniteGuard:
    """Watches network outputs for NaN/inf without host syncs (see the module docstring).

    Deferred mode records every observed output with its step: small CPU outputs by
    reference, others as their sum; a step evaluated twice keeps a failure.
    """

    #: largest output (entries) kept by reference instead of reduced
    KEEP_NUMEL = 4096
    #: most entries kept by reference at once
    KEEP_BUDGET = 1 << 20
    #: records kept before they are folded into per-step slots (bounded memory)
    FOLD_AT = 4096
    #: rows of block sums in the first preallocated buffer (each further buffer twice as many, at most FOLD_AT)
    ROWS = 64

    def __init__(self, mode: Any, times: torch.Tensor):
        if mode is True:
            mode = "deferred"
        elif mode is False or mode is None:
            mode = "off"
        if mode not in FINITE_MODES:
            raise PredictionError(f"check_finite one of {FINITE_MODES} (or True/False)", repr(mode), None)
        self.mode = mode
        self._times = times.tolist()
        self._records: list[tuple[int, torch.Tensor, bool]] = []  # (step, tensor, is the whole output)
        self._kept = 0
        self._slots: torch.Tensor | None = None
        self._rows: torch.Tensor | None = None  # preallocated block-sum rows; the first _used are taken
        self._used = 0

    def observe(self, out: torch.Tensor, step: int) -> None:
        """Record whether ``out`` (the raw network output at ``step``) is finite."""
        if self.mode == "deferred":
            self.record(out, step)
        elif self.mode == "eager" and not bool(torch.isfinite(out).all()):
            self._raise(step)

    def record(self, out: torch.Tensor, step: int) -> None:
        """:meth:`observe` in deferred mode (the wrapper calls it directly: one call per network output)."""
        records = self._records
        size = out.numel()  # a symbolic size while tracing (torch.export): not kept, no guard on it
        if out.is_cpu and type(size) is int and size <= self.KEEP_NUMEL and self._kept + size <= self.KEEP_BUDGET:
            self._kept += size
            records.append((step, out, True))
        else:
            records.append((step, self._block_sums(out, size), False))
        if len(records) >= self.FOLD_AT:
            self._fold()

    def _block_sums(self, out: torch.Tensor, size: Any) -> torch.Tensor:
        """:func:`_total` of ``out``, written into the next row of a preallocated buffer when the output
        splits into blocks (eager mode): no allocation per network call. A small allocation per call,
        interleaved with the network's large buffers, fragments glibc's heap in some processes and
        costs +10-17 % per step at batch 4096 x 2 (7 of 18 fresh processes; 0 of 10 with rows)."""
        if type(size) is not int or size % _BLOCK or not out.is_contiguous() or torch.compiler.is_compiling():
            return _total(out, size)
        dtype = _SUM_DTYPES.get(out.dtype, out.dtype)
        rows, blocks = self._rows, size // _BLOCK
        if (rows is None or self._used == rows.shape[0] or rows.shape[1] != blocks or rows.dtype != dtype
                or rows.device != out.device):
            count = self.ROWS if rows is None else min(2 * rows.shape[0], self.FOLD_AT)
            rows = self._rows = torch.empty((count, blocks), dtype=dtype, device=out.device)
            self._used = 0
        row = rows[self._used]
        self._used += 1
        return torch.sum(out.view(-1, _BLOCK), 1, dtype=dtype, out=row)

    def _fold(self) -> None:
        """Add the records (outputs or block sums) into one float64 device slot per step (no host sync)."""
        for step, value, whole in self._records:
            total = value.sum(dtype=torch.float64)
            if self._slots is None or self._slots.device != total.device:
                self._slots = torch.zeros(len(self._times), dtype=torch.float64, device=total.device)
            self._slots[step] += total
        self._records, self._kept, self._used = [], 0, 0

    def raise_if_bad(self, final: torch.Tensor | None = None, covered: Any = ()) -> None:
        """Check what was recorded and raise naming the first non-finite step; then reset.

        ``final`` and ``covered`` (a caller's shortcut): the result of the run and the steps whose
        outputs all reach it through sums with nonzero weights. NaN and inf survive such sums, so
        when ``final`` is finite these steps' records are finite too and are dropped unread; the
        others are checked. Otherwise: a quick test first (one stack and one sum per kind of record,
        one host read each); only when it fails (or the records differ in shape) are the records
        checked one by one, which names the first bad step.
        """
        records, slots = self._records, self._slots
        self._records, self._kept, self._slots, self._used = [], 0, None, 0  # the rows are free to reuse
        if records and covered and final is not None and _finite_sum(final):
            records = [record for record in records if record[0] not in covered]
        bad = [] if not records or _all_finite(records) else _bad_steps(records)
        if slots is not None:
            bad += torch.nonzero(~torch.isfinite(slots)).reshape(-1).tolist()
        if bad:
            self._raise(min(bad))

    def _raise(self, step: int) -> None:
        raise NetworkOutputError("finite network outputs", "NaN or inf values",
                                 "check the network's time input and input scaling at this time "
                                 "(and its weights/dtype); later bad steps are not reported",
                                 step=step, time=self._times[step])


def _finite_sum(value: torch.Tensor) -> bool:
    """True when the sum of ``value`` (:func:`_total`, then float64) is finite: then every entry is (an
    overflow only reads as False, which sends the caller to the exact check). One host read."""
    return math.isfinite(_total(value, value.numel()).sum(dtype=torch.float64).item())


def _all_finite(records: list[tuple[int, torch.Tensor, bool]]) -> bool:
    """True when every record is finite for sure (a non-finite total sends the caller to :func:`_bad_steps`)."""
    kinds = ([v for _, v, whole in records if whole], [v for _, v, whole in records if not whole])
    try:
        totals = [torch.stack(values).sum(dtype=torch.float64) for values in kinds if values]
    except RuntimeError:  # outputs of different shapes (or devices): check one by one
        return False
    return all(math.isfinite(total.item()) for total in totals)


def _bad_steps(records: list[tuple[int, torch.Tensor, bool]]) -> list[int]:
    """The steps whose record holds a non-finite value (one stack per group of alike records)."""
    groups: dict[tuple, tuple[list[int], list[torch.Tensor]]] = {}
    for step, value, whole in records:
        steps, values = groups.setdefault((whole, tuple(value.shape), value.device), ([], []))
        steps.append(step)
        values.append(value)
    bad = []
    for steps, values in groups.values():
        finite = torch.isfinite(torch.stack(values)).reshape(len(values), -1).all(dim=1)
        bad += [steps[k] for k in torch.nonzero(~finite).reshape(-1).tolist()]
    return bad
