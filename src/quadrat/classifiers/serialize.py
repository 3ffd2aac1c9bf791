"""Trained classifiers as plain arrays plus JSON: stored in the database, shared as files.

No code from data. A classifier is a safetensors file (``tensorfile``): the scaler's mean
and scale, the base model's weights (logistic regression's ``coef_``/``intercept_``, or
each MLP layer's weight and bias) and the per-label Platt sigmoids' ``a``/``b``, with
one JSON metadata entry (format name and version, kind, labels, the estimator's
parameters, fitted facts, the caller's metadata such as extractor key, hyperparameters
and metrics, and the library versions). The same bytes are the portable classifier file
(``write_classifier_file`` / ``read_classifier_file``).

Rebuilding (``loads_estimator``) constructs the estimator the trainer made
(``CalibratedLogisticRegression`` or ``CoralNetMLP``) and sets fitted attributes: a
``StandardScaler`` (``mean_``, ``scale_``), the scikit-learn or PyTorch-trained base model
(``coef_``/``intercept_``; ``coefs_``/``intercepts_``, all public fitted attributes, so
scoring runs scikit-learn's own code) and, for the calibration, ``SigmoidCalibration``
below: the same ten lines of NumPy as scikit-learn's ``CalibratedClassifierCV`` with one
sigmoid per label (its calibrator classes are private). Scores equal the original's
(tests compare them to 1e-6; in practice they are identical). Only sigmoid calibration
with a single calibrated model is stored (what the trainer makes); other estimators are
refused when saving. Training bookkeeping (``fit_index_``, loss curves) is not kept.

Bytes written by quadrat before this format (a header then a pickle) are refused, never
unpickled: unpickling runs whatever code the bytes name. Retrain (``train`` with
``force``) to replace such a classifier.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import quadrat
from quadrat._util import jsonable
from quadrat.classifiers import tensorfile
from quadrat.classifiers.estimators import CalibratedLogisticRegression, CoralNetMLP
from quadrat.classifiers.torch_mlp import TorchMLPClassifier
from quadrat.errors import ClassifierFormatError, LimitError, NotFoundError

FORMAT = "quadrat-classifier"
FORMAT_VERSION = 2
#: The first bytes of the pickle-based format of quadrat <= 0.1 (version 1): refused.
LEGACY_MAGIC = tensorfile.LEGACY_MAGIC
#: The largest classifier file read (a (200, 100) MLP on 1280 features is about 1 MB).
MAX_CLASSIFIER_BYTES = 256 * 1024 * 1024

_ESTIMATORS: dict[str, type[CalibratedLogisticRegression | CoralNetMLP]] = {
    "CalibratedLogisticRegression": CalibratedLogisticRegression,
    "CoralNetMLP": CoralNetMLP,
}
#: Fitted scalars kept beside the arrays (the ones each estimator has).
_FITTED = (
    "calibration_",
    "n_train_",
    "n_calibration_",
    "n_iter_",
    "device_",
    "hidden_layer_sizes_",
    "learning_rate_init_",
    "max_iter_",
    "C_",
)


class SigmoidCalibration:
    """One Platt sigmoid per label over a fitted base model's scores, as scikit-learn's
    ``CalibratedClassifierCV(method="sigmoid")`` scores with one calibrated model.

    ``a[i]``, ``b[i]`` calibrate the base model's score column ``i`` (its ``classes_``
    order; one column for two labels): ``p = 1 / (1 + exp(a * score + b))``, normalised
    over the labels (two labels: ``1 - p`` for the first).
    """

    def __init__(self, base: Any, classes: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        self.base = base
        self.classes_ = classes
        self.a = a
        self.b = b

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n, n_classes) in ``classes_`` order."""
        from scipy.special import expit

        n_classes = self.classes_.shape[0]
        if hasattr(self.base, "decision_function"):
            scores = self.base.decision_function(X)
        else:
            scores = self.base.predict_proba(X)
            if n_classes == 2:
                scores = scores[:, 1]  # the positive label's probability, as scikit-learn
        scores = scores.reshape(-1, 1) if scores.ndim == 1 else scores
        proba = np.zeros((X.shape[0], n_classes))
        # Position of each base label among ``classes_`` (not searchsorted: an imported
        # classifier's labels are renumbered for the project and need not stay sorted).
        where = {label: i for i, label in enumerate(self.classes_.tolist())}
        columns = [where[label] for label in self.base.classes_.tolist()]
        # Two labels: one score column and one sigmoid, for the second label (zip stops there).
        for index, column, a, b in zip(columns, scores.T, self.a, self.b, strict=False):
            proba[:, index + 1 if n_classes == 2 else index] = expit(-(a * column + b))
        if n_classes == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
            return proba
        total = np.sum(proba, axis=1)[:, np.newaxis]
        uniform = np.full_like(proba, 1 / n_classes)
        return np.divide(proba, total, out=uniform, where=total != 0)


# ------------------------------------------------------------------------------ writing


def dumps_estimator(estimator: Any, *, metadata: dict[str, Any] | None = None) -> bytes:
    """The fitted ``estimator`` as safetensors bytes; ``metadata`` (JSON) rides along."""
    name = type(estimator).__name__
    if _ESTIMATORS.get(name) is not type(estimator):
        raise ClassifierFormatError(
            f"cannot store a {name}: only {' and '.join(_ESTIMATORS)} are stored", value=name
        )
    if not hasattr(estimator, "calibrated_"):
        raise ClassifierFormatError(f"cannot store an unfitted {name}; fit it first")
    tensors: dict[str, np.ndarray] = {}
    base = estimator.estimator_
    header: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": name,
        "params": jsonable(estimator.get_params()),
        "fitted": {k: jsonable(getattr(estimator, k)) for k in _FITTED if hasattr(estimator, k)},
        "n_features_in": int(estimator.n_features_in_),
        "classes": _labels(estimator.classes_),
        "dropped_classes": _labels(getattr(estimator, "dropped_classes_", np.zeros(0))),
        "scaler": _dump_scaler(estimator.scaler_, tensors),
        "base": _dump_base(base, tensors),
        "calibration": _dump_calibration(estimator, tensors),
        "metadata": jsonable(metadata or {}),
        "versions": {
            "quadrat": quadrat.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    return tensorfile.encode(tensors, {FORMAT: json.dumps(header, sort_keys=True)})


def _labels(values: Any) -> dict[str, Any]:
    array = np.asarray(values)
    if array.dtype.kind not in "iubUO":
        raise ClassifierFormatError(f"labels of dtype {array.dtype} cannot be stored")
    if array.dtype.kind == "O" and not all(isinstance(v, str) for v in array.tolist()):
        raise ClassifierFormatError("labels must be numbers or strings")
    return {
        "dtype": "object" if array.dtype.kind == "O" else array.dtype.str,
        "values": array.tolist(),
    }


def _dump_scaler(scaler: StandardScaler | None, tensors: dict[str, np.ndarray]) -> Any:
    if scaler is None:
        return None
    if scaler.with_mean:
        tensors["scaler.mean"] = np.asarray(scaler.mean_)
    if scaler.with_std:
        tensors["scaler.scale"] = np.asarray(scaler.scale_)
    return {"with_mean": bool(scaler.with_mean), "with_std": bool(scaler.with_std)}


def _dump_base(base: Any, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    facts: dict[str, Any] = {"type": type(base).__name__, "classes": _labels(base.classes_)}
    if isinstance(base, LogisticRegression | SGDClassifier):
        tensors["base.coef"] = np.asarray(base.coef_)
        tensors["base.intercept"] = np.asarray(base.intercept_)
        return facts
    if isinstance(base, MLPClassifier | TorchMLPClassifier):
        if isinstance(base, MLPClassifier):
            if base.activation != "relu":
                raise ClassifierFormatError("only ReLU MLPs are stored", value=base.activation)
            facts["out_activation"] = base.out_activation_
        facts["layers"] = len(base.coefs_)
        for i, (weight, bias) in enumerate(zip(base.coefs_, base.intercepts_, strict=True)):
            tensors[f"base.layer{i}.weight"] = np.asarray(weight)
            tensors[f"base.layer{i}.bias"] = np.asarray(bias)
        return facts
    raise ClassifierFormatError(f"cannot store a {type(base).__name__} base model")


def _dump_calibration(estimator: Any, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    members = estimator.calibrated_.calibrated_classifiers_
    if len(members) != 1 or members[0].method != "sigmoid":
        raise ClassifierFormatError(
            "only one sigmoid-calibrated model is stored "
            f"(got {len(members)} with method {members[0].method!r})",
            param="calibration_method",
        )
    tensors["calibration.a"] = np.array([c.a_ for c in members[0].calibrators], np.float64)
    tensors["calibration.b"] = np.array([c.b_ for c in members[0].calibrators], np.float64)
    return {"method": "sigmoid"}


# ------------------------------------------------------------------------------ reading


def read_header(data: bytes) -> dict[str, Any]:
    """The JSON metadata of ``dumps_estimator`` output (kind, labels, versions, metadata)."""
    return _split(data)[0]


def loads_estimator(data: bytes) -> CalibratedLogisticRegression | CoralNetMLP:
    """The estimator stored by ``dumps_estimator``, rebuilt from arrays; runs no code.

    Raises ClassifierFormatError for pickles (the old format included), foreign,
    truncated, inconsistent or newer-format bytes.
    """
    header, tensors = _split(data)
    try:
        estimator = _build(header, tensors)
        # A zero row through the whole model: shapes that do not chain fail here, not later.
        estimator.predict_proba(np.zeros((1, estimator.n_features_in_), np.float32))
    except ClassifierFormatError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ClassifierFormatError(f"classifier is inconsistent: {error!r}") from error
    return estimator


def is_unsafe_format(data: bytes) -> bool:
    """Whether ``data`` is a pickle (quadrat's old format, or bare): never loaded.

    ``train`` treats such a stored classifier as absent, so a retrained one replaces it.
    """
    data = bytes(data)
    if data.startswith(LEGACY_MAGIC):
        return True
    if not tensorfile.pickled(data):
        return False
    try:
        tensorfile.decode(data)
    except ClassifierFormatError:
        return True
    return False


def _split(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ClassifierFormatError(f"classifier must be bytes, got {type(data).__name__}")
    data = bytes(data)
    tensorfile.refuse_pickles(data)
    tensors, strings = tensorfile.decode(data)
    if FORMAT not in strings:
        raise ClassifierFormatError(f"not a quadrat classifier (no {FORMAT!r} metadata)")
    try:
        header = json.loads(strings[FORMAT])
    except json.JSONDecodeError as error:
        raise ClassifierFormatError(f"classifier metadata is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise ClassifierFormatError("classifier metadata is not a JSON object")
    version = header.get("format_version")
    if header.get("format") != FORMAT or not isinstance(version, int):
        raise ClassifierFormatError("not a quadrat classifier (no format version)")
    if version != FORMAT_VERSION:
        raise ClassifierFormatError(
            f"classifier format version {version} is not supported by quadrat "
            f"{quadrat.__version__} (reads {FORMAT_VERSION}); "
            + ("upgrade quadrat" if version > FORMAT_VERSION else "retrain it with force=True"),
            value=version,
        )
    return header, tensors


def _build(
    header: dict[str, Any], tensors: dict[str, np.ndarray]
) -> CalibratedLogisticRegression | CoralNetMLP:
    cls = _ESTIMATORS.get(header["kind"])
    if cls is None:
        raise ClassifierFormatError(f"unknown classifier kind {header['kind']!r}")
    params = header["params"]
    if not isinstance(params, dict) or not set(params) <= set(cls().get_params()):
        raise ClassifierFormatError(f"unknown parameters for {cls.__name__}: {params!r}")
    for name in ("hidden_layer_sizes", "Cs"):
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    estimator = cls(**params)
    fitted = header["fitted"]
    for key in _FITTED:
        if key in fitted:
            value = fitted[key]
            setattr(estimator, key, tuple(value) if isinstance(value, list) else value)
    estimator.n_features_in_ = _count(header["n_features_in"])
    estimator.classes_ = _classes(header["classes"])
    estimator.dropped_classes_ = _classes(header["dropped_classes"])
    estimator.scaler_ = _load_scaler(header["scaler"], tensors, estimator.n_features_in_)
    base = _load_base(header["base"], tensors, estimator.n_features_in_)
    estimator.estimator_ = base
    if header["calibration"] != {"method": "sigmoid"}:
        raise ClassifierFormatError(f"unknown calibration {header['calibration']!r}")
    a, b = _float(tensors["calibration.a"], 1), _float(tensors["calibration.b"], 1)
    expected = 1 if estimator.classes_.size == 2 else base.classes_.size
    if a.shape != (expected,) or b.shape != (expected,):
        raise ClassifierFormatError(f"expected {expected} sigmoids, got {a.shape[0]}")
    if not np.all(np.isin(base.classes_, estimator.classes_)):
        raise ClassifierFormatError("the base model's labels are not the classifier's")
    estimator.calibrated_ = SigmoidCalibration(base, estimator.classes_, a, b)
    return estimator


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ClassifierFormatError(f"expected a positive integer, got {value!r}")
    return value


def _classes(entry: dict[str, Any]) -> np.ndarray:
    dtype, values = entry["dtype"], entry["values"]
    if not isinstance(values, list) or not isinstance(dtype, str):
        raise ClassifierFormatError("labels must be a list with a dtype")
    if dtype == "object":
        if not all(isinstance(v, str) for v in values):
            raise ClassifierFormatError("object labels must be strings")
        return np.array(values, dtype=object)
    if np.dtype(dtype).kind not in "iubU":
        raise ClassifierFormatError(f"labels of dtype {dtype!r} are not supported")
    return np.array(values, dtype=np.dtype(dtype))


def _float(array: np.ndarray, ndim: int) -> np.ndarray:
    if array.dtype.kind != "f" or array.ndim != ndim or not np.all(np.isfinite(array)):
        raise ClassifierFormatError(
            f"expected finite floats of {ndim} dimension(s), got {array.dtype} {array.shape}"
        )
    return array


def _load_scaler(
    facts: Any, tensors: dict[str, np.ndarray], n_features: int
) -> StandardScaler | None:
    if facts is None:
        return None
    scaler = StandardScaler(
        copy=False, with_mean=bool(facts["with_mean"]), with_std=bool(facts["with_std"])
    )
    scaler.mean_ = _float(tensors["scaler.mean"], 1) if scaler.with_mean else None
    scaler.scale_ = _float(tensors["scaler.scale"], 1) if scaler.with_std else None
    for array in (scaler.mean_, scaler.scale_):
        if array is not None and array.shape != (n_features,):
            raise ClassifierFormatError(f"scaler has {array.shape[0]} features, not {n_features}")
    scaler.n_features_in_ = n_features
    return scaler


def _load_base(facts: dict[str, Any], tensors: dict[str, np.ndarray], n_features: int) -> Any:
    kind = facts["type"]
    classes = _classes(facts["classes"])
    base: Any
    if kind in ("LogisticRegression", "SGDClassifier"):
        base = LogisticRegression() if kind == "LogisticRegression" else SGDClassifier()
        base.coef_ = _float(tensors["base.coef"], 2)
        base.intercept_ = _float(tensors["base.intercept"], 1)
        outputs = 1 if classes.size == 2 else classes.size
        if base.coef_.shape != (outputs, n_features) or base.intercept_.shape != (outputs,):
            raise ClassifierFormatError(f"linear model shapes do not fit {n_features} features")
    elif kind in ("MLPClassifier", "TorchMLPClassifier"):
        layers = _count(facts["layers"])
        coefs = [_float(tensors[f"base.layer{i}.weight"], 2) for i in range(layers)]
        intercepts = [_float(tensors[f"base.layer{i}.bias"], 1) for i in range(layers)]
        width = n_features
        for weight, bias in zip(coefs, intercepts, strict=True):
            if weight.shape[0] != width or bias.shape != (weight.shape[1],):
                raise ClassifierFormatError("MLP layer shapes do not chain")
            width = weight.shape[1]
        if kind == "MLPClassifier":
            base = MLPClassifier(hidden_layer_sizes=tuple(w.shape[1] for w in coefs[:-1]))
            if facts["out_activation"] not in ("softmax", "logistic"):
                raise ClassifierFormatError(f"unknown output {facts['out_activation']!r}")
            base.out_activation_ = facts["out_activation"]
            base.n_layers_ = layers + 1
            base.n_outputs_ = width
        else:
            base = TorchMLPClassifier(hidden_layer_sizes=tuple(w.shape[1] for w in coefs[:-1]))
            base.hidden_layer_sizes_ = base.hidden_layer_sizes
        base.coefs_, base.intercepts_ = coefs, intercepts
    else:
        raise ClassifierFormatError(f"unknown base model {kind!r}")
    base.classes_ = classes
    base.n_features_in_ = n_features
    return base


# ----------------------------------------------------------------------------- rewriting


def with_metadata(data: bytes, metadata: dict[str, Any]) -> bytes:
    """``data`` with ``metadata`` merged into its JSON metadata; the arrays are unchanged."""
    header, tensors = _split(data)
    header["metadata"] = {**header.get("metadata", {}), **jsonable(metadata)}
    return tensorfile.encode(tensors, {FORMAT: json.dumps(header, sort_keys=True)})


def relabel(data: bytes, mapping: dict[int, int]) -> bytes:
    """``data`` with its integer labels renamed through ``mapping`` (old -> new).

    A classifier's labels are a project's label row ids; another project numbers the same
    labels differently. Every predicted label must be in ``mapping``; dropped labels (too
    rare to train on) without a new id are left out. The arrays are unchanged: the
    calibration finds each label by position, so the new ids need not keep their order.
    """
    header, tensors = _split(data)

    def renamed(entry: dict[str, Any], *, required: bool) -> dict[str, Any]:
        values = _classes(entry)
        if values.dtype.kind not in "iu":
            raise ClassifierFormatError("only a classifier with integer labels can be renumbered")
        old = [int(v) for v in values.tolist()]
        missing = [v for v in old if v not in mapping]
        if missing and required:
            raise ClassifierFormatError(f"no new id for labels {missing}", value=missing)
        new = [int(mapping[v]) for v in old if v in mapping]
        if len(set(new)) != len(new):
            raise ClassifierFormatError("two labels were given the same new id")
        return {"dtype": np.dtype(np.int64).str, "values": new}

    header["classes"] = renamed(header["classes"], required=True)
    header["dropped_classes"] = renamed(header["dropped_classes"], required=False)
    header["base"]["classes"] = renamed(header["base"]["classes"], required=True)
    return tensorfile.encode(tensors, {FORMAT: json.dumps(header, sort_keys=True)})


# -------------------------------------------------------------------------------- files


def write_classifier_file(path: str | Path, data: bytes) -> Path:
    """Write classifier bytes to ``path`` atomically, after checking they load safely."""
    from quadrat.io.atomic import write_bytes

    loads_estimator(data)
    return write_bytes(path, data)


def read_classifier_file(path: str | Path, *, max_bytes: int = MAX_CLASSIFIER_BYTES) -> bytes:
    """The bytes of a classifier file, checked (``loads_estimator``) and at most ``max_bytes``."""
    file = Path(path)
    try:
        size = os.stat(file).st_size
    except FileNotFoundError as error:
        raise NotFoundError(f"no classifier file {file}", path=file, param="path") from error
    if size > max_bytes:
        raise LimitError(
            f"classifier file {file} is {size} bytes, over the limit of {max_bytes}; "
            "raise max_bytes to read it",
            path=file,
            value=size,
            param="max_bytes",
        )
    with open(file, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise LimitError(
            f"classifier file {file} grew past the limit of {max_bytes} bytes",
            path=file,
            param="max_bytes",
        )
    try:
        loads_estimator(data)
    except ClassifierFormatError as error:
        raise ClassifierFormatError(f"{file}: {error}", path=file, param=error.param) from error
    return data


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LEGACY_MAGIC",
    "MAX_CLASSIFIER_BYTES",
    "SigmoidCalibration",
    "dumps_estimator",
    "is_unsafe_format",
    "loads_estimator",
    "read_classifier_file",
    "read_header",
    "relabel",
    "with_metadata",
    "write_classifier_file",
]
