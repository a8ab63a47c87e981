"""A persistent on-disk cache of derivations, safe to read from any file.

Derivations (validation, end values, the inverse log-SNR, the simplified trees a
compiled schedule is printed from) are stored per schedule, keyed by its canonical
expression (:func:`canonical_text` of alpha, sigma and the domain, else their ``srepr``) and
the package version, one JSON file per key in :func:`cache_dir` (``$SCHEDALG_CACHE_DIR``, or
:func:`configure_cache`;
default ``$XDG_CACHE_HOME/schedalg`` or ``~/.cache/schedalg``; ``off`` disables it).

The file is untrusted input. Nothing read from it is executed or parsed as code: no
pickle, no ``eval``/``sympify``/``srepr`` parsing. Expressions are JSON trees decoded by
:func:`decode` with an allowlist of node types (``Add``, ``Mul``, ``Pow``, ``Integer``,
``Rational``, ``Float`` as a checked decimal string, the functions in :data:`FUNCTIONS`,
the constants in :data:`CONSTANTS`, and the symbols in :data:`SYMBOLS` or named ``x0``,
``x1``, ...). Each file carries a SHA-256 digest of its content; an entry that is
corrupted, crafted outside the allowlist or from another version is ignored (a debug log
says why) and the derivation is redone and written again. Writes go to a temporary file
in the same directory, then ``os.replace``: several processes may write at once, a
reader sees an old or a new file, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from typing import Any

import sympy as sp
from sympy.codegen import cfunctions

from ._symbols import lam, s, t

__all__ = ["encode", "decode", "Builder", "canonical_text", "CSE_NAME", "load", "store", "cache_dir", "configure_cache",
           "CacheFormatError", "encode_float", "decode_float"]

_LOG = logging.getLogger("schedalg.cache")

#: Bumped whenever the meaning of a stored field changes.
FORMAT = 1

FUNCTIONS: dict[str, type] = {f.__name__: f for f in (
    sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.cot, sp.asin, sp.acos, sp.atan, sp.acot, sp.atan2,
    sp.sinh, sp.cosh, sp.tanh, sp.asinh, sp.acosh, sp.atanh, sp.Abs, sp.sign, sp.Min, sp.Max,
    sp.erf, sp.erfc, cfunctions.expm1, cfunctions.log1p)}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "-oo": -sp.oo}
SYMBOLS: dict[str, sp.Symbol] = {symbol.name: symbol for symbol in (t, lam, s)}
#: Names of common subexpressions (``x0``, ``x1``, ...), the only symbols besides :data:`SYMBOLS`.
CSE_NAME = re.compile(r"x[0-9]{1,6}\Z")
_INTEGER = re.compile(r"-?[0-9]{1,400}\Z")
_DECIMAL = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?(e[-+]?[0-9]{1,4})?\Z")
_MAX_NODES = 20000

_state: dict[str, Any] = {"dir": None, "configured": False}


class CacheFormatError(ValueError):
    """A cached tree that is not in the allowlist (ignored by the reader)."""


# ---------------------------------------------------------------------- trees


def encode(expr: sp.Expr) -> Any:
    """``expr`` as a JSON-able tree; raises :class:`CacheFormatError` for nodes outside the allowlist."""
    if expr.is_Atom:
        if isinstance(expr, sp.Symbol):
            if expr.name in SYMBOLS and SYMBOLS[expr.name] == expr or CSE_NAME.match(expr.name):
                return ["Symbol", expr.name]
            raise CacheFormatError(f"symbol {expr.name!r}")
        if expr.is_Integer:
            return ["Integer", str(int(expr))]
        if expr.is_Rational:
            return ["Rational", str(expr.p), str(expr.q)]
        if expr.is_Float:
            return ["Float", encode_float(float(expr))]
        for name, constant in CONSTANTS.items():
            if expr == constant:
                return ["Constant", name]
        raise CacheFormatError(f"atom {type(expr).__name__}")
    if expr.is_Add or expr.is_Mul:
        return ["Add" if expr.is_Add else "Mul", *(encode(a) for a in expr.args)]
    if expr.is_Pow:
        return ["Pow", encode(expr.base), encode(expr.exp)]
    name = type(expr).__name__
    if name in FUNCTIONS and isinstance(expr, FUNCTIONS[name]):
        return [name, *(encode(a) for a in expr.args)]
    raise CacheFormatError(f"node {name}")


def canonical_text(*exprs: sp.Expr) -> str | None:
    """One line per expression identifying it exactly, or None when one has a node outside the
    allowlist (the caller then falls back to ``srepr``).

    The trees of :func:`encode`, except that floats are written exactly (mantissa, exponent and
    precision: ``Float('0.1', 30)`` and ``0.1`` differ). SymPy's argument order is canonical
    (independent of ``PYTHONHASHSEED``), so equal expressions give equal text; it costs a walk
    of the tree, far less than ``srepr``.
    """

    def exact(expr: sp.Expr) -> Any:
        if expr.is_Float:
            sign, mantissa, exponent, _ = expr._mpf_
            return ["Float", f"{'-' if sign else ''}{mantissa}e{exponent}p{expr._prec}"]
        if expr.is_Atom:
            return encode(expr)
        if expr.is_Pow:
            return ["Pow", exact(expr.base), exact(expr.exp)]
        head = "Add" if expr.is_Add else "Mul" if expr.is_Mul else type(expr).__name__
        if not (expr.is_Add or expr.is_Mul or head in FUNCTIONS and isinstance(expr, FUNCTIONS[head])):
            raise CacheFormatError(f"node {head}")
        return [head, *(exact(a) for a in expr.args)]

    try:
        return "\n".join(json.dumps(exact(sp.sympify(e, strict=True)), separators=(",", ":")) for e in exprs)
    except (CacheFormatError, sp.SympifyError):
        return None


class Builder:
    """What :func:`decode` makes of the nodes it has validated: SymPy expressions by default
    (subclasses make other things from the same checked tree, e.g. source text)."""

    def symbol(self, name: str) -> Any:
        return SYMBOLS[name] if name in SYMBOLS else sp.Symbol(name)

    def integer(self, value: int) -> Any:
        return sp.Integer(value)

    def rational(self, p: int, q: int) -> Any:
        return sp.Rational(p, q)

    def float(self, value: float) -> Any:
        return sp.Float(value)

    def constant(self, name: str) -> Any:
        return CONSTANTS[name]

    def node(self, head: str, children: list) -> Any:
        # rebuilt without evaluation: the trees were stored from canonical expressions, so the same
        # arguments in the same order give the same expression, without SymPy's (slow) re-simplification
        if head == "Add":
            return sp.Add(*children, evaluate=False)
        if head == "Mul":
            return sp.Mul(*children, evaluate=False)
        if head == "Pow":
            return sp.Pow(*children, evaluate=False)
        return FUNCTIONS[head](*children, evaluate=False)


_SYMPY = Builder()


def decode(tree: Any, builder: Builder = _SYMPY, _count: list[int] | None = None) -> Any:
    """The expression of a tree made by :func:`encode`; :class:`CacheFormatError` for anything else.

    Only the allowlisted node types are accepted, with decoded children; strings are checked
    against symbol-name, integer and decimal patterns before conversion. ``builder`` says what
    to make of each validated node (SymPy expressions by default).
    """
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > _MAX_NODES:
        raise CacheFormatError("tree too large")
    if not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise CacheFormatError("not a node")
    head, args = tree[0], tree[1:]
    if head in ("Symbol", "Integer", "Float", "Constant", "Rational"):
        if not all(isinstance(a, str) for a in args):
            raise CacheFormatError(f"{head} with non-string fields")
        if head == "Symbol" and len(args) == 1:
            if args[0] in SYMBOLS or CSE_NAME.match(args[0]):
                return builder.symbol(args[0])
        elif head == "Integer" and len(args) == 1 and _INTEGER.match(args[0]):
            return builder.integer(int(args[0]))
        elif head == "Rational" and len(args) == 2 and all(_INTEGER.match(a) for a in args) and int(args[1]) != 0:
            return builder.rational(int(args[0]), int(args[1]))
        elif head == "Float" and len(args) == 1:
            return builder.float(decode_float(args[0]))
        elif head == "Constant" and len(args) == 1 and args[0] in CONSTANTS:
            return builder.constant(args[0])
        raise CacheFormatError(f"bad {head} node")
    if head not in ("Add", "Mul", "Pow") and head not in FUNCTIONS:
        raise CacheFormatError(f"node {head!r} not allowed")
    if not args or head == "Pow" and len(args) != 2:
        raise CacheFormatError(f"node {head!r} with {len(args)} arguments")
    return builder.node(head, [decode(a, builder, count) for a in args])


def encode_float(value: float) -> str:
    """A float as a string (``repr``: round-trips exactly; ``inf``, ``-inf``, ``nan`` by name)."""
    return repr(float(value))


def decode_float(text: Any) -> float:
    """The float of :func:`encode_float`, after checking the string is a decimal or inf/nan."""
    if text in ("inf", "-inf", "nan"):
        return float(text)
    if not isinstance(text, str) or not _DECIMAL.match(text):
        raise CacheFormatError("not a decimal number")
    return float(text)


# ---------------------------------------------------------------------- files


def configure_cache(directory: str | os.PathLike | None = None, *, enabled: bool = True) -> None:
    """Set where derivations are cached (overrides ``$SCHEDALG_CACHE_DIR``), or turn the cache off."""
    _state["dir"] = os.fspath(directory) if (enabled and directory is not None) else None
    _state["configured"] = True
    _state["enabled"] = enabled


def cache_dir() -> str | None:
    """The cache directory in use, or None when the cache is off."""
    if _state["configured"]:
        if not _state.get("enabled", True):
            return None
        if _state["dir"] is not None:
            return _state["dir"]
    env = os.environ.get("SCHEDALG_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "schedalg")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("schedalg")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "source"


_VERSION: list[str] = []


def _trusted(directory: str) -> bool:
    """Read only a directory this user owns and others cannot write to (the entries are not
    code, but a wrong fact planted there would be believed)."""
    try:
        info = os.stat(directory)
    except OSError:
        return False
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        _LOG.debug("ignoring the cache in %s: not owned by this user, or writable by others", directory)
        return False
    return True


def _digest(key: str, payload: Any) -> str:
    text = json.dumps([FORMAT, key, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _path(directory: str, key: str) -> str:
    return os.path.join(directory, hashlib.sha256(key.encode()).hexdigest()[:40] + ".json")


def full_key(key: str) -> str:
    """``key`` with the package version and the cache format (an upgrade starts a fresh cache)."""
    if not _VERSION:
        _VERSION.append(_version())
    return f"schedalg {_VERSION[0]} format {FORMAT}\n{key}"


def load(key: str) -> dict | None:
    """The payload stored under ``key``, or None (missing, unreadable, corrupted: logged at debug)."""
    directory = cache_dir()
    if directory is None:
        return None
    key = full_key(key)
    path = _path(directory, key)
    if not _trusted(directory):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _LOG.debug("ignoring unreadable cache entry %s: %s", path, exc)
        return None
    if (not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("payload"), dict)
            or entry.get("digest") != _digest(key, entry["payload"])):
        _LOG.debug("ignoring cache entry %s: key or digest mismatch", path)
        return None
    return entry["payload"]


def store(key: str, payload: dict) -> None:
    """Write ``payload`` under ``key`` atomically (temporary file + ``os.replace``); errors are logged."""
    directory = cache_dir()
    if directory is None:
        return
    key = full_key(key)
    entry = {"key": key, "payload": payload, "digest": _digest(key, payload)}
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _trusted(directory):
            return
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entry, out, sort_keys=True, separators=(",", ":"))
            os.replace(temporary, _path(directory, key))
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    except OSError as exc:
        _LOG.debug("could not write the cache entry in %s: %s", directory, exc)
