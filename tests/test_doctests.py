"""Docstring examples and docs/python-api.md run as tests, so the examples stay true."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "quadrat"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    """Every quadrat module whose source holds a ``>>>`` example."""
    names = []
    for path in sorted(SRC.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(SRC.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_listed_modules_have_examples() -> None:
    """The modules the API promises examples in are found (the scan is not empty)."""
    for name in (
        "quadrat._util",
        "quadrat._registry",
        "quadrat.errors",
        "quadrat.cli._common",
        "quadrat.workflow._common",
        "quadrat.workflow.points",
    ):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, verbose=False)
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_python_api_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/python-api.md, a notebook of the whole workflow, in a temporary folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUADRAT_NO_PROGRESS", "1")
    result = doctest.testfile(
        str(ROOT / "docs" / "python-api.md"),
        module_relative=False,
        optionflags=FLAGS,
        verbose=False,
    )
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
