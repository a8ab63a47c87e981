"""The derivation cache's keys and its compiled trees (issue 11, item 4).

Compiled functions of a schedule are printed from the allowlisted trees of its derivation
record, cold or warm, by :class:`schedalg.compile.TreeSourceBuilder`; the schedule's key is
an exact text of its declaration. These tests check that the printed functions compute what
SymPy's own printer computes, that crafted trees are refused before anything is compiled, and
that the key separates what must be separated (expressions, float precision, package version)
and nothing else (hash seeds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.compile import QUANTITIES
from schedalg.compile._compile import CompiledFunction, compile_cached
from schedalg.symbolic import _cache, derivation_record

from benchmarks._user_schedules import USER

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sa.schedules.LIBRARY


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDALG_CACHE_DIR", str(tmp_path))
    return tmp_path


def _times(schedule, n=41):
    lo, hi = float(schedule.domain[0]), float(schedule.domain[1])
    u = torch.linspace(0, 1, n, dtype=torch.float64)[1:-1]
    return lo + (hi - lo) * (0.5 - 0.5 * torch.cos(torch.pi * u))  # clustered at the ends


@pytest.mark.parametrize("name", ["vp_linear", "cosine", "ve", "brownian_bridge", "iddpm_cosine", "edm_rho"])
def test_functions_printed_from_trees_compute_what_sympy_printing_computes(name, cache):
    """Every quantity and the closed-form inverse: the tree-printed function (what the record
    serves) against SymPy's printer on the same prepared expressions, to a few ulps."""
    make = LIBRARY.get(name) or USER[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EndValueWarning of the naive iDDPM cosine
        schedule = make()
        compiled = schedule.compile()
    times = _times(schedule)
    functions = [(compiled.function(*QUANTITIES), times)]
    if schedule.inverse_log_snr.kind == "symbolic":
        lams = torch.linspace(-30, 30, 13, dtype=torch.float64)
        functions.append((compiled._inverse, lams))
    for from_tree, points in functions:
        assert from_tree._tree is not None  # served from the record's trees
        by_sympy = CompiledFunction(from_tree.prepared.reduced, from_tree.args, "reference", from_tree.prepared)
        for a, b in zip(from_tree(points), by_sympy(points)):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-300, equal_nan=True)


def test_cold_and_warm_processes_print_the_same_source(cache, tmp_path):
    """The cold process prints from the trees it stores, the warm one from the trees it reads:
    the same text."""
    script = tmp_path / "source.py"
    script.write_text(textwrap.dedent("""
        import schedalg as sa, schedalg.compile
        c = sa.schedules.LIBRARY["vp_linear"]().compile()
        print(c.source(*schedalg.compile.QUANTITIES) + c._inverse.source)
    """))
    env = dict(os.environ, SCHEDALG_CACHE_DIR=str(cache / "shared"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout
    assert "def t_of_log_snr(lambda_)" in runs[0].stdout


_CRAFTED = [
    # a subexpression name that is not x<digits>: it would be written into the source
    {"replacements": [["x0 = __import__('os'); x1", ["Symbol", "t"]]], "reduced": [["Symbol", "t"]],
     "constant": [False]},
    # an output reading a subexpression that is never defined
    {"replacements": [], "reduced": [["Symbol", "x3"]], "constant": [False]},
    # a subexpression reading one defined after it
    {"replacements": [["x0", ["Symbol", "x1"]], ["x1", ["Symbol", "t"]]], "reduced": [["Symbol", "x0"]],
     "constant": [False]},
    # a symbol of the allowlist that is not an argument of this function
    {"replacements": [], "reduced": [["Symbol", "lambda"]], "constant": [False]},
    # a function of the allowlist with no torch counterpart, and one outside it
    {"replacements": [], "reduced": [["acot", ["Symbol", "t"]]], "constant": [False]},
    {"replacements": [], "reduced": [["eval", ["Symbol", "t"]]], "constant": [False]},
    # a number that is not one, and numbers too large for a float64 literal
    {"replacements": [], "reduced": [["Float", "1e5; import os"]], "constant": [False]},
    {"replacements": [], "reduced": [["Integer", "9" * 400]], "constant": [True]},
    {"replacements": [], "reduced": [["Rational", "9" * 400, "7"]], "constant": [True]},
    # lengths that do not match, nothing to return, not a tree at all
    {"replacements": [], "reduced": [["Symbol", "t"]], "constant": [False, True]},
    {"replacements": [], "reduced": [], "constant": []},
    "def f(t): return t",
]


@pytest.mark.parametrize("tree", _CRAFTED, ids=range(len(_CRAFTED)))
def test_crafted_compiled_trees_are_refused_before_compiling(tree):
    with pytest.raises(_cache.CacheFormatError):
        CompiledFunction.from_tree(tree, (sa.t,), "f")


def test_a_crafted_compiled_entry_is_ignored_and_rebuilt(cache):
    """A stored tree that does not validate (here: an undefined name, under a valid digest) is
    ignored: the function is compiled from the schedule again, right, and stored again."""
    schedule = LIBRARY["linear"]()
    record = derivation_record(schedule)
    record.put("compiled", "alpha|sigma", {"replacements": [], "reduced": [["Symbol", "x7"], ["Symbol", "t"]],
                                           "constant": [False, False]})
    function = compile_cached(schedule, "alpha|sigma", lambda: [schedule.alpha, schedule.sigma], [sa.t], "a_s")
    times = torch.tensor([0.25, 0.5], dtype=torch.float64)
    alpha, sigma = function(times)
    torch.testing.assert_close(alpha, times)
    torch.testing.assert_close(sigma, 1 - times)
    assert _cache.load(record.key)["compiled"]["alpha|sigma"]["reduced"][0] == ["Symbol", "t"]


def test_keys_separate_expressions_float_precisions_and_versions(monkeypatch):
    key = lambda schedule: derivation_record(schedule).key  # noqa: E731
    t = sa.t
    assert key(LIBRARY["vp_linear"]()) == key(LIBRARY["vp_linear"]())  # equal declarations, two objects
    assert key(LIBRARY["vp_linear"]()) != key(LIBRARY["vp_linear"](0.1, 20.000000001))
    assert key(sa.Schedule(t, 1 - t)) != key(sa.Schedule(t, 1 - t, domain=(0, sp.Rational(1, 2)), truncated=True))
    # the same printed digits, different precisions: different declarations
    low = sa.Schedule(sp.Float("0.3", 15) * t, 1 - t)
    high = sa.Schedule(sp.Float("0.3", 40) * t, 1 - t)
    assert key(low) != key(high)
    # the file name also depends on the package version (an upgrade starts afresh)
    entry = _cache.full_key(key(LIBRARY["linear"]()))
    monkeypatch.setattr(_cache, "_VERSION", ["0.0.0-other"])
    assert _cache.full_key(key(LIBRARY["linear"]())) != entry


def test_keys_fall_back_to_srepr_outside_the_allowlist():
    """A node the trees cannot write (``sech`` here) still gets a key that identifies it."""
    t = sa.t
    keys = [derivation_record(sa.Schedule(t * sp.sech(c * (1 - t)), 1 - t)).key for c in (1, 2)]
    assert all(key.startswith("srepr\n") for key in keys) and keys[0] != keys[1]


_KEYS = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import schedalg as sa
    from schedalg.symbolic import derivation_record
    from benchmarks._user_schedules import USER
    made = [sa.schedules.LIBRARY[n]() for n in ("linear", "vp_linear", "vp_cosine")] + [USER["edm_rho"]()]
    print(json.dumps([derivation_record(s).key for s in made]))
""")


def test_keys_are_the_same_under_any_hash_seed(tmp_path):
    script = tmp_path / "keys.py"
    script.write_text(_KEYS)
    outputs = []
    for seed in ("0", "77"):
        env = dict(os.environ, PYTHONHASHSEED=seed, SCHEDALG_CACHE_DIR=str(tmp_path / "c"),
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert all(key.startswith("trees\n") for key in outputs[0])
