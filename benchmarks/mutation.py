"""Mutation testing: plant single-point bugs in schedalg and see which the tests and the proofs catch.

Each mutation is an exact text replacement in one file of the package (the target text
must occur exactly once; ``tests/test_mutation_targets.py`` checks that, so the list
cannot rot). For each, the tree (package, tests, proofs, conftest, pyproject) is copied to
a temporary directory, the replacement applied there, and the mutation's relevant test
files and proof files are run with pytest separately. A mutation is *caught* by a suite
when that suite fails. Not run in CI (minutes per mutation on a 2-core machine)::

    python -m benchmarks.mutation                 # all, writes benchmarks/results/mutation.json
    python -m benchmarks.mutation --only 1 5 13   # some, by number
    python -m benchmarks.mutation --list
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    """``old`` -> ``new`` in ``path`` (relative to the repository root); ``tests`` and
    ``proofs`` are the files run against it."""

    area: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    proofs: tuple[str, ...]


_SCHEDULE_TESTS = ("tests/test_schedule_library.py", "tests/test_testing_kit.py")
_CONVERT_TESTS = ("tests/test_convert.py", "tests/test_diffusion.py", "tests/test_testing_kit.py")
_LAZY_TESTS = ("tests/test_lazy.py", "tests/test_mixture_data.py")
_SOLVER_TESTS = ("tests/test_solvers.py", "tests/test_solvers_rk.py", "tests/test_programs.py")

MUTATIONS: tuple[Mutation, ...] = (
    # derivations (symbolic schedule)
    Mutation("derivation", "schedalg/symbolic/_schedule.py",
             "2 * sp.log(self.alpha) - 2 * sp.log(self.sigma), force=True)",
             "2 * sp.log(self.alpha) - sp.log(self.sigma), force=True)",
             _SCHEDULE_TESTS, ("proofs/prove_schedule.py",)),
    Mutation("derivation", "schedalg/symbolic/_schedule.py",
             "return self.direction * self.sigma**2 * self.d_log_snr / 2",
             "return self.direction * self.sigma**2 * self.d_log_snr / 4",
             _SCHEDULE_TESTS, ("proofs/prove_schedule.py", "proofs/prove_diffusion.py")),
    Mutation("derivation", "schedalg/symbolic/_schedule.py",
             "return -self.direction * self.d_alpha / self.alpha",
             "return self.direction * self.d_alpha / self.alpha",
             _SCHEDULE_TESTS, ("proofs/prove_schedule.py",)),
    Mutation("derivation", "schedalg/symbolic/_schedule.py",
             "return self.direction * self.sigma**2 * self.d_log_snr\n",
             "return self.direction * self.sigma * self.d_log_snr\n",
             _SCHEDULE_TESTS, ("proofs/prove_schedule.py",)),
    Mutation("derivation", "schedalg/symbolic/_schedule.py",
             "return self.sigma / self.alpha\n",
             "return self.sigma / self.alpha**2\n",
             ("tests/test_schedule_library.py", "tests/test_grids.py"), ("proofs/prove_schedule.py",)),
    # conversions
    Mutation("conversion", "schedalg/symbolic/_convert.py",
             "d_tau = dst_sym[5] / src_sym[5]", "d_tau = src_sym[5] / dst_sym[5]",
             _CONVERT_TESTS, ("proofs/prove_convert.py", "proofs/prove_diffusion.py")),
    Mutation("conversion", "schedalg/symbolic/_convert.py",
             "sg_fn.d(tau_fn(s)): src_sym[3], tau_fn.d(s): d_tau}",
             "sg_fn.d(tau_fn(s)): src_sym[3], tau_fn.d(s): 2 * d_tau}",
             _CONVERT_TESTS, ("proofs/prove_convert.py",)),
    Mutation("conversion", "schedalg/symbolic/_convert.py",
             "self.c_of_tau: sp.Expr = a_plus_s / _at(src.alpha + src.sigma, TAU)",
             "self.c_of_tau: sp.Expr = a_plus_s / _at(src.alpha + 2 * src.sigma, TAU)",
             _CONVERT_TESTS, ("proofs/prove_convert.py", "proofs/prove_diffusion.py")),
    Mutation("conversion", "schedalg/symbolic/_convert.py",
             "c_expr = c2(s) * k1(g2(s))", "c_expr = c2(s) + k1(g2(s))",
             _CONVERT_TESTS, ("proofs/prove_convert.py",)),
    Mutation("conversion", "schedalg/symbolic/_diffusion.py",
             "mapped = sign * conversion.c_of_tau**2 * conversion.d_tau_of_tau * expr.subs(t, TAU)",
             "mapped = sign * conversion.c_of_tau * conversion.d_tau_of_tau * expr.subs(t, TAU)",
             _CONVERT_TESTS, ("proofs/prove_diffusion.py",)),
    Mutation("conversion", "schedalg/compile/_conversion.py",
             "values = c**2 * d_tau.abs() * evaluate_diffusion(source, tau).to(torch.float64)",
             "values = c * d_tau.abs() * evaluate_diffusion(source, tau).to(torch.float64)",
             _CONVERT_TESTS, ("proofs/prove_diffusion.py",)),
    Mutation("conversion", "schedalg/compile/_conversion.py",
             "ratio = torch.sqrt((s64[1:] - s64[:-1]).abs() / (tau[1:] - tau[:-1]).abs())",
             "ratio = (s64[1:] - s64[:-1]).abs() / (tau[1:] - tau[:-1]).abs()",
             _CONVERT_TESTS, ("proofs/prove_diffusion.py",)),
    Mutation("conversion", "schedalg/compile/_inverse.py",
             "above = sign * (fn(mid) - target64) > 0",
             "above = sign * (fn(mid) - target64) < 0",
             _CONVERT_TESTS + ("tests/test_schedule_library.py",), ("proofs/prove_schedule.py", "proofs/prove_convert.py")),
    # lazy drifts
    Mutation("lazy", "schedalg/lazy/_samplers.py",
             "step_weights(a[i + 1] - a[i], -rate, rate, 0.5, sqrt=torch.sqrt)",
             "step_weights(a[i + 1] - a[i], -0.5 * rate, 0.5 * rate, 0.5, sqrt=torch.sqrt)",
             _LAZY_TESTS, ("proofs/prove_lazy.py",)),
    Mutation("lazy", "schedalg/lazy/_samplers.py",
             "rate = 1 / (1 - a[i])",
             "rate = 1 / (1 + a[i])",
             _LAZY_TESTS, ("proofs/prove_lazy.py",)),
    Mutation("lazy", "schedalg/lazy/_samplers.py",
             "lambda k: (0.0, d_alpha[k], d_sigma[k])",
             "lambda k: (0.0, d_alpha[max(k - 1, 0)], d_sigma[k])",
             _LAZY_TESTS, ("proofs/prove_lazy.py",)),
    Mutation("lazy", "schedalg/symbolic/_lazy.py",
             "return sigma**2 * sp.diff(2 * sp.log(alpha) - 2 * sp.log(sigma), time) / 2",
             "return sigma**2 * sp.diff(2 * sp.log(alpha) - 2 * sp.log(sigma), time) / 4",
             _LAZY_TESTS, ("proofs/prove_lazy.py",)),
    Mutation("lazy", "schedalg/models/_converted.py",
             "            velocity = d_alpha * x0 / 2\n",
             "            velocity = d_alpha * x0\n",
             _LAZY_TESTS + ("tests/test_pointmass.py",), ("proofs/prove_pointmass.py",)),
    # grids
    Mutation("grid", "schedalg/sampling/_grid.py",
             "levels = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho",
             "levels = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** (rho - 1)",
             ("tests/test_grids.py",), ("proofs/prove_grids.py",)),
    Mutation("grid", "schedalg/sampling/_grid.py",
             "return self.log_snr[1:] - self.log_snr[:-1]",
             "return self.log_snr[:-1] - self.log_snr[1:]",
             ("tests/test_grids.py", "tests/test_solvers.py"), ("proofs/prove_grids.py",)),
    # denoisers
    Mutation("denoiser", "schedalg/denoisers/_mixture.py",
             "x0 = m + a * variance * residual * inv_c2", "x0 = m + variance * residual * inv_c2",
             ("tests/test_denoisers_mixture.py",), ("proofs/prove_denoisers.py",)),
    Mutation("denoiser", "schedalg/denoisers/_mixture.py",
             "logits = logits + log_weights[start:start + self.chunk_size]",
             "logits = logits + 2 * log_weights[start:start + self.chunk_size]",
             ("tests/test_denoisers_mixture.py",), ("proofs/prove_denoisers.py",)),
    # prediction conversions
    Mutation("prediction", "schedalg/symbolic/_predictions.py",
             "return -schedule.sigma, schedule.alpha", "return -schedule.alpha, schedule.sigma",
             ("tests/test_predictions.py", "tests/test_testing_kit.py"), ("proofs/prove_predictions.py",)),
    Mutation("prediction", "schedalg/symbolic/_predictions.py",
             "return sp.Integer(0), -1 / schedule.sigma", "return sp.Integer(0), -1 / schedule.sigma**2",
             ("tests/test_predictions.py", "tests/test_testing_kit.py"), ("proofs/prove_predictions.py",)),
    Mutation("prediction", "schedalg/symbolic/_predictions.py",
             "c_p = (b_dst * schedule.alpha - a_dst * schedule.sigma) / det",
             "c_p = (b_dst * schedule.alpha + a_dst * schedule.sigma) / det",
             ("tests/test_predictions.py", "tests/test_testing_kit.py"), ("proofs/prove_predictions.py",)),
    Mutation("prediction", "schedalg/compile/_schedule.py",
             "return c_x * x + c_p * output", "return c_x * x - c_p * output",
             ("tests/test_predictions.py", "tests/test_testing_kit.py"), ("proofs/prove_predictions.py",)),
    # solver weights (programs)
    Mutation("solver", "schedalg/sampling/solvers/_dpmpp.py",
             "w2 = p3 if published else 2 * p3", "w2 = p3 if published else 2.1 * p3",
             _SOLVER_TESTS, ("proofs/prove_solvers.py",)),
    Mutation("solver", "schedalg/sampling/solvers/_rk.py",
             "KUTTA3 = Tableau((0, F(1, 2), 1), ((), (F(1, 2),), (-1, 2)), (F(1, 6), F(2, 3), F(1, 6)), \"rk3\")",
             "KUTTA3 = Tableau((0, F(1, 2), 1), ((), (F(1, 2),), (-1, 2)), (F(1, 6), F(1, 2), F(1, 3)), \"rk3\")",
             _SOLVER_TESTS, ("proofs/prove_solvers.py",)),
    Mutation("solver", "schedalg/sampling/solvers/_adams.py",
             "(Fraction(23, 12), Fraction(-16, 12), Fraction(5, 12)),",
             "(Fraction(23, 12), Fraction(-15, 12), Fraction(4, 12)),",
             ("tests/test_adams.py",), ("proofs/prove_adams.py",)),
    Mutation("solver", "schedalg/sampling/solvers/_ddim.py",
             "terms = [(0.0 if x is None else x[i], state), (x0[i], pred), (eps[i], e)]",
             "terms = [(0.0 if x is None else x[i], state), (x0[i], pred), (0.99 * eps[i], e)]",
             _SOLVER_TESTS, ("proofs/prove_solvers.py", "proofs/prove_fused.py")),
)

_COPY = ("schedalg", "tests", "proofs", "examples", "benchmarks", "conftest.py", "pyproject.toml")


def target_problems() -> list[str]:
    """Mutations whose target text does not occur exactly once (empty when the list is current)."""
    problems = []
    for number, m in enumerate(MUTATIONS, 1):
        count = (ROOT / m.path).read_text().count(m.old)
        if count != 1:
            problems.append(f"#{number} {m.path}: target occurs {count} times: {m.old!r}")
        missing = [p for p in m.tests + m.proofs if not (ROOT / p).exists()]
        if missing:
            problems.append(f"#{number}: missing files {missing}")
    return problems


def _pytest(tree: Path, files: tuple[str, ...], timeout: float) -> tuple[bool, float]:
    """Whether the files fail (the mutation is caught), and the seconds it took."""
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files],
                             cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        caught = out.returncode != 0
    except subprocess.TimeoutExpired:
        caught = True  # a hang is a failure the suite reports (by its timeout)
    return caught, time.perf_counter() - start


def _copy_tree(tree: Path) -> None:
    for name in _COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
        else:
            shutil.copy2(source, tree / name)


def baseline(numbers: list[int], timeout: float) -> list[str]:
    """The test and proof groups of ``numbers`` run on the unmutated copy: the groups that fail.

    A mutation counts as caught only when its suite fails; a suite that already fails without
    any mutation would "catch" everything, so the run refuses to report unless this is empty.
    """
    groups = sorted({group for number in numbers for group in (MUTATIONS[number - 1].tests,
                                                                MUTATIONS[number - 1].proofs)})
    failing = []
    with tempfile.TemporaryDirectory(prefix="schedalg-baseline-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        for group in groups:
            failed, seconds = _pytest(tree, group, timeout)
            print(json.dumps({"baseline": list(group), "passes": not failed, "seconds": round(seconds, 1)}), flush=True)
            if failed:
                failing.append(" ".join(group))
    return failing


def run(numbers: list[int], timeout: float) -> list[dict]:
    results = []
    for number in numbers:
        m = MUTATIONS[number - 1]
        with tempfile.TemporaryDirectory(prefix="schedalg-mutant-") as tmp:
            tree = Path(tmp)
            _copy_tree(tree)
            target = tree / m.path
            text = target.read_text()
            target.write_text(text.replace(m.old, m.new, 1))
            by_tests, t_tests = _pytest(tree, m.tests, timeout)
            by_proofs, t_proofs = _pytest(tree, m.proofs, timeout)
        row = {"number": number, "area": m.area, "path": m.path, "new": m.new.strip(),
               "caught_by_tests": by_tests, "caught_by_proofs": by_proofs,
               "seconds_tests": round(t_tests, 1), "seconds_proofs": round(t_proofs, 1)}
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="*", help="mutation numbers (1-based)")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mutation.json"))
    args = parser.parse_args(argv)
    problems = target_problems()
    if problems:
        sys.exit("stale mutation targets:\n" + "\n".join(problems))
    if args.list:
        for number, m in enumerate(MUTATIONS, 1):
            print(f"{number:2d} [{m.area}] {m.path}: {m.old.strip()!r} -> {m.new.strip()!r}")
        return
    numbers = args.only or list(range(1, len(MUTATIONS) + 1))
    failing = baseline(numbers, args.timeout)
    if failing:
        sys.exit("these suites fail without any mutation, so they would 'catch' everything:\n" + "\n".join(failing))
    results = run(numbers, args.timeout)
    n = len(results)
    tests = sum(r["caught_by_tests"] for r in results)
    proofs = sum(r["caught_by_proofs"] for r in results)
    summary = {"mutations": n, "caught_by_tests": tests, "caught_by_proofs": proofs, "baseline": "every suite passes "
               "on the unmutated copy", "results": results}
    print(f"caught by tests: {tests}/{n}; by proofs alone: {proofs}/{n}")
    if not args.only:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
