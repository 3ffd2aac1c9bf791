"""Named arrays and string metadata in the safetensors format: no code, ever.

The ``safetensors`` package (a core dependency: a 2 MB wheel with no dependencies of its
own, usable from NumPy without torch) writes and parses the bytes; it rejects truncated
files, overlapping or gapped byte ranges and shapes that do not match their bytes. This
module adds what a classifier read from an untrusted project file needs on top: a capped
header length, a JSON header without duplicate keys, string-to-string metadata (which
``safetensors.numpy.load`` does not return) and numeric dtypes only, with every failure a
:class:`~quadrat.errors.ClassifierFormatError`.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from quadrat.errors import ClassifierFormatError

#: The largest JSON header read (safetensors' own cap is 100 MB; ours holds metadata only).
MAX_HEADER_BYTES = 16 * 1024 * 1024

#: dtype kinds a classifier may hold: booleans, integers, floats.
_KINDS = frozenset("biuf")
_LENGTH = struct.Struct("<Q")


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """``tensors`` and string ``metadata`` as safetensors bytes."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        array = np.asarray(value)
        if array.dtype.kind not in _KINDS:
            raise ClassifierFormatError(
                f"array {name!r} has dtype {array.dtype}, which the format cannot hold",
                value=str(array.dtype),
            )
        arrays[name] = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    text = {str(k): str(v) for k, v in (metadata or {}).items()} or None
    return save(arrays, metadata=text)


#: The first bytes of the pickle-based classifier format of quadrat <= 0.1: refused.
LEGACY_MAGIC = b"QUADRAT-CLF\n"


def pickled(data: bytes) -> bool:
    """Starts as a pickle of protocol 2-5 does (PROTO); a safetensors length may too."""
    return data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def refuse_pickles(data: bytes) -> None:
    """A ClassifierFormatError when ``data`` is a pickle (quadrat's old format, or bare).

    Needs only NumPy and safetensors, so a hostile classifier is refused before
    scikit-learn is even imported (in well under a second from a cold start).
    """
    data = bytes(data)
    unsafe = ClassifierFormatError(
        "this classifier was stored by an older quadrat in an unsafe format (a pickle, "
        "which can run code when loaded); it is never loaded: retrain it with force=True",
        param="force",
    )
    if data.startswith(LEGACY_MAGIC):
        raise unsafe
    if pickled(data):
        try:
            decode(data)
        except ClassifierFormatError as error:
            raise unsafe from error


def decode(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and string metadata of safetensors ``data``; ClassifierFormatError if bad."""
    if len(data) < _LENGTH.size:
        raise ClassifierFormatError("classifier is truncated inside its header")
    (length,) = _LENGTH.unpack_from(data, 0)
    if length > MAX_HEADER_BYTES:
        raise ClassifierFormatError(
            f"classifier header claims {length} bytes (at most {MAX_HEADER_BYTES} are read)",
            value=length,
        )
    start = _LENGTH.size + length
    if len(data) < start:
        raise ClassifierFormatError("classifier is truncated inside its header")
    try:
        header = json.loads(bytes(data[_LENGTH.size : start]), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise ClassifierFormatError(f"classifier header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise ClassifierFormatError("classifier header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ClassifierFormatError("classifier metadata must map strings to strings")
    try:
        tensors = load(bytes(data))
    except (SafetensorError, ValueError, TypeError) as error:
        raise ClassifierFormatError(f"classifier arrays are malformed: {error}") from error
    for name, array in tensors.items():
        if array.dtype.kind not in _KINDS:
            raise ClassifierFormatError(
                f"array {name!r} has dtype {array.dtype}; only numbers are read", value=name
            )
    return tensors, dict(metadata)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in the header")
    return dict(pairs)


__all__ = ["MAX_HEADER_BYTES", "decode", "encode"]
