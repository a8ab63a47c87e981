"""Derivation cost: a new schedule to compiled torch functions, cold and cached, vs naive SymPy.

For each schedule family, a *fresh* instance (parameters drawn anew, so no cache can
answer) is taken through what a user needs before sampling: the symbolic log-SNR inverse
(``schedule.inverse_log_snr``), compilation (``schedule.compile()``), and one evaluation
of every quantity a time grid needs plus ``t_of_log_snr`` on a grid ("cold"). "Cached" repeats
the same on an equal schedule built again from the same parameters (SymPy derivations and
generated code are reused). The baseline is the naive route: ``sympy.solve(lambda(t) - l,
t)`` for the inverse, then ``sympy.lambdify`` of every quantity to torch and the same
evaluations; it runs under a wall-clock budget and counts as timed out if it exceeds it.
"""

from __future__ import annotations

import random
import time
from typing import Callable

import sympy as sp
import torch

import schedalg as sa
from schedalg.sampling import GRID_QUANTITIES as QUANTITIES

NAIVE_BUDGET_S = 20.0


def _families(rng: random.Random) -> dict[str, Callable[[], sa.Schedule]]:
    """Schedule families with fresh rational parameters on every call."""
    def fresh(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi), 4)

    t = sa.t
    return {
        "vp_linear": lambda: sa.schedules.vp_linear(fresh(0.05, 0.2), fresh(15, 25)),
        "vp_cosine": lambda: sa.schedules.vp_cosine(fresh(0.004, 0.012)),
        "ve": lambda: sa.schedules.ve(fresh(0.005, 0.02), fresh(40, 90)),
        "polynomial_convex": lambda: sa.schedules.polynomial_convex(fresh(1.5, 3.0)),
        "user: alpha=1-t^2, sigma=t*c": lambda: sa.Schedule(alpha=1 - t**2, sigma=t * fresh(0.5, 2.0),
                                                           name="user_quadratic"),
    }


def _evaluate_schedalg(schedule: sa.Schedule) -> None:
    compiled = schedule.compile()
    _ = schedule.inverse_log_snr
    low, high = compiled.t_min, compiled.t_max
    times = torch.linspace(low + 1e-3 * (high - low), high - 1e-3 * (high - low), 64, dtype=torch.float64)
    compiled.evaluate(times, *QUANTITIES)
    lam = compiled.log_snr(times)
    compiled.t_of_log_snr(lam)


def _naive(schedule: sa.Schedule) -> bool:
    """sympy.solve inverse + lambdify; returns False when solve finds no solution."""
    lam = sp.Symbol("l", real=True)
    t = sa.t
    solutions = sp.solve(sp.Eq(schedule.log_snr, lam), t)
    if not solutions:
        return False
    inverse = sp.lambdify(lam, solutions[0], modules="math")
    functions = [sp.lambdify(t, getattr(schedule, name), modules="math") for name in QUANTITIES]
    low, high = (float(v) for v in schedule.domain)
    for k in range(64):
        tt = low + (k + 0.5) / 64 * (high - low)
        for f in functions:
            try:
                f(tt)
            except (ValueError, ZeroDivisionError, OverflowError):
                pass
        try:
            inverse(float(sp.N(schedule.log_snr.subs(t, tt))))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            pass
    return True


def derivation_rows(seed: int = 0, repeats: int = 3, naive_budget: float = NAIVE_BUDGET_S,
                    only: tuple[str, ...] | None = None) -> list[dict]:
    """One row per family: cold, cached, naive seconds and the ratios naive/cold, naive/cached."""
    from ._budget import run_with_budget

    rng = random.Random(seed)
    rows = []
    for name, make in _families(rng).items():
        if only is not None and name not in only:
            continue
        cold, cached, failure = [], [], None
        for _ in range(repeats):
            schedule = make()
            start = time.perf_counter()
            try:
                _evaluate_schedalg(schedule)  # not under run_with_budget: schedalg budgets its own SymPy work
            except Exception as exc:  # noqa: BLE001 - reported in the results, not hidden
                failure = f"{type(exc).__name__}: {exc} (alpha = {schedule.alpha}, sigma = {schedule.sigma})"
                break
            cold.append(time.perf_counter() - start)
            again = sa.Schedule(alpha=schedule.alpha, sigma=schedule.sigma, domain=schedule.domain,
                                name=schedule.name)
            start = time.perf_counter()
            _evaluate_schedalg(again)
            cached.append(time.perf_counter() - start)
        if failure is not None:
            rows.append({"schedule": name, "status": f"schedalg failed: {failure}"})
            continue
        fresh = make()
        start = time.perf_counter()
        finished, found = run_with_budget(lambda: _naive(fresh), naive_budget)
        naive = time.perf_counter() - start
        cold_s, cached_s = min(cold), min(cached)
        rows.append({
            "schedule": name,
            "inverse_kind": fresh.compile().inverse_kind,
            "cold_s": cold_s,
            "cached_s": cached_s,
            "naive_sympy_solve_s": naive,
            "naive_status": ("ok" if finished and found else "no solution" if finished
                             else f"timed out at {naive_budget:.0f} s: ratios are lower bounds"),
            "naive_over_cold": naive / cold_s,
            "naive_over_cached": naive / cached_s,
        })
    return rows
