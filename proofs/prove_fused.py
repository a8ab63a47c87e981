"""Proof of the identity the fused sampling loop relies on (schedalg.sampling._fused).

An affine solver step ``x' = c_x x + c_0 x0_hat + c_e eps_hat + c_n xi`` applied to a
denoiser that is affine in a raw output ``F`` (``x0_hat = a_x x + a_p F``,
``eps_hat = e_x x + e_p F``) is ``x' = A x + B F + c_n xi`` with ``A = c_x + c_0 a_x + c_e e_x``
and ``B = c_0 a_p + c_e e_p``; the converted denoiser (input ``y / c``) is affine with
``a_x / c`` and ``e_x / c``.
"""

import sympy as sp

x, F, xi, y = sp.symbols("x F xi y", real=True)
c_x, c_0, c_e, c_n, a_x, a_p, e_x, e_p = sp.symbols("c_x c_0 c_e c_n a_x a_p e_x e_p", real=True)
scale = sp.symbols("c", positive=True)


def test_affine_step_of_an_affine_denoiser_is_one_affine_update():
    """c_x x + c_0 (a_x x + a_p F) + c_e (e_x x + e_p F) + c_n xi = A x + B F + c_n xi."""
    step = c_x * x + c_0 * (a_x * x + a_p * F) + c_e * (e_x * x + e_p * F) + c_n * xi
    fused = (c_x + c_0 * a_x + c_e * e_x) * x + (c_0 * a_p + c_e * e_p) * F + c_n * xi
    assert sp.expand(step - fused) == 0


def test_converted_denoiser_stays_affine():
    """With input y/c: a_x (y/c) + a_p F = (a_x/c) y + a_p F (same for eps)."""
    inner = a_x * (y / scale) + a_p * F
    assert sp.simplify(inner - ((a_x / scale) * y + a_p * F)) == 0
