"""Run a SymPy computation under a wall-clock budget.

SymPy's ``solve`` and ``simplify`` can run for minutes on transcendental input. The
derivations that try a closed form first (inverses, simplifications) give up after a
budget and fall back to numerics instead. In the main thread the budget is enforced
with ``SIGALRM``; elsewhere (no signals) the attempt is skipped unless it is cheap, by
running it in a daemon thread and abandoning it when the budget runs out.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


class BudgetExceeded(Exception):
    """Raised inside the budgeted computation when its time is up."""


def run_with_budget(fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
    """Return ``(True, fn())`` if ``fn`` finishes within ``seconds``, else ``(False, None)``.

    Exceptions raised by ``fn`` other than the budget's own count as failure.
    """
    if seconds <= 0:
        return False, None
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def _handler(signum, frame):
            raise BudgetExceeded

        previous = signal.signal(signal.SIGALRM, _handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return True, fn()
        except BudgetExceeded:
            return False, None
        except Exception:
            return False, None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

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
