"""Import hygiene, read from the source with ``ast`` (no module is imported).

Packages import each other through their public faces and form no import circle (issue 18):

* a module of subpackage ``schedalg.A`` never imports a private module or a private name
  (a component starting with ``_``) of another subpackage ``schedalg.B``; inside one
  subpackage private modules are shared freely, and the private modules at the top of the
  package (``schedalg._optional``, ...) serve every subpackage;
* the graph "subpackage A imports something of subpackage B" is acyclic, counting every
  import: at module top, deferred inside functions, and under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "schedalg"

#: (importing module, imported target) pairs allowed to reach into another package's private part,
#: each with its reason. Empty: every package has a public face for what others need.
PRIVATE_ALLOWED: dict[tuple[str, str], str] = {}

#: Subpackage edges allowed to close a circle, with their reason. Empty: the layers are a DAG.
CYCLE_ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module under schedalg/ (packages by their ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every import in ``module``: the absolute module imported or, for
    ``from M import n``, ``M.n`` (the submodule when there is one, else the name of ``M``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found += [(node.lineno, f"{source}.{alias.name}") for alias in node.names if alias.name != "*"]
    return [(line, target) for line, target in found if target == "schedalg" or target.startswith("schedalg.")]


def subpackage(name: str) -> str:
    """``schedalg.X`` for a name inside subpackage X, else the top-level module itself
    (``schedalg``, ``schedalg.errors``, ...)."""
    parts = name.split(".")
    if len(parts) >= 2 and (f"schedalg.{parts[1]}" in MODULES and _is_package(f"schedalg.{parts[1]}")):
        return f"schedalg.{parts[1]}"
    return name if name in MODULES else ".".join(parts[:2]) if ".".join(parts[:2]) in MODULES else "schedalg"


def private_reach(module: str, target: str) -> bool:
    """Whether ``module`` importing ``target`` reaches into another subpackage's private part."""
    parts = target.split(".")
    for j, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:max(j, 2)])
            if j == 1:  # schedalg._optional and the like: private to the whole package
                return False
            return not (module == owner or module.startswith(owner + "."))
    return False


def violations() -> list[str]:
    out = []
    for module, path in MODULES.items():
        for line, target in imports(module, path):
            if private_reach(module, target) and (module, target) not in PRIVATE_ALLOWED:
                out.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    return out


def subpackage_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        here = subpackage(module)
        for _, target in imports(module, path):
            there = subpackage(target)
            if there != here and (here, there) not in CYCLE_ALLOWED:
                graph.setdefault(here, set()).add(there)
    return graph


def module_graph() -> dict[str, set[str]]:
    """Module -> modules it imports (``from M import n``: ``M.n`` when that is a module, else ``M``)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        for _, target in imports(module, path):
            while target not in MODULES:
                target = target.rpartition(".")[0]
            if target != module:
                graph.setdefault(module, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# ---------------------------------------------------------------------------------------- tests


def test_the_scan_sees_every_kind_of_import():
    """Relative, absolute, deferred and ``from package import module`` imports are all resolved."""
    source = ("from ..symbolic._lazy import LazyFamily\nimport schedalg.compile._printer\n"
              "def f():\n    from ..symbolic import _schedule\n    from . import _view\n")
    path = ROOT / "tests" / "_scan_probe.py"
    path.write_text(source)
    try:
        found = [target for _, target in imports("schedalg.lazy._probe", path)]
    finally:
        path.unlink()
    assert found == ["schedalg.symbolic._lazy.LazyFamily", "schedalg.compile._printer",
                     "schedalg.symbolic._schedule", "schedalg.lazy._view"]
    assert [private_reach("schedalg.lazy._probe", t) for t in found] == [True, True, True, False]
    assert not private_reach("schedalg.sampling.solvers._rk", "schedalg.sampling._tableau.Tableau")
    assert not private_reach("schedalg.models._network", "schedalg._optional.require")
    assert private_reach("schedalg.lazy._view", "schedalg.symbolic._private_name")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_packages_import_each_other_through_their_public_faces():
    found = violations()
    assert not found, f"{len(found)} imports reach into another package's private modules:\n" + "\n".join(found)


def test_no_import_circles_between_subpackages():
    graph = subpackage_graph()
    found = cycles(graph)
    assert not found, "import circles between subpackages: " + "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a}->{b}" for a in c for b in sorted(graph[a]) if b in c) + ")"
        for c in found)


def test_no_import_circles_between_modules():
    """Not even inside a package (a deferred import that closes a circle hides an ordering bug)."""
    found = cycles(module_graph())
    assert not found, "import circles between modules: " + "; ".join(" <-> ".join(c) for c in found)


def test_allowlists_name_real_imports():
    """Every allowlisted pair still exists (a stale entry would hide nothing and mislead)."""
    pairs = {(m, t) for m, p in MODULES.items() for _, t in imports(m, p)}
    assert set(PRIVATE_ALLOWED) <= pairs
    edges = {(subpackage(m), subpackage(t)) for m, t in pairs}
    assert set(CYCLE_ALLOWED) <= edges
