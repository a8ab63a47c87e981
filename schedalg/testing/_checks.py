"""Check functions: every identity schedalg relies on, evaluated for one schedule or one pair.

Each check evaluates the package's own compiled functions at a set of times (interior,
near both ends, and the ends themselves) and compares them with references built from
first principles (MATH.md section 1; Damsholt et al. 2026, arXiv 2602.03789):

* compiled vs symbolic: each compiled quantity against the SymPy expression evaluated
  with mpmath at 30 digits at the same float64 time;
* derivatives vs autograd: ``alpha'``, ``sigma'``, ``lambda'`` against torch autograd of
  the compiled ``alpha``, ``sigma``, ``lambda``;
* inverse round trip: ``lambda(t_of_log_snr(lambda(t))) = lambda(t)``, real and inside the
  domain; a closed-form inverse is also checked at 30 digits up to ``|lambda| = 60``;
* finite end values: ``alpha``, ``sigma`` finite at both ends, ``lambda`` finite or the
  infinity of the open end, every quantity finite inside;
* prediction conversions: for random ``(x0, eps)`` and every pair of kinds, converting the
  prediction of one kind must give the other, with the kinds' definitions written here
  independently of the package (x0, eps, ``v = alpha eps - sigma x0``, ``velocity =
  alpha' x0 + sigma' eps``, ``score = -eps / sigma``);
* ``e* = sigma^2 |lambda'| / 2``, and the forward SDE ``f``, ``g^2`` reproduce ``alpha``, ``sigma``.

For a pair (:func:`check_conversion`), ``x^dst_s = c(s) x^src_{tau(s)}``:

* time map: ``lambda_src(tau(s)) = lambda_dst(s)``; scale: ``c alpha(tau) = A``, ``c sigma(tau) = S``
  (pathwise: the same ``(x0, eps)`` gives the same random variable up to ``c``);
* ``tau'``, ``c'`` against central finite differences of the compiled ``tau``, ``c``;
* ``E* = c^2 |tau'| e*(tau)``;
* drift transfer ``b_dst(s, y) = (c'/c) y + c tau' b_src(tau, y/c)`` with ``b`` the velocity the
  package computes from an x0-prediction;
* pathwise SDE conversion: the Ito drift of ``c X_tau`` equals the destination SDE's drift
  with ``E = c^2 |tau'| e(tau)`` (for the ODE, ``e*`` and the given diffusion), the noise
  variance ``2E``; the mapped coefficient's closed form agrees with its numeric
  evaluation; and an Euler-Maruyama pair (source path on ``tau(s_k)``, destination path on
  ``s_k`` driven by :func:`schedalg.compile.time_changed_increments`) converges to the
  converted path as the grid is refined.

All failures of one call are collected and raised together as one :class:`IdentityError`
that lists each failed identity with a point where it fails.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp
import torch

from ..compile import CompiledSchedule, compile_exprs, time_changed_increments
from ..errors import SchedalgError
from ..symbolic import PREDICTION_KINDS, Diffusion, NumericFunction, Schedule, convert, lam, t

__all__ = ["IdentityError", "CheckReport", "check_schedule", "check_conversion", "check_points"]

#: Relative tolerance of compiled float64 values against the 30-digit reference. A stable
#: compiled form is good to ~1e-14; 1e-9 leaves room for the ~100x error amplification of
#: long expressions, while any cancellation or wrong formula shows up as 1e-8 or worse.
RTOL_SYMBOLIC = 1e-9
#: Autograd differentiates the same float64 computation: agreement to ~1e-12 is expected;
#: 1e-7 allows ill-conditioned points (sqrt near an end) and still catches a wrong factor.
RTOL_AUTOGRAD = 1e-7
#: Round trip in lambda: Newton-polished inverses reach ~1e-14 (1 + |lambda|).
RTOL_INVERSE = 1e-9
#: Central differences with h = 1e-5 (width): truncation ~h^2 |f'''| ~ 1e-10, rounding
#: ~eps |f| / h ~ 1e-11 relative; 1e-5 is far above both and far below any formula error.
RTOL_FINITE_DIFFERENCE = 1e-5
#: Identities between compiled quantities in float64 (a few roundings each).
RTOL_IDENTITY = 1e-8


class IdentityError(SchedalgError):
    """One or more identities failed; :attr:`failures` lists ``(identity, where, detail)``."""

    def __init__(self, subject: str, failures: list[tuple[str, str, str]]):
        self.failures = failures
        lines = "\n".join(f"  - {name}: {where}: {detail}" for name, where, detail in failures)
        super().__init__(
            f"every identity schedalg relies on to hold for {subject}",
            f"{len(failures)} failed identit{'y' if len(failures) == 1 else 'ies'}:\n{lines}\n",
            "fix the declaration (or the package code) at the point named; run the check again",
        )


@dataclass
class CheckReport:
    """What a check verified: ``checked`` maps identity -> number of comparisons, ``skipped``
    lists identities that do not apply to this input (with the reason)."""

    subject: str
    checked: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def compare(self, name: str, times: torch.Tensor, got: torch.Tensor, want: torch.Tensor, *,
                rtol: float, atol: float = 0.0, label: str = "t") -> None:
        """Record ``|got - want| <= atol + rtol |want|`` (nan or a non-finite mismatch fails)."""
        got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
        got, want = torch.broadcast_tensors(got, want)
        times = torch.broadcast_to(torch.as_tensor(times, dtype=torch.float64).reshape(-1, *([1] * (got.dim() - 1))),
                                   got.shape) if got.dim() else torch.as_tensor(times, dtype=torch.float64)
        with torch.no_grad():
            same_inf = torch.isinf(got) & (got == want)
            atol = torch.as_tensor(atol, dtype=torch.float64)
            if atol.dim() == 1 and got.dim() > 1:  # one tolerance per time
                atol = atol.reshape(-1, *([1] * (got.dim() - 1)))
            if atol.dim() == 2 and got.dim() == 2 and atol.shape != got.shape:
                atol = torch.broadcast_to(atol, got.shape)
            ok = same_inf | ((got - want).abs() <= atol + rtol * want.abs())
        self.checked[name] = self.checked.get(name, 0) + ok.numel()
        if not bool(ok.all()):
            index = int((~ok).reshape(-1).nonzero()[0])
            g, w = float(got.reshape(-1)[index]), float(want.reshape(-1)[index])
            where = f"{label} = {float(times.reshape(-1)[index]):.17g}"
            rel = abs(g - w) / abs(w) if w not in (0.0,) and math.isfinite(w) else float("nan")
            self.fail(name, where, f"got {g:.17g}, expected {w:.17g} (relative error {rel:.3g}, "
                                   f"{int((~ok).sum())} of {ok.numel()} values fail)")

    def fail(self, name: str, where: str, detail: str) -> None:
        self.checked[name] = self.checked.get(name, 0) + 1
        self.failures.append((name, where, detail))

    def raise_if_failed(self) -> "CheckReport":
        if self.failures:
            raise IdentityError(self.subject, self.failures)
        return self


def _guarded(report: CheckReport, group: str, check: Callable[..., None], *args: Any) -> None:
    """Run one group of checks; an exception inside it is a failure of that group, not a crash."""
    try:
        check(*args)
    except Exception as exc:  # noqa: BLE001 - any error while evaluating is what the report is for
        report.fail(group, "while evaluating", f"{type(exc).__name__}: {exc}")


def check_points(lo: float, hi: float, n: int = 17, extra: Sequence[float] | None = None) -> torch.Tensor:
    """Interior times of ``[lo, hi]``: Chebyshev-clustered, plus ``10^-k`` (width) from both ends
    (k = 2, 4, 6, 8), plus ``extra`` values strictly inside (sorted, float64)."""
    width = hi - lo
    u = 0.5 * (1 - np.cos(np.pi * (np.arange(n) + 0.5) / n))
    near = [10.0 ** -k for k in (2, 4, 6, 8)]
    values = list(lo + width * u) + [lo + width * h for h in near] + [hi - width * h for h in near]
    values += [float(v) for v in (extra or []) if lo < float(v) < hi]
    values = sorted({v for v in values if lo < v < hi})
    return torch.tensor(values, dtype=torch.float64)


def _mp_values(expr: sp.Expr, symbol: sp.Symbol, points: Sequence[Any], dps: int = 30,
               raw: bool = False) -> list[Any] | None:
    """``expr`` at ``points`` with mpmath to ``dps`` correct digits (None when it has numeric
    functions); floats, or mpmath numbers when ``raw`` (complex values with a non-negligible
    imaginary part become nan).

    Cancellation can eat the working digits (``1 - exp(-1e-25)`` keeps 5 of 30), so each
    value is evaluated again with 40 more digits until two evaluations agree to
    ``10^(5 - dps)`` (at most 160 extra digits); the last one is returned."""
    if any(isinstance(f, NumericFunction) for f in expr.atoms(sp.Function)):
        return None
    import mpmath  # a SymPy dependency

    fn = sp.lambdify(symbol, expr, modules="mpmath")

    def at(value: Any, digits: int) -> Any:
        with mpmath.workdps(digits):
            try:
                result = mpmath.mpmathify(fn(mpmath.mpf(value)))
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                return mpmath.nan
            if isinstance(result, mpmath.mpc):
                small = abs(result.imag) <= mpmath.mpf(10) ** (5 - dps) * (1 + abs(result.real))
                result = result.real if small else mpmath.nan
            return +result

    out = []
    for value in points:
        result = at(value, dps)
        for extra in range(40, 161, 40):
            better = at(value, dps + extra)
            if not (mpmath.isfinite(result) and mpmath.isfinite(better)):
                agree = (mpmath.isnan(result) and mpmath.isnan(better)) or result == better
            else:
                agree = abs(better - result) <= mpmath.mpf(10) ** (5 - dps) * abs(better)
            result = better
            if agree:
                break
        with mpmath.workdps(dps):
            out.append(+result if raw else float(result))
    return out


# ---------------------------------------------------------------------------- one schedule


def _reference_basis(kind: str, alpha, sigma, d_alpha, d_sigma):
    """``(a, b)`` with ``prediction = a x0 + b eps`` (the definitions, not the package's table)."""
    one, zero = torch.ones_like(alpha), torch.zeros_like(alpha)
    return {"x0": (one, zero), "eps": (zero, one), "v": (-sigma, alpha), "velocity": (d_alpha, d_sigma),
            "score": (zero, -1 / sigma)}[kind]


def _autograd(fn: Callable[[torch.Tensor], torch.Tensor], tt: torch.Tensor) -> torch.Tensor:
    x = tt.clone().requires_grad_(True)
    y = torch.broadcast_to(fn(x), x.shape)
    if not y.requires_grad:  # a constant
        return torch.zeros_like(tt)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return grad


def check_schedule(schedule: Schedule, *, points: Any = None, predictions: bool = True,
                   raise_on_failure: bool = True) -> CheckReport:
    """Check every identity schedalg relies on for ``schedule`` (see the module docstring).

    ``points`` adds times to the default set (:func:`check_points`: interior, near both ends).
    Returns a :class:`CheckReport`; raises one :class:`IdentityError` listing every failed
    identity with a point where it fails (unless ``raise_on_failure=False``).
    """
    if not isinstance(schedule, Schedule):
        raise SchedalgError("a schedalg.Schedule", type(schedule).__name__, "build it with sa.Schedule(alpha=..., sigma=...)")
    schedule.require_bound("check it")
    report = CheckReport(f"schedule {schedule.name!r}")
    num = schedule.compile()
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    extra = [] if points is None else torch.as_tensor(points, dtype=torch.float64).reshape(-1).tolist()
    tt = check_points(lo, hi, extra=extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _guarded(report, "finite values", _check_finite_and_ends, report, schedule, num, tt)
        _guarded(report, "compiled == symbolic", _check_symbolic, report, schedule, num, tt)
        _guarded(report, "derivatives == autograd", _check_derivatives, report, num, tt)
        _guarded(report, "inverse round trip", _check_inverse, report, schedule, num, tt)
        _guarded(report, "e* and the forward SDE", _check_sde, report, schedule, num, tt)
        if predictions:
            _guarded(report, "prediction conversions", _check_predictions, report, schedule, num, tt)
    return report.raise_if_failed() if raise_on_failure else report


def _check_finite_and_ends(report: CheckReport, schedule: Schedule, num: CompiledSchedule, tt: torch.Tensor) -> None:
    from ..compile import QUANTITIES

    values = num.evaluate(tt, *QUANTITIES)
    for name, value in zip(QUANTITIES, values):
        bad = ~torch.isfinite(value)
        report.checked["finite inside the domain"] = report.checked.get("finite inside the domain", 0) + value.numel()
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            report.fail("finite inside the domain", f"t = {float(tt[i]):.17g}", f"{name} = {float(value[i])}")
    ends = torch.tensor([float(schedule.domain[0]), float(schedule.domain[1])], dtype=torch.float64)
    alpha, sigma, log_snr = num.evaluate_grid(ends, "alpha", "sigma", "log_snr")
    for k in range(2):
        where = f"t = {float(ends[k]):.17g} ({'t_min' if k == 0 else 't_max'})"
        report.checked["finite end values"] = report.checked.get("finite end values", 0) + 3
        for name, value in (("alpha", alpha[k]), ("sigma", sigma[k])):
            if not math.isfinite(float(value)) or float(value) < 0:
                report.fail("finite end values", where, f"{name} = {float(value)}")
        if math.isnan(float(log_snr[k])):
            report.fail("finite end values", where, "log_snr = nan (expected a number or +-inf)")
    # the ends' limits agree with the values just inside (an end value that jumps is wrong)
    # the compiled functions themselves at the ends (what a user calling num.sigma(t) gets)
    plain = num.evaluate(ends, "alpha", "sigma")
    scale = max(float(torch.maximum(alpha.abs().max(), sigma.abs().max())), 1e-300)
    report.compare("finite end values: compiled alpha, sigma at the ends == their limits", ends,
                   torch.stack(plain, -1), torch.stack([alpha, sigma], -1), rtol=0, atol=1e-8 * scale)
    # (10^-12 of the width inside: a square-root end moves by 1e-6 of the scale there)
    width = float(schedule.domain[1]) - float(schedule.domain[0])
    inside = torch.tensor([float(schedule.domain[0]) + 1e-12 * width, float(schedule.domain[1]) - 1e-12 * width],
                          dtype=torch.float64)
    a_in, s_in = num.evaluate(inside, "alpha", "sigma")
    scale = max(float(torch.maximum(a_in.abs().max(), s_in.abs().max())), 1e-300)
    report.compare("end values are the limits", ends, torch.stack([alpha, sigma], -1), torch.stack([a_in, s_in], -1),
                   rtol=0, atol=1e-5 * scale)


def _check_symbolic(report: CheckReport, schedule: Schedule, num: CompiledSchedule, tt: torch.Tensor) -> None:
    from ..compile import QUANTITIES

    points = tt.tolist()
    values = num.evaluate(tt, *QUANTITIES)
    skipped = False
    for name, value in zip(QUANTITIES, values):
        want = _mp_values(getattr(schedule, name), t, points)
        if want is None:
            skipped = True
            continue
        reference = torch.tensor(want, dtype=torch.float64)
        # the float64 evaluation of f(t) can be off by its condition number times the unit
        # roundoff (e.g. cos(pi t / 2) near t = 1: the rounding of pi t / 2 is amplified by
        # 1/(1 - t)); allowed: RTOL_SYMBOLIC |f| + 64 eps |t f'(t)|, plus a floor at the
        # scale of the values for a quantity crossing zero
        slope = _autograd(getattr(num, name), tt).abs()
        finite = reference[torch.isfinite(reference)]
        floor = 1e-12 * float(finite.abs().max()) if finite.numel() else 0.0
        atol = floor + 64 * torch.finfo(torch.float64).eps * tt.abs() * torch.nan_to_num(slope, posinf=0.0)
        report.compare(f"compiled {name} == symbolic (30 digits)", tt, value, reference, rtol=RTOL_SYMBOLIC,
                       atol=atol)
    if skipped:
        report.skipped.append("compiled == symbolic: numeric (tabulated) functions have no 30-digit reference")


def _check_derivatives(report: CheckReport, num: CompiledSchedule, tt: torch.Tensor) -> None:
    for base, derived in (("alpha", "d_alpha"), ("sigma", "d_sigma"), ("log_snr", "d_log_snr")):
        want = _autograd(getattr(num, base), tt)
        got = getattr(num, derived)(tt)
        floor = 1e-12 * float(want.abs().max())
        report.compare(f"{derived} == autograd of {base}", tt, got, want, rtol=RTOL_AUTOGRAD, atol=floor)
    direction = torch.sign(num.d_log_snr(tt))
    report.compare("direction == sign of lambda'", tt, direction, torch.full_like(tt, float(num.direction)), rtol=0)


def _check_inverse(report: CheckReport, schedule: Schedule, num: CompiledSchedule, tt: torch.Tensor) -> None:
    lam_values = num.log_snr(tt)
    back = num.t_of_log_snr(lam_values, check=False)
    lo, hi = num.t_min, num.t_max
    outside = ~(torch.isfinite(back) & (back >= lo) & (back <= hi))
    report.checked["inverse round trip"] = report.checked.get("inverse round trip", 0) + tt.numel()
    if bool(outside.any()):
        i = int(outside.nonzero()[0])
        report.fail("inverse round trip", f"lambda = {float(lam_values[i]):.17g} (t = {float(tt[i]):.17g})",
                    f"t_of_log_snr gave {float(back[i])}, expected a time in [{lo}, {hi}]")
    else:
        # plus what rounding the float64 time moves lambda by (see _rounding_slack)
        (slack,) = _rounding_slack(num, back, "log_snr")
        report.compare("inverse round trip", lam_values, num.log_snr(back), lam_values, rtol=RTOL_INVERSE,
                       atol=RTOL_INVERSE + slack, label="lambda")
    inverse = schedule.inverse_log_snr
    if inverse.kind != "symbolic":
        report.skipped.append("closed-form inverse at 30 digits: the inverse is numeric")
        return
    # the closed form itself (before any polish) on the whole range, |lambda| <= 60
    low, high = schedule.log_snr_range
    grid = np.concatenate([np.linspace(-60, 60, 25), lam_values.numpy()])
    grid = grid[(grid > low) & (grid < high) & np.isfinite(grid)]
    t_exact = _mp_values(inverse.expr, lam, grid.tolist(), dps=80, raw=True)
    if t_exact is None:
        return
    t_back = np.asarray([float(v) for v in t_exact], dtype=np.float64)
    bad = ~(np.isfinite(t_back) & (t_back >= lo - 1e-12) & (t_back <= hi + 1e-12))
    report.checked["closed-form inverse (80 digits)"] = report.checked.get("closed-form inverse (80 digits)", 0) + grid.size
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        report.fail("closed-form inverse (80 digits)", f"lambda = {grid[i]:.17g}",
                    f"{inverse.expr} gives {t_back[i]}, not a real time in [{lo}, {hi}]")
        return
    # lambda(T(lambda)) at 80 digits, no float64 time in between (at |lambda| = 60 a closed
    # form subtracts numbers ~e^60 apart, which 30 digits cannot resolve)
    lam_back = _mp_values(schedule.log_snr, t, t_exact, dps=80)
    report.compare("closed-form inverse (80 digits)", torch.tensor(grid, dtype=torch.float64),
                   torch.tensor(lam_back, dtype=torch.float64), torch.tensor(grid, dtype=torch.float64),
                   rtol=1e-8, atol=1e-8, label="lambda")


def _check_sde(report: CheckReport, schedule: Schedule, num: CompiledSchedule, tt: torch.Tensor) -> None:
    alpha, sigma, d_alpha, d_sigma, d_lam, e_star, f, g2 = num.evaluate(
        tt, "alpha", "sigma", "d_alpha", "d_sigma", "d_log_snr", "e_star", "drift_f", "diffusion_g2")
    report.compare("e* == sigma^2 |lambda'| / 2", tt, e_star, sigma**2 * d_lam.abs() / 2, rtol=RTOL_IDENTITY)
    d = float(num.direction)
    # forward time t_fwd = -d t: d alpha/dt_fwd = f alpha, d sigma^2/dt_fwd = 2 f sigma^2 + g^2
    report.compare("forward SDE mean: alpha' = f alpha", tt, -d * d_alpha, f * alpha, rtol=RTOL_IDENTITY,
                   atol=1e-14 * float(d_alpha.abs().max()))
    # the right side adds two terms that nearly cancel at an end: compare at their scale
    report.compare("forward SDE variance: (sigma^2)' = 2 f sigma^2 + g^2", tt, -d * 2 * sigma * d_sigma,
                   2 * f * sigma**2 + g2, rtol=0, atol=RTOL_IDENTITY * ((2 * f * sigma**2).abs() + g2.abs()))


def _check_predictions(report: CheckReport, schedule: Schedule, num: CompiledSchedule, tt: torch.Tensor) -> None:
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(tt.numel(), 3, generator=generator, dtype=torch.float64)
    eps = torch.randn(tt.numel(), 3, generator=generator, dtype=torch.float64)
    alpha, sigma, d_alpha, d_sigma = (v.reshape(-1, 1) for v in num.evaluate(tt, "alpha", "sigma", "d_alpha", "d_sigma"))
    x = alpha * x0 + sigma * eps
    truth = {}
    for kind in PREDICTION_KINDS:
        a, b = _reference_basis(kind, alpha, sigma, d_alpha, d_sigma)
        truth[kind] = a * x0 + b * eps
    for src in PREDICTION_KINDS:
        a_s, b_s = _reference_basis(src, alpha, sigma, d_alpha, d_sigma)
        det = alpha * b_s - sigma * a_s
        for dst in PREDICTION_KINDS:
            got = num.convert_prediction(truth[src], x, tt, src, dst)
            # conditioning: dst = c_x x + c_p src, computed from (x, src) through 1/det (e.g.
            # x0 = (x - sigma eps)/alpha as alpha -> 0); the rounding of each term is
            # relative to its own size, so compare at the scale of |c_x x| + |c_p src|
            # (reference coefficients by Cramer's rule on the definitions above)
            a_d, b_d = _reference_basis(dst, alpha, sigma, d_alpha, d_sigma)
            c_x, c_p = (a_d * b_s - b_d * a_s) / det, (b_d * alpha - a_d * sigma) / det
            scale = (c_x * x).abs() + (c_p * truth[src]).abs() + truth[dst].abs()
            report.compare(f"prediction conversion {src} -> {dst}", tt, got, truth[dst], rtol=0,
                           atol=RTOL_IDENTITY * scale)


# ---------------------------------------------------------------------------- one pair


def check_conversion(src: Schedule, dst: Schedule, *, diffusion: Diffusion | None = None, points: Any = None,
                     pathwise: bool = True, raise_on_failure: bool = True) -> CheckReport:
    """Check every identity of the conversion ``src -> dst`` (see the module docstring).

    ``diffusion`` is a coefficient on ``src`` (default: ``e*`` and a constant) whose map
    ``E = c^2 |tau'| e(tau)`` is checked too; ``points`` adds destination times.
    ``pathwise=False`` skips the Euler-Maruyama pair (about 0.1 s). Raises one
    :class:`IdentityError` listing every failed identity.
    """
    for name, value in (("src", src), ("dst", dst)):
        if not isinstance(value, Schedule):
            raise SchedalgError(f"{name} as a schedalg.Schedule", type(value).__name__, "pass two schedules")
    report = CheckReport(f"the conversion {src.name!r} -> {dst.name!r}")
    conv = convert(src, dst)
    lo, hi = conv.s_range
    extra = [] if points is None else torch.as_tensor(points, dtype=torch.float64).reshape(-1).tolist()
    ss = check_points(lo, hi, extra=extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _guarded(report, "time map and scale", _check_map, report, conv, ss)
        _guarded(report, "tau' and c'", _check_map_derivatives, report, conv, lo, hi)
        _guarded(report, "E*, drift transfer, SDE conversion", _check_transfer, report, conv, ss, diffusion)
        if pathwise:
            _guarded(report, "pathwise SDE conversion", _check_pathwise, report, conv)
    return report.raise_if_failed() if raise_on_failure else report


def _rounding_slack(num: CompiledSchedule, tau: torch.Tensor, *names: str) -> list[torch.Tensor]:
    """How much each quantity moves when ``tau`` moves by a few float64 spacings (inside the
    domain): the part of an error that comes from representing ``tau`` in float64 at all
    (near an end ``1 - tau`` may be below the spacing of doubles), not from the map."""
    lo, hi = num.t_min, num.t_max
    base = num.evaluate(tau, *names)
    slack = [torch.zeros_like(v) for v in base]
    for direction in (torch.inf, -torch.inf):
        moved = tau
        for _ in range(4):
            moved = torch.nextafter(moved, torch.full_like(moved, direction))
        moved = moved.clamp(lo, hi)
        for k, value in enumerate(num.evaluate(moved, *names)):
            slack[k] = torch.maximum(slack[k], torch.nan_to_num((value - base[k]).abs(), nan=0.0, posinf=torch.inf))
    return slack


def _check_map(report: CheckReport, conv: Any, ss: torch.Tensor) -> None:
    src, dst = conv.src.compile(), conv.dst.compile()
    tau, c, _, _ = conv.compile().evaluate(ss, check=False)
    lam_dst = dst.log_snr(ss)
    a_src, s_src, lam_src = src.evaluate(tau, "alpha", "sigma", "log_snr")
    # tau itself is a float64: however exact the map, rounding tau moves the source's
    # quantities by the slack below; that much is allowed on top of the tolerance
    a_slack, s_slack, lam_slack = _rounding_slack(src, tau, "alpha", "sigma", "log_snr")
    report.compare("time map: lambda_src(tau(s)) == lambda_dst(s)", ss, lam_src, lam_dst,
                   rtol=RTOL_INVERSE, atol=RTOL_INVERSE + lam_slack, label="s")
    a_dst, s_dst = dst.evaluate(ss, "alpha", "sigma")
    generator = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, ss.numel(), 2, generator=generator, dtype=torch.float64)
    col = lambda v: v.reshape(-1, 1)  # noqa: E731
    slack = col(c) * (col(a_slack) * x0.abs() + col(s_slack) * eps.abs())
    # the same (x0, eps) gives the same random variable up to c (an identity of random variables)
    report.compare("pathwise: A x0 + S eps == c (alpha(tau) x0 + sigma(tau) eps)", ss,
                   col(c) * (col(a_src) * x0 + col(s_src) * eps), col(a_dst) * x0 + col(s_dst) * eps,
                   rtol=RTOL_IDENTITY, atol=RTOL_IDENTITY * col(a_dst + s_dst) + slack, label="s")
    report.compare("scale: c alpha(tau) == A and c sigma(tau) == S", ss, torch.stack([c * a_src, c * s_src], -1),
                   torch.stack([a_dst, s_dst], -1), rtol=RTOL_IDENTITY,
                   atol=torch.stack([c * a_slack, c * s_slack], -1), label="s")


def _check_map_derivatives(report: CheckReport, conv: Any, lo: float, hi: float) -> None:
    compiled = conv.compile()
    h = 1e-5 * (hi - lo)
    ss = check_points(lo + 2 * h, hi - 2 * h, n=9)
    ss = ss[(ss - lo > 0.01 * (hi - lo)) & (hi - ss > 0.01 * (hi - lo))]  # away from singular ends
    _, _, d_tau, d_c = compiled.evaluate(ss, check=False)
    plus, minus = compiled.evaluate(ss + h, check=False), compiled.evaluate(ss - h, check=False)
    fd_tau, fd_c = (plus[0] - minus[0]) / (2 * h), (plus[1] - minus[1]) / (2 * h)
    report.compare("tau' == finite difference of tau", ss, d_tau, fd_tau, rtol=RTOL_FINITE_DIFFERENCE,
                   atol=1e-9 * float(fd_tau.abs().max()), label="s")
    report.compare("c' == finite difference of c", ss, d_c, fd_c, rtol=RTOL_FINITE_DIFFERENCE,
                   atol=1e-9 * float(fd_c.abs().max() + plus[1].abs().max() / (hi - lo)), label="s")


def _drift(num: CompiledSchedule, x0_hat: torch.Tensor, y: torch.Tensor, tt: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``b + d e s`` from an x0-prediction, with the package's prediction conversions."""
    b = num.convert_prediction(x0_hat, y, tt, "x0", "velocity")
    score = num.convert_prediction(x0_hat, y, tt, "x0", "score")
    return b + float(num.direction) * e.reshape(-1, 1) * score


def _check_transfer(report: CheckReport, conv: Any, ss: torch.Tensor, diffusion: Diffusion | None) -> None:
    src, dst = conv.src.compile(), conv.dst.compile()
    lo, hi = conv.s_range
    ss = ss[(ss - lo > 1e-3 * (hi - lo)) & (hi - ss > 1e-3 * (hi - lo))]  # e* and c' blow up at open ends
    tau, c, d_tau, d_c = conv.compile().evaluate(ss, check=False)
    # E* = c^2 |tau'| e*(tau)
    report.compare("E* == c^2 |tau'| e*(tau)", ss, dst.e_star(ss), c**2 * d_tau.abs() * src.e_star(tau),
                   rtol=1e-7, label="s")
    generator = torch.Generator().manual_seed(2)
    x0_hat = torch.randn(ss.numel(), 2, generator=generator, dtype=torch.float64)
    col = lambda v: v.reshape(-1, 1)  # noqa: E731
    a_dst, s_dst = dst.evaluate(ss, "alpha", "sigma")
    y = col(a_dst) * x0_hat + col(s_dst) * torch.randn(ss.numel(), 2, generator=generator, dtype=torch.float64)
    coefficients = [("ODE (e = 0)", Diffusion.ode(conv.src)), ("optimal SDE (e = e*)", Diffusion.optimal(conv.src)),
                    ("constant e = 1/2", Diffusion.constant(conv.src, sp.Rational(1, 2)))]
    if diffusion is not None:
        coefficients.append((f"given e = {diffusion.expr}", diffusion))
    for label, e in coefficients:
        mapped = e.to(conv)
        e_src = e.evaluate(tau)
        big_e = mapped.evaluate(ss)
        name = "drift transfer" if e.kind == "ode" else f"pathwise SDE conversion, {label}"
        report.compare(f"{name}: E == c^2 |tau'| e(tau)", ss, big_e, c**2 * d_tau.abs() * e_src, rtol=1e-7,
                       atol=1e-14, label="s")
        ito = col(d_c / c) * y + col(c * d_tau) * _drift(src, x0_hat, y / col(c), tau, e_src)
        want = _drift(dst, x0_hat, y, ss, big_e)
        report.compare(f"{name}: drift of c X_tau == destination drift", ss, ito, want, rtol=1e-6,
                       atol=1e-9 * float(want.abs().max()), label="s")
        if e.kind == "expression" or mapped.mapped_from is not None:
            closed = compile_exprs([mapped.expr], [t], name="mapped_diffusion")(ss)[0]
            report.compare(f"{name}: closed form of E == its numeric map", ss, closed, big_e, rtol=1e-7,
                           atol=1e-12 * float(big_e.abs().max()), label="s")


def _gaussian_x0(num: CompiledSchedule, mean: float, var: float):
    """The exact posterior mean of x0 for data N(mean, var): the same law in every schedule,
    so predictors carry over between schedules exactly."""
    def x0_hat(y: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        alpha, sigma = num.evaluate(tt.reshape(1), "alpha", "sigma")
        return mean + alpha * var * (y - alpha * mean) / (alpha**2 * var + sigma**2)
    return x0_hat


def _euler_maruyama(num: CompiledSchedule, grid: torch.Tensor, x: torch.Tensor, e: torch.Tensor,
                    d_w: torch.Tensor, x0_hat) -> torch.Tensor:
    for k in range(grid.numel() - 1):
        dt = grid[k + 1] - grid[k]
        drift = _drift(num, x0_hat(x, grid[k]), x, grid[k].reshape(1), e[k].reshape(1))
        x = x + drift * dt + torch.sqrt(2 * e[k]) * d_w[k]
    return x


def _check_pathwise(report: CheckReport, conv: Any) -> None:
    """Source SDE on ``tau(s_k)``, destination SDE on ``s_k``, coupled noise: the gap between
    ``c(s_N) X_{tau(s_N)}`` and ``Y_{s_N}`` must shrink (Euler-Maruyama with additive noise
    has strong order 1: 4x finer steps, about 4x smaller gap; at least 2x is required) on an
    interior interval (e* is singular at Gaussian-base ends)."""
    src, dst = conv.src.compile(), conv.dst.compile()
    lo, hi = conv.s_range
    start, end = (lo, hi) if conv.dst.direction > 0 else (hi, lo)
    s_a, s_b = start + 0.2 * (end - start), end - 0.2 * (end - start)
    optimal = Diffusion.optimal(conv.src)
    gaps = []
    for n in (50, 200):
        s_grid = torch.linspace(s_a, s_b, n + 1, dtype=torch.float64)
        tau = conv.compile().time(s_grid, check=False)
        c = conv.compile().scale(s_grid, check=False)
        generator = torch.Generator().manual_seed(3)
        fine = torch.randn(n, 256, generator=generator, dtype=torch.float64)
        d_w_src = fine * (tau[1:] - tau[:-1]).abs().sqrt().reshape(-1, 1)
        d_w_dst = time_changed_increments(conv, s_grid, d_w_src)
        x_start = torch.randn(256, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        x_start = x_start * float(src.sigma(tau[:1])) + float(src.alpha(tau[:1])) * 0.5
        e_src = optimal.evaluate(tau)
        e_dst = optimal.to(conv).evaluate(s_grid)
        x_end = _euler_maruyama(src, tau, x_start.reshape(-1, 1), e_src, d_w_src.unsqueeze(-1), _gaussian_x0(src, 0.5, 0.3))
        y_end = _euler_maruyama(dst, s_grid, c[0] * x_start.reshape(-1, 1), e_dst, d_w_dst.unsqueeze(-1),
                                _gaussian_x0(dst, 0.5, 0.3))
        spread = float((c[-1] * x_end).std()) or 1.0
        gaps.append(float((y_end - c[-1] * x_end).abs().mean()) / spread)
    report.checked["pathwise SDE conversion (Euler-Maruyama pair)"] = 2
    if not (gaps[1] < gaps[0] / 2 or gaps[1] < 1e-10):
        report.fail("pathwise SDE conversion (Euler-Maruyama pair)", f"s in [{s_a:.6g}, {s_b:.6g}]",
                    f"relative gap {gaps[0]:.3g} at 50 steps, {gaps[1]:.3g} at 200 (expected ~4x smaller)")
