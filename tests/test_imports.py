"""Every module of quadrat imports on its own, and every long module says why it is long.

Why a test: an import cycle (``a`` imports ``b`` imports ``a``) only breaks when a caller
happens to enter through the wrong module, so the suite, which imports everything in some
lucky order, never sees it. Here one fresh interpreter imports each module with every
``quadrat`` module dropped from ``sys.modules`` first, so each import starts from nothing;
third-party packages (torch, pandas) stay loaded, which keeps the whole check to one
interpreter start. Modules are found on disk, never by importing them.

In an environment without an extra (a core install has no torch), a module that needs it
may fail only with an ``ImportError`` naming a package that is not installed. Since CI has
every extra, a second pass blocks the extras' packages (as a core install lacks them) and
checks that only the modules listed in ``NEED_AN_EXTRA`` need them: the light install
(``pip install quadrat``, no torch) cannot regress one top-level import at a time.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "quadrat"
LONG = 500  # lines; a module over this states why at its top
WHY_LONG = "Why this module is long:"

# What the extras (pyproject.toml: cnn, ssl, cluster) install, by top-level module name.
EXTRA_PACKAGES = (
    "torch", "torchvision", "timm", "openvino", "triton",
    "lightning", "pytorch_lightning", "torchmetrics", "lightly", "kornia", "yaml", "ray",
)  # fmt: skip
# Modules that may import an extra at module level (the rest of quadrat imports on a core
# install); a module or package prefix ending in ".". A new module that needs torch at
# import time goes here on purpose, or imports torch inside the function that uses it.
NEED_AN_EXTRA = (
    "quadrat.ssl",
    "quadrat.ssl.",
    "quadrat.extraction.gpu",
    "quadrat.extractors.backbone_file",
    "quadrat.extractors.checkpoints",
    "quadrat.extractors.layouts",
    "quadrat.extractors.runtimes",
    "quadrat.extractors.timm_utils",
    "quadrat.extractors.torch_extractor",
)

# Runs in the fresh interpreter: argv[1] is a JSON list of module names, argv[2] the
# package whose modules are dropped before each import, argv[3] a JSON list of top-level
# packages to refuse (as if not installed); prints one JSON object mapping each name to
# None (imported) or {"error": ..., "missing": top-level name of an absent package}.
IMPORT_EACH = textwrap.dedent(
    """
    import importlib, importlib.abc, importlib.util, json, sys, traceback

    blocked = set(json.loads(sys.argv[3]))


    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (refused)", name=name)
            return None


    sys.meta_path.insert(0, Refuse())
    results, package = {}, sys.argv[2]
    for name in json.loads(sys.argv[1]):
        for key in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
            del sys.modules[key]
        try:
            importlib.import_module(name)
        except BaseException as exc:  # report everything, SystemExit included
            missing = None
            if isinstance(exc, ImportError) and exc.name:
                top = exc.name.split(".")[0]
                if top in blocked or (top != package and importlib.util.find_spec(top) is None):
                    missing = top
            lines = traceback.format_exception(exc)
            results[name] = {"error": "".join(lines[-12:]), "missing": missing}
        else:
            results[name] = None
    print(json.dumps(results))
    """
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def all_modules() -> tuple[str, ...]:
    """Every importable module under src/quadrat (``__main__`` runs the CLI: left out);
    listed once, so that the groups and the imports agree."""
    paths = (path for path in PACKAGE.rglob("*.py") if path.name != "__main__.py")
    return tuple(sorted(module_name(path) for path in paths))


def group_of(name: str) -> str:
    """``quadrat.io.coralnet.annotations`` -> ``quadrat.io``; top-level modules -> itself."""
    return ".".join(name.split(".")[:2])


GROUPS = sorted({group_of(name) for name in all_modules()})


def import_each(
    names: list[str], root: Path = SRC, package: str = "quadrat", blocked: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Import each of ``names`` from ``root`` with ``package`` dropped before every import,
    in one fresh interpreter that refuses to import the ``blocked`` packages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.setdefault("QUADRAT_NO_PROGRESS", "1")
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(names), package, json.dumps(blocked)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@cache
def import_results() -> dict[str, Any]:
    """Every quadrat module imported in isolation (computed once per test process)."""
    return import_each(list(all_modules()))


@pytest.mark.parametrize("group", GROUPS)
def test_each_module_imports_on_its_own(group: str) -> None:
    results = import_results()
    failures = {}
    for name in (n for n in all_modules() if group_of(n) == group):
        outcome = results[name]
        if outcome is None:
            continue
        if outcome["missing"] and importlib.util.find_spec(outcome["missing"]) is None:
            continue  # an optional extra that this environment lacks
        failures[name] = outcome["error"]
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())


def needs_an_extra(name: str) -> bool:
    return any(name == m or (m.endswith(".") and name.startswith(m)) for m in NEED_AN_EXTRA)


def test_the_core_imports_without_the_extras() -> None:
    """With torch, timm, OpenVINO, Lightning, Ray... refused: every module not listed in
    NEED_AN_EXTRA imports, and a listed one fails only for want of an extra's package."""
    results = import_each(list(all_modules()), blocked=EXTRA_PACKAGES)
    offenders = []
    for name, outcome in results.items():
        if outcome is None:
            continue
        if not needs_an_extra(name):
            offenders.append(
                f"{name} (core) needs {outcome['missing'] or 'more'}:\n{outcome['error']}"
            )
        elif outcome["missing"] not in EXTRA_PACKAGES:
            offenders.append(f"{name}:\n{outcome['error']}")
    assert not offenders, "\n\n".join(offenders)


def test_an_order_dependent_cycle_is_caught(tmp_path: Path) -> None:
    """``a`` then ``b`` imports fine; ``b`` first fails. The suite, importing in its own
    order, would never notice; dropping the package between imports does."""
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\nfrom cyclepkg.b import Y\n")
    (pkg / "b.py").write_text("from cyclepkg.a import X\nY = 2\n")
    results = import_each(["cyclepkg.a", "cyclepkg.b"], root=tmp_path, package="cyclepkg")
    assert results["cyclepkg.a"] is None
    assert "partially initialized" in results["cyclepkg.b"]["error"]
    assert results["cyclepkg.b"]["missing"] is None


def test_modules_are_found() -> None:
    names = all_modules()
    assert "quadrat" in names and "quadrat.errors" in names and "quadrat.__main__" not in names


def long_modules_without_a_reason() -> list[str]:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines <= LONG:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith(WHY_LONG) for line in doc.splitlines()):
            offenders.append(f"{path.relative_to(SRC)} ({lines} lines)")
    return offenders


def test_long_modules_state_why() -> None:
    """A module over 500 lines is split, or its docstring has a line 'Why this module is
    long: ...' (one idea that does not divide, such as a parser's state machine)."""
    offenders = long_modules_without_a_reason()
    assert not offenders, (
        f"modules over {LONG} lines whose docstring has no '{WHY_LONG}' line: "
        + ", ".join(offenders)
    )


def test_the_long_module_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "quadrat"
    fake.mkdir()
    (fake / "short.py").write_text('"""Short."""\n')
    (fake / "long.py").write_text('"""Long."""\n' + "x = 1\n" * LONG)
    (fake / "why.py").write_text(f'"""Long.\n\n{WHY_LONG} one parser.\n"""\n' + "x = 1\n" * LONG)
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    assert long_modules_without_a_reason() == [f"quadrat{os.sep}long.py ({LONG + 1} lines)"]
