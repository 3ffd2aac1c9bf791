"""Flat probes: linear probe on frozen features, fine-tuning, grouped out-of-fold scoring."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from quadrat.errors import InputError, TrainingDataError
from quadrat.probes.flat import (
    FineTuneClassifier,
    LinearProbe,
    cross_validated_predictions,
    grouped_folds,
)
from quadrat.probes.metrics import flat_metrics


def _separable(n_per_class: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]) * 1e-4
    X = np.concatenate([c + 1e-5 * rng.normal(size=(n_per_class, 3)) for c in centres])
    y = np.repeat(np.array(["Porit", "CCA", "Sand"]), n_per_class)
    return X.astype(np.float32), y


def test_linear_probe_separates_a_tiny_scale_toy_problem() -> None:
    X, y = _separable()  # features ~1e-4: standardising must make this learnable
    probe = LinearProbe().fit(X, y)
    assert set(probe.classes_) == {"CCA", "Porit", "Sand"}
    assert (probe.predict(X) == y).mean() == 1.0
    proba = probe.predict_proba(X)
    assert proba.shape == (len(y), 3)
    assert np.allclose(proba.sum(axis=1), 1.0)


@parametrize_with_checks([LinearProbe()])
def test_linear_probe_is_a_scikit_learn_estimator(estimator: LinearProbe, check: Any) -> None:
    """scikit-learn's own estimator checks, as the classifiers run them."""
    check(estimator)


def test_linear_probe_rejects_one_label_and_mismatched_lengths() -> None:
    X, y = _separable()
    with pytest.raises(InputError, match="2 distinct labels"):
        LinearProbe().fit(X, np.full(len(y), "Sand"))
    with pytest.raises(TrainingDataError, match="one class"):
        LinearProbe().fit(X, np.full(len(y), "Sand"))
    with pytest.raises(InputError, match="samples"):
        LinearProbe().fit(X, y[:-1])


def test_probes_used_before_fit_raise_sklearns_not_fitted_error() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        LinearProbe().predict(np.zeros((1, 3)))
    with pytest.raises(NotFittedError, match="not fitted"):
        FineTuneClassifier().predict_proba(np.zeros((1, 8, 8, 3), dtype=np.uint8))
    assert issubclass(NotFittedError, ValueError)


def test_importing_the_probes_does_not_import_torch() -> None:
    code = "import sys, quadrat.probes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_grouped_folds_keep_images_apart_and_score_the_whole_split() -> None:
    X, y = _separable(n_per_class=24)
    images = np.tile(np.arange(12), 6)  # 12 images, each with points of all labels
    folds = grouped_folds(y, images, n_folds=4)
    assert len(folds) == 4
    for train, test in folds:
        assert not set(images[train]) & set(images[test])
    predicted = cross_validated_predictions(LinearProbe(), X, y, folds)
    scores = flat_metrics(y, predicted)
    assert scores["n"] == len(y)
    assert scores["accuracy"] == 1.0 and scores["macro_f1"] == 1.0


def test_out_of_fold_predictions_need_a_partition() -> None:
    X, y = _separable(n_per_class=4)
    with pytest.raises(InputError, match="exactly once"):
        cross_validated_predictions(LinearProbe(), X, y, [(np.arange(6), np.arange(6, 10))])


def _colour_patches(n: int = 24, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Reddish vs bluish noisy patches: learnable in a few steps from random weights."""
    rng = np.random.default_rng(0)
    y = np.array(["red", "blue"] * (n // 2))
    base = np.where(y[:, None] == "red", [[170, 60, 60]], [[60, 60, 170]])
    noise = rng.normal(0, 25, size=(n, size, size, 3))
    patches = np.clip(base[:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return patches, y


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*random weights.*")
def test_fine_tuning_trains_backbone_and_head() -> None:
    patches, y = _colour_patches()
    model = FineTuneClassifier(
        "timm:resnet10t", random_weights=True, epochs=3, batch_size=8, lr=1e-3
    )
    model.fit(patches, y)
    assert len(model.loss_curve_) == 3
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert (model.predict(patches) == y).mean() >= 0.9
    proba = model.predict_proba(patches[:3])
    assert proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_fine_tuning_rejects_float_patches_and_the_texture_extractor() -> None:
    patches, y = _colour_patches(n=4)
    with pytest.raises(InputError, match="uint8"):
        FineTuneClassifier(epochs=1).fit(patches.astype(np.float32), y)
    with pytest.raises(InputError, match="cannot be fine-tuned"):
        FineTuneClassifier("texture", epochs=1).fit(patches, y)
