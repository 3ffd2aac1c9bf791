"""No code from data: src/ never calls a loader that can run code a file names.

Checked on the source (AST, no imports): ``torch.load`` without ``weights_only=True`` (or
with a ``pickle_module``), ``pickle``/``dill``/``cloudpickle``/``marshal`` loads and
unpicklers, ``joblib.load``, ``pandas.read_pickle``, ``shelve``, ``yaml.load``/
``full_load``/``unsafe_load``, ``numpy.load(allow_pickle=True)`` and ``torch.jit.load``.
Import aliases (``import numpy as np``, ``from torch import load``) are resolved. Why a
test: one such call on a file a user names runs whatever code the file carries, and the
rule erodes one call at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "quadrat"

#: Calls that build arbitrary objects from bytes: refused whatever their arguments.
FORBIDDEN_CALLS = {
    *(f"{m}.{f}" for m in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
      for f in ("load", "loads", "Unpickler")),
    "marshal.load",
    "marshal.loads",
    "joblib.load",
    "pandas.read_pickle",
    "shelve.open",
    "yaml.load",
    "yaml.full_load",
    "yaml.unsafe_load",
    "yaml.load_all",
    "yaml.full_load_all",
    "yaml.unsafe_load_all",
    "torch.jit.load",
    "torch.package.PackageImporter",
}  # fmt: skip


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted name it stands for, from the module's imports (any depth)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _is_true(call: ast.Call, keyword: str) -> bool:
    return any(
        k.arg == keyword and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )


def _has(call: ast.Call, keyword: str) -> bool:
    return any(k.arg == keyword for k in call.keywords)


def violations(source: str, where: str = "<src>") -> list[str]:
    """``file:line: call`` for every loader call that can run code from data."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        name = name.replace("numpy._core", "numpy").replace("numpy.core", "numpy")
        bad = name in FORBIDDEN_CALLS
        if name == "torch.load":
            bad = not _is_true(node, "weights_only") or _has(node, "pickle_module")
        if name == "numpy.load":  # allow_pickle absent or a literal False
            bad = any(
                k.arg == "allow_pickle"
                and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in node.keywords
            )
        if bad:
            found.append(f"{where}:{node.lineno}: {name}")
    return found


def test_src_never_loads_code_from_data() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += violations(path.read_text(), str(path.relative_to(SRC.parents[1])))
    assert not found, "loaders that can run code from a file:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(p)",
        "import torch\ntorch.load(p, weights_only=False)",
        "import torch\ntorch.load(p, weights_only=flag)",
        "import torch\ntorch.load(p, weights_only=True, pickle_module=m)",
        "from torch import load\nload(p)",
        "import torch as T\nT.load(p, map_location='cpu')",
        "import pickle\npickle.loads(b)",
        "import pickle\npickle.Unpickler(f).load()",
        "from pickle import load as l\nl(f)",
        "import _pickle\n_pickle.loads(b)",
        "import joblib\njoblib.load(p)",
        "import yaml\nyaml.load(s, Loader=yaml.FullLoader)",
        "import yaml\nyaml.unsafe_load(s)",
        "import numpy as np\nnp.load(p, allow_pickle=True)",
        "import numpy as np\nnp.load(p, allow_pickle=flag)",
        "import pandas as pd\npd.read_pickle(p)",
        "import marshal\nmarshal.loads(b)",
        "import torch\ntorch.jit.load(p)",
        "def f():\n    import dill\n    return dill.load(f)",
    ],
)
def test_the_check_finds_each_kind(source: str) -> None:
    assert len(violations(source)) == 1, source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
        "import numpy as np\nnp.load(p)",
        "import numpy as np\nnp.load(p, allow_pickle=False)",
        "import yaml\nyaml.safe_load(s)",
        "import pickle\npickle.dumps(x)",
        "import json\njson.loads(s)",
        "import safetensors.torch\nsafetensors.torch.load_file(p)",
    ],
)
def test_the_check_passes_safe_calls(source: str) -> None:
    assert violations(source) == []


def test_checkpoint_allowlist_builds_only_plain_data() -> None:
    """Every global ``torch.load`` may build beyond torch's defaults is reviewed here;
    adding one means adding it to this list after checking it runs no code and allocates
    nothing sized by the file."""
    pytest.importorskip("torch")
    import argparse
    import pathlib

    import numpy as np

    from quadrat.extractors import checkpoints

    reviewed = {
        np.dtype,
        argparse.Namespace,
        dict,
        list,
        int,
        float,
        str,
        bool,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        checkpoints._plain_dict,
        checkpoints._NP_SCALAR,
        checkpoints._Inert,
        *(getattr(np.dtypes, n) for n in np.dtypes.__all__ if n.endswith("DType")),
    }
    for entry in checkpoints.SAFE_GLOBALS:
        target = entry[0] if isinstance(entry, tuple) else entry
        assert target in reviewed, f"unreviewed global in SAFE_GLOBALS: {entry!r}"
    assert not vars(checkpoints._Inert).keys() - {
        "__module__", "__doc__", "__init__", "__setstate__", "__dict__", "__weakref__",
        "__qualname__", "__firstlineno__", "__static_attributes__",
    }  # fmt: skip
