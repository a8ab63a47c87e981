"""Run a computation under a CPU-time budget (benchmarks only).

The naive-SymPy baseline of :mod:`benchmarks._derivation` (``sympy.solve`` on the
log-SNR) can run for minutes; this stops it and reports a lower bound. The package itself
never uses a time budget: its derivations bound their *work* (``schedalg/symbolic/_derive.py``,
``schedalg/augmented/_closed_forms.py``), so their outcome does not depend on machine load.

In the main thread the budget is *process CPU time* (``ITIMER_PROF``/``SIGPROF``). Budgets
nest: an inner budget never outlives the outer one, and the outer timer is re-armed
afterwards. If the interrupt is swallowed (it can land inside a garbage-collector
callback), it is raised again a few milliseconds later. Outside the main thread (no
signals) the computation runs in a daemon thread and is abandoned when the wall-clock
budget runs out.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")

_RETRY_S = 0.005


class BudgetExceeded(BaseException):
    """Raised inside the budgeted computation when its time is up (a BaseException, so
    that SymPy code catching ``Exception`` broadly cannot swallow it)."""


def _handler(signum, frame):
    signal.setitimer(signal.ITIMER_PROF, _RETRY_S)  # in case this one is swallowed
    raise BudgetExceeded


def run_with_budget(fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
    """Return ``(True, fn())`` if ``fn`` finishes within ``seconds``, else ``(False, None)``.

    Exceptions raised by ``fn`` other than the budget's own count as failure.
    """
    if seconds <= 0:
        return False, None
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return _run_in_thread(fn, seconds)

    outer_remaining, _ = signal.getitimer(signal.ITIMER_PROF)
    previous = signal.signal(signal.SIGPROF, _handler)
    budget = min(seconds, outer_remaining) if outer_remaining > 0 else seconds
    start = time.process_time()
    try:
        signal.setitimer(signal.ITIMER_PROF, budget)
        try:
            return True, fn()
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except BudgetExceeded:
        return False, None
    except Exception:  # noqa: BLE001 - any failure means "no closed form"
        return False, None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        if outer_remaining > 0:  # give the enclosing budget what is left of it
            left = outer_remaining - (time.process_time() - start)
            signal.setitimer(signal.ITIMER_PROF, max(left, _RETRY_S))


def _run_in_thread(fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
    box: dict[str, object] = {}

    def _target() -> None:
        try:
            box["value"] = fn()
        except Exception:  # noqa: BLE001 - any failure means "no closed form"
            box["error"] = True

    worker = threading.Thread(target=_target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive() or "error" in box or "value" not in box:
        return False, None
    return True, box["value"]  # type: ignore[return-value]
