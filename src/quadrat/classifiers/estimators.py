"""Calibrated point classifiers: logistic regression and CoralNet 1.0's MLP.

Both follow CoralNet's recipe (fit a classifier, then Platt-scale its scores on held-out
points, one sigmoid per label) so their top-5 probabilities can be thresholded for
auto-acceptance ("alleviate"). Logistic regression standardises features first (pooled
CNN activations have very unequal scales per dimension, which slows its solver and makes
one L2 penalty mean different things per dimension); the MLP, as in CoralNet, does not by
default (``standardize=False``): measured, it generalises better on raw features.

Memory: one float32 working copy, standardised in place, scored in chunks
(:mod:`quadrat.classifiers.arrays`).

Threads: fit and scoring run OpenBLAS with ``blas_threads`` threads (default 1). On a busy
machine OpenBLAS's spinning threads collapse: on this project's 2-core VM under load,
a 3-epoch (200, 100) MLP on 20,000 points took 23.6 s with 2 threads and 1.0 s with 1, and
a 540-point fit 19 s against 0.3 s. Use ``blas_threads=None`` (leave BLAS as configured)
or more threads on a dedicated machine; parallelise over sources instead where possible.

Why this module is long: one idea (CoralNet's calibrated classifier) in a shared base and
two estimators whose explicit ``__init__`` signatures the scikit-learn contract requires
(``get_params`` reads them); the size-dependent budgets are in :mod:`.budgets`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from abc import abstractmethod
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from quadrat._util import limit_threads
from quadrat.classifiers import budgets, regularization
from quadrat.classifiers.arrays import as_float32, fit_scaler
from quadrat.classifiers.splits import fold_splits, split_indices
from quadrat.classifiers.torch_mlp import TorchMLPClassifier
from quadrat.errors import TrainingDataError

FloatArray = npt.NDArray[np.floating[Any]]


class _CalibratedClassifier(ClassifierMixin, BaseEstimator):
    """Standardise, fit a base classifier, calibrate it (one sigmoid per label).

    ``calibration`` picks where the calibration scores come from:

    - ``"holdout"`` (CoralNet): ``calibration_fraction`` of the points (of the images,
      with ``groups``) are held out; the model is fitted on the rest. Labels absent from
      either part are dropped (``dropped_classes_``), as pyspacer does: a per-label sigmoid
      cannot be fitted without positive examples.
    - ``"cv"``: out-of-fold scores from ``cv_folds`` folds (grouped by image) calibrate a
      model then refitted on all points (``CalibratedClassifierCV(ensemble=False)``);
      every label is kept, at the cost of ``cv_folds + 1`` fits.
    - ``"auto"``: chosen by source size: cv up to ``cv_max_points`` training points
      (default ``CV_MAX_POINTS``, 10,000; the MLP's ``MLP_CV_MAX_POINTS``, 2,000) or when
      the held-out part would hold fewer than ``MIN_HOLDOUT_IMAGES`` images, holdout
      otherwise. On small sources the holdout is
      a few images: it regularly misses a common label, and even when it does not, its
      sigmoids fitted on so few images cost macro F1 that cv keeps.

    ``calibration_`` records the mode used.

    ``refit=True`` (holdout only; off by default): after fitting on the training part and
    choosing on the held-out part (the MLP's epochs), the model is retrained on both parts
    with that choice, and the sigmoids fitted on the first model's held-out scores are
    kept for it. It trains on about 11 % more points at about twice the cost; the sigmoids
    are an approximation for the refitted model (never fitted on its own held-out scores),
    so ``train_classifier``'s validation figure, from images neither model saw, is the
    check. cv calibration always refits on all points.
    """

    # Subclasses set these in __init__.
    standardize: bool
    calibration: str
    calibration_fraction: float
    cv_folds: int
    cv_max_points: int
    calibration_method: str
    chunk_size: int
    blas_threads: int | None
    random_state: int | None
    refit: bool

    def _threads(self) -> contextlib.AbstractContextManager[Any]:
        """Limit BLAS threads to ``blas_threads`` (None: leave them alone)."""
        return limit_threads(self.blas_threads)

    @abstractmethod
    def _make_base(self, n_train: int, *, cv: bool = False) -> ClassifierMixin:
        """The unfitted base classifier for ``n_train`` (standardised) training points;
        ``cv``: it is cloned for every fold, so its budget is smaller."""

    def _fit_base(
        self, base: Any, X: np.ndarray, y: np.ndarray, X_ref: np.ndarray, y_ref: np.ndarray
    ) -> Any:
        """Fit ``base`` on (X, y) and return the fitted model. (X_ref, y_ref) are the
        held-out calibration points, which a subclass may use to choose a hyperparameter
        (never the validation points)."""
        return base.fit(X, y)

    def _choose_by_folds(
        self, base: Any, X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
    ) -> CalibratedClassifierCV | None:
        """Before cross-validated calibration: set a hyperparameter of ``base`` from the
        same folds (logistic regression's ``C="auto"``). A subclass whose search already
        fitted what calibration needs returns the calibrated model. Nothing by default."""
        return None

    def _record_base(self, base: Any) -> None:
        """Copy fitted facts (iterations, device) from the base classifier onto ``self``."""
        n_iter = getattr(base, "n_iter_", None)
        self.n_iter_ = int(np.max(n_iter)) if n_iter is not None else None
        # Where the base was trained: "cpu"/"cuda:0" for the torch trainer, else sklearn.
        self.device_ = getattr(base, "device_", "cpu")

    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        groups: npt.ArrayLike | None = None,
        X_calibration: npt.ArrayLike | None = None,
        y_calibration: npt.ArrayLike | None = None,
    ) -> Self:
        """Fit on (X, y); calibrate as ``calibration`` says (see the class docstring).

        ``groups`` (image ids) keep every calibration split by image: give them, a random
        split of points would leak images. An explicit (X_calibration, y_calibration)
        forces held-out calibration on exactly those points.
        """
        with self._threads():
            return self._fit(X, y, groups, X_calibration, y_calibration)

    def _fit(self, X: Any, y: Any, groups: Any, X_calibration: Any, y_calibration: Any) -> Self:
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64, np.float16))
        check_classification_targets(y)
        if self.calibration not in ("auto", "holdout", "cv"):
            raise TrainingDataError(
                "calibration must be 'auto', 'holdout' or 'cv'", value=self.calibration
            )
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != y.shape:
                raise TrainingDataError(f"groups must be {y.shape}, got {groups.shape}")
        if (X_calibration is None) != (y_calibration is None):
            raise TrainingDataError("give both X_calibration and y_calibration, or neither")
        if np.unique(y).size < 2:
            raise TrainingDataError(
                "need at least 2 classes (got one class) to train a classifier",
                value=np.unique(y).tolist(),
            )
        if X_calibration is not None:
            X_cal, y_cal = validate_data(
                self,
                X_calibration,
                y_calibration,
                reset=False,
                dtype=(np.float32, np.float64, np.float16),
            )
            self.calibration_ = "holdout"
            self.fit_index_ = np.arange(y.shape[0])
            self.calibration_index_ = np.zeros(0, dtype=np.intp)
            return self._fit_holdout(X, y, X_cal, y_cal, owned=False)

        if isinstance(self.cv_max_points, bool) or not isinstance(
            self.cv_max_points, (int, np.integer)
        ):
            raise TrainingDataError(
                "cv_max_points must be a whole number",
                value=self.cv_max_points,
                param="cv_max_points",
            )
        few_images = (
            groups is not None
            and np.unique(groups).size * self.calibration_fraction < budgets.MIN_HOLDOUT_IMAGES
        )
        if self.calibration == "cv" or (
            self.calibration == "auto" and (y.shape[0] <= self.cv_max_points or few_images)
        ):
            return self._fit_cv(X, y, groups)
        fit_idx, cal_idx = self._carve_calibration(y, groups)
        self.calibration_ = "holdout"
        self.fit_index_, self.calibration_index_ = fit_idx, cal_idx
        return self._fit_holdout(X[fit_idx], y[fit_idx], X[cal_idx], y[cal_idx], owned=True)

    def _fit_holdout(
        self, X_train: Any, y_train: Any, X_cal: Any, y_cal: Any, *, owned: bool
    ) -> Self:
        """Fit on the training part, then Platt-scale the frozen model on the held-out part.

        ``owned``: the arrays are fresh copies made here, so they may be scaled in place.
        """
        labels = np.intersect1d(np.unique(y_train), np.unique(y_cal))
        self.dropped_classes_ = np.setdiff1d(
            np.union1d(np.unique(y_train), np.unique(y_cal)), labels
        )
        if labels.size < 2:
            raise TrainingDataError(
                "need at least 2 classes present in both the training and calibration "
                f"points, got {labels.size}",
                value=labels.tolist(),
            )
        if self.dropped_classes_.size:
            keep = np.isin(y_train, labels)
            X_train, y_train = X_train[keep], y_train[keep]
            keep = np.isin(y_cal, labels)
            X_cal, y_cal = X_cal[keep], y_cal[keep]
            owned = True

        X_train = as_float32(X_train, owned=owned)
        self.scaler_ = fit_scaler(X_train, self.chunk_size) if self.standardize else None
        X_cal = as_float32(X_cal, owned=owned)
        if self.scaler_ is not None:
            self.scaler_.transform(X_train)
            self.scaler_.transform(X_cal)
        base = self._make_base(X_train.shape[0])
        with warnings.catch_warnings():
            # A fixed epoch budget (as in CoralNet) is intended; do not warn about it.
            warnings.simplefilter("ignore", ConvergenceWarning)
            base = self._fit_base(base, X_train, y_train, X_cal, y_cal)
        self.estimator_ = base
        self._record_base(base)
        final = self._refit_all(base, X_train, y_train, X_cal, y_cal) if self.refit else base
        del X_train

        n_cal = X_cal.shape[0]
        # FrozenEstimator: calibrate the fitted model without refitting it. A single
        # "all points" split stops the calibrator from cross-validating the frozen model,
        # which would only repeat the same predictions and demand 5 points per label.
        self.calibrated_ = CalibratedClassifierCV(
            FrozenEstimator(base),
            method=self.calibration_method,
            cv=[(np.arange(n_cal), np.arange(n_cal))],
        ).fit(X_cal, y_cal)
        if final is not base:
            # The sigmoids fitted on the selection model's scores now scale the refitted
            # model's (same recipe and epochs): approximate, see ``refit``.
            self.calibrated_.calibrated_classifiers_[0].estimator = FrozenEstimator(final)
            self.estimator_ = final
            self.n_train_ = int(y_train.shape[0] + n_cal)
        else:
            self.n_train_ = int(y_train.shape[0])
        self.classes_ = self.calibrated_.classes_
        self.n_calibration_ = int(n_cal)
        return self

    def _refit_all(
        self, base: Any, X: np.ndarray, y: np.ndarray, X_ref: np.ndarray, y_ref: np.ndarray
    ) -> Any:
        """``refit=True``: the same model retrained on training and calibration points
        together, with what the selection chose (the MLP's epoch count) fixed."""
        final = clone(base)  # same sizes and settings, even across budgets.LARGE_SOURCE_POINTS
        if isinstance(final, MLPClassifier):
            final.set_params(max_iter=max(1, int(base.n_iter_)), n_iter_no_change=10**6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            final.fit(np.concatenate([X, X_ref]), np.concatenate([y, y_ref]))
        return final

    def _fit_cv(self, X: Any, y: Any, groups: np.ndarray | None) -> Self:
        """Calibrate on out-of-fold scores (grouped folds), then refit on all points."""
        splits = fold_splits(y, groups, self.cv_folds, self.random_state)
        data = as_float32(X, owned=False)
        self.scaler_ = fit_scaler(data, self.chunk_size) if self.standardize else None
        if self.scaler_ is not None:
            self.scaler_.transform(data)
        base = self._make_base(data.shape[0], cv=True)
        searched = self._choose_by_folds(base, data, y, splits)
        if searched is not None:
            self.calibrated_ = searched
        else:
            self.calibrated_ = self._calibrate_by_folds(base, data, y, splits)
        self.estimator_ = self._unfrozen(self.calibrated_.calibrated_classifiers_[0].estimator)
        self._record_base(self.estimator_)
        self.classes_ = self.calibrated_.classes_
        self.dropped_classes_ = np.zeros(0, dtype=y.dtype)
        self.calibration_ = "cv"
        self.fit_index_ = np.arange(y.shape[0])
        self.calibration_index_ = np.arange(y.shape[0])
        self.n_train_ = int(y.shape[0])
        self.n_calibration_ = int(y.shape[0])
        return self

    @staticmethod
    def _unfrozen(model: Any) -> Any:
        return model.estimator if isinstance(model, FrozenEstimator) else model

    def _calibrate_by_folds(
        self,
        base: Any,
        data: np.ndarray,
        y: np.ndarray,
        splits: list[tuple[np.ndarray, np.ndarray]],
    ) -> CalibratedClassifierCV:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # A fold without some rare label: its scores for that label are filled in by
            # scikit-learn, and that label's sigmoid then stays near zero (as it should).
            warnings.filterwarnings("ignore", message=".*Number of classes in training fold.*")
            # Folds are smaller than all points: the MLP clips its batch to a fold, fine.
            warnings.filterwarnings("ignore", message=".*Got `batch_size` less than 1.*")
            return CalibratedClassifierCV(
                base, method=self.calibration_method, cv=splits, ensemble=False
            ).fit(data, y)

    def _carve_calibration(
        self, y: np.ndarray, groups: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Held-out calibration indices: one fold of ~1/fraction, by image with groups."""
        if not 0.0 < self.calibration_fraction < 1.0:
            raise TrainingDataError(
                "calibration_fraction must be in (0, 1)", value=self.calibration_fraction
            )
        n_folds = max(2, round(1.0 / self.calibration_fraction))
        if groups is not None:
            return split_indices(y, groups, n_folds, self.random_state)
        n = y.shape[0]
        labels, counts = np.unique(y, return_counts=True)
        n_cal = max(math.ceil(self.calibration_fraction * n), labels.size)
        if n < 2 * labels.size or n - n_cal < labels.size:
            raise TrainingDataError(
                f"{n} points for {labels.size} classes: too few to hold out "
                "calibration points; need at least 2 per class",
                value=n,
            )
        stratify = y if counts.min() >= 2 else None
        train_idx, cal_idx = train_test_split(
            np.arange(n), test_size=n_cal, stratify=stratify, random_state=self.random_state
        )
        return np.sort(train_idx), np.sort(cal_idx)

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Calibrated probabilities (n, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self, "calibrated_")
        data: np.ndarray = validate_data(
            self, X, reset=False, dtype=(np.float32, np.float64, np.float16)
        )
        out = np.empty((data.shape[0], self.classes_.shape[0]), dtype=np.float64)
        step = max(1, int(self.chunk_size))
        with self._threads():
            for start in range(0, data.shape[0], step):
                chunk = np.array(data[start : start + step], dtype=np.float32, copy=True)
                if self.scaler_ is not None:
                    self.scaler_.transform(chunk)  # in place on our own copy
                out[start : start + step] = self.calibrated_.predict_proba(chunk)
        return out

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """The most probable label per point."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class CalibratedLogisticRegression(_CalibratedClassifier):
    """Multinomial logistic regression on standardised features, sigmoid-calibrated.

    ``C="auto"`` (default) chooses the penalty from ``Cs`` on points the model is not
    fitted on (the calibration images, or the cv folds; see
    :mod:`quadrat.classifiers.regularization`), kept in ``C_`` with the calibrated
    accuracy of each value tried in ``C_scores_``; a number fixes it. Under
    ``LR_SEARCH_MIN_POINTS`` (5,000) training points, and for the sgd and torch solvers,
    ``"auto"`` is 1.
    ``solver="lbfgs"`` (default) fits scikit-learn's LogisticRegression, at most
    ``max_iter`` (100) iterations: about 15x faster than CoralNet's SGD at 100k points,
    and more accurate. 100, not 300: on Moorea's texture features lbfgs ran to ~290
    iterations for 0.7 points of accuracy (0.739 vs 0.732 on held-out photos) at twice
    the time, which made it slower than pyspacer there; synthetic 10k sources converge in
    15-30.
    ``solver="sgd"`` reproduces CoralNet 1.0 (``SGDClassifier(loss="log_loss",
    average=True)``, 10 epochs) for side-by-side comparisons.
    ``solver="torch"`` trains it with the PyTorch MLP trainer and no hidden layer (Adam,
    minibatches of 200, the MLP's epoch budget, on ``device``), with the L2 weight set so
    that the objective is LogisticRegression's (``alpha = batch_size / (C * n_train)``).
    """

    C_: float
    C_scores_: list[tuple[float, float]]

    def __init__(
        self,
        *,
        C: float | Literal["auto"] = "auto",
        Cs: tuple[float, ...] = budgets.LR_CS,
        solver: Literal["lbfgs", "sgd", "torch"] = "lbfgs",
        max_iter: int = 100,
        tol: float = 1e-4,
        calibration: Literal["auto", "holdout", "cv"] = "auto",
        calibration_fraction: float = 0.1,
        cv_folds: int = 3,
        cv_max_points: int = budgets.CV_MAX_POINTS,
        calibration_method: Literal["sigmoid", "isotonic", "temperature"] = "sigmoid",
        chunk_size: int = 16_384,
        blas_threads: int | None = 1,
        device: str = "auto",
        standardize: bool = True,
        refit: bool = False,
        random_state: int | None = 0,
    ) -> None:
        self.standardize = standardize
        self.refit = refit
        self.C = C
        self.Cs = Cs
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.cv_folds = cv_folds
        self.cv_max_points = cv_max_points
        self.calibration_method = calibration_method
        self.chunk_size = chunk_size
        self.blas_threads = blas_threads
        self.device = device
        self.random_state = random_state

    def _grid(self, n_train: int | None = None) -> tuple[float, ...] | None:
        """The C grid to search (lbfgs with ``C="auto"`` on ``n_train`` points from
        ``LR_SEARCH_MIN_POINTS``), else None."""
        grid = regularization.check_grid(self.C, self.Cs)
        if self.solver != "lbfgs" or (n_train or 0) < budgets.LR_SEARCH_MIN_POINTS:
            return None
        return grid

    def _fixed_c(self) -> float:
        return 1.0 if self.C == "auto" else float(self.C)

    def _fit_base(
        self, base: Any, X: np.ndarray, y: np.ndarray, X_ref: np.ndarray, y_ref: np.ndarray
    ) -> Any:
        """``C="auto"``: walk the grid, scored on the held-out calibration images."""
        grid = self._grid(y.shape[0])
        if grid is None or y_ref.size == 0:
            self.C_, self.C_scores_ = self._fixed_c(), []
            return base.fit(X, y)
        found = regularization.walk(
            base, [(X, y, X_ref, y_ref)], grid, method=self.calibration_method
        )
        self.C_scores_, self.C_ = found.tried, float(base.C)
        return found.models[0]

    def _choose_by_folds(
        self, base: Any, X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
    ) -> CalibratedClassifierCV | None:
        """``C="auto"`` with cv calibration: the C most accurate across the same folds.
        The walk's out-of-fold scores at that C are what ``CalibratedClassifierCV
        (ensemble=False)`` would compute by refitting the folds: they calibrate the model
        here, saving those fits (a third of the time at 10,000 points)."""
        grid = self._grid(y.shape[0])
        if grid is None:
            self.C_, self.C_scores_ = self._fixed_c(), []
            return None
        folds = regularization.folds_of(X, y, splits)
        found = regularization.walk(base, folds, grid, method=self.calibration_method)
        del folds
        self.C_scores_, self.C_ = found.tried, float(base.C)
        held = np.concatenate([h for _, h in splits])
        calibrated = regularization.calibrate_scores(
            found.held_scores, y[held], found.classes, self.calibration_method
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            final = clone(base).fit(X, y)
        calibrated.calibrated_classifiers_[0].estimator = FrozenEstimator(final)
        return calibrated

    def _make_base(self, n_train: int, *, cv: bool = False) -> ClassifierMixin:
        self._grid()  # checks C and Cs for every solver
        C = self._fixed_c()
        if self.solver == "lbfgs":
            return LogisticRegression(
                C=C, max_iter=self.max_iter, tol=self.tol, random_state=self.random_state
            )
        if self.solver == "sgd":
            # CoralNet 1.0: averaged SGD on the log loss, a fixed 10 epochs, no early stop.
            return SGDClassifier(
                loss="log_loss",
                average=True,
                alpha=1.0 / (C * max(1, n_train)),
                max_iter=10,
                tol=None,
                random_state=self.random_state,
            )
        if self.solver == "torch":
            batch = max(1, min(200, n_train))
            return TorchMLPClassifier(
                hidden_layer_sizes=(),
                alpha=batch / (C * max(1, n_train)),
                batch_size=batch,
                learning_rate_init=1e-3,
                max_iter=budgets.mlp_epochs(n_train, batch, max_epochs=100),
                device=self.device,
                threads=self.blas_threads,
                random_state=self.random_state,
            )
        raise TrainingDataError("solver must be 'lbfgs', 'sgd' or 'torch'", value=self.solver)


class CoralNetMLP(_CalibratedClassifier):
    """CoralNet 1.0's multi-layer perceptron (ReLU, Adam), sigmoid-calibrated.

    ``hidden_layer_sizes="auto"`` and ``learning_rate_init="auto"`` pick CoralNet's sizes
    by the number of training points at fit time (see ``coralnet_mlp_hyperparameters``);
    the choices are kept in ``hidden_layer_sizes_`` and ``learning_rate_init_``.
    ``max_iter="auto"`` is an epoch budget: CoralNet's 10 epochs, more on small sources
    (see ``mlp_epochs``). With held-out calibration and ``early_stopping`` (default), the
    epoch most accurate on the calibration images is kept and training stops after
    ``n_iter_no_change`` epochs without improvement (``ref_accuracy_curve_``); otherwise
    it stops when the training loss stops improving. ``calibration="auto"`` uses cv only
    up to ``cv_max_points`` (default ``MLP_CV_MAX_POINTS``), where its 4 fits are cheap.
    ``backend="torch"`` trains the same network with PyTorch on ``device`` ("auto",
    "cpu", "cuda"; see ``quadrat.classifiers.torch_mlp``); the stored model scores
    without torch or a GPU. ``backend="sklearn"`` (default) uses ``MLPClassifier``.
    ``standardize`` is off by default, as in CoralNet: measured with image-held-out
    splits, standardising cost the MLP 0.5-0.7 points on real Moorea features (texture
    and EfficientNet-B0) and 1.6 points on the synthetic 100k benchmark
    (docs/classifiers.md). Logistic regression keeps it (lbfgs converges on it).
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] | Literal["auto"] = "auto",
        learning_rate_init: float | Literal["auto"] = "auto",
        alpha: float = 1e-4,
        batch_size: int = 200,
        max_iter: int | Literal["auto"] = "auto",
        early_stopping: bool = True,
        n_iter_no_change: int = budgets.PATIENCE_EPOCHS,
        calibration: Literal["auto", "holdout", "cv"] = "auto",
        calibration_fraction: float = 0.1,
        cv_folds: int = 3,
        cv_max_points: int = budgets.MLP_CV_MAX_POINTS,
        calibration_method: Literal["sigmoid", "isotonic", "temperature"] = "sigmoid",
        chunk_size: int = 16_384,
        blas_threads: int | None = 1,
        backend: Literal["sklearn", "torch"] = "sklearn",
        device: str = "auto",
        standardize: bool = False,
        refit: bool = False,
        random_state: int | None = 0,
    ) -> None:
        self.standardize = standardize
        self.refit = refit
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.cv_folds = cv_folds
        self.cv_max_points = cv_max_points
        self.calibration_method = calibration_method
        self.chunk_size = chunk_size
        self.blas_threads = blas_threads
        self.backend = backend
        self.device = device
        self.random_state = random_state

    def resolved_hyperparameters(self, n_train: int, *, cv: bool = False) -> dict[str, Any]:
        """The concrete sizes, learning rate and epochs ``fit`` would use for ``n_train``
        (``cv``: per cross-validation fit, at most ``MLP_CV_MAX_EPOCHS`` epochs)."""
        auto_sizes, auto_lr = budgets.coralnet_mlp_hyperparameters(n_train)
        sizes = auto_sizes if self.hidden_layer_sizes == "auto" else self.hidden_layer_sizes
        lr = auto_lr if self.learning_rate_init == "auto" else self.learning_rate_init
        most = budgets.MLP_CV_MAX_EPOCHS if cv else budgets.MAX_MLP_EPOCHS
        least = budgets.EARLY_STOPPING_MIN_EPOCHS if self.early_stopping and not cv else 10
        epochs = (
            budgets.mlp_epochs(n_train, self.batch_size, min_epochs=least, max_epochs=most)
            if self.max_iter == "auto"
            else self.max_iter
        )
        return {
            "hidden_layer_sizes": tuple(int(s) for s in sizes),
            "learning_rate_init": float(lr),
            "max_iter": int(epochs),
        }

    def _fit_base(
        self, base: Any, X: np.ndarray, y: np.ndarray, X_ref: np.ndarray, y_ref: np.ndarray
    ) -> Any:
        """Train epoch by epoch and keep the last epoch within one standard error of the
        most accurate one on the held-out calibration images (``keeps_epoch``; early
        stopping grouped by image: scikit-learn's own ``early_stopping`` holds out random
        points, which share images with training).

        Stops after ``n_iter_no_change`` epochs without improvement or at the epoch budget.
        The validation points of ``train_classifier`` are never seen here, so its figure
        stays honest. The PyTorch backend trains its fixed budget (no early stopping).
        """
        if not self.early_stopping or not isinstance(base, MLPClassifier) or y_ref.size == 0:
            return base.fit(X, y)
        classes = np.unique(y)
        budget = int(base.max_iter)
        seed = base.random_state
        # One RandomState object: each partial_fit epoch draws a new shuffle from it.
        base.set_params(random_state=np.random.RandomState(seed))
        best_epoch = 0
        weights: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self.ref_accuracy_curve_: list[float] = []
        for epoch in range(1, budget + 1):
            base.partial_fit(X, y, classes=classes)
            self.ref_accuracy_curve_.append(float(np.mean(base.predict(X_ref) == y_ref)))
            if budgets.keeps_epoch(self.ref_accuracy_curve_, y_ref.size):
                best_epoch = epoch
                weights = ([w.copy() for w in base.coefs_], [b.copy() for b in base.intercepts_])
            elif epoch - best_epoch >= int(self.n_iter_no_change):
                break
        base.coefs_, base.intercepts_ = weights
        base.n_iter_ = best_epoch
        base.set_params(random_state=seed, max_iter=budget)
        self.epochs_run_ = len(self.ref_accuracy_curve_)
        return base

    def _make_base(self, n_train: int, *, cv: bool = False) -> ClassifierMixin:
        chosen = self.resolved_hyperparameters(n_train, cv=cv)
        self.hidden_layer_sizes_ = chosen["hidden_layer_sizes"]
        self.learning_rate_init_ = chosen["learning_rate_init"]
        self.max_iter_ = chosen["max_iter"]
        batch_size = max(1, min(self.batch_size, n_train))
        if self.backend == "torch":
            return TorchMLPClassifier(
                hidden_layer_sizes=self.hidden_layer_sizes_,
                alpha=self.alpha,
                batch_size=batch_size,
                learning_rate_init=self.learning_rate_init_,
                max_iter=self.max_iter_,
                device=self.device,
                threads=self.blas_threads,
                random_state=self.random_state,
            )
        if self.backend != "sklearn":
            raise TrainingDataError("backend must be 'sklearn' or 'torch'", value=self.backend)
        return MLPClassifier(
            hidden_layer_sizes=self.hidden_layer_sizes_,
            activation="relu",
            solver="adam",
            alpha=self.alpha,
            batch_size=batch_size,
            learning_rate_init=self.learning_rate_init_,
            max_iter=self.max_iter_,
            random_state=self.random_state,
        )


def make_classifier(
    kind: Literal["lr", "mlp"],
    n_train: int | None,
    *,
    random_state: int | None = 0,
    device: str | None = None,
) -> CalibratedLogisticRegression | CoralNetMLP:
    """CoralNet's classifier of ``kind`` for a source with ``n_train`` training points.

    With ``n_train`` the MLP's sizes are fixed here, so the returned object's parameters
    already say what will be trained; with None they are chosen at fit time ("auto").
    ``device`` None trains with scikit-learn; "auto", "cpu" or "cuda" trains with the
    PyTorch trainer there (``backend="torch"``, or ``solver="torch"`` for ``lr``).
    """
    if kind == "lr":
        if device is None:
            return CalibratedLogisticRegression(random_state=random_state)
        return CalibratedLogisticRegression(
            solver="torch", device=device, random_state=random_state
        )
    torch_options: dict[str, Any] = {} if device is None else {"backend": "torch", "device": device}
    if kind == "mlp" and n_train is None:
        return CoralNetMLP(random_state=random_state, **torch_options)
    if kind == "mlp":
        sizes, lr = budgets.coralnet_mlp_hyperparameters(n_train)
        return CoralNetMLP(
            hidden_layer_sizes=sizes,
            learning_rate_init=lr,
            random_state=random_state,
            **torch_options,
        )
    raise TrainingDataError("classifier kind must be 'lr' or 'mlp'", value=kind)
