"""Augmented-space diffusions (CLD, PSLD), conjugate transforms and splitting integrators.

Pandey, Rudolph & Mandt, "Conjugate and splitting integrators for diffusion models"
(ICLR 2024); PSLD (Pandey & Mandt 2023); CLD (Dockhorn, Vahdat, Kreis 2022).

    import schedalg.augmented as aug
    sde = aug.psld()                                   # dz = F z dt + G dW, z = (x, m)
    sde.covariance, sde.cholesky_inv_t                 # SymPy closed forms
    model = aug.AugmentedGaussianModel(sde, mean, var) # exact eps over the whole state
    z = aug.sample_augmented(model, z_T, aug.time_grid(1.0, 1e-3, 50), "conjugate_splitting")
"""

from ._blocks import apply_blocks as apply_blocks
from ._compiled import CompiledLinearSDE as CompiledLinearSDE
from ._conjugate import ConjugateTransform as ConjugateTransform
from ._conjugate import lambda_identity as lambda_identity
from ._conjugate import lambda_ones as lambda_ones
from ._equilibrium import equilibrium as equilibrium
from ._errors import LinearSDEError as LinearSDEError
from ._errors import SamplerError as SamplerError
from ._library import cld as cld
from ._library import psld as psld
from ._linear_sde import LinearSDE as LinearSDE
from ._linear_sde import TimeChange as TimeChange
from ._models import AugmentedDenoiser as AugmentedDenoiser
from ._models import AugmentedEpsModel as AugmentedEpsModel
from ._models import AugmentedGaussianModel as AugmentedGaussianModel
from ._models import AugmentedMixtureModel as AugmentedMixtureModel
from ._models import PreparedAugmented as PreparedAugmented
from ._program import SubStep as SubStep
from ._program import SubSteps as SubSteps
from ._sampler import SOLVERS as SOLVERS
from ._sampler import get_solver as get_solver
from ._sampler import sample_augmented as sample_augmented
from ._sampler import time_grid as time_grid
from ._solvers import RK4 as RK4
from ._solvers import AugmentedSolver as AugmentedSolver
from ._solvers import Conjugate as Conjugate
from ._solvers import Euler as Euler
from ._solvers import Heun as Heun
from ._solvers import SubStepSolver as SubStepSolver
from ._solvers import TableauSolver as TableauSolver
from ._splitting import ConjugateSplitting as ConjugateSplitting
from ._splitting import NaiveSymplecticEuler as NaiveSymplecticEuler
from ._splitting import NaiveVelocityVerlet as NaiveVelocityVerlet
from ._splitting import ReducedSymplecticEuler as ReducedSymplecticEuler
from ._splitting import ReducedVelocityVerlet as ReducedVelocityVerlet
from ._splitting import SymmetricSplitting as SymmetricSplitting
from ._stochastic import OBA as OBA
from ._stochastic import EulerMaruyama as EulerMaruyama
from ._stochastic import StochasticSplitting as StochasticSplitting

__all__ = ["apply_blocks", "CompiledLinearSDE", "ConjugateTransform", "lambda_identity", "lambda_ones",
           "equilibrium", "LinearSDEError", "SamplerError", "cld", "psld", "LinearSDE", "TimeChange",
           "AugmentedDenoiser", "AugmentedEpsModel", "AugmentedGaussianModel", "AugmentedMixtureModel",
           "PreparedAugmented", "SubSteps", "SubStep", "SubStepSolver", "TableauSolver", "SOLVERS", "get_solver", "sample_augmented", "time_grid",
           "RK4", "AugmentedSolver", "Conjugate", "Euler", "Heun", "ConjugateSplitting", "NaiveSymplecticEuler",
           "NaiveVelocityVerlet", "ReducedSymplecticEuler", "ReducedVelocityVerlet", "SymmetricSplitting",
           "OBA", "EulerMaruyama", "StochasticSplitting"]
