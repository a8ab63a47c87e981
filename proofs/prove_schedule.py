"""Proofs of the schedule identities schedalg relies on.

Each test states an identity, builds the residual ``lhs - rhs`` with SymPy, and checks
that it simplifies to 0. Generic proofs use undefined functions ``alpha(t)``,
``sigma(t)`` (so they hold for every schedule) and the symbol ``direction`` (= +-1).
"""

import sympy as sp

import schedalg as sa
from schedalg.symbolic import DIRECTION

t = sa.t

A = sp.Function("alpha")(t)
S = sp.Function("sigma")(t)
GENERIC = sa.Schedule(alpha=A, sigma=S, name="generic")


def is_zero(residual: sp.Expr) -> bool:
    return sp.simplify(residual) == 0


def test_log_snr_derivative():
    """lambda' = 2 alpha'/alpha - 2 sigma'/sigma for lambda = log(alpha^2/sigma^2)."""
    residual = GENERIC.d_log_snr - (2 * sp.diff(A, t) / A - 2 * sp.diff(S, t) / S)
    assert is_zero(residual)


def test_expanded_log_snr_equals_ratio_form():
    """The package's log_snr (expanded: 2 log alpha - 2 log sigma) equals log(alpha^2/sigma^2) for
    positive alpha, sigma (a generic positive schedule, and its snr attribute)."""
    a_pos, s_pos = sp.Function("a", positive=True)(t), sp.Function("s", positive=True)(t)
    positive = sa.Schedule(alpha=a_pos, sigma=s_pos, name="positive")
    residual = positive.log_snr - sp.log(a_pos**2 / s_pos**2)
    assert is_zero(sp.expand_log(residual, force=True))
    assert is_zero(sp.expand_log(sp.log(positive.snr) - positive.log_snr, force=True))


def test_compiled_inverse_inverts_the_derived_log_snr():
    """t_of_log_snr(lambda(t)) = t for the compiled inverse (closed form + Newton polish, or the
    numeric inverter), with lambda the derived log-SNR evaluated at 30 digits, near both ends too."""
    import mpmath
    import torch

    for name in ("linear", "vp_linear", "edm", "polynomial_convex", "sub_vp"):
        schedule = sa.schedules.LIBRARY[name]()
        lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
        tt = torch.tensor([lo + (hi - lo) * f for f in (1e-7, 1e-4, 0.1, 0.5, 0.9, 1 - 1e-4, 1 - 1e-7)],
                          dtype=torch.float64)
        fn = sp.lambdify(t, schedule.log_snr, "mpmath")
        with mpmath.workdps(30):
            lam = torch.tensor([float(fn(mpmath.mpf(float(v)))) for v in tt], dtype=torch.float64)
        back = schedule.compile().t_of_log_snr(lam)
        torch.testing.assert_close(back, tt, rtol=1e-9, atol=1e-12 * (hi - lo), msg=name)


def test_e_star_equivalent_forms():
    """e* = sigma^2 |lambda'|/2 = direction * (sigma^2 alpha'/alpha - sigma sigma')  (MATH.md section 1)."""
    residual = GENERIC.e_star - DIRECTION * (S**2 * sp.diff(A, t) / A - S * sp.diff(S, t))
    assert is_zero(residual)


def test_e_star_is_half_g2():
    """The optimal diffusion coefficient is half the forward SDE's g^2."""
    assert is_zero(GENERIC.diffusion_g2 - 2 * GENERIC.e_star)


def test_forward_sde_reproduces_alpha_and_sigma():
    """dx = f x dt_fwd + g dW with t_fwd = -direction t has mean scale alpha and variance sigma^2.

    Mean: d alpha / dt_fwd = f alpha.  Variance: d sigma^2 / dt_fwd = 2 f sigma^2 + g^2.
    """
    d_fwd = lambda e: -DIRECTION * sp.diff(e, t)  # noqa: E731
    mean_residual = d_fwd(A) - GENERIC.drift_f * A
    var_residual = d_fwd(S**2) - 2 * GENERIC.drift_f * S**2 - GENERIC.diffusion_g2
    assert is_zero(mean_residual)
    assert is_zero(var_residual)


def test_vp_linear_matches_song_et_al():
    """VP with linear beta: f = -beta(t)/2 and g^2 = beta(t) (Song et al. 2021, eq. 11)."""
    bmin, bmax = sp.symbols("beta_min beta_max", positive=True)
    vp = sa.schedules.vp_linear(bmin, bmax)
    beta = bmin + t * (bmax - bmin)
    assert sa.schedules.vp_linear().direction == -1  # data at t = 0, checked on the bound schedule
    f = vp.drift_f.subs(DIRECTION, -1)
    g2 = vp.diffusion_g2.subs(DIRECTION, -1)
    assert is_zero(f + beta / 2)
    assert is_zero(g2 - beta)


def test_sub_vp_matches_song_et_al():
    """Sub-VP: f = -beta/2, g^2 = beta (1 - exp(-2 int_0^t beta))  (Song et al. 2021, eq. 12)."""
    bmin, bmax = sp.symbols("beta_min beta_max", positive=True)
    sub = sa.schedules.sub_vp(bmin, bmax)
    beta = bmin + t * (bmax - bmin)
    integral = sp.integrate(beta.subs(t, sp.Symbol("u")), (sp.Symbol("u"), 0, t))
    assert sa.schedules.sub_vp().direction == -1
    assert is_zero(sub.drift_f.subs(DIRECTION, -1) + beta / 2)
    assert is_zero(sub.diffusion_g2.subs(DIRECTION, -1) - beta * (1 - sp.exp(-2 * integral)))


def test_ve_matches_song_et_al():
    """VE: f = 0 and g^2 = d sigma^2 / dt."""
    smin, smax = sp.symbols("sigma_min sigma_max", positive=True)
    ve = sa.schedules.ve(smin, smax)
    assert sa.schedules.ve().direction == -1
    assert is_zero(ve.drift_f.subs(DIRECTION, -1))
    assert is_zero(ve.diffusion_g2.subs(DIRECTION, -1) - sp.diff(ve.sigma**2, t))


def test_linear_flow_forward_sde():
    """Rectified flow (alpha = t, sigma = 1 - t): in forward time u = 1 - t, f = -1/(1-u), g^2 = 2u/(1-u)."""
    lin = sa.schedules.linear()
    u = sp.Symbol("u", positive=True)
    assert lin.direction == 1
    assert is_zero(lin.drift_f.subs(t, 1 - u) + 1 / (1 - u))
    assert is_zero(lin.diffusion_g2.subs(t, 1 - u) - 2 * u / (1 - u))


def test_edm_view():
    """x_t / alpha = x0 + (sigma/alpha) eps: the EDM noise level is sigma/alpha."""
    x0, eps = sp.symbols("x0 eps")
    residual = (A * x0 + S * eps) / GENERIC.edm_scale - (x0 + GENERIC.edm_sigma * eps)
    assert is_zero(residual)


def test_every_library_inverse_round_trips_symbolically():
    """t(lambda(t)) = t for every library schedule whose inverse is symbolic (checked at exact points)."""
    for name, make in sa.schedules.LIBRARY.items():
        schedule = make()
        inverse = schedule.inverse_log_snr
        if inverse.kind != "symbolic":
            continue
        lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
        for u in (sp.Rational(1, 7), sp.Rational(1, 2), sp.Rational(5, 6)):
            point = lo + (hi - lo) * u
            value = inverse.expr.subs(sa.lam, schedule.log_snr.subs(t, point))
            assert abs(float(sp.N(value - point, 30))) < 1e-12, name


def test_vp_cosine_declaration_is_the_papers_schedule():
    """The library's vp_cosine() (exact offset 1/125, angles written as pi times one factor,
    sigma as a product of sines) equals Nichol & Dhariwal's alpha = cos(pi/2 (t + s)/(1 + s)) /
    cos(pi/2 s/(1 + s)), sigma = sqrt(1 - alpha^2) with s = 0.008: alpha exactly (SymPy), both to
    1e-45 relative (plus 1e-48 absolute) at 50 digits on a grid with both ends and points 1e-30
    from them."""
    import mpmath

    s = sp.Rational(1, 125)
    paper_alpha = sp.cos(sp.pi / 2 * (t + s) / (1 + s)) / sp.cos(sp.pi / 2 * s / (1 + s))
    paper_sigma = sp.sqrt(1 - paper_alpha**2)
    vp = sa.schedules.vp_cosine()
    assert sa.schedules.vp_cosine(0.008).alpha == vp.alpha and sp.nsimplify(0.008, rational=True) == s
    assert is_zero(sp.expand_trig(vp.alpha - paper_alpha))
    functions = [sp.lambdify(t, e, modules="mpmath") for e in (vp.alpha, vp.sigma, paper_alpha, paper_sigma)]
    with mpmath.workdps(120):  # the paper's sqrt(1 - alpha^2) cancels ~60 digits at 1e-30 from t = 0
        tiny = mpmath.mpf(10) ** -30
        grid = [mpmath.mpf(0), tiny, mpmath.mpf(1) - tiny, mpmath.mpf(1)] + [mpmath.mpf(k) / 16 for k in range(1, 16)]
        paper = [(functions[2](p), functions[3](p)) for p in grid]
    with mpmath.workdps(50):
        for point, (pa, ps) in zip(grid, paper):
            a, sg = functions[0](point), functions[1](point)
            for ours, theirs in ((a, pa), (sg, ps)):
                assert mpmath.im(ours) == 0 and ours >= -mpmath.mpf(10) ** -48, point  # cos(pi/2) rounds to -5e-52
                # 50 digits of the point near t = 1 leave alpha ~ 1e-30 an absolute error ~ 1e-50
                assert abs(ours - theirs) <= mpmath.mpf(10) ** -45 * abs(theirs) + mpmath.mpf(10) ** -48, point


def test_vp_cosine_is_variance_preserving():
    """The product form of vp_cosine's sigma satisfies alpha^2 + sigma^2 = 1."""
    vp = sa.schedules.vp_cosine(sp.Symbol("s", positive=True))
    assert is_zero(sp.expand_trig(sp.expand(vp.alpha**2 + vp.sigma**2 - 1)))
