"""Evaluation of point classifiers: accuracy tables, top-k scores and the alleviate curve.

The alleviate curve answers CoralNet's question "if every point whose top score is at least
t were accepted without review, how accurate would the accepted points be, and how much work
would it save?" so a source can pick its auto-accept threshold from validation points.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from quadrat._util import jsonable
from quadrat.errors import InputError


@dataclass(frozen=True, eq=False)
class ClassificationMetrics(Mapping[str, Any]):
    """Scores of predictions against true labels.

    ``per_label`` has columns label, precision, recall, f1, support (one row per label in
    ``labels`` order); ``confusion[i, j]`` counts points of ``labels[i]`` predicted as
    ``labels[j]``. Also a read-only mapping of its JSON form (``metrics["accuracy"]``,
    ``dict(metrics)``), so it can be stored as is.
    """

    accuracy: float
    macro_f1: float
    per_label: pd.DataFrame
    confusion: npt.NDArray[np.int64]
    labels: np.ndarray
    n: int

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("accuracy", "macro_f1", "n", "labels", "confusion", "per_label"))

    def __len__(self) -> int:
        return 6

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for storing beside the classifier)."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "labels": [jsonable(v) for v in self.labels],
            "confusion": self.confusion.tolist(),
            "per_label": [
                {k: jsonable(v) for k, v in row.items()}
                for row in self.per_label.to_dict(orient="records")
            ],
        }


def evaluate(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: npt.ArrayLike | None = None
) -> ClassificationMetrics:
    """Accuracy, macro F1, per-label precision/recall/F1, confusion.

    ``labels`` fixes the label order of the per-label table and the confusion matrix
    (default: sorted union of true and predicted); labels that never occur score 0 there
    and do not warn: a source's rare labels are expected.

    Macro F1 averages over the labels present in ``y_true`` only (as scikit-learn's
    ``f1_score(..., labels=np.unique(y_true), average="macro")``): a label the validation
    points never contain has no recall to measure, and counting it as 0 would pull the
    score down for every label of the labelset the validation split happened to miss.
    A label only predicted (a false positive) still costs precision in the labels it took
    points from.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InputError(
            f"y_true and y_pred must be 1-d of one length, got {y_true.shape} and {y_pred.shape}"
        )
    if labels is None:
        labels = np.union1d(y_true, y_pred)
    labels = np.asarray(labels)
    n = int(y_true.shape[0])
    if n == 0:
        empty = pd.DataFrame(
            {"label": labels, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        )
        zeros = np.zeros((labels.size, labels.size), dtype=np.int64)
        return ClassificationMetrics(float("nan"), float("nan"), empty, zeros, labels, 0)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0.0
    )
    per_label = pd.DataFrame(
        {"label": labels, "precision": precision, "recall": recall, "f1": f1, "support": support}
    )
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(
            f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0.0)
        ),
        per_label=per_label,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64),
        labels=labels,
        n=n,
    )


def top_k(
    proba: npt.ArrayLike, classes: npt.ArrayLike, k: int = 5
) -> tuple[np.ndarray, npt.NDArray[np.floating[Any]]]:
    """The k best labels and their scores per point, best first: ``(labels, scores)``.

    Both have shape (n, min(k, n_classes)). Vectorised: ``argpartition`` picks the k best
    columns in linear time, then only those k are sorted.
    """
    proba = np.asarray(proba)
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != classes.shape[0]:
        raise InputError(
            f"proba must be (n, {classes.shape[0]}) to match classes, got {proba.shape}"
        )
    if k < 1:
        raise InputError("k must be at least 1", value=k)
    k = min(k, proba.shape[1])
    if k < proba.shape[1]:
        best = np.argpartition(-proba, k - 1, axis=1)[:, :k]
    else:
        best = np.broadcast_to(np.arange(k), (proba.shape[0], k))
    best_scores = np.take_along_axis(proba, best, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    idx = np.take_along_axis(best, order, axis=1)
    return classes[idx], np.take_along_axis(best_scores, order, axis=1)


def alleviate_curve(
    proba: npt.ArrayLike,
    y_true: npt.ArrayLike,
    classes: npt.ArrayLike,
    thresholds: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Auto-acceptance trade-off per confidence threshold.

    A point is accepted when its top score is >= threshold. Columns:
    ``threshold``; ``fraction_accepted``; ``accuracy_accepted`` (accuracy among accepted
    points, NaN when none is); ``overall_accuracy`` = (accepted and correct + not
    accepted) / n, i.e. the annotation accuracy when people correct every point the
    machine did not accept.
    """
    proba = np.asarray(proba)
    y_true = np.asarray(y_true)
    classes = np.asarray(classes)
    if thresholds is None:
        thresholds = np.linspace(0.0, 1.0, 101)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != classes.shape[0] or proba.shape[0] != y_true.size:
        raise InputError(
            f"proba {proba.shape} must be (len(y_true)={y_true.size}, len(classes)={classes.size})"
        )
    n = y_true.size
    top = proba.max(axis=1) if n else np.zeros(0)
    correct = (classes[proba.argmax(axis=1)] == y_true) if n else np.zeros(0, dtype=bool)
    # Sort by top score; for each threshold, the accepted points are a suffix.
    order = np.argsort(top, kind="stable")
    top_sorted = top[order]
    # correct_from[i] = number correct among sorted positions i..n-1
    correct_from = np.concatenate([np.cumsum(correct[order][::-1])[::-1], [0]])
    first = np.searchsorted(top_sorted, thresholds, side="left")
    n_accepted = n - first
    n_correct = correct_from[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = n_accepted / n if n else np.full(thresholds.shape, np.nan)
        acc_accepted = np.where(n_accepted > 0, n_correct / np.maximum(n_accepted, 1), np.nan)
        overall = (n_correct + (n - n_accepted)) / n if n else np.full(thresholds.shape, np.nan)
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "fraction_accepted": np.asarray(fraction, dtype=np.float64),
            "accuracy_accepted": acc_accepted.astype(np.float64),
            "overall_accuracy": np.asarray(overall, dtype=np.float64),
        }
    )


def choose_threshold(curve: pd.DataFrame, target_accuracy: float) -> float | None:
    """The lowest threshold whose accepted points reach ``target_accuracy``.

    The lowest such threshold accepts the most points. Returns None when no threshold
    accepts any point at that accuracy (auto-acceptance should then stay off).
    """
    if not 0.0 <= target_accuracy <= 1.0:
        raise InputError("target accuracy must be within [0, 1]", value=target_accuracy)
    ok = (curve["fraction_accepted"] > 0) & (curve["accuracy_accepted"] >= target_accuracy)
    if not ok.any():
        return None
    return float(curve.loc[ok, "threshold"].min())


def mean_scores(
    proba: npt.ArrayLike, y_true: npt.ArrayLike, classes: npt.ArrayLike
) -> dict[str, Any]:
    """Mean score vector per true label over validation points (for probabilistic
    adjusted cover, :mod:`quadrat.reports.quantify`): ``{"labels", "support",
    "mean_scores"}`` in ``classes`` order; points of labels outside ``classes`` are left
    out (as in the stored confusion matrix); rows without points are zeros."""
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape != (y_true.size, classes.size):
        raise InputError(
            f"proba {proba.shape} must be (len(y_true)={y_true.size}, len(classes)={classes.size})"
        )
    index = {jsonable(c): i for i, c in enumerate(classes)}
    rows = np.array([index.get(jsonable(v), -1) for v in y_true], dtype=np.intp)
    known = rows >= 0
    sums = np.zeros((classes.size, classes.size))
    np.add.at(sums, rows[known], proba[known])
    support = np.bincount(rows[known], minlength=classes.size)
    means = sums / np.maximum(support, 1)[:, None]
    return {
        "labels": [jsonable(c) for c in classes],
        "support": support.tolist(),
        "mean_scores": means.tolist(),
    }
