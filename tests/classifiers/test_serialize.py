"""Classifier bytes: round trip, header, and refusal of foreign, corrupt or newer data."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import sklearn

from quadrat.classifiers import serialize
from quadrat.classifiers.estimators import CalibratedLogisticRegression, CoralNetMLP
from quadrat.errors import ClassifierFormatError, QuadratError


@pytest.fixture(scope="module")
def fitted(blobs):
    X, y = blobs
    return CoralNetMLP(max_iter=5).fit(X, y)


def _rewrite_header(data: bytes, **changes) -> bytes:
    header = serialize.read_header(data)
    header.update(changes)
    (length,) = struct.unpack_from(">I", data, len(serialize.MAGIC))
    payload = data[len(serialize.MAGIC) + 4 + length :]
    head = json.dumps(header).encode()
    return serialize.MAGIC + struct.pack(">I", len(head)) + head + payload


def test_round_trip_scores_identically(fitted, blobs):
    X, _ = blobs
    data = serialize.dumps_estimator(fitted, metadata={"source": "moorea", "accuracy": 0.8})
    assert isinstance(data, bytes)
    loaded = serialize.loads_estimator(data)
    assert type(loaded) is CoralNetMLP
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)


def test_header_readable_without_unpickling(fitted):
    header = serialize.read_header(serialize.dumps_estimator(fitted, metadata={"source": "s1"}))
    assert header["format_version"] == serialize.FORMAT_VERSION
    assert header["class"].endswith("CoralNetMLP")
    assert header["classes"] == ["a", "b", "c"]
    assert header["sklearn_version"] == sklearn.__version__
    assert header["metadata"] == {"source": "s1"}


def test_unfitted_estimator_round_trips():
    header = serialize.read_header(serialize.dumps_estimator(CalibratedLogisticRegression()))
    assert header["classes"] is None


def test_foreign_bytes_refused():
    with pytest.raises(ClassifierFormatError, match="not a quadrat classifier"):
        serialize.loads_estimator(b"\x80\x04\x95 pickle")
    with pytest.raises(ClassifierFormatError):
        serialize.loads_estimator("text")  # type: ignore[arg-type]


def test_truncated_and_corrupt_refused(fitted):
    data = serialize.dumps_estimator(fitted)
    with pytest.raises(ClassifierFormatError, match="truncated"):
        serialize.loads_estimator(data[:-10])
    with pytest.raises(ClassifierFormatError, match="truncated"):
        serialize.loads_estimator(data[: len(serialize.MAGIC) + 6])
    corrupt = bytearray(data)
    corrupt[-20] ^= 0xFF
    with pytest.raises(ClassifierFormatError, match="corrupt"):
        serialize.loads_estimator(bytes(corrupt))
    assert issubclass(ClassifierFormatError, QuadratError)


def test_newer_format_refused(fitted):
    newer = _rewrite_header(
        serialize.dumps_estimator(fitted), format_version=serialize.FORMAT_VERSION + 1
    )
    with pytest.raises(ClassifierFormatError, match="not supported"):
        serialize.loads_estimator(newer)


def test_other_sklearn_version_warns(fitted):
    other = _rewrite_header(serialize.dumps_estimator(fitted), sklearn_version="0.0.1")
    with pytest.warns(UserWarning, match="scikit-learn 0.0.1"):
        serialize.loads_estimator(other)
