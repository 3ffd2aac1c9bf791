"""Small helpers with no domain in them, each the one home of its idea.

- :func:`jsonable`: values (numpy, pandas, datetimes, paths, NaN) to JSON-ready Python.
- :class:`JSONEncoder`: the same rules for ``json.dumps(..., cls=JSONEncoder)``.
- :func:`chunked`: bound-parameter chunks for SQL ``IN (...)`` lists.
- :func:`resolve_device`: "auto" / "cpu" / "cuda[:N]" to a checked device name.
- :func:`limit_threads`: cap BLAS (and torch) threads for a block of work.

Nothing here imports torch, pandas or scikit-learn at module level: the CLI imports this
module on start-up.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, TypeVar

from quadrat.errors import DeviceError, InputError

T = TypeVar("T")

#: SQLite's historical limit of bound parameters is 999; stay under it everywhere.
SQL_CHUNK = 900


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays, frames, dates, paths; NaN -> None.

    >>> import numpy as np
    >>> jsonable({"a": np.float32(0.5), "b": [np.int64(2), float("nan")], 3: (1, 2)})
    {'a': 0.5, 'b': [2, None], '3': [1, 2]}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    module = type(value).__module__
    if module.startswith("numpy") and hasattr(value, "tolist"):  # arrays and scalars
        return jsonable(value.tolist())
    if module.startswith("pandas"):
        if hasattr(value, "isoformat"):  # Timestamp
            return None if value != value else value.isoformat()  # NaT != NaT
        if hasattr(value, "to_dict"):  # DataFrame, Series
            kwargs = {"orient": "list"} if hasattr(value, "columns") else {}
            return jsonable(value.to_dict(**kwargs))
        if value is getattr(__import__("pandas"), "NA", object()):
            return None
    return value


class JSONEncoder(json.JSONEncoder):
    """``json.dumps(obj, cls=JSONEncoder)`` with :func:`jsonable`'s rules for other types.

    NaN inside plain floats is left to ``allow_nan``: call ``jsonable`` first for strict JSON.
    """

    def default(self, o: Any) -> Any:
        converted = jsonable(o)
        if converted is o:
            return super().default(o)
        return converted


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON (no NaN) of ``value`` after :func:`jsonable`."""
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def chunked(items: Sequence[T] | Iterable[T], size: int = SQL_CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (SQL ``IN`` lists, batched inserts).

    >>> list(chunked(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    if size < 1:
        raise InputError("chunk size must be at least 1", value=size)
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


#: Devices a ``device`` argument may name; "auto" is CUDA when available, else the CPU.
DEVICES = ("auto", "cpu", "cuda", "cuda:N")


def resolve_device(device: str, *, cpu_only: bool = False) -> str:
    """``device`` checked and resolved: "auto" -> "cuda" when a GPU is usable, else "cpu".

    ``cpu_only`` (for numpy work such as the texture extractor) makes "auto" the CPU.
    "cpu" never imports torch; anything else does, lazily. A typo or a missing GPU is one
    clear error here rather than a failure deep inside torch after the project was opened.

    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    quadrat.errors.InputError: unknown device 'gpu': use auto, cpu, cuda or cuda:N
    """
    name = str(device).strip().lower()
    if name == "cpu":
        return "cpu"
    if name not in ("auto", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise InputError(
            f"unknown device {device!r}: use auto, cpu, cuda or cuda:N",
            value=device,
            param="device",
        )
    if name == "auto" and cpu_only:
        return "cpu"  # the answer is the CPU either way: do not import torch to ask
    cuda = _cuda_available()
    if name == "auto":
        return "cuda" if cuda else "cpu"
    if not cuda:
        raise DeviceError(
            f"device {device!r} asked for, but no CUDA GPU is usable here (use cpu or auto)",
            value=device,
            param="device",
        )
    if cpu_only:
        raise InputError(
            f"this step runs on the CPU only, not {device!r}", value=device, param="device"
        )
    return name


#: Files a Linux machine with a usable GPU driver has (NVIDIA, WSL's GPU, ROCm's KFD).
_GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")


def _no_gpu_driver() -> bool:
    """True when this is Linux and no GPU driver is there: torch could not find a GPU, so
    do not import it to ask (2-3 s and ~470 MB on a laptop CPU)."""
    if not sys.platform.startswith("linux"):
        return False
    return not any(os.path.exists(path) for path in _GPU_DRIVER_FILES)


def _cuda_available() -> bool:
    if _no_gpu_driver():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@contextlib.contextmanager
def limit_threads(blas: int | None = 1, *, torch_threads: int | None = None) -> Iterator[None]:
    """Cap BLAS threads to ``blas`` (None: leave them) and torch's to ``torch_threads``.

    Why: on a loaded 2-core machine, oversubscribed OpenBLAS/torch threads made small fits
    10-100x slower; classifiers and probes default to one thread.
    """
    with contextlib.ExitStack() as stack:
        if blas is not None:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=int(blas), user_api="blas"))
        if torch_threads is not None:
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(int(torch_threads))
            stack.callback(torch.set_num_threads, before)
        yield


__all__ = [
    "DEVICES",
    "SQL_CHUNK",
    "JSONEncoder",
    "chunked",
    "dumps",
    "jsonable",
    "limit_threads",
    "resolve_device",
]
