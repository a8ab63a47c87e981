"""Mode mixture and memorisation measures for generated samples.

* Mixed-sample rate (DPM-OT, Li et al. 2023): a sample is *mixed* at threshold ``tau``
  when a classifier gives two or more classes a probability ``>= tau``; the rate is the
  fraction of mixed samples.
* Nearest-training-point distance: ``d(x) = min_i |x - y_i|`` over the training set (an
  OT map onto training latents can copy the data; compare with the same distance of
  held-out data, which no model has seen).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ._semidiscrete import OTError

__all__ = ["mixed_rate", "nearest_distances"]


def mixed_rate(probabilities: Any, taus: Sequence[float]) -> dict[float, float]:
    """``{tau: fraction of rows with at least two entries >= tau}`` for class probabilities ``(B, C)``."""
    probabilities = torch.as_tensor(probabilities)
    if probabilities.dim() != 2 or probabilities.shape[0] < 1 or probabilities.shape[1] < 2 \
            or not probabilities.is_floating_point():
        raise OTError("class probabilities of shape (B, C), C >= 2, floating",
                      f"shape {tuple(probabilities.shape)}, dtype {probabilities.dtype}", "pass softmax(logits, 1)")
    bad = [tau for tau in taus if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 < tau <= 1]
    if bad or not taus:
        raise OTError("thresholds tau in (0, 1] (at most 1/2 for a mixture to be possible)", repr(list(taus)),
                      "e.g. taus=(0.1, 0.2, 0.3)")
    return {float(tau): float(((probabilities >= tau).sum(1) >= 2).to(torch.float64).mean()) for tau in taus}


def nearest_distances(samples: Any, reference: Any, *, chunk_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance of each sample to its nearest reference point, and that point's index.

    ``samples (B, ...)``, ``reference (N, ...)`` flattened per point; float64 differences,
    streamed over chunks of the reference (memory ``B x chunk_size``).
    """
    samples, reference = torch.as_tensor(samples), torch.as_tensor(reference)
    if samples.dim() < 1 or reference.dim() < 1 or samples.shape[0] < 1 or reference.shape[0] < 1 \
            or samples[0].numel() != reference[0].numel():
        raise OTError("samples (B, ...) and reference (N, ...) with points of the same size",
                      f"{tuple(samples.shape)} and {tuple(reference.shape)}", "flatten both to (count, D)")
    x = samples.reshape(samples.shape[0], -1).to(torch.float64)
    y = reference.reshape(reference.shape[0], -1).to(torch.float64).to(x.device)
    best = torch.full((x.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
    index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, y.shape[0], chunk_size):
        d, i = torch.cdist(x, y[start:start + chunk_size]).min(1)
        better = d < best
        best, index = torch.where(better, d, best), torch.where(better, i + start, index)
    return best, index
