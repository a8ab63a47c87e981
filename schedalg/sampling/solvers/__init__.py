"""The solvers; importing this package registers them by name (:data:`schedalg.sampling.SOLVERS`).

The Runge-Kutta family are tableaux (``_rk.py``); the others write programs (one small file each).

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
from ._euler_maruyama import EulerMaruyama as EulerMaruyama
from ._rk import CLASSICAL_RK4 as CLASSICAL_RK4
from ._rk import EULER as EULER
from ._rk import HEUN as HEUN
from ._rk import HEUN3 as HEUN3
from ._rk import KUTTA3 as KUTTA3
from ._rk import MIDPOINT as MIDPOINT
from ._rk import THREE_EIGHTHS as THREE_EIGHTHS
from ._variance_ddim import VarianceDDIM as VarianceDDIM
from ._variance_ddim import VarianceDPMSolverPP2M as VarianceDPMSolverPP2M

__all__ = ["AdamsBashforth", "IPNDM", "Ancestral", "DDIM", "DPMSolverPP2M", "DPMSolverPP3M", "DPMSolver3S", "EulerMaruyama", "VarianceDDIM",
           "VarianceDPMSolverPP2M", "EULER", "HEUN", "MIDPOINT", "HEUN3", "KUTTA3", "CLASSICAL_RK4", "THREE_EIGHTHS"]
