"""Reading weights files safely: torch or safetensors, containers unwrapped, no code run.

Every ``torch.load`` runs with ``weights_only=True``: torch's restricted unpickler builds
tensors, plain containers and the few globals named in :data:`SAFE_GLOBALS`, nothing else.
Those are what published checkpoints pickle beside their tensors: numpy scalars and dtypes
(pyspacer's and timm's training scripts), ``argparse.Namespace`` and paths (old Lightning
``hparams``), and the omegaconf training config of Lightning checkpoints (solo-learn's,
BenthicNet's). The omegaconf classes are not imported: each name maps to :class:`_Inert`,
which keeps nothing, so the config is dropped unread (features need only the tensors). A
file needing any other global is refused with the names it asked for; converting it is a
one-time step its owner takes on a copy they trust (docs/extractors.md, "Refused
checkpoints"), never something this library does.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import pathlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import safetensors.torch
import torch

from quadrat.errors import WeightsError

StateDict = dict[str, torch.Tensor]

# Keys under which checkpoints nest their state dict: pyspacer ('net'), Lightning and
# solo-learn ('state_dict'), timm/DeiT training scripts ('model').
_CONTAINER_KEYS = ("net", "state_dict", "model")

# Numpy objects that real training checkpoints carry next to their tensors (pyspacer
# allowlists the same kinds); files saved under numpy 1 name the scalar type numpy.core.
_NP_SCALAR = importlib.import_module(
    "numpy.core.multiarray" if np.__version__.startswith("1.") else "numpy._core.multiarray"
).scalar
_NUMPY_SAFE_GLOBALS: list = [
    np.dtype,
    _NP_SCALAR,
    (_NP_SCALAR, "numpy.core.multiarray.scalar"),
    *(getattr(np.dtypes, n) for n in np.dtypes.__all__ if n.endswith("DType")),
]


class _Inert:
    """Stands in for a training-config object (omegaconf's): built from anything, keeps
    nothing and does nothing. Only the names in ``_CONFIG_OBJECTS`` resolve to it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


def _plain_dict(*args: object) -> dict:
    """``collections.defaultdict`` as a plain dict: its factory is never kept or called."""
    return {}


# The classes omegaconf (2.0-2.3) pickles for a DictConfig/ListConfig of plain values, and
# typing.Any, which its metadata names as a type. Structured configs (user dataclasses,
# enums) name further classes and are refused.
_CONFIG_OBJECTS = (
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.Metadata",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.PathNode",
    "typing.Any",
)
# Lightning's dict subclass for hyperparameters, under its names across versions.
_ATTRIBUTE_DICTS = (
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
)

#: Every global a checkpoint may name beyond torch's defaults: each one builds only plain
#: data (no file, network or process access, no allocation sized by the file's numbers).
SAFE_GLOBALS: list = [
    *_NUMPY_SAFE_GLOBALS,
    argparse.Namespace,
    dict,
    list,
    int,
    float,
    str,
    bool,
    (_plain_dict, "collections.defaultdict"),
    *((dict, name) for name in _ATTRIBUTE_DICTS),
    # Pure paths never touch the file system; concrete ones are stored as pure ones.
    *(
        (pure, f"{module}.{kind}{cls}")
        for module in ("pathlib", "pathlib._local")
        for pure, cls in (
            (pathlib.PurePosixPath, "PosixPath"),
            (pathlib.PureWindowsPath, "WindowsPath"),
        )
        for kind in ("", "Pure")
    ),
    *((_Inert, name) for name in _CONFIG_OBJECTS),
]


#: Where the conversion of a refused checkpoint is documented (named in the error).
CONVERSION_DOC = "docs/extractors.md, section 'Refused checkpoints'"


def existing_file(path: str | Path) -> Path:
    """``path`` as a Path, or WeightsError when no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("weights file not found", path=path, param="weights")
    return path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes: the weights part of an extractor's key."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> StateDict:
    """Read a torch (``torch.save``) or safetensors file as one flat state dict.

    Unwraps ``{'net': ...}``, ``{'state_dict': ...}`` and ``{'model': ...}`` containers and
    strips the ``module.`` prefix DataParallel adds. Only tensors and plain data are loaded
    (``weights_only=True``): a file needing any other pickled object is refused.
    """
    path = existing_file(path)
    obj = load_checkpoint(path)
    while isinstance(obj, Mapping):
        nested = [k for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)]
        if not nested:
            break
        obj = obj[nested[0]]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"holds a {type(obj).__name__}, not a state dict", path=path)
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsError(
            f"not a state dict; non-tensor entries {first_keys(not_tensors)}", path=path
        )
    return {_strip_prefix(k, "module."): v for k, v in obj.items()}


def load_checkpoint(path: Path) -> object:
    """The raw object in a torch or safetensors file (tensors and plain data only).

    WeightsError naming the pickled globals when the file asks for any object outside
    :data:`SAFE_GLOBALS` (nothing of it is built), or when it is neither format.
    """
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types; the message says which case
        torch_error = error
    refused = refused_globals(path, torch_error)
    if refused:
        raise WeightsError(
            f"refused: it pickles objects that are not weights ({first_keys(refused)}), and "
            "quadrat never builds pickled objects from a file. If you trust the file, convert "
            f"it once to safetensors ({CONVERSION_DOC}) and use the converted file",
            path=path,
        ) from torch_error
    try:
        return _load_safetensors(path)
    except WeightsError:
        raise WeightsError(
            "cannot be read as a torch or safetensors weights file "
            f"({type(torch_error).__name__}: {_torch_detail(torch_error)})",
            path=path,
        ) from torch_error


def refused_globals(path: Path, error: BaseException) -> list[str]:
    """The globals (``module.name``) outside the allowlist that ``path`` pickles, read
    without unpickling; empty when ``error`` was not a refused global."""
    named = re.findall(r"GLOBAL ([\w.]+)", str(error))
    if not named:
        return []
    allowed = set(_allowed_names())
    listing = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    # Every refused name, not only the first (zip format, torch >= 2.5); the legacy format
    # cannot be listed, and the one name torch gave is kept.
    with contextlib.suppress(Exception):
        named += listing(path) if listing is not None else []
    return sorted({name for name in named if name not in allowed})


def _allowed_names() -> list[str]:
    out = []
    for entry in SAFE_GLOBALS:
        if isinstance(entry, tuple):
            out.append(entry[1])
        else:
            out.append(f"{entry.__module__}.{entry.__qualname__}")
    return out


def _torch_detail(error: BaseException) -> str:
    """The informative line of a torch.load error (torch wraps it in advice about
    ``weights_only=False``, which does not apply here)."""
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    lines = [s.strip() for s in str(error).splitlines()]
    useful = [s for s in lines if s and not s.startswith(boilerplate)]
    return (useful or ["no message"])[0][:200]


def _load_safetensors(path: Path) -> StateDict:
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as error:  # the library raises several types
        raise WeightsError(f"not a valid safetensors file ({error})", path=path) from error


def _strip_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def first_keys(keys: Sequence[str], n: int = 5) -> str:
    """The first ``n`` keys for an error message, with how many more there are."""
    shown = ", ".join(repr(k) for k in list(keys)[:n])
    more = len(keys) - n
    return f"[{shown}{f', ... {more} more' if more > 0 else ''}]"


__all__ = [
    "CONVERSION_DOC",
    "SAFE_GLOBALS",
    "StateDict",
    "existing_file",
    "file_sha256",
    "first_keys",
    "load_checkpoint",
    "read_state_dict",
    "refused_globals",
]
