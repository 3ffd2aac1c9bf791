"""Flat-label probes: a linear probe on frozen features, and fine-tuning a timm backbone.

A linear probe asks how linearly separable a representation makes a source's own labels;
fine-tuning asks how good a starting point the weights are. Both follow scikit-learn's
contract (``fit`` returns self, fitted attributes end in ``_``, ``predict_proba`` columns
follow ``classes_``), so cross-validation and the existing metrics apply unchanged.
Scores over a whole split come from :func:`cross_validated_predictions` (out-of-fold
predictions of every sample, folds grouped by image) and
:func:`quadrat.probes.metrics.flat_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from quadrat._util import limit_threads
from quadrat.classifiers.splits import fold_splits
from quadrat.errors import InputError, TrainingDataError
from quadrat.probes.hierarchical import require_torch, warmup_cosine

if TYPE_CHECKING:
    import torch


def _check_xy(X: Any, y: Any) -> np.ndarray:
    """y as an array of X's length with two classes or more.

    Refused as quadrat errors (ValueErrors) worded as scikit-learn's estimator checks
    expect; the rest of the validation (NaN, sparse, dtypes, a column-vector y) is
    scikit-learn's ``validate_data``. A probe used before ``fit`` raises scikit-learn's
    ``NotFittedError`` (``check_is_fitted``).
    """
    if y is None:
        raise InputError("a probe requires y to be passed, but the target y is None")
    if hasattr(X, "shape"):  # arrays, frames, sparse matrices
        n_samples = int(X.shape[0]) if len(X.shape) else 0
    else:
        as_array = np.asarray(X)
        n_samples = as_array.shape[0] if as_array.ndim else 0
    labels = np.asarray(y)
    if labels.ndim == 0 or labels.shape[0] != n_samples:
        raise InputError(
            f"X has {n_samples} samples but y has shape {labels.shape}", value=labels.shape
        )
    check_classification_targets(labels)
    if np.unique(labels).size < 2:
        raise TrainingDataError(
            "a probe needs 2 distinct labels (classes) or more; y has one class",
            value=np.unique(labels),
        )
    return labels


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression on standardised frozen features.

    Standardising first keeps one ``C`` meaningful across backbones whose feature scales
    differ by orders of magnitude (random EfficientNet features are ~1e-5 without BN
    re-estimation; texture descriptors are O(1)). ``blas_threads``: one BLAS thread by
    default (see :func:`quadrat._util.limit_threads`); None leaves BLAS alone.
    """

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 2000,
        blas_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.blas_threads = blas_threads
        self.random_state = random_state

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> LinearProbe:
        _check_xy(X, y)
        x, labels = validate_data(self, X, y)
        with limit_threads(self.blas_threads):
            self.pipeline_: Pipeline = make_pipeline(
                StandardScaler(),
                LogisticRegression(
                    C=self.C, max_iter=self.max_iter, random_state=self.random_state
                ),
            ).fit(x, labels)
        self.classes_ = self.pipeline_.classes_
        self.n_iter_ = int(np.max(self.pipeline_[-1].n_iter_))
        return self

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        check_is_fitted(self, "pipeline_")
        x = validate_data(self, X, reset=False)
        with limit_threads(self.blas_threads):
            return np.asarray(self.pipeline_.predict_proba(x))

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the probe is fitted first
        return np.asarray(self.classes_[proba.argmax(axis=1)])


class FineTuneClassifier(ClassifierMixin, BaseEstimator):
    """A backbone from :func:`quadrat.create_extractor` plus a linear head, trained end to end.

    ``backbone`` is any network name ``create_extractor`` takes (a registered CNN,
    ``timm:<model>``, a ``quadrat pretrain`` backbone file); it needs ``weights``, or
    ``random_weights=True`` to start from seeded random weights on purpose (the control
    of a pretraining comparison). Needs torch (``quadrat[cnn]``).

    Input is uint8 RGB patches (n, S, S, 3); the extractor's own preprocessing (scale,
    mean, std) is applied, so weights exported by ``quadrat pretrain`` see the input they
    were trained on. Random flips in both axes augment (a seafloor photo has no "up").
    AdamW, warm-up then cosine; the head learns ``head_lr_scale`` times faster than the
    backbone, since it starts from nothing.
    """

    def __init__(
        self,
        backbone: str = "timm:resnet18",
        weights: str | Path | None = None,
        *,
        random_weights: bool = False,
        epochs: int = 5,
        lr: float = 1e-4,
        head_lr_scale: float = 10.0,
        weight_decay: float = 1e-4,
        batch_size: int = 32,
        random_state: int = 0,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.random_weights = random_weights
        self.epochs = epochs
        self.lr = lr
        self.head_lr_scale = head_lr_scale
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.random_state = random_state

    def _check_patches(self, patches: npt.ArrayLike) -> torch.Tensor:
        import torch

        p = np.asarray(patches)
        if p.ndim != 4 or p.shape[-1] != 3 or p.dtype != np.uint8:
            raise InputError(
                f"patches must be uint8 (n, S, S, 3), got {p.dtype} {p.shape}", value=p.shape
            )
        return torch.from_numpy(np.ascontiguousarray(p))

    def fit(self, patches: npt.ArrayLike, y: npt.ArrayLike) -> FineTuneClassifier:
        require_torch("FineTuneClassifier")
        import torch
        from torch import nn

        from quadrat.extractors import TorchExtractor, create_extractor

        x = self._check_patches(patches)
        labels = _check_xy(x, y)
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch_size must be at least 1")
        self.encoder_ = LabelEncoder().fit(labels)
        self.classes_ = self.encoder_.classes_
        target = torch.from_numpy(self.encoder_.transform(labels)).long()
        if self.backbone == "texture":
            raise InputError("the texture extractor is not a network and cannot be fine-tuned")
        extractor = create_extractor(  # eager: the trainable network, not a compiled one
            self.backbone,
            self.weights,
            random_weights=self.random_weights,
            seed=self.random_state,
            runtime="eager",
        )
        if not isinstance(extractor, TorchExtractor):
            raise InputError(
                f"{self.backbone!r} is not a network and cannot be fine-tuned",
                value=self.backbone,
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            head = nn.Linear(extractor.feature_dim, len(self.classes_))
        backbone = extractor.model.requires_grad_(True)
        optimizer = torch.optim.AdamW(
            [
                {"params": backbone.parameters(), "lr": self.lr},
                {"params": head.parameters(), "lr": self.lr * self.head_lr_scale},
            ],
            weight_decay=self.weight_decay,
        )
        total = math.ceil(len(x) / self.batch_size) * self.epochs
        scheduler = warmup_cosine(optimizer, total, max(1, total // 10))
        generator = torch.Generator().manual_seed(self.random_state)
        self.loss_curve_: list[float] = []
        backbone.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=generator)
            running = 0.0
            for start in range(0, len(x), self.batch_size):
                idx = order[start : start + self.batch_size]
                if len(idx) < 2:
                    continue  # BatchNorm cannot train on a single sample
                batch = extractor.preprocess(x[idx])
                flips = torch.rand(2, generator=generator)
                if flips[0] < 0.5:
                    batch = batch.flip(3)
                if flips[1] < 0.5:
                    batch = batch.flip(2)
                loss = nn.functional.cross_entropy(head(backbone(batch)), target[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running += float(loss.detach()) * len(idx)
            self.loss_curve_.append(running / len(x))
        backbone.eval().requires_grad_(False)
        self.extractor_ = extractor
        self.head_ = head.eval().requires_grad_(False)
        return self

    def predict_proba(self, patches: npt.ArrayLike) -> npt.NDArray[np.float32]:
        check_is_fitted(self, "head_")
        import torch

        x = self._check_patches(patches)
        with torch.inference_mode():
            out = [
                torch.softmax(
                    self.head_(self.extractor_.model(self.extractor_.preprocess(x[i : i + 64]))),
                    1,
                )
                for i in range(0, len(x), 64)
            ]
            if not out:
                return np.zeros((0, len(self.classes_)), dtype=np.float32)
            return torch.cat(out).numpy()

    def predict(self, patches: npt.ArrayLike) -> np.ndarray:
        proba = self.predict_proba(patches)  # checks that the classifier is fitted first
        return np.asarray(self.classes_[proba.argmax(axis=1)])


def grouped_folds(
    y: npt.ArrayLike, groups: npt.ArrayLike | None, n_folds: int = 4, random_state: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds that keep each group (image) on one side; see ``fold_splits``."""
    labels = np.asarray(y)
    g = None if groups is None else np.asarray(groups)
    if g is not None and g.shape != labels.shape:
        raise InputError(f"groups {g.shape} and labels {labels.shape} differ", value=g.shape)
    return fold_splits(labels, g, n_folds, random_state)


def cross_validated_predictions(
    make_probe: Callable[[], Any] | Any,
    X: npt.ArrayLike | Sequence[Any],
    y: npt.ArrayLike,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold predicted labels for every sample (folds must partition the samples).

    ``make_probe`` is an unfitted estimator (cloned per fold) or a factory. Scoring the
    concatenated out-of-fold predictions gives whole-split metrics, not a mean of folds.
    """
    x = np.asarray(X)
    labels = np.asarray(y)
    held = np.concatenate([test for _, test in folds]) if folds else np.zeros(0, dtype=int)
    if np.sort(held).tolist() != list(range(len(labels))):
        raise InputError("folds must hold out every sample exactly once")
    predicted = np.empty(len(labels), dtype=labels.dtype)
    for train, test in folds:
        probe = clone(make_probe) if isinstance(make_probe, BaseEstimator) else make_probe()
        probe.fit(x[train], labels[train])
        predicted[test] = probe.predict(x[test])
    return predicted
