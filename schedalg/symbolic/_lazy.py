"""Lazy schedule families: schedules whose sampling drift vanishes for Gaussian data.

Damsholt, Frellsen & Ditlevsen 2026 (arXiv 2602.03789), section on lazy schedules;
schedalg's MATH.md section 2. For standardized data ``x ~ N(0, 1)`` and a schedule
``x_t = alpha x + sigma eps`` (``t`` running noise -> data) the posterior means are

    x0_hat = alpha y / (alpha^2 + sigma^2),      eps_hat = sigma y / (alpha^2 + sigma^2)

(Gaussian conditioning, derived below from the joint covariance), and the drift of the
SDE family ``dY = [b + e s] dt + sqrt(2 e) dW`` with ``b = alpha' x0 + sigma' eps`` and
``s = -eps / sigma`` is

    drift(y) = (alpha alpha' + sigma sigma' - e) y / (alpha^2 + sigma^2).

Setting it to zero for every ``y`` is one ODE per choice of ``e``. Its left side is
homogeneous of degree one in ``d/dt``, so the condition is invariant under time
changes: it is solved with ``alpha`` itself as the time (``alpha = a``,
``sigma = S(a)``), and every monotone reparameterization ``a = a(t)`` of the solution
is again lazy. SymPy's ``dsolve`` gives

* ``e = 0`` (probability-flow ODE): ``S^2 = C - a^2``: ``alpha^2 + sigma^2`` constant, the
  variance-preserving family; with ``alpha = 1`` at the data end ``C = 1``, i.e.
  ``alpha = sin(theta)``, ``sigma = cos(theta)`` for any increasing angle ``theta(t)``
  from 0 to pi/2;
* ``e = e* = sigma^2 lambda' / 2`` (the optimal SDE): ``S^2 = a (C - a)``; with ``C = 1``
  the point-mass family ``sigma^2 = alpha (1 - alpha)`` (the Brownian bridge for
  ``alpha = t``), any increasing ``alpha(t)`` from 0 to 1.

Nothing here is typed in: :func:`derive_lazy_family` recomputes the families from the
drift (cached), and ``proofs/prove_lazy.py`` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy as sp

from ..errors import SchedalgError
from ._schedule import Schedule
from ._symbols import t

__all__ = ["LAZY_KINDS", "LazyFamily", "gaussian_posterior", "sde_drift", "gaussian_drift_coefficient",
           "derive_lazy_family", "ode_family", "point_mass_family"]

#: The two sampling dynamics with a lazy family: the ODE (e = 0) and the optimal SDE (e = e*).
LAZY_KINDS = ("ode", "optimal_sde")

#: The free variable of a family: the data coefficient ``alpha`` used as the time.
a = sp.Symbol("a", positive=True)
#: The free angle of the ODE family, ``alpha = sin(theta)``.
theta = sp.Symbol("theta", positive=True)


def gaussian_posterior(alpha: sp.Expr, sigma: sp.Expr, y: sp.Expr,
                       mean: sp.Expr = sp.Integer(0), var: sp.Expr = sp.Integer(1)) -> tuple[sp.Expr, sp.Expr]:
    """``(E[x | x_t = y], E[eps | x_t = y])`` for ``x ~ N(mean, var)``, ``x_t = alpha x + sigma eps``.

    Derived from the joint Gaussian: ``E[u | y] = E[u] + Cov(u, y) (y - E[y]) / Var(y)`` with
    ``Cov(x, y) = alpha var``, ``Cov(eps, y) = sigma``, ``Var(y) = alpha^2 var + sigma^2``.
    """
    var_y = alpha**2 * var + sigma**2
    centred = y - alpha * mean
    return mean + alpha * var * centred / var_y, sigma * centred / var_y


def sde_drift(alpha: sp.Expr, sigma: sp.Expr, x0: sp.Expr, eps: sp.Expr, e: sp.Expr,
              time: sp.Symbol = t) -> sp.Expr:
    """``b + e s`` with ``b = alpha' x0 + sigma' eps`` and ``s = -eps / sigma`` (generation time)."""
    return sp.diff(alpha, time) * x0 + sp.diff(sigma, time) * eps - e * eps / sigma


def e_star(alpha: sp.Expr, sigma: sp.Expr, time: sp.Symbol = t) -> sp.Expr:
    """``e* = sigma^2 lambda' / 2`` with ``lambda = 2 log alpha - 2 log sigma`` (time running noise -> data)."""
    return sigma**2 * sp.diff(2 * sp.log(alpha) - 2 * sp.log(sigma), time) / 2


def gaussian_drift_coefficient(alpha: sp.Expr, sigma: sp.Expr, kind: str, time: sp.Symbol = t) -> sp.Expr:
    """``k`` with ``drift(y) = k y`` for standardized Gaussian data, for ``kind`` in :data:`LAZY_KINDS`."""
    _check_kind(kind)
    y = sp.Symbol("y", real=True)
    x0, eps = gaussian_posterior(alpha, sigma, y)
    e = sp.Integer(0) if kind == "ode" else e_star(alpha, sigma, time)
    return sp.cancel(sp.together(sde_drift(alpha, sigma, x0, eps, e, time) / y))


@dataclass(frozen=True)
class LazyFamily:
    """A lazy schedule family, derived by :func:`derive_lazy_family`.

    ``sigma_squared`` is ``sigma^2`` as a function of ``alpha = a`` (symbol :data:`a`);
    ``alpha_form`` / ``sigma_form`` give the family in its free monotone function
    ``free`` (``theta`` for the ODE family, ``a`` for the point-mass one);
    ``condition`` is the ODE in ``S(a) = sigma`` that was solved, ``general`` its general
    solution (with the constant ``C1``), ``constant`` the value fixed by ``alpha = 1`` at
    ``sigma = 0`` (the data end), and ``free_range`` the range the free function runs
    over from the noise end to the data end.
    """

    kind: str
    condition: sp.Expr
    general: sp.Expr
    constant: sp.Expr
    sigma_squared: sp.Expr
    free: sp.Symbol
    alpha_form: sp.Expr
    sigma_form: sp.Expr
    free_range: tuple[sp.Expr, sp.Expr]

    def schedule(self, free: Any = None, *, domain: tuple[Any, Any] = (0, 1), name: str | None = None) -> Schedule:
        """The family's member for the free function ``free(t)`` (an expression in :data:`schedalg.t`).

        ``free`` must increase from ``free_range[0]`` at ``domain[0]`` (noise) to
        ``free_range[1]`` at ``domain[1]`` (data); by default it is linear in ``t``.
        For the ODE family ``free = pi t / 2`` gives the trigonometric interpolant, for the
        point-mass family ``free = t`` the Brownian bridge.
        """
        lo, hi = self.free_range
        t0, t1 = (sp.sympify(domain[0]), sp.sympify(domain[1]))
        expr = lo + (hi - lo) * (t - t0) / (t1 - t0) if free is None else sp.sympify(free)
        ends = [sp.simplify(expr.subs(t, end)) for end in (t0, t1)]
        if any(sp.simplify(v - w) != 0 for v, w in zip(ends, (lo, hi))):
            raise SchedalgError(
                f"a free function of t running from {lo} at t = {t0} to {hi} at t = {t1} "
                f"(the {self.kind} lazy family, noise to data)",
                f"{expr} with values {ends[0]} and {ends[1]} at the ends",
                f"rescale it, e.g. {lo} + ({hi} - {lo}) * g(t) with g(t0) = 0, g(t1) = 1 and g increasing",
            )
        return Schedule(alpha=self.alpha_form.subs(self.free, expr), sigma=self.sigma_form.subs(self.free, expr),
                        domain=(t0, t1), name=name or f"lazy_{self.kind}")


def _check_kind(kind: str) -> None:
    if kind not in LAZY_KINDS:
        raise SchedalgError(f"a lazy family kind among {LAZY_KINDS}", repr(kind),
                            "use 'ode' (variance preserving) or 'optimal_sde' (point mass)")


@lru_cache(maxsize=None)
def derive_lazy_family(kind: str) -> LazyFamily:
    """Solve ``drift = 0`` for Gaussian data with SymPy and return the lazy family of ``kind``.

    Steps: the drift coefficient with ``alpha = a`` and unknown ``sigma = S(a)``; its
    numerator (the condition) solved by ``dsolve``; the positive branch; the constant
    fixed by ``S(1) = 0`` (data reached with ``alpha = 1``); and, for the ODE family, the
    angle form ``alpha = sin(theta)``, ``sigma = cos(theta)``, accepted only after SymPy
    verifies it solves ``sigma^2 = sigma_squared(alpha)``.
    """
    _check_kind(kind)
    S = sp.Function("S")
    coefficient = gaussian_drift_coefficient(a, S(a), kind, time=a)
    condition = sp.numer(sp.together(coefficient))
    solutions = sp.dsolve(condition, S(a))
    solutions = solutions if isinstance(solutions, list) else [solutions]
    general = _positive_branch(solutions)
    c1 = sp.Symbol("C1")
    (constant,) = sp.solve(general.subs(a, 1), c1)
    sigma_squared = sp.expand(sp.simplify((general**2).subs(c1, constant)))
    if kind == "ode":
        alpha_form, sigma_form = sp.sin(theta), sp.cos(theta)
        residual = sp.simplify(sigma_form**2 - sigma_squared.subs(a, alpha_form))
        if residual != 0:  # pragma: no cover - a SymPy regression would land here
            raise SchedalgError("the angle form to solve the derived ODE family", f"residual {residual}")
        return LazyFamily(kind, condition, general, constant, sigma_squared, theta, alpha_form, sigma_form,
                          (sp.Integer(0), sp.pi / 2))
    return LazyFamily(kind, condition, general, constant, sigma_squared, a, a, _root_of_factors(sigma_squared),
                      (sp.Integer(0), sp.Integer(1)))


def _root_of_factors(square: sp.Expr) -> sp.Expr:
    """``sqrt(square)`` on ``0 < a < 1`` as a product of square roots of its factors, each
    positive there (``a (1 - a)`` -> ``sqrt(a) sqrt(1 - a)``).

    Equal to ``sqrt(square)`` on (0, 1) (each factor and the constant are positive there;
    ``proofs/prove_lazy.py``), and its log-SNR ``2 log a - log a - log(1 - a)`` expands to
    ``log a - log(1 - a)``: ``-inf`` at ``a = 0`` in float64, where ``log(a^2) - log(a - a^2)``
    reads ``-inf + inf``.
    """
    coefficient, factors = sp.factor_list(sp.expand(square), a)
    root = sp.Integer(1)
    for factor, power in factors:
        if factor.subs(a, sp.Rational(1, 2)) < 0:
            factor, coefficient = -factor, coefficient * (-1) ** power
        root *= sp.sqrt(factor) ** power
    if not coefficient > 0:  # pragma: no cover - sigma^2 > 0 inside (0, 1) by construction
        raise SchedalgError("sigma^2 > 0 for 0 < alpha < 1", f"{square}")
    return sp.sqrt(coefficient) * root


def _positive_branch(solutions: list[sp.Eq]) -> sp.Expr:
    """The solution ``S(a)`` that is positive inside (0, 1) for a positive constant."""
    c1 = sp.Symbol("C1")
    probe = {a: sp.Rational(1, 2), c1: sp.Integer(2)}
    for solution in solutions:
        if sp.N(solution.rhs.subs(probe)) > 0:
            return solution.rhs
    raise SchedalgError("a positive branch of the lazy family", f"{solutions}")  # pragma: no cover


def ode_family() -> LazyFamily:
    """The lazy family of the probability-flow ODE: variance preserving, ``alpha = sin(theta)``."""
    return derive_lazy_family("ode")


def point_mass_family() -> LazyFamily:
    """The lazy family of the optimal SDE: point mass, ``sigma^2 = alpha (1 - alpha)``."""
    return derive_lazy_family("optimal_sde")
