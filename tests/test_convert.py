"""Schedule conversion: x^dst_s = c(s) x^src_tau(s), tau', c', identity, composition, inverse, errors."""

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import schedalg as sa
from schedalg.errors import DomainError, UnboundSymbolError
from schedalg.symbolic import ComposedConversion

L = sa.schedules.LIBRARY

PAIRS = [("linear", "cosine"), ("linear", "vp_linear"), ("vp_linear", "edm"), ("linear", "brownian_bridge"),
         ("cosine", "ve"), ("sub_vp", "linear"), ("linear", "sub_vp"), ("trigonometric", "vp_cosine"),
         ("brownian_bridge", "cosine"), ("edm", "polynomial_convex")]


def _conv(a, b):
    return sa.convert(L[a](), L[b]())


def _interior(conv, u):
    """Interior destination times from u in (0, 1) (away from the ends by 1e-3 of the range)."""
    lo, hi = conv.s_range
    return torch.as_tensor(lo + (hi - lo) * (1e-3 + (1 - 2e-3) * u), dtype=torch.float64)


def test_public_face():
    """DESIGN.md: conv.time(s), conv.scale(s) are torch tensors; linear source has tau = A/(A+S), c = A+S."""
    cosine = sa.Schedule(alpha=sp.cos(sp.pi * sa.t / 2), sigma=sp.sin(sp.pi * sa.t / 2))
    conv = sa.convert(sa.schedules.linear(), cosine)
    s = torch.linspace(0, 1, 11, dtype=torch.float64)
    tau, c = conv.time(s), conv.scale(s)
    assert isinstance(tau, torch.Tensor) and tau.dtype == torch.float64 and tau.shape == s.shape
    a, sg = torch.cos(torch.pi * s / 2), torch.sin(torch.pi * s / 2)
    torch.testing.assert_close(tau, a / (a + sg), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(c, a + sg, rtol=1e-13, atol=1e-15)
    assert conv.kind == "symbolic"
    assert "def " in conv.compile().source()


@settings(max_examples=15)
@given(pair=st.sampled_from(PAIRS), u=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_same_random_variable(pair, u, seed):
    """A(s) x0 + S(s) eps == c(s) (alpha(tau) x0 + sigma(tau) eps) for the same (x0, eps)."""
    conv = _conv(*pair)
    s = _interior(conv, u).reshape(1)
    tau, c = conv.time(s), conv.scale(s)
    gen = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    a_d, s_d = conv.dst.compile().evaluate(s, "alpha", "sigma")
    a_s, s_s = conv.src.compile().evaluate(tau, "alpha", "sigma")
    torch.testing.assert_close(a_d * x0 + s_d * eps, c * (a_s * x0 + s_s * eps), rtol=1e-10, atol=1e-12)
    lam_s = conv.src.compile().log_snr(tau)
    lam_d = conv.dst.compile().log_snr(s)
    torch.testing.assert_close(lam_s, lam_d, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pair", PAIRS)
def test_derivatives_match_finite_differences(pair):
    """tau'(s) and c'(s) agree with central differences of tau and c."""
    conv = _conv(*pair)
    s = _interior(conv, torch.linspace(0.05, 0.95, 9, dtype=torch.float64))
    h = 1e-6 * (conv.s_range[1] - conv.s_range[0])
    tau, c, d_tau, d_c = conv.compile().evaluate(s)
    fd_tau = (conv.time(s + h) - conv.time(s - h)) / (2 * h)
    fd_c = (conv.scale(s + h) - conv.scale(s - h)) / (2 * h)
    torch.testing.assert_close(d_tau, fd_tau, rtol=2e-6, atol=1e-8 * float(d_tau.abs().max()))
    scale = max(float(d_c.abs().max()), float(c.abs().max()) / (conv.s_range[1] - conv.s_range[0]))
    torch.testing.assert_close(d_c, fd_c, rtol=2e-6, atol=1e-8 * scale)


def test_derivatives_match_autograd():
    """For a closed-form tau, autograd through the compiled functions agrees with tau' and c'."""
    conv = _conv("linear", "cosine")
    s = torch.linspace(0.05, 0.95, 7, dtype=torch.float64, requires_grad=True)
    tau, c = conv.time(s), conv.scale(s)
    (g_tau,) = torch.autograd.grad(tau.sum(), s)
    (g_c,) = torch.autograd.grad(conv.scale(s).sum(), s)
    torch.testing.assert_close(g_tau, conv.d_time(s.detach()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_c, conv.d_scale(s.detach()), rtol=1e-12, atol=1e-12)
    assert c.shape == s.shape


@pytest.mark.parametrize("name", ["linear", "cosine", "sub_vp", "edm"])
def test_identity(name):
    """convert(X, X) is the identity: tau = s, c = 1, tau' = 1, c' = 0."""
    conv = sa.convert(L[name](), L[name]())
    assert conv.kind == "identity"
    s = _interior(conv, torch.linspace(0, 1, 9, dtype=torch.float64))
    tau, c, d_tau, d_c = conv.compile().evaluate(s)
    torch.testing.assert_close(tau, s)
    torch.testing.assert_close(c, torch.ones_like(s))
    torch.testing.assert_close(d_tau, torch.ones_like(s))
    torch.testing.assert_close(d_c, torch.zeros_like(s))


TRIPLES = [("linear", "cosine", "vp_linear"), ("sub_vp", "linear", "edm"), ("cosine", "brownian_bridge", "linear"),
           ("vp_linear", "ve", "trigonometric")]


@pytest.mark.parametrize("triple", TRIPLES)
def test_composition_equals_direct(triple):
    """convert(A, B).then(convert(B, C)) == convert(A, C): tau, c, tau', c'."""
    a, b, c = triple
    composed = _conv(a, b).then(_conv(b, c))
    direct = _conv(a, c)
    assert isinstance(composed, ComposedConversion)
    s = _interior(composed, torch.linspace(0.02, 0.98, 11, dtype=torch.float64))
    for got, want in zip(composed.compile().evaluate(s), direct.compile().evaluate(s)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pair", PAIRS)
def test_round_trip_is_identity(pair):
    """convert(A, B) then its inverse convert(B, A) is the identity on the shared range."""
    conv = _conv(*pair)
    back = conv.inverse()
    assert (back.src.name, back.dst.name) == (pair[1], pair[0])
    trip = back.then(conv)  # B -> A -> B
    s = _interior(trip, torch.linspace(0.02, 0.98, 11, dtype=torch.float64))
    tau, c, d_tau, d_c = trip.compile().evaluate(s)
    torch.testing.assert_close(tau, s, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c, torch.ones_like(s), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d_tau, torch.ones_like(s), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(d_c, torch.zeros_like(s), rtol=0, atol=1e-7)


def test_composed_symbolic_forms():
    """The composed closed forms (by substitution) evaluate like the compiled composition."""
    composed = _conv("linear", "cosine").then(_conv("cosine", "brownian_bridge"))
    fn = sp.lambdify(sa.symbolic.s, [composed.tau, composed.c, composed.d_tau, composed.d_c], "mpmath")
    s = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    got = composed.compile().evaluate(s)
    for k, value in enumerate(s.tolist()):
        want = [float(v) for v in fn(value)]
        torch.testing.assert_close(torch.stack([g[k] for g in got]), torch.tensor(want, dtype=torch.float64),
                                   rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- random schedules


@st.composite
def power_schedules(draw):
    """alpha = t^p, sigma = (1 - t)^q: lambda = 2p log t - 2q log(1 - t) strictly increasing."""
    p = draw(st.sampled_from([sp.Rational(1, 2), 1, sp.Rational(3, 2), 2, 3]))
    q = draw(st.sampled_from([sp.Rational(1, 2), 1, 2]))
    return sa.Schedule(alpha=sa.t**p, sigma=(1 - sa.t) ** q, name=f"power({p},{q})")


@settings(max_examples=5)
@given(src=power_schedules(), dst=st.sampled_from(["cosine", "vp_linear", "brownian_bridge", "edm"]),
       u=st.floats(0, 1))
def test_random_schedules(src, dst, u):
    """Round trip and the random-variable identity for randomly drawn source schedules."""
    conv = sa.convert(src, L[dst]())
    s = _interior(conv, u).reshape(1)
    tau, c = conv.time(s), conv.scale(s)
    a_d, s_d = conv.dst.compile().evaluate(s, "alpha", "sigma")
    a_s, s_s = src.compile().evaluate(tau, "alpha", "sigma")
    torch.testing.assert_close(c * a_s, a_d, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(c * s_s, s_d, rtol=1e-9, atol=1e-12)
    back = conv.inverse()
    torch.testing.assert_close(back.time(tau), s, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(back.scale(tau) * c, torch.ones_like(c), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- ends


def test_point_mass_and_data_ends():
    """Exact end values where closed forms read 0/0: linear -> brownian_bridge at s = 0 and 1."""
    conv = _conv("linear", "brownian_bridge")
    tau, c, d_tau, d_c = conv.compile().evaluate(torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(tau, torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(c, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.isinf(d_tau).all()  # tau = sqrt(s)/(sqrt(s) + sqrt(1 - s)) has infinite slope at both ends
    conv = _conv("cosine", "linear")  # tau = 2 atan((1 - s)/s)/pi: tau' = -2/pi at both ends
    d_tau = conv.d_time(torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(d_tau, torch.full((2,), -2 / torch.pi, dtype=torch.float64), rtol=1e-5, atol=0)


def test_dtype_follows_input():
    conv = _conv("linear", "cosine")
    s32 = torch.linspace(0.1, 0.9, 5, dtype=torch.float32)
    assert conv.time(s32).dtype == torch.float32
    torch.testing.assert_close(conv.time(s32), conv.time(s32.double()).float())


# ---------------------------------------------------------------- errors


def test_unreachable_time_is_refused():
    """ve covers lambda in [-7.8, 9.2]; linear at s = 1e-6 has lambda = -27.6."""
    conv = sa.convert(sa.schedules.ve(), sa.schedules.linear())
    with pytest.raises(DomainError) as info:
        conv.time(torch.tensor([1e-6, 0.5], dtype=torch.float64))
    message = str(info.value)
    assert "'ve' covers" in message and "'linear' covers" in message and "Fix:" in message
    lo, hi = conv.s_range
    assert 0 < lo < hi < 1
    conv.time(torch.tensor([lo, hi], dtype=torch.float64))  # the ends of the range are fine


def test_disjoint_ranges_are_refused():
    low = sa.schedules.ve(sigma_min=10.0, sigma_max=50.0)
    high = sa.schedules.ve(sigma_min=0.01, sigma_max=1.0)
    with pytest.raises(DomainError, match="ranges overlap"):
        sa.convert(low, high)


def test_unbound_schedule_is_refused():
    beta = sp.Symbol("beta_max", positive=True)
    with pytest.raises(UnboundSymbolError):
        sa.convert(sa.schedules.vp_linear(beta_max=beta), sa.schedules.linear())


def test_composition_mismatch_is_refused():
    with pytest.raises(DomainError, match="share the middle schedule"):
        _conv("linear", "cosine").then(_conv("linear", "edm"))


def test_numeric_fallback_reports_kind():
    """sub_vp has no closed-form inverse log-SNR: tau is numeric and still exact to float64."""
    conv = _conv("sub_vp", "linear")
    assert conv.kind == "numeric"
    assert conv.tau.atoms(sa.symbolic.NumericFunction)
    s = torch.linspace(0.1, 0.9, 9, dtype=torch.float64)
    torch.testing.assert_close(conv.src.compile().log_snr(conv.time(s)), conv.dst.compile().log_snr(s),
                               rtol=1e-11, atol=1e-11)


def test_every_library_pair():
    """Every pair of library schedules converts where the log-SNR ranges overlap (all do), and
    A x0 + S eps = c (alpha(tau) x0 + sigma(tau) eps) holds at interior points of the shared range."""
    gen = torch.Generator().manual_seed(12)
    x0, eps = torch.randn(2, 1, 3, generator=gen, dtype=torch.float64)
    u = torch.linspace(0, 1, 5, dtype=torch.float64)
    for a in L:
        for b in L:
            conv = _conv(a, b)
            s = _interior(conv, u)
            tau, c = conv.compile().evaluate(s)[:2]
            a_d, s_d = conv.dst.compile().evaluate(s, "alpha", "sigma")
            a_s, s_s = conv.src.compile().evaluate(tau, "alpha", "sigma")
            lhs = a_d[:, None] * x0 + s_d[:, None] * eps
            rhs = c[:, None] * (a_s[:, None] * x0 + s_s[:, None] * eps)
            torch.testing.assert_close(lhs, rhs, rtol=1e-9, atol=1e-12, msg=lambda m, a=a, b=b: f"{a}->{b}: {m}")


def test_one_sided_limit():
    """Converging, diverging and noisy-at-the-end sequences f(end + 10^-k)."""
    from schedalg.symbolic import one_sided_limit

    h = 10.0 ** -torch.arange(3, 13, dtype=torch.float64)
    assert abs(one_sided_limit(2 + h) - 2) < 1e-11
    assert one_sided_limit(1 / h.sqrt()) == float("inf")
    assert one_sided_limit(-1 / h) == float("-inf")
    noisy = 0.5 + h + torch.tensor([0.0] * 7 + [1e-5, -1e-4, 1e-3], dtype=torch.float64)  # rounding takes over
    assert abs(one_sided_limit(noisy) - 0.5) < 1e-8
    assert one_sided_limit(torch.tensor([1.0, float("nan")])) == 1.0


def test_tabulated_source():
    """A DDPM table (numeric log-SNR) converts to linear: numeric tau, same random variable."""
    table = sa.schedules.from_betas(sa.schedules.discrete_betas("linear", n=1000))
    conv = sa.convert(table, sa.schedules.linear())
    assert conv.kind == "numeric"
    s = _interior(conv, torch.linspace(0, 1, 9, dtype=torch.float64))
    tau, c = conv.time(s), conv.scale(s)
    a_s, s_s = table.compile().evaluate(tau, "alpha", "sigma")
    torch.testing.assert_close(c * a_s, s, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(c * s_s, 1 - s, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------- end values: the one rule


def _mp_reference(conv, s_end, offset):
    """(tau, c, tau', c') at s = s_end + offset at 60 digits: tau by bisection on lambda_src(tau) = lambda_dst(s),
    then the conversion's two-argument forms (independent of the package's end-value code)."""
    import mpmath

    from schedalg.symbolic import TAU

    src, dst = conv.src, conv.dst
    lam_src = sp.lambdify(sa.t, src.log_snr, modules="mpmath")
    lam_dst = sp.lambdify(sa.t, dst.log_snr, modules="mpmath")
    forms = [sp.lambdify((sa.symbolic.s, TAU), f, modules="mpmath")
             for f in (conv.c_of_tau, conv.d_tau_of_tau, conv.d_c_of_tau)]
    with mpmath.workdps(60):
        x = mpmath.mpf(s_end) + mpmath.mpf(offset)
        target = lam_dst(x)
        lo, hi = mpmath.mpf(sp.N(src.domain[0], 70)), mpmath.mpf(sp.N(src.domain[1], 70))
        for _ in range(300):
            mid = (lo + hi) / 2
            if (lam_src(mid) > target) == (src.direction > 0):
                hi = mid
            else:
                lo = mid
        tau = (lo + hi) / 2
        return [float(tau)] + [float(f(x, tau)) for f in forms]


@pytest.mark.parametrize("pair", [("cosine", "linear"), ("linear", "cosine"), ("vp_cosine", "linear")])
def test_conversion_end_values_follow_the_one_rule(pair):
    """At destination ends of infinite log-SNR the compiled forms read 0/0 (tau' = lambda_dst'/lambda_src'
    is inf/inf). The compiled conversion returns there exactly what the one end-value rule
    (schedalg.symbolic.conversion_end_values) gives, and that agrees with a 60-digit evaluation
    at 1e-25 from the end: to 1e-12 (the rule's numeric limit is accurate to about its last
    step, 1e-40; a closed form's limit is exact; 1e-25 moves a smooth quantity by ~1e-25 and
    a square-root one by ~1e-12)."""
    from schedalg.symbolic import conversion_end_values

    conv = sa.convert(L[pair[0]](), L[pair[1]]())
    ends = conversion_end_values(conv)
    assert ends, pair
    compiled = conv.compile()
    for s_end, rule in ends:
        got = [float(v[0]) for v in compiled.evaluate(torch.tensor([s_end], dtype=torch.float64))]
        assert got == list(rule), (pair, s_end)
        inward = 1e-25 if s_end == float(conv.dst.domain[0]) else -1e-25
        reference = _mp_reference(conv, s_end, inward)
        for name, value, want in zip(("tau", "c", "tau'", "c'"), rule, reference):
            assert abs(value - want) <= 1e-12 * (1 + abs(want)), (pair, s_end, name, value, want)
