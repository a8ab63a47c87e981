"""Declare a brand-new schedule in a few lines and use it.

The schedule below (a "sigmoid-warped" interpolant, data at t = 1) is not in any paper
schedalg knows: everything else (direction, derivatives, log-SNR inverse, forward SDE,
optimal diffusion coefficient) is derived by SymPy and compiled to torch.
"""

import sympy as sp
import torch

import schedalg as sa

# --- the five lines a user writes -------------------------------------------------
t = sa.t
warp = sp.tanh(3 * (t - sp.Rational(1, 2))) / sp.tanh(sp.Rational(3, 2))   # -1 .. 1
mine = sa.Schedule(alpha=(1 + warp) / 2, sigma=(1 - warp) / 2, name="tanh_interpolant")
num = mine.compile()
# ----------------------------------------------------------------------------------

if __name__ == "__main__":
    print(mine)
    print("direction:", mine.direction, "(data at t =", mine.t_data, ")")
    print("log-SNR lambda(t) =", mine.log_snr)
    print("lambda'(t) =", sp.simplify(mine.d_log_snr))
    inverse = mine.inverse_log_snr
    print(f"t(lambda): {inverse.kind} ({inverse.method}, {inverse.seconds:.3f} s)", inverse.expr or "")
    tt = torch.linspace(0.05, 0.95, 5, dtype=torch.float64)
    alpha, sigma, e_star = num.evaluate(tt, "alpha", "sigma", "e_star")
    back = num.t_of_log_snr(num.log_snr(tt))
    print(" t      alpha    sigma    e*       t(lambda(t))")
    for row in zip(tt, alpha, sigma, e_star, back):
        print("  ".join(f"{float(v):7.4f}" for v in row))
