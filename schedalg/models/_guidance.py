"""Classifier-free guidance: one batched network call for the conditional and unconditional halves.

With a conditional prediction ``p_c`` and an unconditional one ``p_u`` (Ho & Salimans
2022), the guided prediction is

    p_w = p_u + w (p_c - p_u).

Every prediction type is ``c_x(t) x_t + c_p(t) p`` away from ``(x0, eps)`` with the same
``x_t`` for both halves, and ``c_x x + c_p p_u + w c_p (p_c - p_u)`` is that map applied
to ``p_w``; so guiding the raw network output equals guiding ``x0`` or ``eps``
(``tests/test_models_guidance.py`` checks this).

Conditioning keyword arguments are split in two kinds: tensors with the batch as their
first dimension are stacked ``[cond; uncond]``; anything else (flags, Python numbers,
tensors without a batch dimension) must be the same for both halves and is passed once.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..errors import SchedalgError

__all__ = ["stack_conditions", "guide"]


def _batched(value: Any, batch: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch


def stack_conditions(cond: Mapping[str, Any], uncond: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """Keyword arguments for one call on the doubled batch ``[x; x]``.

    ``uncond`` overrides ``cond`` in the second half; an unconditional tensor with a
    leading dimension of 1 is broadcast to the batch (e.g. one "null" class label).
    """
    extra = set(uncond) - set(cond)
    if extra:
        raise SchedalgError("unconditional keyword arguments that override conditional ones",
                            f"{sorted(extra)} in uncond but not in the call's conditioning",
                            "pass the conditional value of each of these keywords when sampling")
    out: dict[str, Any] = {}
    for key, value in cond.items():
        other = uncond.get(key, value)
        if isinstance(other, torch.Tensor) and other.dim() > 0 and other.shape[0] == 1 and batch != 1:
            other = other.expand((batch,) + tuple(other.shape[1:]))
        if _batched(value, batch) and _batched(other, batch):
            out[key] = torch.cat([value, other.to(value.device)], dim=0)
        elif key in uncond and not _same(value, other):
            raise SchedalgError(f"conditioning {key!r} as a tensor with the batch ({batch}) as its first "
                                "dimension, to differ between the conditional and unconditional halves",
                                f"{_describe(value)} (cond) and {_describe(other)} (uncond)",
                                "give both with a leading batch dimension (uncond may have 1)")
        else:
            out[key] = torch.cat([value, value], dim=0) if _batched(value, batch) else value
    return out


def guide(out: torch.Tensor, scale: float) -> torch.Tensor:
    """``p_u + w (p_c - p_u)`` from the stacked output ``[p_c; p_u]``."""
    cond_half, uncond_half = out.chunk(2, dim=0)
    return uncond_half + scale * (cond_half - uncond_half)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return a is b
    return a == b


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    return type(value).__name__
