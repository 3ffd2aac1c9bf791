"""The package layering of docs/architecture.md, checked on the source (AST, no imports).

Why a test: "one home per idea" and "SQL lives only in the store" erode one import at a
time; a rule that is only written down drifts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "quadrat"

#: Package -> quadrat packages it must not import (directly, at any depth of the module).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "errors": ("*",),
    "_util": ("*",),
    "_registry": ("*",),
    "io": ("store", "workflow", "cli", "reports", "extractors", "extraction", "ssl", "probes"),
    "points": ("store", "workflow", "cli", "reports"),
    "patches": ("store", "workflow", "cli", "reports"),
    "labels": ("store", "workflow", "cli", "reports", "extraction", "ssl"),
    "store": ("workflow", "cli", "reports"),
    "extractors": ("store", "workflow", "cli", "reports", "extraction"),
    "extraction": ("store", "workflow", "cli", "reports"),
    "classifiers": ("store", "workflow", "cli", "reports", "extractors", "extraction"),
    "datasets": ("store", "workflow", "cli"),
    "ssl": ("store", "workflow", "cli", "reports"),
    "probes": ("store", "workflow", "cli", "reports"),
    "reports": ("store", "workflow", "cli"),
    "workflow": ("cli",),
    "service": ("cli",),
}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of nodes under ``if TYPE_CHECKING:`` (annotations only; no import at run time)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_sqlalchemy_only_in_the_store() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in _modules()
        if _package(path) != "store"
        and any(n.split(".")[0] == "sqlalchemy" for n in _imports(ast.parse(path.read_text())))
    ]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package: str) -> None:
    banned = FORBIDDEN[package]
    offenders = []
    for path in _modules():
        if _package(path) != package:
            continue
        for name in _imports(ast.parse(path.read_text())):
            parts = name.split(".")
            if parts[0] != "quadrat" or len(parts) < 2:
                continue
            target = parts[1]
            if target == package:
                continue
            if ("*" in banned and target != "errors") or target in banned:
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def test_library_errors_never_name_cli_flags() -> None:
    """Raised messages outside cli/ speak of parameters; the CLI adds flag hints."""
    offenders = []
    for path in _modules():
        if _package(path) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            for const in ast.walk(node.exc):
                if (
                    isinstance(const, ast.Constant)
                    and isinstance(const.value, str)
                    and _FLAG.search(const.value)
                ):
                    offenders.append(f"{path.relative_to(SRC)}:{const.lineno}: {const.value!r}")
    assert offenders == []


def test_every_error_class_lives_in_errors_py() -> None:
    offenders = []
    for path in _modules():
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and (
                node.name.endswith("Error") or node.name.endswith("Exception")
            ):
                offenders.append(f"{path.relative_to(SRC)}: {node.name}")
    assert offenders == []
