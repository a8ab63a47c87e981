"""Proofs for diffusion coefficients under conversion (MATH.md section 1), from the package's own code.

Each proof takes what schedalg computes (a :class:`schedalg.Schedule`'s ``e_star``, the
conversion pieces of :func:`schedalg.symbolic.conversion_formulas` or of a real
:func:`schedalg.convert`, :func:`schedalg.symbolic.map_diffusion`, and the velocity and
score of :func:`schedalg.symbolic.prediction_conversion`) and reduces the residual against
the paper's formula to 0. Generic schedules are undefined functions: source
``(alpha(t), sigma(t))``, destination ``A = c(s) alpha(tau(s))``, ``S = c(s) sigma(tau(s))``;
``d_src, d_dst = +-1`` are the directions. In own time the SDE with coefficient ``e`` is
``dX = [b + d e score] dt + sqrt(2 e) dW`` with ``Var(dW) = |dt|``.
"""

from types import SimpleNamespace

import sympy as sp
from _generic import alpha, at_tau, c, generic_pair, sigma, tau
from _generic import zero_inside as _zero_inside

import schedalg as sa
from schedalg.symbolic import DIRECTION, map_diffusion, prediction_conversion, s

t = sa.t
x0, eps = sp.symbols("x0 eps", real=True)
e = sp.Function("e", nonnegative=True)
L = sa.schedules.LIBRARY
PAIRS = [("linear", "brownian_bridge"), ("linear", "cosine"), ("linear", "polynomial_convex")]


def test_optimal_maps_to_optimal():
    """map_diffusion(e*_src) = c^2 |tau'| e*_src(tau) equals the destination's own e*, for every pair
    of directions, with c and tau' from conversion_formulas (generic schedules)."""
    src, dst, (c_pkg, d_tau_pkg, _) = generic_pair()
    for d_src in (1, -1):
        for d_dst in (1, -1):
            conversion = SimpleNamespace(src=SimpleNamespace(direction=d_src), dst=SimpleNamespace(direction=d_dst),
                                         c_of_tau=c_pkg, d_tau_of_tau=d_tau_pkg, tau=tau(s))
            mapped = map_diffusion(src.e_star.subs(DIRECTION, d_src), conversion, simplify=False)
            residual = mapped - dst.e_star.subs(DIRECTION, d_dst)
            assert sp.simplify(residual.doit()) == 0


def test_optimal_maps_to_optimal_for_library_conversions():
    """The same through real conversions: map_diffusion(src.e_star, convert(src, dst)) == dst.e_star."""
    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        mapped = map_diffusion(conv.src.e_star, conv, simplify=False)
        assert _zero_inside(mapped - conv.dst.e_star, conv.dst), (a, b)


def test_drift_transfer_for_library_conversions():
    """ODE to ODE: the destination velocity the package derives (prediction_conversion x0 -> velocity)
    equals (c'/c) y + c tau' b_src(tau, y/c), with c, c', tau' from the conversion and y = A x0 + S eps."""
    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        src, dst = conv.src, conv.dst
        closed = lambda expr: expr.subs(sa.symbolic.TAU, conv.tau).subs(s, t)  # noqa: E731
        c_s, d_c_s, d_tau_s = closed(conv.c_of_tau), closed(conv.d_c_of_tau), closed(conv.d_tau_of_tau)
        y = dst.alpha * x0 + dst.sigma * eps
        tau_t = conv.tau.subs(s, t)
        cx_src, cp_src = (v.subs(t, tau_t) for v in prediction_conversion(src, "x0", "velocity"))
        b_src = cx_src * y / c_s + cp_src * x0
        cx_dst, cp_dst = prediction_conversion(dst, "x0", "velocity")
        residual = (d_c_s / c_s) * y + c_s * d_tau_s * b_src - (cx_dst * y + cp_dst * x0)
        assert _zero_inside(residual, dst), (a, b)


def test_sde_transfer():
    """Y = c X_tau: with E from map_diffusion and b, score from prediction_conversion (generic
    schedules), the Ito drift c' X + c tau' [b_src + d_src e score_src] equals the destination's
    b_dst + d_dst E score_dst, and the noise variance c^2 2 e |tau'| equals 2 E."""
    src, dst, (c_pkg, d_tau_pkg, _) = generic_pair()
    x_src = alpha(tau(s)) * x0 + sigma(tau(s)) * eps

    def drift(schedule, x, rate, sign, where):
        (bx, bp), (sx, sp_) = (prediction_conversion(schedule, "x0", k) for k in ("velocity", "score"))
        b, score = where(bx) * x + where(bp) * x0, where(sx) * x + where(sp_) * x0
        return b + sign * rate * score

    for d_src in (1, -1):
        for d_dst in (1, -1):
            conversion = SimpleNamespace(src=SimpleNamespace(direction=d_src), dst=SimpleNamespace(direction=d_dst),
                                         c_of_tau=c_pkg, d_tau_of_tau=d_tau_pkg, tau=tau(s))
            big_e = map_diffusion(e(t), conversion, simplify=False).subs(t, s)
            ito = sp.diff(c(s), s) * x_src + c(s) * sp.diff(tau(s), s) * drift(src, x_src, e(tau(s)), d_src, at_tau)
            want = drift(dst, c(s) * x_src, big_e, d_dst, lambda v: v.subs(t, s))
            assert sp.simplify((ito - want).doit()) == 0
            assert sp.simplify((c(s) ** 2 * 2 * e(tau(s)) * d_src * d_dst * sp.diff(tau(s), s) - 2 * big_e).doit()) == 0


def test_map_through_the_inverse_conversion_returns_the_coefficient():
    """map_diffusion through convert(src, dst) and then convert(dst, src) gives back e (a constant
    and an expression), for real conversions."""
    conv = sa.convert(L["linear"](), L["polynomial_convex"]())
    back = sa.convert(conv.dst, conv.src)
    for expr in (sp.Rational(1, 2), t * (1 - t)):
        there = map_diffusion(expr, conv, simplify=False)
        again = map_diffusion(there, back, simplify=False)
        assert _zero_inside(again - expr, conv.src), expr


def test_time_changed_increments_have_the_destination_variance():
    """time_changed_increments returns dW_src * sqrt(|ds|/|dtau|), so each increment's variance |dtau|
    becomes |ds| (Var(a X) = a^2 Var(X)): checked element by element on the package's output as
    out^2 |dtau| = in^2 |ds|, and symbolically for the factor."""
    import torch

    from schedalg.compile import time_changed_increments

    ds, dtau = sp.symbols("ds dtau", positive=True)
    assert sp.simplify((sp.sqrt(ds / dtau)) ** 2 * dtau - ds) == 0
    conv = sa.convert(L["linear"](), L["polynomial_convex"]())
    s_grid = torch.linspace(0.1, 0.9, 6, dtype=torch.float64)
    tau = conv.compile().time(s_grid)
    d_w = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = time_changed_increments(conv, s_grid, d_w)
    d_s, d_t = (s_grid[1:] - s_grid[:-1]).abs().reshape(-1, 1), (tau[1:] - tau[:-1]).abs().reshape(-1, 1)
    torch.testing.assert_close(out**2 * d_t, d_w**2 * d_s, rtol=1e-12, atol=0)


def test_the_evaluated_map_is_the_closed_form_map():
    """Diffusion.to(conv).evaluate (compiled c, tau' and e at tau) equals map_diffusion's closed form
    c^2 |tau'| e(tau), proved above, evaluated at 30 digits."""
    import mpmath
    import torch

    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        for e_src in (sa.Diffusion.constant(conv.src, sp.Rational(1, 2)), sa.Diffusion(conv.src, t * (1 - t))):
            closed = sp.lambdify(t, map_diffusion(e_src.expr, conv, simplify=False), "mpmath")
            s_values = torch.linspace(0.1, 0.9, 5, dtype=torch.float64) * float(conv.dst.domain[1])
            got = e_src.to(conv).evaluate(s_values)
            with mpmath.workdps(30):
                want = torch.tensor([float(closed(mpmath.mpf(float(v)))) for v in s_values], dtype=torch.float64)
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
