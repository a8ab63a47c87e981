"""Proofs of the lazy schedule families (Damsholt et al. 2026; MATH.md section 2).

Each test starts from what schedalg.lazy derives or computes (the families of
derive_lazy_family, its posterior and drift helpers, Schedule.e_star, the tables of a
PreparedLazy) and reduces a residual against the paper's formula to 0 with SymPy (or, for
torch tables, compares them with the proved closed form). Generic schedules are undefined
functions of t.
"""

import sympy as sp

import schedalg as sa
from schedalg.lazy import derive_lazy_family, gaussian_drift_coefficient, gaussian_posterior, sde_drift
from schedalg.symbolic import DIRECTION, Schedule


def e_star(alpha, sigma):
    """The package's e* (Schedule.e_star, direction +1: generation time) of (alpha, sigma) in t."""
    schedule = Schedule(alpha=alpha.subs(t, sa.t), sigma=sigma.subs(t, sa.t), name="lazy")
    return schedule.e_star.subs(DIRECTION, 1).subs(sa.t, t)


t = sp.Symbol("t", real=True)
alpha_f, sigma_f, theta_f, a_f, e_f, phi_f = (sp.Function(n)(t) for n in ("alpha", "sigma", "theta", "a", "e", "phi"))
y, x0, eps, mu, sd, var = sp.symbols("y x0 eps mu sd var", real=True)


def sa_linear_alpha(tt):
    """alpha of the linear schedule (compiled by the package)."""
    from schedalg import schedules

    return schedules.linear().compile().alpha(tt)


def _zero(expr) -> bool:
    return sp.simplify(expr) == 0


def test_gaussian_posterior_is_the_conditional_mean():
    """For x ~ N(mu, var), y = alpha x + sigma eps: x0_hat = mu + k (y - alpha mu) with
    k (alpha^2 var + sigma^2) = alpha var (the residual x - x0_hat is uncorrelated with y),
    and x0_hat alpha + eps_hat sigma = y (the pair reconstructs the state)."""
    x0_hat, eps_hat = gaussian_posterior(alpha_f, sigma_f, y, mu, var)
    k = sp.diff(x0_hat, y)
    assert _zero(k * (alpha_f**2 * var + sigma_f**2) - alpha_f * var)
    assert _zero(x0_hat.subs(y, alpha_f * mu) - mu)
    assert _zero(alpha_f * x0_hat + sigma_f * eps_hat - y)


def test_gaussian_drift_coefficient():
    """For standardized Gaussian data the SDE drift b + e s is k y with
    k = (alpha alpha' + sigma sigma' - e) / (alpha^2 + sigma^2)."""
    x0_hat, eps_hat = gaussian_posterior(alpha_f, sigma_f, y)
    drift = sde_drift(alpha_f, sigma_f, x0_hat, eps_hat, e_f)
    k = (alpha_f * alpha_f.diff(t) + sigma_f * sigma_f.diff(t) - e_f) / (alpha_f**2 + sigma_f**2)
    assert _zero(drift - k * y)
    assert _zero(gaussian_drift_coefficient(alpha_f, sigma_f, "ode")
                 - k.subs(e_f, 0))


def test_ode_drift_vanishes_iff_alpha2_plus_sigma2_is_constant():
    """ODE (e = 0): k (alpha^2 + sigma^2) = (1/2) d/dt (alpha^2 + sigma^2), so k == 0 for all t
    exactly when alpha^2 + sigma^2 is constant: the ODE-lazy schedules are the variance-preserving ones."""
    k = gaussian_drift_coefficient(alpha_f, sigma_f, "ode")
    assert _zero(k * (alpha_f**2 + sigma_f**2) - sp.diff(alpha_f**2 + sigma_f**2, t) / 2)


def test_derived_families_solve_their_conditions():
    """The dsolve output of each family solves its condition for every constant C1; the data end
    (S(1) = 0) fixes C1 = 1: sigma^2 = 1 - alpha^2 (ODE) and sigma^2 = alpha (1 - alpha) (optimal SDE)."""
    a = sp.Symbol("a", positive=True)
    S = sp.Function("S")
    expected = {"ode": 1 - a**2, "optimal_sde": a * (1 - a)}
    for kind, sigma2 in expected.items():
        family = derive_lazy_family(kind)
        residual = family.condition.subs(S(a), family.general).doit()
        assert _zero(residual), kind
        assert family.constant == 1
        assert _zero(family.sigma_squared - sigma2), kind


def test_ode_family_is_lazy_for_any_angle():
    """alpha = sin(theta(t)), sigma = cos(theta(t)) for any theta: the ODE drift is 0."""
    family = derive_lazy_family("ode")
    alpha = family.alpha_form.subs(family.free, theta_f)
    sigma = family.sigma_form.subs(family.free, theta_f)
    assert _zero(gaussian_drift_coefficient(alpha, sigma, "ode"))


def test_point_mass_family_is_lazy_for_any_alpha():
    """alpha = a(t), sigma = sqrt(a (1 - a)) for any a: the optimal-SDE drift (e = e*) is 0."""
    family = derive_lazy_family("optimal_sde")
    alpha = family.alpha_form.subs(family.free, a_f)
    sigma = family.sigma_form.subs(family.free, a_f)
    assert _zero(gaussian_drift_coefficient(alpha, sigma, "optimal_sde"))


def test_laziness_is_invariant_under_time_change():
    """The drift coefficient is homogeneous of degree one in d/dt: for alpha(phi(t)), sigma(phi(t))
    it is phi'(t) times the coefficient at phi(t), for e = 0 and e = e*. So solving with alpha as the
    time loses no member of a family."""
    u = sp.Symbol("u", real=True)
    A, S = sp.Function("A"), sp.Function("S")
    for kind in ("ode", "optimal_sde"):
        base = gaussian_drift_coefficient(A(u), S(u), kind, time=u)
        moved = gaussian_drift_coefficient(A(phi_f), S(phi_f), kind)
        assert _zero(moved - (phi_f.diff(t) * base.subs(u, phi_f)).doit()), kind


def test_only_the_ode_family_has_constant_alpha2_plus_sigma2():
    """(a) With alpha^2 + sigma^2 = 1 (alpha = 1 at the data end) theta = atan(alpha/sigma) gives
    alpha = sin(theta), sigma = cos(theta): every such schedule is in the ODE family.
    (b) On such a schedule the optimal-SDE coefficient is -e* (not lazy since e* > 0), and
    (c) the point-mass family has alpha^2 + sigma^2 = alpha, not constant."""
    al, si = sp.symbols("alpha sigma", positive=True)
    angle = sp.atan(al / si)
    norm = sp.sqrt(al**2 + si**2)  # = 1 on the family
    assert _zero(sp.sin(angle) - al / norm) and _zero(sp.cos(angle) - si / norm)
    sig_vp = sp.sqrt(1 - alpha_f**2)
    k_sde = gaussian_drift_coefficient(alpha_f, sig_vp, "optimal_sde")
    assert _zero(k_sde + e_star(alpha_f, sig_vp))
    family = derive_lazy_family("optimal_sde")
    assert _zero(family.alpha_form**2 + family.sigma_form**2 - family.alpha_form)


def test_e_star_is_half_alpha_prime_on_point_mass_family():
    """On sigma^2 = alpha (1 - alpha): e* = sigma^2 lambda'/2 = alpha'/2."""
    sigma = sp.sqrt(a_f * (1 - a_f))
    assert _zero(e_star(a_f, sigma) - a_f.diff(t) / 2)


def test_point_mass_drift_for_any_data():
    """On sigma^2 = alpha (1 - alpha), for any predictor pair with y = alpha x0 + sigma eps:
    b + e* s = alpha'/(1 - alpha) (x0 - y), whatever the data."""
    sigma = sp.sqrt(a_f * (1 - a_f))
    eps_of = (y - a_f * x0) / sigma
    drift = sde_drift(a_f, sigma, x0, eps_of, e_star(a_f, sigma))
    assert _zero(drift - a_f.diff(t) / (1 - a_f) * (x0 - y))


def test_lazy_ode_velocity_in_the_angle():
    """y = sin(u) x0 + cos(u) eps: dy/du = cos(u) x0 - sin(u) eps (the Euler step of MATH.md 2)."""
    u = sp.Symbol("u", real=True)
    family = derive_lazy_family("ode")
    alpha, sigma = (f.subs(family.free, u) for f in (family.alpha_form, family.sigma_form))
    velocity = sp.diff(alpha, u) * x0 + sp.diff(sigma, u) * eps
    assert _zero(velocity - (sp.cos(u) * x0 - sp.sin(u) * eps))


def test_standardized_schedule():
    """(x_t - alpha mu)/sd = alpha x' + (sigma/sd) eps with x' = (x - mu)/sd; its log-SNR is
    lambda + 2 log sd; predictions: x0' = (x0 - mu)/sd, eps' = eps reconstruct the standardized state."""
    x = sp.Symbol("x", real=True)
    al, si, s = sp.symbols("alpha sigma sd", positive=True)
    xt = al * x + si * eps
    x_std = (x - mu) / s
    assert _zero((xt - al * mu) / s - (al * x_std + si / s * eps))
    lam = 2 * sp.log(al) - 2 * sp.log(si)
    lam_std = 2 * sp.log(al) - 2 * sp.log(si / s)
    assert _zero(sp.expand_log(lam_std - lam - 2 * sp.log(s), force=True))
    assert _zero(al * (x0 - mu) / s + si / s * eps - (al * x0 + si * eps - al * mu) / s)


def _prepared_lazy(kind, sd=1.7, mu=0.4):
    """The package's PreparedLazy for a linear-schedule Gaussian model on an interior grid."""
    import torch

    from schedalg import schedules
    from schedalg.denoisers import GaussianDenoiser
    from schedalg.lazy import LazyDenoiser, Standardization

    lazy = LazyDenoiser(GaussianDenoiser(schedules.linear(), mu, sd**2), Standardization.given(mu, sd), kind)
    lo, hi = lazy.free_range
    grid = torch.linspace(lo, hi, 9, dtype=torch.float64)
    return lazy, lazy.prepare(grid), grid  # compared inside (the ends hold exact limits)


def test_the_lazy_view_uses_the_standardized_log_snr():
    """The package's PreparedLazy picks source times with lambda_src(t_i) = lambda_family(u_i) - 2 log sd
    (the standardized schedule's log-SNR is lambda + 2 log sd, proved above)."""
    import math

    import torch

    from schedalg import schedules
    from schedalg.lazy import natural_schedule

    for kind in ("ode", "optimal_sde"):
        lazy, prepared, grid = _prepared_lazy(kind)
        lam_src = schedules.linear().compile().log_snr(prepared.source_times[1:-1])
        lam_family = natural_schedule(kind).compile().log_snr(grid[1:-1])
        torch.testing.assert_close(lam_src, lam_family - 2 * math.log(1.7), rtol=1e-10, atol=1e-10)


def test_conversion_scale_and_point_mass_limit():
    """Where the log-SNRs match (A/S = alpha sd / sigma), c = (A + S)/(alpha + sigma/sd) = A/alpha
    = S sd/sigma, and y = A x' + S eps gives y/c = alpha x' + (sigma/sd) eps: an identity of random
    variables, so as A, S -> 0 (the point mass) the network input sd y/c + alpha mu tends to the
    source's noise-end state sigma eps + alpha mu."""
    A, al, si, s = sp.symbols("A alpha sigma sd", positive=True)
    S = A * si / (al * s)
    c = (A + S) / (al + si / s)
    assert _zero(c - A / al) and _zero(c - S * s / si)
    x_std = sp.Symbol("xs", real=True)
    assert _zero((A * x_std + S * eps) / c - (al * x_std + si / s * eps))
    # the package's sum form sd / c = (sd alpha + sigma)/(A + S) equals sd alpha / A on its tables
    assert _zero((s * al + si) / (A + S) - s * al / A)
    import torch

    from schedalg.lazy import natural_schedule
    for kind in ("ode", "optimal_sde"):
        lazy, prepared, grid = _prepared_lazy(kind)
        table = prepared.tables(torch.zeros(1, dtype=torch.float64))
        alpha_src = sa_linear_alpha(prepared.source_times[1:-1])
        big_a = natural_schedule(kind).compile().alpha(grid[1:-1])
        torch.testing.assert_close(torch.stack(table["to_source"][1:-1]), 1.7 * alpha_src / big_a, rtol=1e-10, atol=0)


def test_one_lazy_step_is_exact_for_standardized_gaussian_data():
    """Standardized Gaussian data: one Euler step of the lazy ODE from u = 0 to pi/2 maps eps to
    eps + (pi/2)(cos 0 x0_hat(0) - sin 0 eps_hat(0)) = eps, a N(0, 1) sample (the exact flow map is the
    identity); one Euler-Maruyama step of the point-mass SDE from a = 0 gives x0_hat(0) + xi = xi ~ N(0, 1)."""
    family = derive_lazy_family("ode")
    u = sp.Symbol("u", real=True)
    alpha, sigma = (f.subs(family.free, u) for f in (family.alpha_form, family.sigma_form))
    x0_hat, eps_hat = gaussian_posterior(alpha, sigma, y)
    velocity = (sp.diff(alpha, u) * x0_hat + sp.diff(sigma, u) * eps_hat)
    assert _zero(velocity)
    pm = derive_lazy_family("optimal_sde")
    a = sp.Symbol("a", positive=True)
    x0_pm, _ = gaussian_posterior(pm.alpha_form.subs(pm.free, a), pm.sigma_form.subs(pm.free, a), y)
    assert _zero(sp.limit(x0_pm.subs(y, a * 0 + sp.sqrt(a * (1 - a)) * eps), a, 0))
    assert _zero(x0_pm - y)  # drift (x0 - y)/(1 - a) vanishes at every a


def test_unstandardized_data_leaves_a_drift():
    """On the ODE family, data N(mu, v) leaves the drift alpha' mu + alpha alpha' (v - 1)(y - alpha mu)
    / (alpha^2 v + sigma^2): a mean shift leaves alpha' mu, and a variance v != 1 is not lazy, which is
    why the samplers standardize (per channel when the channels' variances differ)."""
    family = derive_lazy_family("ode")
    alpha = family.alpha_form.subs(family.free, theta_f)
    sigma = family.sigma_form.subs(family.free, theta_f)
    x0_hat, eps_hat = gaussian_posterior(alpha, sigma, y, mu, var)
    drift = sde_drift(alpha, sigma, x0_hat, eps_hat, 0)
    d_alpha = alpha.diff(t)
    expected = d_alpha * mu + alpha * d_alpha * (var - 1) * (y - alpha * mu) / (alpha**2 * var + sigma**2)
    assert _zero(drift - expected)


class _StubLazy:
    """A prepared lazy view with given tables and a given (x0, eps) map, for the sampler loops."""

    def __init__(self, u, predict, d_alpha=None, d_sigma=None):
        import torch

        self.u = torch.as_tensor(u, dtype=torch.float64)
        self.times = self.u  # the evaluation grid the sampler's program is written on
        self.predict = predict
        self._tables = {"u": list(self.u.unbind(0))}
        if d_alpha is not None:
            self._tables["d_alpha"] = list(d_alpha.unbind(0))
            self._tables["d_sigma"] = list(d_sigma.unbind(0))

    def tables(self, like):
        return self._tables

    def __call__(self, y, i, **cond):
        return self.predict(y, self.u[i])

    def at_point_mass(self, noise, i=0, **cond):
        return self.predict(noise * 0, self.u[i])


def test_point_mass_sampler_steps_with_the_derived_drift():
    """The Euler-Maruyama loop of schedalg.lazy (integrate_point_mass) moves y by h k(a) (x0 - y) with
    k(a) derived here from the package's sde_drift and Schedule.e_star on the point-mass family
    (k = 1/(1 - a) when alpha = a): checked with zero noise and an x0 map that is not the
    Gaussian posterior (where the drift would vanish)."""
    import torch

    from schedalg.lazy import integrate_point_mass

    family = derive_lazy_family("optimal_sde")
    a = family.free
    alpha, sigma = family.alpha_form.subs(a, t), family.sigma_form.subs(a, t)
    yy, xx = sp.symbols("yy xx", real=True)
    drift = sde_drift(alpha, sigma, xx, (yy - alpha * xx) / sigma, e_star(alpha, sigma))
    k = sp.simplify(sp.diff(drift, xx))
    assert _zero(drift - k * (xx - yy))
    rate = sp.lambdify(t, k)
    grid = torch.tensor([0.0, 0.15, 0.4, 0.55, 0.8, 1.0], dtype=torch.float64)
    x0_of = lambda y, u: (0.8 + 0.3 * torch.tanh(y), None)  # noqa: E731
    noise = torch.zeros(grid.numel() - 1, 4, dtype=torch.float64)
    got = integrate_point_mass(_StubLazy(grid, x0_of), noise)
    y = torch.zeros(4, dtype=torch.float64)
    for i in range(grid.numel() - 1):
        h = float(grid[i + 1] - grid[i])
        y = y + h * float(rate(float(grid[i]))) * (x0_of(y, grid[i])[0] - y)
    torch.testing.assert_close(got, y, rtol=1e-12, atol=1e-12)


def test_lazy_ode_solvers_converge_at_their_order_on_the_derived_velocity():
    """integrate_lazy_ode with the derived ODE-family derivatives A' = cos u, S' = -sin u and a
    non-Gaussian (x0, eps) = (y, 0): dy/du = cos(u) y, exact y0 exp(sin u). Errors at 8 and 16 steps
    fall by 2^p (p = 1 Euler, 2 Heun and midpoint), within 25 %."""
    import math

    import torch

    from schedalg.lazy import integrate_lazy_ode

    family = derive_lazy_family("ode")
    d_alpha = sp.lambdify(family.free, sp.diff(family.alpha_form, family.free))
    d_sigma = sp.lambdify(family.free, sp.diff(family.sigma_form, family.free))
    predict = lambda y, u: (y, torch.zeros_like(y))  # noqa: E731
    y0 = torch.tensor([0.5, -1.2], dtype=torch.float64)
    exact = y0 * math.exp(1.0)
    for solver, order in (("euler", 1), ("heun", 2), ("midpoint", 2)):
        errors = []
        for steps in (8, 16):
            grid = torch.linspace(0, math.pi / 2, steps + 1, dtype=torch.float64)
            if solver == "midpoint":  # step ends and midpoints interleaved, as lazy_ode_sample does
                grid = torch.linspace(0, math.pi / 2, 2 * steps + 1, dtype=torch.float64)
            da = torch.tensor([float(d_alpha(float(u))) for u in grid], dtype=torch.float64)
            ds = torch.tensor([float(d_sigma(float(u))) for u in grid], dtype=torch.float64)
            out = integrate_lazy_ode(_StubLazy(grid, predict, da, ds), y0, solver)
            errors.append(float((out - exact).abs().max()))
        ratio = errors[0] / errors[1]
        assert abs(math.log2(ratio) - order) < 0.35, (solver, errors)


def test_point_mass_sigma_is_the_positive_root():
    """The point-mass family's sigma_form (a product of square roots of factors, so that its
    log-SNR is log a - log(1 - a), finite in float64 at a = 0) is the positive square root of
    the derived sigma^2 on [0, 1]: its square equals sigma_squared exactly, and at 50 digits it
    equals sqrt(sigma_squared) on a grid with both ends and points 1e-30 from them."""
    import mpmath

    family = derive_lazy_family("optimal_sde")
    free = family.free
    assert _zero(sp.expand(family.sigma_form**2) - family.sigma_squared)
    form = sp.lambdify(free, family.sigma_form, modules="mpmath")
    root = sp.lambdify(free, sp.sqrt(family.sigma_squared), modules="mpmath")
    with mpmath.workdps(50):
        tiny = mpmath.mpf(10) ** -30
        for point in [mpmath.mpf(0), tiny, 1 - tiny, mpmath.mpf(1)] + [mpmath.mpf(k) / 8 for k in range(1, 8)]:
            assert abs(form(point) - root(point)) < mpmath.mpf(10) ** -45 and mpmath.im(form(point)) == 0, point
    log_snr = family.schedule().log_snr
    assert _zero(log_snr - (sp.log(sa.t) - sp.log(1 - sa.t)))
