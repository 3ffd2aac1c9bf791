"""Classifier bytes: arrays plus JSON, rebuilt to the same scores; pickles never loaded."""

from __future__ import annotations

import json
import pickle
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn

from quadrat.classifiers import serialize, tensorfile
from quadrat.classifiers.estimators import CalibratedLogisticRegression, CoralNetMLP
from quadrat.classifiers.metrics import top_k
from quadrat.errors import ClassifierFormatError, LimitError, NotFoundError, QuadratError


def _fit(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y, groups=np.arange(len(y)) // 10)


@pytest.fixture(scope="module")
def fitted(blobs):
    X, y = blobs
    return _fit(CoralNetMLP(max_iter=5), X, y)


def _same_scores(original: Any, loaded: Any, X: np.ndarray) -> None:
    assert type(loaded) is type(original)
    np.testing.assert_array_equal(loaded.classes_, original.classes_)
    expected, got = original.predict_proba(X), loaded.predict_proba(X)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    labels, scores = top_k(expected, original.classes_, k=5)
    got_labels, got_scores = top_k(got, loaded.classes_, k=5)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_scores, scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))


CASES = {
    "lr": lambda: CalibratedLogisticRegression(),
    "lr-sgd": lambda: CalibratedLogisticRegression(solver="sgd"),
    "lr-cv": lambda: CalibratedLogisticRegression(calibration="cv"),
    "mlp": lambda: CoralNetMLP(max_iter=20),
    "mlp-standardized": lambda: CoralNetMLP(max_iter=20, standardize=True),
    "mlp-two-layers": lambda: CoralNetMLP(hidden_layer_sizes=(16, 8), max_iter=20),
    "mlp-cv": lambda: CoralNetMLP(max_iter=20, calibration="cv"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_rebuilt_estimator_scores_as_the_original(case: str, n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    y = np.repeat(np.arange(n_classes) * 10 + 3, 60)  # integer label ids, as the store's
    X = (rng.normal(size=(y.size, 12)) + 0.4 * y[:, None] / 10).astype(np.float32)
    original = _fit(CASES[case](), X, y)
    data = serialize.dumps_estimator(original, metadata={"extractor_key": "texture-abc"})
    loaded = serialize.loads_estimator(data)
    _same_scores(original, loaded, X)
    _same_scores(original, loaded, X[:1].astype(np.float16))  # one row, float16 as stored
    assert loaded.calibration_ == original.calibration_
    assert loaded.get_params() == original.get_params()


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_torch_trained_estimators_round_trip(kind: str, blobs) -> None:
    pytest.importorskip("torch")
    X, y = blobs
    original = _fit(
        CoralNetMLP(max_iter=5, backend="torch", device="cpu")
        if kind == "mlp"
        else CalibratedLogisticRegression(solver="torch", device="cpu"),
        X,
        y,
    )
    loaded = serialize.loads_estimator(serialize.dumps_estimator(original))
    assert type(loaded.estimator_).__name__ == "TorchMLPClassifier"
    _same_scores(original, loaded, X)


def test_string_labels_round_trip(fitted, blobs) -> None:
    X, _ = blobs
    loaded = serialize.loads_estimator(serialize.dumps_estimator(fitted))
    assert loaded.classes_.tolist() == ["a", "b", "c"]
    _same_scores(fitted, loaded, X)


def test_header_says_what_the_classifier_is(fitted) -> None:
    data = serialize.dumps_estimator(
        fitted, metadata={"extractor_key": "k1", "metrics": {"accuracy": float("nan")}}
    )
    header = serialize.read_header(data)
    assert header["format"] == "quadrat-classifier"
    assert header["format_version"] == serialize.FORMAT_VERSION
    assert header["kind"] == "CoralNetMLP"
    assert header["classes"]["values"] == ["a", "b", "c"]
    assert header["versions"]["sklearn"] == sklearn.__version__
    assert header["metadata"] == {"extractor_key": "k1", "metrics": {"accuracy": None}}
    assert header["params"]["max_iter"] == 5


def test_bytes_are_plain_safetensors(fitted) -> None:
    """Readable by the safetensors package itself: arrays, and one JSON metadata string."""
    st = pytest.importorskip("safetensors.numpy")
    data = serialize.dumps_estimator(fitted)
    tensors = st.load(data)
    assert {"base.layer0.weight", "calibration.a", "calibration.b"} <= set(tensors)
    np.testing.assert_array_equal(tensors["base.layer0.weight"], fitted.estimator_.coefs_[0])
    # ... and what safetensors writes, tensorfile reads.
    arrays = {k: np.asarray(v) for k, v in tensors.items()}
    back, meta = tensorfile.decode(st.save(arrays, metadata={"m": "x"}))
    assert meta == {"m": "x"}
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)


def test_serialize_module_imports_no_pickle() -> None:
    source = Path(serialize.__file__).read_text(encoding="utf-8")
    assert "import pickle" not in source and "joblib" not in source


def test_unfitted_or_foreign_estimators_are_not_stored(blobs) -> None:
    with pytest.raises(ClassifierFormatError, match="unfitted"):
        serialize.dumps_estimator(CalibratedLogisticRegression())
    with pytest.raises(ClassifierFormatError, match="only"):
        serialize.dumps_estimator(sklearn.linear_model.LogisticRegression())
    X, y = blobs
    isotonic = _fit(CalibratedLogisticRegression(calibration_method="isotonic"), X, y)
    with pytest.raises(ClassifierFormatError, match="sigmoid"):
        serialize.dumps_estimator(isotonic)


def test_foreign_bytes_refused() -> None:
    with pytest.raises(ClassifierFormatError, match="truncated"):
        serialize.loads_estimator(b"\x01")
    with pytest.raises(ClassifierFormatError):
        serialize.loads_estimator("text")  # type: ignore[arg-type]
    plain = tensorfile.encode({"x": np.zeros(3)}, {"other": "{}"})
    with pytest.raises(ClassifierFormatError, match="not a quadrat classifier"):
        serialize.loads_estimator(plain)
    assert issubclass(ClassifierFormatError, QuadratError)


def _parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack_from("<Q", data)
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + body


def _with_meta(data: bytes, **changes: Any) -> bytes:
    header, body = _parts(data)
    meta = json.loads(header["__metadata__"]["quadrat-classifier"])
    meta.update(changes)
    header["__metadata__"]["quadrat-classifier"] = json.dumps(meta)
    return _join(header, body)


def test_truncated_and_tampered_bytes_refused(fitted) -> None:
    data = serialize.dumps_estimator(fitted)
    # The safetensors package parses the arrays; its refusals arrive as "malformed".
    with pytest.raises(ClassifierFormatError, match="malformed"):
        serialize.loads_estimator(data[:-10])
    with pytest.raises(ClassifierFormatError, match="truncated"):
        serialize.loads_estimator(data[:20])
    with pytest.raises(ClassifierFormatError, match="malformed"):
        serialize.loads_estimator(data + b"\0" * 8)
    with pytest.raises(ClassifierFormatError, match="claims"):
        serialize.loads_estimator(struct.pack("<Q", 2**62) + data[8:])

    header, body = _parts(data)
    header["calibration.a"]["dtype"] = "object"
    with pytest.raises(ClassifierFormatError, match="malformed"):
        serialize.loads_estimator(_join(header, body))
    header, body = _parts(data)
    header["calibration.a"]["shape"] = [2]
    with pytest.raises(ClassifierFormatError, match="malformed"):
        serialize.loads_estimator(_join(header, body))
    header, body = _parts(data)
    header["calibration.a"]["data_offsets"] = header["calibration.b"]["data_offsets"]
    with pytest.raises(ClassifierFormatError, match="malformed"):
        serialize.loads_estimator(_join(header, body))

    with pytest.raises(ClassifierFormatError, match="do not chain"):
        serialize.loads_estimator(_with_meta(data, n_features_in=9))
    with pytest.raises(ClassifierFormatError, match="unknown classifier kind"):
        serialize.loads_estimator(_with_meta(data, kind="os.system"))
    with pytest.raises(ClassifierFormatError, match="unknown parameters"):
        serialize.loads_estimator(_with_meta(data, params={"__class__": "x"}))
    with pytest.raises(ClassifierFormatError, match="unknown base model"):
        serialize.loads_estimator(
            _with_meta(
                data, base={"type": "builtins.eval", "classes": {"dtype": "<U1", "values": []}}
            )
        )


def test_scaler_of_other_width_refused(blobs) -> None:
    X, y = blobs
    data = serialize.dumps_estimator(_fit(CalibratedLogisticRegression(), X, y))
    assert not serialize.is_unsafe_format(data)
    with pytest.raises(ClassifierFormatError, match="scaler has 8 features, not 9"):
        serialize.loads_estimator(_with_meta(data, n_features_in=9))


def test_newer_and_older_format_versions_refused(fitted) -> None:
    data = serialize.dumps_estimator(fitted)
    newer = _with_meta(data, format_version=serialize.FORMAT_VERSION + 1)
    with pytest.raises(ClassifierFormatError, match="upgrade quadrat"):
        serialize.loads_estimator(newer)
    older = _with_meta(data, format_version=1)
    with pytest.raises(ClassifierFormatError, match="retrain"):
        serialize.loads_estimator(older)


class Payload:
    """Unpickling this writes ``marker``: the proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pwned"))


def legacy_blob(marker: Path) -> bytes:
    """Bytes as quadrat's old (pickle) format wrote them, carrying a payload."""
    payload = pickle.dumps(Payload(marker), protocol=5)
    head = json.dumps({"format_version": 1, "payload_bytes": len(payload)}).encode()
    return serialize.LEGACY_MAGIC + struct.pack(">I", len(head)) + head + payload


def test_pickle_payloads_are_refused_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    # The payload works: unpickling it does write the marker (then we remove it).
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()
    marker.unlink()

    for blob in (legacy_blob(marker), pickle.dumps(Payload(marker), protocol=5)):
        with pytest.raises(ClassifierFormatError, match="older quadrat in an unsafe") as caught:
            serialize.loads_estimator(blob)
        assert caught.value.param == "force"
        with pytest.raises(ClassifierFormatError, match="older quadrat"):
            serialize.read_header(blob)
        assert serialize.is_unsafe_format(blob)
    assert not serialize.is_unsafe_format(b"")
    # A pickle inside an array of a well-formed file is only bytes.
    inside = tensorfile.encode(
        {"base.coef": np.frombuffer(pickle.dumps(Payload(marker)), np.uint8)}, {}
    )
    with pytest.raises(ClassifierFormatError):
        serialize.loads_estimator(inside)
    assert not marker.exists()


def test_classifier_files_round_trip_and_refuse(tmp_path: Path, fitted, blobs) -> None:
    X, _ = blobs
    data = serialize.dumps_estimator(fitted)
    path = serialize.write_classifier_file(tmp_path / "sub" / "model.safetensors", data)
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp left
    assert serialize.read_classifier_file(path) == data
    _same_scores(fitted, serialize.loads_estimator(serialize.read_classifier_file(path)), X)

    with pytest.raises(LimitError, match="max_bytes") as caught:
        serialize.read_classifier_file(path, max_bytes=len(data) - 1)
    assert caught.value.param == "max_bytes"
    with pytest.raises(NotFoundError):
        serialize.read_classifier_file(tmp_path / "missing.safetensors")

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(legacy_blob(marker))
    with pytest.raises(ClassifierFormatError, match="unsafe format") as refused:
        serialize.read_classifier_file(evil)
    assert refused.value.path == evil
    with pytest.raises(ClassifierFormatError):  # nor is a pickle written out as a file
        serialize.write_classifier_file(tmp_path / "out.safetensors", legacy_blob(marker))
    assert not (tmp_path / "out.safetensors").exists()
    assert not marker.exists()
