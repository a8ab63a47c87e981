"""Optimal transport from noise to data latents: the DPM-OT expressway (Li et al. 2023, MATH.md section 5).

* :class:`SemiDiscreteOT`: semi-discrete OT (quadratic cost) from a continuous source (standard
  normal, or any sampler of source points) to weighted points; Laguerre cells, dual potential
  fitted by Adam on Monte-Carlo cell masses with sample growth and a marginal-error stop;
  chunked over targets (memory independent of their number); CPU or CUDA (the targets' device).
* :class:`Expressway`: data pushed to a sampler's first time ``t_0`` under any schedule, noise
  mapped to a latent cell, the sampler finishes the remaining steps::

      grid = TimeGrid.uniform(schedule, 8, t_start=t0)
      road = sa.ot.Expressway(Sampler(denoiser, grid, "heun"), train_data).fit(tol=0.2)
      x = road(torch.randn(64, *train_data.shape[1:], dtype=train_data.dtype))

* :func:`mixed_rate`, :func:`nearest_distances`: mode mixture and memorisation measures.
"""

from ._expressway import Expressway as Expressway
from ._metrics import mixed_rate as mixed_rate
from ._metrics import nearest_distances as nearest_distances
from ._semidiscrete import MARGINAL_METRICS as MARGINAL_METRICS
from ._semidiscrete import OTError as OTError
from ._semidiscrete import SemiDiscreteOT as SemiDiscreteOT
from ._semidiscrete import laguerre_score as laguerre_score

__all__ = ["Expressway", "mixed_rate", "nearest_distances", "MARGINAL_METRICS", "OTError", "SemiDiscreteOT",
           "laguerre_score"]
