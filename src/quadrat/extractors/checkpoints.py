"""Reading weights files safely: torch or safetensors, containers unwrapped, no code run.

``torch.load`` runs with ``weights_only=True``. Lightning checkpoints (solo-learn's,
BenthicNet's, ``quadrat pretrain``'s) pickle their training config beside the tensors;
for those a tensors-only unpickler keeps the tensors and makes every other pickled object
an inert stand-in, so a checkpoint's pickled code can never run.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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
    strips the ``module.`` prefix DataParallel adds. Only tensors are loaded
    (``weights_only=True``): a file needing arbitrary pickled code is refused.
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
    """The raw object in a torch or safetensors file (plain types and tensors only)."""
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as unsafe:
        # Lightning checkpoints (solo-learn's, BenthicNet's) pickle their training config
        # (omegaconf objects, ...) beside the tensors: keep the tensors, inert the rest.
        try:
            return torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_tensors_only
            )
        except Exception:
            torch_error: Exception = unsafe
    except Exception as error:  # any failure: try safetensors
        torch_error = error
    try:
        return _load_safetensors(path)
    except WeightsError:
        first_line = (str(torch_error).strip().splitlines() or ["no message"])[0][:200]
        raise WeightsError(
            "cannot be read as a torch or safetensors weights file "
            f"({type(torch_error).__name__}: {first_line})",
            path=path,
        ) from torch_error


class _Inert:
    """Stands in for every pickled object that is not a tensor: built from anything, does
    nothing, so a checkpoint's pickled code can never run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, value: object) -> None:
        pass

    def extend(self, values: object) -> None:
        pass


# What a tensor needs to be unpickled (torch resolves storage classes itself).
_TENSOR_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Tensor"),
    ("torch", "Size"),
}


class _TensorsOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals tensors need; any other class or function is :class:`_Inert`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _TENSOR_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _Inert


def _tensors_only_load(file: Any, **kwargs: Any) -> Any:
    return _TensorsOnlyUnpickler(file, **kwargs).load()


# torch.load's ``pickle_module``: it subclasses ``Unpickler`` and calls ``load`` (old format).
_tensors_only = SimpleNamespace(
    __name__="tensors_only", Unpickler=_TensorsOnlyUnpickler, load=_tensors_only_load
)


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
    "StateDict",
    "existing_file",
    "file_sha256",
    "first_keys",
    "load_checkpoint",
    "read_state_dict",
]
