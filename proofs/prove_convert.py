"""Proofs of the conversion identities (MATH.md section 1), as residuals SymPy reduces to 0.

Generic schedules are undefined SymPy functions ``alpha(t), sigma(t)`` (source) and
``A(s), S(s)`` (destination); ``tau(s)`` is defined by ``lambda_src(tau(s)) = lambda_dst(s)``,
i.e. ``alpha(tau)/sigma(tau) = A/S`` (both positive). Concrete pairs check the closed forms
that :func:`schedalg.convert` derives.
"""

import sympy as sp

import schedalg as sa
from schedalg.symbolic import ComposedConversion, conversion_formulas, s

t = sa.t
x0, eps = sp.symbols("x0 eps", real=True)
alpha, sigma = sp.Function("alpha", positive=True), sp.Function("sigma", positive=True)
tau = sp.Function("tau", real=True)
r = sp.Symbol("r", positive=True)  # the common ratio alpha(tau)/sigma(tau) = A/S


def _dst_in_terms_of_src():
    """A = c alpha(tau), S = c sigma(tau) with c = S/sigma(tau): the general destination."""
    c = sp.Function("c", positive=True)(s)
    return c, c * alpha(tau(s)), c * sigma(tau(s))


def test_same_random_variable():
    """A x0 + S eps = c (alpha(tau) x0 + sigma(tau) eps) with c = (A + S)/(alpha(tau) + sigma(tau)),
    whenever alpha(tau)/sigma(tau) = A/S (equal log-SNR)."""
    big_s, sg = sp.symbols("S sigma_tau", positive=True)
    big_a, al = r * big_s, r * sg
    c = (big_a + big_s) / (al + sg)
    residual = (big_a * x0 + big_s * eps) - c * (al * x0 + sg * eps)
    assert sp.simplify(residual) == 0
    # and the sum form equals both ratios
    assert sp.simplify(c - big_a / al) == 0 and sp.simplify(c - big_s / sg) == 0


def test_tau_prime_formula():
    """Differentiating lambda_src(tau(s)) = lambda_dst(s): tau' = lambda_dst'(s) / lambda_src'(tau)."""
    lam_src, lam_dst = sp.Function("lambda_src"), sp.Function("lambda_dst")
    identity = sp.diff(lam_src(tau(s)), s) - sp.diff(lam_dst(s), s)
    (solution,) = sp.solve(identity, sp.diff(tau(s), s))
    u = sp.Dummy("u")
    expected = sp.diff(lam_dst(s), s) / sp.diff(lam_src(u), u).subs(u, tau(s))
    assert sp.simplify(solution.doit() - expected.doit()) == 0


def test_c_prime_formula():
    """c'/c = A'/A - tau' alpha'(tau)/alpha(tau) for c = A/alpha(tau); and the derived sum-form c'
    (conversion_formulas) equals it when A = c alpha(tau), S = c sigma(tau)."""
    c, big_a, big_s = _dst_in_terms_of_src()
    log_derivative = sp.diff(big_a, s) / big_a - sp.diff(tau(s), s) * sp.diff(alpha(tau(s)), s) / (
        sp.diff(tau(s), s) * alpha(tau(s)))
    assert sp.simplify(sp.diff(c, s) / c - log_derivative) == 0
    symbols, (c_expr, d_tau_expr, d_c_expr) = conversion_formulas()
    dst_vals = [big_a, big_s, sp.diff(big_a, s), sp.diff(big_s, s)]
    u = sp.Dummy("u")
    src_vals = [alpha(tau(s)), sigma(tau(s)), sp.diff(alpha(u), u).subs(u, tau(s)),
                sp.diff(sigma(u), u).subs(u, tau(s))]
    lam_d_prime, lam_s_prime = sp.symbols("ld ls", positive=True)
    values = dict(zip(symbols[:4], dst_vals)) | dict(zip(symbols[6:10], src_vals))
    values[symbols[5]], values[symbols[11]] = lam_d_prime, lam_s_prime
    d_c = d_c_expr.subs(values).subs(lam_d_prime, sp.diff(tau(s), s) * lam_s_prime)
    assert sp.simplify((d_c - sp.diff(c, s)).doit()) == 0
    assert sp.simplify(c_expr.subs(values) - c) == 0
    assert sp.simplify(d_tau_expr.subs(values).subs(lam_d_prime, sp.diff(tau(s), s) * lam_s_prime)
                       - sp.diff(tau(s), s)) == 0


def test_drift_transfer():
    """b_dst(s, y) = A' x0 + S' eps equals (c'/c) y + c tau' b_src(tau, y/c), with y = A x0 + S eps
    and b_src = alpha'(tau) x0 + sigma'(tau) eps (same posterior pair: predictors carry over)."""
    c, big_a, big_s = _dst_in_terms_of_src()
    y = big_a * x0 + big_s * eps
    u = sp.Dummy("u")
    b_src = sp.diff(alpha(u), u).subs(u, tau(s)) * x0 + sp.diff(sigma(u), u).subs(u, tau(s)) * eps
    transfer = sp.diff(c, s) / c * y + c * sp.diff(tau(s), s) * b_src
    direct = sp.diff(big_a, s) * x0 + sp.diff(big_s, s) * eps
    assert sp.simplify((direct - transfer).doit()) == 0


def test_score_transfer():
    """score_dst(s, y) = -eps/S = -eps/(c sigma(tau)) = score_src(tau, y/c) / c."""
    c, _, big_s = _dst_in_terms_of_src()
    assert sp.simplify(-eps / big_s - (-eps / sigma(tau(s))) / c) == 0


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
