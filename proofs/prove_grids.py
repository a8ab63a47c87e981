"""Proofs that the package's time grids are the grids their papers define.

Each proof builds a grid with :class:`schedalg.sampling.TimeGrid` and compares what it holds
(times, and the log-SNR and noise levels evaluated there) with the defining formula written
here with SymPy at 30 digits: Karras et al. 2022 (EDM, eq. 5) for rho-spaced noise levels,
Lu et al. 2022 (DPM-Solver) for equal log-SNR steps ``h_i = lambda_{i+1} - lambda_i``.
"""

import mpmath
import sympy as sp
import torch

import schedalg as sa
from schedalg.sampling import TimeGrid

L = sa.schedules.LIBRARY


def test_karras_levels_are_edm_eq_5():
    """sigma_i / alpha_i at the grid's times = (s_max^(1/rho) + i/(K-1) (s_min^(1/rho) - s_max^(1/rho)))^rho."""
    i, big_k, s_max, s_min, rho = sp.symbols("i K s_max s_min rho", positive=True)
    formula = (s_max ** (1 / rho) + i / (big_k - 1) * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    for name, steps in (("vp_linear", 6), ("edm", 5), ("linear", 7)):
        schedule = L[name]()
        grid = TimeGrid.karras(schedule, steps, sigma_min=0.01, sigma_max=20.0, rho=7.0, to_data=False)
        levels = schedule.compile().edm_sigma(grid.times)
        values = {big_k: steps + 1, s_max: sp.Integer(20), s_min: sp.Rational(1, 100), rho: 7}
        with mpmath.workdps(30):
            want = torch.tensor([float(sp.N(formula.subs(values).subs(i, k), 30)) for k in range(steps + 1)],
                                dtype=torch.float64)
        torch.testing.assert_close(levels, want, rtol=1e-9, atol=0)


def test_log_snr_uniform_steps_are_equal_and_point_to_the_data():
    """lambda at the grid's times is lambda_start + i (lambda_end - lambda_start)/N, and the steps
    h_i = d_log_snr_steps are (lambda_end - lambda_start)/N > 0 (towards the data end)."""
    lam_0, lam_n, i, big_n = sp.symbols("lambda_0 lambda_N i N", real=True)
    formula = lam_0 + i * (lam_n - lam_0) / big_n
    for name in ("vp_linear", "linear", "edm"):
        schedule = L[name]()
        lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
        start, end = (lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo))
        if schedule.direction < 0:
            start, end = end, start
        grid = TimeGrid.log_snr_uniform(schedule, 8, t_start=start, t_end=end)
        lam = schedule.compile().log_snr(torch.tensor([start, end], dtype=torch.float64))
        values = {lam_0: float(lam[0]), lam_n: float(lam[1]), big_n: 8}
        want = torch.tensor([float(formula.subs(values).subs(i, k)) for k in range(9)], dtype=torch.float64)
        torch.testing.assert_close(grid.log_snr, want, rtol=1e-9, atol=1e-9)
        step = float(sp.simplify((lam_n - lam_0) / big_n).subs(values))
        assert step > 0
        torch.testing.assert_close(grid.d_log_snr_steps, torch.full((8,), step, dtype=torch.float64),
                                   rtol=1e-8, atol=1e-9)
