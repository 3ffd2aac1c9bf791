"""The safetensors file format in plain NumPy: named arrays and string metadata, no code.

Why not the ``safetensors`` package: it ships with the ``cnn`` extra, and a core install
(no torch, no safetensors) must still train, store and classify. The format is small
(an 8-byte little-endian header length, a JSON header naming each array's dtype, shape
and byte range, then the raw little-endian bytes), so this module writes files that
``safetensors.numpy.load`` reads and reads files it writes (tested both ways).

Reading is for untrusted bytes: the header length is capped, the JSON must be an object
without duplicate keys, only numeric and boolean dtypes are accepted, every byte range
must match its shape and the ranges must tile the data exactly (as safetensors checks).
Nothing is ever evaluated: arrays are copied out of the buffer with ``np.frombuffer``.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from quadrat.errors import ClassifierFormatError

#: The largest JSON header read (safetensors' own cap is 100 MB; ours holds metadata only).
MAX_HEADER_BYTES = 16 * 1024 * 1024

_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_LENGTH = struct.Struct("<Q")


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """``tensors`` and string ``metadata`` as safetensors bytes."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        code = _NAMES.get(array.dtype.newbyteorder("<"))
        if code is None:
            raise ClassifierFormatError(
                f"array {name!r} has dtype {array.dtype}, which the format cannot hold",
                value=str(array.dtype),
            )
        raw = np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
        header[name] = {
            "dtype": code,
            "shape": [int(s) for s in array.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # safetensors pads the header to 8 bytes
    return _LENGTH.pack(len(head)) + head + b"".join(chunks)


def decode(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and string metadata of safetensors ``data``; ClassifierFormatError if bad."""
    view = memoryview(data)
    if len(view) < _LENGTH.size:
        raise ClassifierFormatError("classifier is truncated inside its header")
    (length,) = _LENGTH.unpack_from(view, 0)
    if length > MAX_HEADER_BYTES:
        raise ClassifierFormatError(
            f"classifier header claims {length} bytes (at most {MAX_HEADER_BYTES} are read)",
            value=length,
        )
    start = _LENGTH.size + length
    if len(view) < start:
        raise ClassifierFormatError("classifier is truncated inside its header")
    try:
        header = json.loads(bytes(view[_LENGTH.size : start]), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise ClassifierFormatError(f"classifier header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise ClassifierFormatError("classifier header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ClassifierFormatError("classifier metadata must map strings to strings")
    body = view[start:]
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        dtype, shape, begin, end = _entry(name, entry)
        if end - begin != math.prod(shape) * dtype.itemsize:
            raise ClassifierFormatError(
                f"array {name!r}: {end - begin} bytes do not hold shape {shape}", value=name
            )
        if end > len(body):
            raise ClassifierFormatError(f"classifier is truncated inside array {name!r}")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).copy()
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise ClassifierFormatError(f"array {name!r} overlaps or leaves a gap", value=name)
        position = end
    if position != len(body):
        raise ClassifierFormatError(
            f"classifier has {len(body) - position} bytes after its last array"
        )
    return tensors, metadata


def _entry(name: str, entry: Any) -> tuple[np.dtype[Any], tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
        raise ClassifierFormatError(
            f"array {name!r} has no supported dtype (one of {', '.join(_DTYPES)})", value=name
        )
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(_count(s) for s in shape):
        raise ClassifierFormatError(f"array {name!r} has a bad shape: {shape!r}", value=name)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise ClassifierFormatError(f"array {name!r} has bad offsets: {offsets!r}", value=name)
    return _DTYPES[entry["dtype"]], tuple(shape), offsets[0], offsets[1]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in the header")
    return dict(pairs)


__all__ = ["MAX_HEADER_BYTES", "decode", "encode"]
