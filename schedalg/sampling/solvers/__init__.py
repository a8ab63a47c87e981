"""The solvers, one small file each; importing this package registers them by name.

=================  =====  ==========  ==========================================
name               order  stochastic  scheme
=================  =====  ==========  ==========================================
``euler``          1      no          explicit Euler in the schedule's own t
``heun``           2      no          Heun (trapezoidal predictor-corrector) in t
``midpoint``       2      no          explicit midpoint in t
``ddim``           1      no          first-order exponential integrator / DDIM
``dpmpp_2m``       2      no          DPM-Solver++ 2M, multistep in log-SNR
``dpmpp_3m``       3      no          DPM-Solver++ 3M, multistep in log-SNR (exact D2 weight)
``heun3``          3      no          Heun's third-order Runge-Kutta in t (3 evaluations)
``rk3``            3      no          Kutta's third-order Runge-Kutta in t (3 evaluations)
``rk4``            4      no          classical fourth-order Runge-Kutta in t (4 evaluations)
``rk4_38``         4      no          Kutta's fourth-order 3/8 rule in t (4 evaluations)
``dpm_3s``         3      no          single-step DPM-Solver-3 in data prediction, log-SNR
``euler_maruyama`` 1      yes         Euler-Maruyama, any diffusion coefficient e
``ancestral``      1      yes         ancestral / DDPM posterior step (eta)
``vddim``          1      no          DDIM exact for Gaussian data of variance v
``vdpmpp_2m``      2      no          2-step exponential integrator on the mean estimate, variance v
=================  =====  ==========  ==========================================
"""

from ._adams import IPNDM as IPNDM
from ._adams import AdamsBashforth as AdamsBashforth
from ._ancestral import Ancestral as Ancestral
from ._ddim import DDIM as DDIM
from ._dpm_single import DPMSolver3S as DPMSolver3S
from ._dpmpp import DPMSolverPP2M as DPMSolverPP2M
from ._dpmpp import DPMSolverPP3M as DPMSolverPP3M
from ._euler import Euler as Euler
from ._euler_maruyama import EulerMaruyama as EulerMaruyama
from ._heun import Heun as Heun
from ._midpoint import Midpoint as Midpoint
from ._rk import RK3 as RK3
from ._rk import RK4 as RK4
from ._rk import RK4ThreeEighths as RK4ThreeEighths
from ._rk import ExplicitRungeKutta as ExplicitRungeKutta
from ._rk import Heun3 as Heun3
from ._variance_ddim import VarianceDDIM as VarianceDDIM
from ._variance_ddim import VarianceDPMSolverPP2M as VarianceDPMSolverPP2M

__all__ = ["AdamsBashforth", "IPNDM", "Ancestral", "DDIM", "DPMSolverPP2M", "DPMSolverPP3M", "Euler", "EulerMaruyama", "Heun", "Midpoint",
           "DPMSolver3S", "ExplicitRungeKutta", "Heun3", "RK3", "RK4", "RK4ThreeEighths",
           "VarianceDDIM", "VarianceDPMSolverPP2M"]
