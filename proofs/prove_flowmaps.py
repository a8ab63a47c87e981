"""Proofs of the flow-map identities (MATH.md section 6; Boffi, Albergo & Vanden-Eijnden, arXiv 2406.07507).

1. The Gaussian flow map the package derives (:func:`schedalg.flowmaps.derive_gaussian_flow_map`,
   and :attr:`GaussianFlowMap.expr` for library schedules) solves the probability-flow ODE
   ``d_t X = b_t(X)`` with the velocity built from the Gaussian posterior means, and
   ``X_{s,s} = id``; it satisfies the semigroup law.
2. Moving a flow map between schedules: with the package's conversion ``(tau, c)``,
   ``Y(t) = c(t) X^A_{tau(s), tau(t)}(y / c(s))`` solves B's ODE (velocity from the drift
   transfer the package uses, :func:`schedalg.symbolic.conversion_formulas`) with ``Y(s) = y``,
   so it is B's flow map; for Gaussian data and concrete pairs it equals the package's
   Gaussian map of B expression for expression.
"""

import sympy as sp

import schedalg as sa
from schedalg.flowmaps import FLOW_SYMBOLS, derive_gaussian_flow_map, gaussian_flow_map
from schedalg.symbolic import conversion_formulas, s

x, m, v, s_start, t_end = FLOW_SYMBOLS


def _gaussian_velocity(alpha_t, sigma_t, d_alpha_t, d_sigma_t, state):
    """``b_t(x) = alpha' x0_hat + sigma' eps_hat`` from the Gaussian posterior means (Gaussian conditioning)."""
    c2 = alpha_t**2 * v + sigma_t**2
    x0_hat = m + alpha_t * v * (state - alpha_t * m) / c2
    eps_hat = sigma_t * (state - alpha_t * m) / c2
    return d_alpha_t * x0_hat + d_sigma_t * eps_hat


def test_generic_gaussian_map_solves_the_ode():
    """For generic alpha(.), sigma(.): d_t X_{s,t}(x) - b_t(X_{s,t}(x)) = 0 and X_{s,s}(x) = x."""
    flow, alpha, sigma = derive_gaussian_flow_map()
    u = sp.Dummy("u")
    d_alpha = sp.diff(alpha(u), u).subs(u, t_end)
    d_sigma = sp.diff(sigma(u), u).subs(u, t_end)
    b = _gaussian_velocity(alpha(t_end), sigma(t_end), d_alpha, d_sigma, flow)
    assert sp.simplify((sp.diff(flow, t_end) - b).doit()) == 0
    assert sp.simplify(flow.subs(t_end, s_start) - x) == 0


def test_generic_gaussian_map_semigroup():
    """X_{r,t}(X_{s,r}(x)) = X_{s,t}(x) for generic alpha(.), sigma(.)."""
    flow, _, _ = derive_gaussian_flow_map()
    r = sp.Symbol("r", real=True)
    inner = flow.subs(t_end, r)
    outer = flow.subs(s_start, r)
    assert sp.simplify(outer.subs(x, inner) - flow) == 0


def test_library_gaussian_maps_solve_their_odes():
    """The compiled expression GaussianFlowMap.expr for library schedules solves that schedule's ODE.

    Float constants of a schedule (vp_linear's beta range) are made rational
    on both sides, so the residual is exactly 0 rather than a rounding error."""
    t = sa.t
    exact = lambda e: sp.nsimplify(e, rational=True)  # noqa: E731
    for schedule in (sa.schedules.linear(), sa.schedules.cosine(), sa.schedules.vp_linear()):
        flow = exact(gaussian_flow_map(schedule, 0.5, 2.0).expr)
        at_t = {t: t_end}
        b = _gaussian_velocity(*(exact(e.subs(at_t)) for e in (schedule.alpha, schedule.sigma, schedule.d_alpha,
                                                               schedule.d_sigma)), flow)
        residual = sp.simplify(sp.diff(flow, t_end) - b)
        assert residual == 0, (schedule.name, residual)
        assert sp.simplify(flow.subs(t_end, s_start) - x) == 0, schedule.name


def test_converted_flow_map_solves_the_destination_ode():
    """Y(t) = c(t) X^A(y / c(s), tau(s), tau(t)) has Y(s) = y and dY/dt = b^B_t(Y), where
    b^B_t(y) = (c'/c) y + c tau' b^A_{tau}(y / c) with c' and tau' the package's conversion formulas.
    X^A is a generic flow map: X^A(x, sigma, sigma) = x and d_3 X^A(x, sigma, tau) = b^A(X^A, tau)."""
    y = sp.Symbol("y", real=True)
    big_x, b_a = sp.Function("X_A"), sp.Function("b_A")
    c, tau = sp.Function("c", positive=True), sp.Function("tau", real=True)
    symbols, (c_expr, d_tau_expr, d_c_expr) = conversion_formulas()
    # the package's c' and tau' for a destination A = c alpha(tau), S = c sigma(tau) (any schedule pair)
    alpha, sigma = sp.Function("alpha", positive=True), sp.Function("sigma", positive=True)
    u = sp.Dummy("u")
    dst = [c(s) * alpha(tau(s)), c(s) * sigma(tau(s))]
    lam_src_prime = sp.Symbol("lam_src_prime", positive=True)
    values = dict(zip(symbols[:4], dst + [sp.diff(e, s) for e in dst]))
    values |= dict(zip(symbols[6:10], [alpha(tau(s)), sigma(tau(s)), sp.diff(alpha(u), u).subs(u, tau(s)),
                                       sp.diff(sigma(u), u).subs(u, tau(s))]))
    values[symbols[5]], values[symbols[11]] = sp.diff(tau(s), s) * lam_src_prime, lam_src_prime
    d_tau = d_tau_expr.subs(values)
    d_c = sp.simplify(d_c_expr.subs(values).doit())
    assert sp.simplify(c_expr.subs(values) - c(s)) == 0 and sp.simplify(d_c - sp.diff(c(s), s)) == 0
    # Y as a function of the end time (written s) from a fixed start time s0
    s0 = sp.Symbol("s0", real=True)
    start = y / c(s0)
    inner = big_x(start, tau(s0), tau(s))
    big_y = c(s) * inner
    # the Lagrangian equation of X^A, applied where the chain rule produces d_3 X^A
    d_big_y = sp.diff(big_y, s).subs(sp.Derivative(inner, tau(s)), b_a(inner, tau(s)))
    assert not d_big_y.has(sp.Derivative(inner, tau(s)))
    b_b = d_c / c(s) * big_y + c(s) * d_tau * b_a(big_y / c(s), tau(s))
    assert sp.simplify(d_big_y - b_b) == 0
    # Y(s0) = c(s0) X^A(y / c(s0), tau(s0), tau(s0)) = y by X^A_{s,s} = id
    assert sp.simplify(big_y.subs(s, s0).replace(big_x, lambda a, b_, c_: a if b_ == c_ else big_x(a, b_, c_)) - y) == 0


def _convert_expr(conversion, flow_a):
    """c(t) X^A_{tau(s), tau(t)}(y / c(s)) from the package's symbolic tau and c."""
    tau_s, tau_t = conversion.tau.subs(s, s_start), conversion.tau.subs(s, t_end)
    c_s, c_t = conversion.c.subs(s, s_start), conversion.c.subs(s, t_end)
    inner = flow_a.xreplace({s_start: sp.Dummy("a"), t_end: sp.Dummy("b")})
    a, b = sorted(inner.free_symbols - {x, m, v}, key=str)
    return c_t * inner.xreplace({x: x / c_s, a: tau_s, b: tau_t})


def test_gaussian_maps_convert_between_schedules():
    """For N(m, v) data: c(t) X^linear_{tau(s), tau(t)}(y / c(s)) = X^B_{s,t}(y), with (tau, c) from
    sa.convert(linear, B) and both maps from gaussian_flow_map (the same data under both schedules).

    Both sides are affine in y, so they are equal when (i) their slopes agree (compared squared:
    both are positive ratios of square roots) and (ii) both send B's mean path alpha^B_s m to
    alpha^B_t m. Float constants are made rational so the residuals are exactly 0."""
    t = sa.t
    a = sa.schedules.linear()
    flow_a = gaussian_flow_map(a, 0.5, 2.0).expr
    for b in (sa.schedules.vp_linear(),):  # data at t = 0: the time direction flips; cosine: ~15 s more
        converted = _convert_expr(sa.convert(a, b), flow_a)
        direct = gaussian_flow_map(b, 0.5, 2.0).expr
        assert sp.diff(converted, x, 2) == 0 and sp.diff(direct, x, 2) == 0
        slopes = sp.diff(converted, x) ** 2 - sp.diff(direct, x) ** 2
        assert sp.simplify(sp.nsimplify(slopes, rational=True)) == 0, b.name
        mean_s, mean_t = b.alpha.subs(t, s_start) * m, b.alpha.subs(t, t_end) * m
        for side in (converted, direct):
            assert sp.simplify(sp.nsimplify(side.subs(x, mean_s) - mean_t, rational=True)) == 0, b.name
