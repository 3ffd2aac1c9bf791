"""Trained classifiers to bytes and back, for storing in the project database.

Layout: ``QUADRAT-CLF\\n`` magic, a 4-byte big-endian header length, a UTF-8 JSON header
(format version, payload SHA-256, class name, quadrat/sklearn/numpy versions, labels),
then a pickle (protocol 5) of the estimator.

TRUST: unpickling runs code chosen by whoever wrote the bytes. Load only classifiers this
project trained itself; never load one received from elsewhere (a shared or downloaded
classifier needs a data-only format first, see CoralNet issue #297). The header can be read
without unpickling (``read_header``) to check versions and labels first. The SHA-256 only
detects corruption, not tampering.

``FORMAT_VERSION`` changes whenever the payload's meaning changes; ``loads_estimator`` refuses newer
versions rather than guess, so a later release can migrate older ones explicitly.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
import warnings
from typing import Any

import numpy as np
import sklearn

import quadrat
from quadrat._util import jsonable
from quadrat.errors import ClassifierFormatError

MAGIC = b"QUADRAT-CLF\n"
FORMAT_VERSION = 1
_LENGTH = struct.Struct(">I")


def dumps_estimator(estimator: Any, *, metadata: dict[str, Any] | None = None) -> bytes:
    """The fitted ``estimator`` as self-describing bytes; ``metadata`` (JSON) rides along."""
    payload = pickle.dumps(estimator, protocol=5)
    classes = getattr(estimator, "classes_", None)
    header = {
        "format_version": FORMAT_VERSION,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "quadrat_version": quadrat.__version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "classes": None if classes is None else jsonable(np.asarray(classes)),
        "metadata": metadata or {},
    }
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    return MAGIC + _LENGTH.pack(len(head)) + head + payload


def read_header(data: bytes) -> dict[str, Any]:
    """The JSON header of ``dumps_estimator`` output, without unpickling anything."""
    header, _ = _split(data)
    return header


def loads_estimator(data: bytes) -> Any:
    """The estimator stored by ``dumps_estimator``; only for bytes this project wrote.

    Raises ClassifierFormatError for foreign, truncated, corrupt or newer-format bytes.
    Warns when the scikit-learn version differs from the one that trained it.
    """
    header, payload = _split(data)
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ClassifierFormatError(
            f"classifier format version {version!r} is not supported by quadrat "
            f"{quadrat.__version__} (reads 1..{FORMAT_VERSION}); upgrade quadrat"
        )
    if len(payload) != header.get("payload_bytes"):
        raise ClassifierFormatError(
            f"classifier is truncated: {len(payload)} of {header.get('payload_bytes')} bytes"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise ClassifierFormatError("classifier bytes are corrupt (SHA-256 mismatch)")
    if header.get("sklearn_version") != sklearn.__version__:
        warnings.warn(
            f"classifier trained with scikit-learn {header.get('sklearn_version')}, loading "
            f"with {sklearn.__version__}: retrain it if its scores look wrong",
            stacklevel=2,
        )
    return pickle.loads(payload)


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ClassifierFormatError(f"classifier must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise ClassifierFormatError(
            f"not a quadrat classifier (starts with {data[:12]!r}, expected {MAGIC!r})"
        )
    start = len(MAGIC) + _LENGTH.size
    if len(data) < start:
        raise ClassifierFormatError("classifier is truncated inside its header")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if len(data) < start + length:
        raise ClassifierFormatError("classifier is truncated inside its header")
    try:
        header = json.loads(data[start : start + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ClassifierFormatError(f"classifier header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise ClassifierFormatError("classifier header is not a JSON object")
    return header, data[start + length :]
