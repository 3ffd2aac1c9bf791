"""Logistic regression's penalty, chosen from data the reported figure never sees.

Why: one fixed ``C`` does not suit every source. Measured with quadrat's splits and
image-held-out accuracy (docs/performance.md), the best ``C`` ran from 0.001 (synthetic
sources with strong per-image offsets: 0.812 at 100k points against 0.772 at ``C=1``,
where pyspacer's SGD reached 0.775) to 1 (Seattle's texture features: 0.781, against
0.631 at 0.001). So ``C="auto"`` walks a grid (:data:`budgets.LR_CS`) from the strongest
penalty to the weakest and keeps the value whose *calibrated* predictions are most
accurate on points the model was not fitted on: the calibration images (large sources)
or the out-of-fold points of the calibration folds (small ones). Calibrated, because the
per-label sigmoids rescale each label's scores: a strongly penalised model whose raw
argmax favours the common labels (0.59 on subclass 10k at ``C=0.001``) is the most
accurate one once calibrated (0.74 on held-out images). Each step is warm-started from
the last (strong penalties converge in a few iterations), and the walk stops at the
first value without a gain (``budgets.LR_PATH_PATIENCE``), so the slow weak-penalty fits
run only where they help. With cv calibration the walk's out-of-fold scores at the
chosen value also calibrate the finished model (no second round of fold fits).

``train_classifier``'s validation images take no part, so its figure stays honest.
Ties go to the stronger penalty.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from quadrat.classifiers import budgets
from quadrat.errors import TrainingDataError


def check_grid(C: Any, Cs: Any) -> tuple[float, ...] | None:
    """The grid to search (sorted, strongest penalty first), or None for a fixed ``C``."""
    if isinstance(C, str):
        if C != "auto":
            raise TrainingDataError("C must be a positive number or 'auto'", value=C, param="C")
        try:
            grid = tuple(sorted(float(c) for c in Cs))
        except (TypeError, ValueError):
            raise TrainingDataError("Cs must be positive numbers", value=Cs, param="Cs") from None
        if not grid or not all(math.isfinite(c) and c > 0 for c in grid):
            raise TrainingDataError("Cs must be positive numbers", value=Cs, param="Cs")
        return grid
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not C > 0 or not math.isfinite(C):
        raise TrainingDataError("C must be a positive number or 'auto'", value=C, param="C")
    return None


class _Scores(ClassifierMixin, BaseEstimator):
    """A "model" whose input is already its decision scores: lets scikit-learn's own
    calibration fit sigmoids to scores computed elsewhere (held-out folds)."""

    def __init__(self, classes: np.ndarray | None = None) -> None:
        self.classes = classes

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Scores:
        self.classes_ = np.asarray(self.classes)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        scores = np.asarray(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = np.asarray(X)
        if scores.shape[1] == 1:
            return np.asarray(self.classes_[(scores[:, 0] > 0).astype(int)])
        return np.asarray(self.classes_[np.argmax(scores, axis=1)])


def calibrate_scores(
    scores: np.ndarray, y: np.ndarray, classes: np.ndarray, method: str = "sigmoid"
) -> CalibratedClassifierCV:
    """scikit-learn's calibration (one sigmoid per label by default) fitted to held-out
    ``scores`` (n, n_classes; (n, 1) with two labels) and their labels ``y``."""
    everything = np.arange(y.shape[0])
    return CalibratedClassifierCV(
        FrozenEstimator(_Scores(classes).fit(scores, y)),
        method=method,
        cv=[(everything, everything)],
    ).fit(scores, y)


def calibrated_accuracy(
    scores: np.ndarray, y: np.ndarray, classes: np.ndarray, method: str = "sigmoid"
) -> float:
    """Accuracy on (scores, y) once calibrated on them (:func:`calibrate_scores`), as the
    finished classifier predicts."""
    calibrated = calibrate_scores(scores, y, classes, method)
    return float(np.mean(calibrated.predict(scores) == y))


def _held_out_scores(model: LogisticRegression, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``model``'s decision scores on X in ``classes``' columns; a label the model never saw
    (absent from its fold) gets a score below every other."""
    raw = np.asarray(model.decision_function(X), dtype=np.float64)
    if classes.size == 2:
        return raw.reshape(-1, 1)
    if model.classes_.size == classes.size:
        return raw
    if raw.ndim == 1:  # a two-label fold of a larger source: one score, the second label's
        raw = np.column_stack([np.zeros_like(raw), raw])
    out = np.full((X.shape[0], classes.size), raw.min() - 100.0)
    out[:, np.searchsorted(classes, model.classes_)] = raw
    return out


#: One fold of the walk: (X fitted on, its labels, X held out, its labels).
Fold = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def folds_of(
    X: np.ndarray, y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]]
) -> list[Fold]:
    """The walk's folds from index pairs (each part copied once, not once per C)."""
    return [(X[kept], y[kept], X[held], y[held]) for kept, held in splits]


@dataclass
class Walk:
    """What :func:`walk` found: the (C, calibrated accuracy) pairs tried, each fold's model
    at the best C, and their held-out scores there (folds' held-out rows in order, in the
    columns of ``classes``), which the final calibration can reuse."""

    tried: list[tuple[float, float]]
    models: list[LogisticRegression]
    held_scores: np.ndarray
    classes: np.ndarray


def walk(
    base: LogisticRegression,
    folds: Sequence[Fold],
    grid: Sequence[float],
    *,
    method: str = "sigmoid",
    patience: int = budgets.LR_PATH_PATIENCE,
) -> Walk:
    """Fit one model per fold along ``grid`` (ascending C, warm-started); score each C by
    :func:`calibrated_accuracy` on the pooled held-out scores. Sets ``base``'s C to the
    best."""
    classes = np.unique(np.concatenate([np.unique(f[1]) for f in folds]))
    y_held = np.concatenate([f[3] for f in folds])
    models = [clone(base).set_params(warm_start=True) for _ in folds]
    found: Walk | None = None
    tried: list[tuple[float, float]] = []
    best_score, since = -1.0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in grid:
            parts = []
            for model, (X_fit, y_fit, X_held, _) in zip(models, folds, strict=True):
                model.set_params(C=c).fit(X_fit, y_fit)
                parts.append(_held_out_scores(model, X_held, classes))
            held = np.concatenate(parts)
            score = calibrated_accuracy(held, y_held, classes, method)
            tried.append((float(c), score))
            if score > best_score:
                best_score, since = score, 0
                kept = [copy.deepcopy(m).set_params(warm_start=False) for m in models]
                found = Walk(tried, kept, held, classes)
                base.set_params(C=float(c))
            else:
                since += 1
                if since >= patience:
                    break
    assert found is not None  # a grid is never empty (check_grid)
    return found


__all__ = [
    "Fold",
    "Walk",
    "calibrate_scores",
    "calibrated_accuracy",
    "check_grid",
    "folds_of",
    "walk",
]
