"""Flow maps (seed 004): two-time maps ``X_{s,t}`` of the probability-flow ODE, their losses,
exact oracles, and few-step sampling with the step count chosen after training.

Boffi, Albergo & Vanden-Eijnden, "Flow map matching" (arXiv 2406.07507); MATH.md section 6.
"""

from ._map import ConvertedFlowMap as ConvertedFlowMap
from ._map import FlowMap as FlowMap
from ._map import FlowMapError as FlowMapError
from ._map import identity_defect as identity_defect
from ._map import is_flow_map as is_flow_map
from ._map import semigroup_defect as semigroup_defect
from ._map import velocity_denoiser as velocity_denoiser
from ._oracles import FLOW_SYMBOLS as FLOW_SYMBOLS
from ._oracles import GaussianFlowMap as GaussianFlowMap
from ._oracles import MixtureFlowMap as MixtureFlowMap
from ._oracles import derive_gaussian_flow_map as derive_gaussian_flow_map
from ._oracles import gaussian_flow_map as gaussian_flow_map
from ._oracles import mixture_flow_map as mixture_flow_map

__all__ = ["ConvertedFlowMap", "FlowMap", "FlowMapError", "identity_defect", "semigroup_defect", "is_flow_map",
           "velocity_denoiser", "FLOW_SYMBOLS",
           "GaussianFlowMap", "MixtureFlowMap", "derive_gaussian_flow_map", "gaussian_flow_map", "mixture_flow_map"]

from ._losses import diagonal_loss as diagonal_loss
from ._losses import eulerian_loss as eulerian_loss
from ._losses import interpolant as interpolant
from ._losses import lagrangian_loss as lagrangian_loss
from ._losses import progressive_loss as progressive_loss
from ._losses import self_distillation_loss as self_distillation_loss
from ._losses import trajectory_loss as trajectory_loss

__all__ += ["diagonal_loss", "eulerian_loss", "interpolant", "lagrangian_loss", "progressive_loss",
            "self_distillation_loss", "trajectory_loss"]

from ._sampler import FlowMapSampler as FlowMapSampler
from ._sampler import FlowMapSamplerModule as FlowMapSamplerModule
from ._sampler import FlowMapStep as FlowMapStep

__all__ += ["FlowMapSampler", "FlowMapSamplerModule", "FlowMapStep"]
