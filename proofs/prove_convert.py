"""Proofs of the conversion identities (MATH.md section 1), as residuals SymPy reduces to 0.

Every proof starts from what the package computes: the conversion pieces of
:func:`schedalg.symbolic.conversion_formulas` (what the compiled conversions evaluate) for
generic package schedules (``proofs/_generic.py``: source ``alpha(t), sigma(t)``, destination
``A = c alpha(tau)``, ``S = c sigma(tau)``, undefined functions), the velocity and score of
:func:`schedalg.symbolic.prediction_conversion`, and the closed forms a real
:func:`schedalg.convert` derives for library pairs.
"""

import sympy as sp
from _generic import alpha, at_tau, c, generic_pair, in_s, sigma, tau, zero_inside

import schedalg as sa
from schedalg.symbolic import TAU, ComposedConversion, prediction_conversion, s

t = sa.t
x0, eps = sp.symbols("x0 eps", real=True)
L = sa.schedules.LIBRARY


PAIRS = [("linear", "brownian_bridge"), ("linear", "cosine"), ("linear", "polynomial_convex"), ("edm", "linear")]


def test_same_random_variable():
    """The package's c (sum form, conversion_formulas) gives c (alpha(tau) x0 + sigma(tau) eps) =
    A x0 + S eps for generic schedules with equal log-SNR, and equals A/alpha(tau) = S/sigma(tau)."""
    src, dst, (c_pkg, _, _) = generic_pair()
    residual = c_pkg * (alpha(tau(s)) * x0 + sigma(tau(s)) * eps) - in_s(dst.alpha * x0 + dst.sigma * eps)
    assert sp.simplify(residual) == 0
    assert sp.simplify(c_pkg - in_s(dst.alpha) / alpha(tau(s))) == 0


def test_same_random_variable_for_library_conversions():
    """Through real conversions: c (alpha(tau) x0 + sigma(tau) eps) - (A x0 + S eps) is 0 inside the
    domain, with tau and c as convert() derives them."""
    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        tau_s = conv.tau
        c_s = conv.c_of_tau.subs(TAU, tau_s)
        residual = c_s * (conv.src.alpha * x0 + conv.src.sigma * eps).subs(t, tau_s) \
            - in_s(conv.dst.alpha * x0 + conv.dst.sigma * eps)
        assert zero_inside(residual, conv.dst, s), (a, b)


def test_tau_prime_formula():
    """The package's tau' (conversion_formulas: lambda_dst'(s) / lambda_src'(tau), with each schedule's
    derived d_log_snr) is the derivative of tau for generic schedules, and of convert()'s closed-form
    tau for library pairs."""
    _, _, (_, d_tau_pkg, _) = generic_pair()
    assert sp.simplify((d_tau_pkg - sp.diff(tau(s), s)).doit()) == 0
    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        d_tau = conv.d_tau_of_tau.subs(TAU, conv.tau)
        assert zero_inside(d_tau - sp.diff(conv.tau, s), conv.dst, s), (a, b)


def test_c_prime_formula():
    """The package's c' (conversion_formulas, SymPy's chain rule on the sum form) is the derivative
    of c for generic schedules (c'/c = A'/A - tau' alpha'(tau)/alpha(tau)), and convert()'s c' is the
    derivative of its c for library pairs."""
    _, dst, (c_pkg, _, d_c_pkg) = generic_pair()
    assert sp.simplify((d_c_pkg - sp.diff(c(s), s)).doit()) == 0
    log_derivative = sp.diff(in_s(dst.alpha), s) / in_s(dst.alpha) - \
        sp.diff(tau(s), s) * sp.Derivative(alpha(sp.Symbol("u")), sp.Symbol("u")).subs(sp.Symbol("u"), tau(s)) / alpha(tau(s))
    assert sp.simplify((d_c_pkg / c_pkg - log_derivative).doit()) == 0
    for a, b in PAIRS:
        conv = sa.convert(L[a](), L[b]())
        c_s, d_c = (e.subs(TAU, conv.tau) for e in (conv.c_of_tau, conv.d_c_of_tau))
        assert zero_inside(d_c - sp.diff(c_s, s), conv.dst, s), (a, b)


def test_drift_transfer():
    """b_dst(s, y) = (c'/c) y + c tau' b_src(tau, y/c) with the package's pieces: c, c', tau' from
    conversion_formulas and both velocities from prediction_conversion(x0 -> velocity), for generic
    schedules and y = A x0 + S eps (the same x0 prediction: predictors carry over)."""
    src, dst, (c_pkg, d_tau_pkg, d_c_pkg) = generic_pair()
    y = in_s(dst.alpha * x0 + dst.sigma * eps)
    bx_src, bp_src = (at_tau(v) for v in prediction_conversion(src, "x0", "velocity"))
    bx_dst, bp_dst = (in_s(v) for v in prediction_conversion(dst, "x0", "velocity"))
    transfer = d_c_pkg / c_pkg * y + c_pkg * d_tau_pkg * (bx_src * y / c_pkg + bp_src * x0)
    direct = bx_dst * y + bp_dst * x0
    assert sp.simplify((direct - transfer).doit()) == 0


def test_score_transfer():
    """score_dst(s, y) = score_src(tau, y/c) / c with both scores from prediction_conversion(x0 -> score)
    and c from conversion_formulas (generic schedules, the same x0 prediction)."""
    src, dst, (c_pkg, _, _) = generic_pair()
    y = in_s(dst.alpha * x0 + dst.sigma * eps)
    sx_src, sp_src = (at_tau(v) for v in prediction_conversion(src, "x0", "score"))
    sx_dst, sp_dst = (in_s(v) for v in prediction_conversion(dst, "x0", "score"))
    residual = (sx_dst * y + sp_dst * x0) - (sx_src * y / c_pkg + sp_src * x0) / c_pkg
    assert sp.simplify(residual.doit()) == 0


def test_composition_chain_rule():
    """The composed (tau, c, tau', c') of ComposedConversion.chain_rule are the derivatives of
    tau_1(tau_2(s)) and c_2(s) c_1(tau_2(s)) for explicit functions."""
    symbols, (t_expr, c_expr, dt_expr, dc_expr) = ComposedConversion.chain_rule()
    f1, k1 = sp.Lambda(t, t**2 + sp.sin(t)), sp.Lambda(t, sp.exp(t) + 1)
    g2, c2 = sp.Lambda(s, s**3 + s), sp.Lambda(s, sp.cos(s) + 2)
    u = g2(s)
    values = dict(zip(symbols, [f1(u), k1(u), sp.diff(f1(t), t).subs(t, u), sp.diff(k1(t), t).subs(t, u),
                                u, c2(s), sp.diff(g2(s), s), sp.diff(c2(s), s)]))
    assert sp.simplify(t_expr.subs(values) - f1(g2(s))) == 0
    assert sp.simplify(c_expr.subs(values) - c2(s) * k1(g2(s))) == 0
    assert sp.simplify(dt_expr.subs(values) - sp.diff(f1(g2(s)), s)) == 0
    assert sp.simplify(dc_expr.subs(values) - sp.diff(c2(s) * k1(g2(s)), s)) == 0


def test_linear_source_closed_form():
    """From the linear source (alpha = t, sigma = 1 - t): tau = A/(A + S), c = A + S (any A, S > 0)."""
    big_a, big_s = sp.symbols("A S", positive=True)
    linear = sa.schedules.linear()
    inverse = linear.inverse_log_snr.expr
    lam_dst = 2 * sp.log(big_a) - 2 * sp.log(big_s)
    tau_closed = inverse.subs(sa.lam, lam_dst)
    assert sp.simplify(tau_closed - big_a / (big_a + big_s)) == 0
    c = (big_a + big_s) / (tau_closed + (1 - tau_closed))
    assert sp.simplify(c - (big_a + big_s)) == 0


def test_library_pair_closed_forms():
    """For closed-form pairs, alpha(tau(s))/sigma(tau(s)) - A(s)/S(s) simplifies to 0: the same
    log-SNR (both ratios are positive on the domain, so equal ratios mean equal lambda). Inside
    the domain s = hi q/(1 + q) with q > 0, which tells SymPy the signs of s and hi - s.

    tau is the source's closed-form inverse at lambda_dst(s) (derived by bounded work, the same
    on every machine); convert()'s simplified tau is checked as well."""
    q = sp.Symbol("q", positive=True)
    for a, b in [("linear", "cosine"), ("linear", "brownian_bridge"), ("cosine", "linear"), ("edm", "linear")]:
        src, dst = sa.schedules.LIBRARY[a](), sa.schedules.LIBRARY[b]()
        inverse = src.inverse_log_snr
        assert inverse.kind == "symbolic", (a, inverse)
        candidates = [inverse.expr.subs(sa.lam, dst.log_snr.subs(t, s))]
        conv = sa.convert(src, dst)
        if conv.kind == "symbolic":
            candidates.append(conv.tau)
        for tau_s in candidates:
            residual = (src.alpha / src.sigma).subs(t, tau_s) - (dst.alpha / dst.sigma).subs(t, s)
            inside = residual.subs(s, dst.domain[1] * q / (1 + q))
            assert sp.simplify(residual) == 0 or sp.simplify(inside) == 0, (a, b, residual)
