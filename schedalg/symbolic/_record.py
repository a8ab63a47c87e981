"""Per-schedule derivation records: the in-memory and on-disk memory of derived facts.

A record holds, for one bound schedule, what its derivations found: the validation
outcome (direction and the end repairs to announce), end values of quantities, the
inverse log-SNR, and the trees compiled functions are printed from. It lives on the
schedule object and, through :mod:`schedalg.symbolic._cache`, in a JSON file keyed by the
schedule's canonical expression, so a second process reads instead of re-deriving.
Schedules with tabulated (numeric) functions are never written to disk: their classes
do not identify their tables.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from . import _cache
from ._numeric import NumericFunction

__all__ = ["Record", "record_of", "canonical_key"]


def canonical_key(schedule: Any) -> str | None:
    """The exact text of alpha, sigma and the domain (:func:`schedalg.symbolic._cache.canonical_text`,
    or ``srepr`` when a node is outside the cache's allowlist), or None for schedules with
    numeric functions. Computed once per schedule object."""
    found = schedule.__dict__.get("_canonical_key", False)
    if found is not False:
        return found
    exprs = (schedule.alpha, schedule.sigma, schedule.domain[0], schedule.domain[1])
    text = _cache.canonical_text(*exprs)  # None for tabulated functions (outside the allowlist)
    if text is not None:
        key = "trees\n" + text
    elif schedule.alpha.atoms(NumericFunction) or schedule.sigma.atoms(NumericFunction):
        key = None
    else:
        key = "srepr\n" + "\n".join(sp.srepr(e) for e in exprs)
    schedule.__dict__["_canonical_key"] = key
    return key


class Record:
    """Sections of derived facts, each a JSON-able dict; :meth:`put` writes through to disk."""

    def __init__(self, key: str | None):
        self.key = key
        loaded = _cache.load(key) if key is not None else None
        self.payload: dict[str, Any] = loaded if isinstance(loaded, dict) else {}

    def get(self, section: str, name: str) -> Any:
        part = self.payload.get(section)
        return part.get(name) if isinstance(part, dict) else None

    def put(self, section: str, name: str, value: Any) -> None:
        part = self.payload.get(section)
        if not isinstance(part, dict):
            part = self.payload[section] = {}
        part[name] = value
        if self.key is not None:
            latest = _cache.load(self.key) or {}  # merge what other processes wrote meanwhile
            for other_section, entries in latest.items():
                if isinstance(entries, dict) and other_section in ("validation", "ends", "inverse", "compiled"):
                    mine = self.payload.setdefault(other_section, {})
                    if isinstance(mine, dict):
                        for k, v in entries.items():
                            mine.setdefault(k, v)
            _cache.store(self.key, self.payload)


def record_of(schedule: Any) -> Record:
    """The record of a bound ``schedule`` (made once per schedule object)."""
    found = schedule.__dict__.get("_record")
    if found is None:
        found = schedule.__dict__["_record"] = Record(canonical_key(schedule))
    return found
