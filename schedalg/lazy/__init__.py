"""Lazy schedules: zero-drift families for Gaussian data, and samplers that use them.

Damsholt, Frellsen & Ditlevsen 2026 (arXiv 2602.03789); MATH.md section 2. The
families are derived by SymPy (:func:`derive_lazy_family`): the variance-preserving
family ``alpha = sin(theta)``, ``sigma = cos(theta)`` makes the probability-flow ODE
drift vanish, the point-mass family ``sigma^2 = alpha (1 - alpha)`` the optimal SDE's.
A pretrained model is moved into them by standardizing the data and converting its
schedule (:class:`LazyDenoiser`); :func:`lazy_ode_sample` and :func:`point_mass_sample`
sample there::

    std = sa.lazy.Standardization.estimate(data_sample)
    x = sa.lazy.lazy_ode_sample(denoiser, torch.randn(16, 64), std, steps=4, solver="heun")
"""

from ..symbolic import LAZY_KINDS as LAZY_KINDS
from ..symbolic import LazyFamily as LazyFamily
from ..symbolic import derive_lazy_family as derive_lazy_family
from ..symbolic import gaussian_drift_coefficient as gaussian_drift_coefficient
from ..symbolic import gaussian_posterior as gaussian_posterior
from ..symbolic import ode_family as ode_family
from ..symbolic import point_mass_family as point_mass_family
from ..symbolic import sde_drift as sde_drift
from ._samplers import LAZY_ODE_SOLVERS as LAZY_ODE_SOLVERS
from ._samplers import integrate_lazy_ode as integrate_lazy_ode
from ._samplers import integrate_point_mass as integrate_point_mass
from ._samplers import lazy_nfe as lazy_nfe
from ._samplers import lazy_ode_sample as lazy_ode_sample
from ._samplers import point_mass_sample as point_mass_sample
from ._standardize import Standardization as Standardization
from ._standardize import StandardizationError as StandardizationError
from ._view import LazyDenoiser as LazyDenoiser
from ._view import LazyGridError as LazyGridError
from ._view import PreparedLazy as PreparedLazy
from ._view import natural_schedule as natural_schedule

__all__ = ["LAZY_KINDS", "LazyFamily", "derive_lazy_family", "gaussian_drift_coefficient", "gaussian_posterior",
           "ode_family", "sde_drift",
           "point_mass_family", "LAZY_ODE_SOLVERS", "integrate_lazy_ode", "integrate_point_mass", "lazy_nfe",
           "lazy_ode_sample", "point_mass_sample",
           "Standardization", "StandardizationError", "LazyDenoiser", "LazyGridError", "PreparedLazy",
           "natural_schedule"]
