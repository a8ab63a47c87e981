"""The explicit Runge-Kutta solvers in the schedule's own time ``t``, as tableaux (:class:`~schedalg.sampling.Tableau`).

Each method applies its tableau to ``dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat``
(:mod:`schedalg.sampling._tableau`); the order conditions are proved in ``proofs/prove_rk.py``.
Where the grid ends at ``sigma = 0`` a method with a node ``c = 1`` takes Euler (order 2) or
Heun3 (orders 3, 4) on its last step: option ``final_euler`` / ``final_heun3``.

============  =====  ======  =============================================================
name          order  evals   tableau
============  =====  ======  =============================================================
``euler``     1      1       c = (0), b = (1)
``heun``      2      2       trapezoid (EDM's Algorithm 1): c = (0, 1), b = (1/2, 1/2)
``midpoint``  2      2       c = (0, 1/2), b = (0, 1)
``heun3``     3      3       Heun's third order: c = (0, 1/3, 2/3), b = (1/4, 0, 3/4)
``rk3``       3      3       Kutta's third order: c = (0, 1/2, 1), b = (1/6, 2/3, 1/6)
``rk4``       4      4       classical Runge-Kutta: c = (0, 1/2, 1/2, 1), b = (1, 2, 2, 1)/6
``rk4_38``    4      4       Kutta's 3/8 rule: c = (0, 1/3, 2/3, 1), b = (1, 3, 3, 1)/8
============  =====  ======  =============================================================
"""

from __future__ import annotations

from fractions import Fraction as F

from .._solver import register_solver
from .._tableau import EULER, HEUN3, Tableau

__all__ = ["EULER", "HEUN", "MIDPOINT", "HEUN3", "KUTTA3", "CLASSICAL_RK4", "THREE_EIGHTHS"]

HEUN = Tableau((0, 1), ((), (1,)), (F(1, 2), F(1, 2)), "heun")
MIDPOINT = Tableau((0, F(1, 2)), ((), (F(1, 2),)), (0, 1), "midpoint")
KUTTA3 = Tableau((0, F(1, 2), 1), ((), (F(1, 2),), (-1, 2)), (F(1, 6), F(2, 3), F(1, 6)), "rk3")
CLASSICAL_RK4 = Tableau((0, F(1, 2), F(1, 2), 1), ((), (F(1, 2),), (0, F(1, 2)), (0, 0, 1)),
                        (F(1, 6), F(1, 3), F(1, 3), F(1, 6)), "rk4")
THREE_EIGHTHS = Tableau((0, F(1, 3), F(2, 3), 1), ((), (F(1, 3),), (F(-1, 3), 1), (1, -1, 1)),
                        (F(1, 8), F(3, 8), F(3, 8), F(1, 8)), "rk4_38")

for _name, _tableau in (("euler", EULER), ("heun", HEUN), ("midpoint", MIDPOINT), ("heun3", HEUN3),
                        ("rk3", KUTTA3), ("rk4", CLASSICAL_RK4), ("rk4_38", THREE_EIGHTHS)):
    register_solver(_name, _tableau)
