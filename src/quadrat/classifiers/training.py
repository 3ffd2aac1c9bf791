"""Train and evaluate a source's classifier the CoralNet way.

Points are split 7/8 for training and 1/8 for validation, then 10 % of the training part is
held out to calibrate the scores. With image ids (``groups``) every split is by image, so
no image has points on both sides: neighbouring points of one image share lighting,
camera and substrate, and an ungrouped split would overstate accuracy. pyspacer splits by
image too (it splits lists of feature files).

The reported figure is honest: whatever the estimator chooses from data (the MLP's epoch
count by early stopping, the calibration sigmoids) it chooses on its own calibration part
(held-out images or out-of-fold scores) inside the 7/8; the validation images take no part
in fitting or selection. ``TrainResult.val_index`` names them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.base import ClassifierMixin, clone

from quadrat._util import jsonable
from quadrat.classifiers.estimators import make_classifier
from quadrat.classifiers.metrics import ClassificationMetrics, evaluate
from quadrat.classifiers.policy import TrainingPolicy
from quadrat.classifiers.splits import split_indices
from quadrat.errors import TrainingDataError

#: Validation holds 1 of 8 folds (CoralNet: 7/8 train, 1/8 validation).
VALIDATION_FOLDS = 8


@dataclass
class TrainResult:
    """A trained classifier and how it did on the validation points.

    ``metrics`` follows pyspacer: validation points whose label the classifier does not
    know (absent from the training or calibration part: ``excluded_labels``) are left out
    of it. ``accuracy_all`` counts them (always wrong). ``val_proba``/``val_true`` hold all
    validation points, so an alleviate curve from them reflects those labels too.
    ``train_index``/``calibration_index``/``val_index`` are row positions in the ``X``
    given to ``train_classifier`` (store the validation images to audit or re-score).
    With cross-validated calibration (``hyperparameters["split"]["calibration"] == "cv"``,
    by default up to ``cv_max_points`` training points) the model is fitted on all training
    points and calibrated on their out-of-fold scores: both indices are then the whole
    training part, and ``n_train == n_calibration``.
    """

    estimator: ClassifierMixin
    metrics: ClassificationMetrics
    accuracy_all: float
    n_train: int
    n_val: int
    n_calibration: int
    val_proba: npt.NDArray[np.float64]
    val_true: np.ndarray
    train_seconds: float
    hyperparameters: dict[str, Any]
    excluded_labels: list[Any] = field(default_factory=list)
    n_val_excluded: int = 0
    dropped_labels: list[Any] = field(default_factory=list)
    accepted: bool = True
    previous_accuracy: float | None = None
    train_index: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    calibration_index: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    val_index: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))

    @property
    def classes(self) -> np.ndarray:
        """Label order of ``val_proba`` columns (the estimator's ``classes_``)."""
        return np.asarray(self.estimator.classes_)

    def summary(self) -> dict[str, Any]:
        """Everything but the estimator and arrays, JSON-serialisable (store it beside it)."""
        return {
            "metrics": self.metrics.to_dict(),
            "accuracy_all": self.accuracy_all,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_calibration": self.n_calibration,
            "train_seconds": self.train_seconds,
            "hyperparameters": self.hyperparameters,
            "excluded_labels": jsonable(self.excluded_labels),
            "n_val_excluded": self.n_val_excluded,
            "dropped_labels": jsonable(self.dropped_labels),
            "accepted": self.accepted,
            "previous_accuracy": self.previous_accuracy,
        }


def train_classifier(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    groups: npt.ArrayLike | None = None,
    kind: Literal["lr", "mlp"] = "mlp",
    random_state: int | None = 0,
    previous_accuracy: float | None = None,
    policy: TrainingPolicy | None = None,
    estimator: ClassifierMixin | None = None,
    device: str | None = None,
) -> TrainResult:
    """Split (7/8 train, 1/8 validation; calibration within train), fit, evaluate.

    ``groups`` are image ids: give them, so points of one image stay in one split.
    ``previous_accuracy`` (the current classifier's) and ``policy`` decide ``accepted``.
    ``estimator`` replaces ``make_classifier(kind, ...)`` (it is cloned; its fit must
    accept ``groups``; calibration is its business: 10 % of the training images by
    default). ``device`` ("auto", "cpu", "cuda") trains ``kind`` with the PyTorch trainer
    there; None (default) with scikit-learn. With held-out calibration the model is the
    one fitted on the training part, as in CoralNet; it is not refitted on all points.
    """
    policy = policy or TrainingPolicy()
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise TrainingDataError(
            f"features must be (n, d) and labels (n,), got {X.shape} and {y.shape}"
        )
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    g = None if groups is None else np.asarray(groups)
    if g is not None and g.shape != y.shape:
        raise TrainingDataError(f"groups must be (n,) = {y.shape}, got {g.shape}")
    if np.unique(y).size < 2:
        raise TrainingDataError("need at least 2 different labels to train", value=np.unique(y))

    train_idx, val_idx = split_indices(y, g, VALIDATION_FOLDS, random_state)
    g_train = None if g is None else g[train_idx]
    # Sizes "auto": the MLP picks CoralNet's shape from the points it is fitted on.
    model = (
        make_classifier(kind, None, random_state=random_state, device=device)
        if estimator is None
        else clone(estimator)
    )
    start = time.perf_counter()
    model.fit(X[train_idx], y[train_idx], groups=g_train)
    train_seconds = time.perf_counter() - start
    fit_idx = train_idx[getattr(model, "fit_index_", np.arange(train_idx.size))]
    cal_idx = train_idx[getattr(model, "calibration_index_", np.zeros(0, dtype=np.intp))]

    classes = np.asarray(model.classes_)
    y_val = y[val_idx]
    val_proba = np.asarray(model.predict_proba(X[val_idx]))
    val_pred = classes[np.argmax(val_proba, axis=1)]
    known = np.isin(y_val, classes)
    metrics = evaluate(y_val[known], val_pred[known], labels=classes)
    accuracy_all = float(np.mean(val_pred == y_val)) if y_val.size else float("nan")
    accepted = bool(
        np.isfinite(metrics.accuracy) and policy.should_accept(metrics.accuracy, previous_accuracy)
    )
    return TrainResult(
        estimator=model,
        metrics=metrics,
        accuracy_all=accuracy_all,
        n_train=int(getattr(model, "n_train_", fit_idx.size)),
        n_val=int(val_idx.size),
        n_calibration=int(getattr(model, "n_calibration_", cal_idx.size)),
        val_proba=val_proba,
        val_true=y_val,
        train_seconds=train_seconds,
        hyperparameters=_hyperparameters(model, kind if estimator is None else None, g),
        excluded_labels=jsonable(np.unique(y_val[~known])),
        n_val_excluded=int((~known).sum()),
        dropped_labels=jsonable(np.asarray(getattr(model, "dropped_classes_", []))),
        accepted=accepted,
        previous_accuracy=previous_accuracy,
        train_index=fit_idx,
        calibration_index=cal_idx,
        val_index=val_idx,
    )


def _hyperparameters(model: Any, kind: str | None, groups: np.ndarray | None) -> dict[str, Any]:
    """What was trained, JSON-serialisable: enough to reproduce or audit the classifier."""
    fitted = {
        name: jsonable(getattr(model, name))
        for name in (
            "hidden_layer_sizes_",
            "learning_rate_init_",
            "max_iter_",
            "n_iter_",
            "epochs_run_",
            "C_",
            "C_scores_",
        )
        if getattr(model, name, None) is not None
    }
    return {
        "kind": kind,
        "classifier": type(model).__name__,
        "params": {k: jsonable(v) for k, v in model.get_params(deep=False).items()},
        "fitted": fitted,
        "standardised": hasattr(model, "scaler_"),
        "split": {
            "validation": f"1/{VALIDATION_FOLDS}",
            "calibration": getattr(model, "calibration_", None),
            "grouped_by_image": groups is not None,
        },
        "sklearn_version": sklearn.__version__,
    }
