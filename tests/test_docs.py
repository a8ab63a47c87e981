"""Every ```python block of the guide (docs/*.md) runs, in order, one namespace per page.

A block fenced as ```python runs; ```text, ```bash and other fences are shown only.
Pages run in a temporary directory, so files they write do not land in the checkout.
"""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = sorted(p for p in DOCS.glob("*.md") if FENCE.search(p.read_text()))


def blocks(page: pathlib.Path) -> list[tuple[int, str]]:
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


def test_the_guide_has_pages_with_code():
    assert PAGES, "docs/ has no page with ```python blocks"


@pytest.fixture()
def solver_registry():
    """Pages may register solvers: the registry is restored afterwards (other tests iterate over it)."""
    from schedalg.sampling import SOLVERS

    saved = dict(SOLVERS)
    yield
    SOLVERS.clear()
    SOLVERS.update(saved)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_code_block_runs(page, tmp_path, monkeypatch, solver_registry):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, code in blocks(page):
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)  # noqa: S102 - our own docs
        except Exception as exc:  # pragma: no cover - the message says which block failed
            raise AssertionError(f"{page.name}, block at line {line} failed: {exc!r}") from exc
