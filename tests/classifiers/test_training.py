"""CoralNet's split and evaluation: grouped splits, sizes, excluded labels, acceptance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quadrat.classifiers.estimators import CalibratedLogisticRegression, CoralNetMLP
from quadrat.classifiers.metrics import alleviate_curve
from quadrat.classifiers.policy import TrainingPolicy
from quadrat.classifiers.splits import split_indices
from quadrat.classifiers.training import train_classifier
from quadrat.errors import TrainingDataError

FAST_LR = CalibratedLogisticRegression(max_iter=50)
RARE = 99


@pytest.mark.parametrize("seed", range(5))
def test_grouped_split_never_shares_an_image(seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 37, size=900)
    y = rng.integers(0, 5, size=900)
    kept, held = split_indices(y, groups, 8, seed)
    assert np.intersect1d(groups[kept], groups[held]).size == 0
    assert np.union1d(kept, held).size == 900
    assert np.intersect1d(kept, held).size == 0


def test_ungrouped_split_is_one_eighth():
    y = np.repeat(np.arange(4), 200)
    _kept, held = split_indices(y, None, 8, 0)
    assert held.size == 100
    assert np.bincount(y[held]).tolist() == [25, 25, 25, 25]  # stratified


def test_split_needs_two_images():
    with pytest.raises(TrainingDataError, match="image"):
        split_indices(np.arange(10) % 2, np.zeros(10), 8, 0)


def test_train_classifier_grouped_holdout(easy):
    model = CalibratedLogisticRegression(calibration="holdout")
    result = train_classifier(easy.X, easy.y, groups=easy.groups, estimator=model)
    assert result.hyperparameters["split"]["calibration"] == "holdout"
    fit_images = set(easy.groups[result.train_index])
    cal_images = set(easy.groups[result.calibration_index])
    val_images = set(easy.groups[result.val_index])
    assert not fit_images & cal_images
    assert not fit_images & val_images
    assert not cal_images & val_images
    # 30 images of 20 points: 1/8 -> ~4 images, then 1/10 of the rest -> ~3 images
    assert result.n_val == result.val_index.size == result.val_true.size
    assert 3 * 20 <= result.n_val <= 5 * 20
    assert 2 * 20 <= result.n_calibration <= 4 * 20
    n_dropped = int(np.isin(easy.y, result.dropped_labels).sum())
    assert result.n_train + result.n_calibration + result.n_val <= 600
    assert result.n_train + result.n_calibration + result.n_val + n_dropped >= 600
    assert result.val_proba.shape == (result.n_val, result.classes.size)
    np.testing.assert_allclose(result.val_proba.sum(axis=1), 1.0)
    assert result.metrics.accuracy > 0.9
    assert result.train_seconds > 0
    assert result.hyperparameters["split"]["grouped_by_image"] is True
    json.dumps(result.summary())  # storable as JSON
    curve = alleviate_curve(result.val_proba, result.val_true, result.classes)
    assert curve["fraction_accepted"].iloc[0] == 1.0


def test_train_classifier_grouped_cv(easy):
    model = CalibratedLogisticRegression(calibration="cv")
    result = train_classifier(easy.X, easy.y, groups=easy.groups, estimator=model)
    assert result.hyperparameters["split"]["calibration"] == "cv"
    np.testing.assert_array_equal(result.train_index, result.calibration_index)
    assert not set(easy.groups[result.train_index]) & set(easy.groups[result.val_index])
    assert result.n_train == result.n_calibration == 600 - result.n_val
    assert result.dropped_labels == []
    assert result.metrics.accuracy > 0.9


def test_train_classifier_mlp_records_sizes(easy):
    result = train_classifier(easy.X, easy.y, kind="mlp")
    hp = result.hyperparameters
    assert hp["kind"] == "mlp"
    assert hp["params"]["hidden_layer_sizes"] == "auto"
    assert hp["fitted"]["hidden_layer_sizes_"] == [100]
    assert isinstance(result.estimator, CoralNetMLP)
    assert result.hyperparameters["split"]["grouped_by_image"] is False


def _with_rare_image(easy):
    y = easy.y.copy()
    y[easy.groups == 0] = RARE  # one image holds every RARE point
    return y


def test_a_label_of_one_image_wherever_it_lands(easy):
    y = _with_rare_image(easy)
    places = set()
    for seed in range(40):
        r = train_classifier(easy.X, y, groups=easy.groups, estimator=FAST_LR, random_state=seed)
        in_val = int(np.sum(r.val_true == RARE))
        if in_val:
            places.add("val")
            # unknown to the classifier: left out of the reported accuracy (pyspacer)
            assert r.excluded_labels == [RARE]
            assert r.n_val_excluded == in_val
            assert r.metrics.n == r.n_val - in_val
            assert r.accuracy_all < r.metrics.accuracy
        else:
            places.add("train")
            # held-out calibration cannot cover it: cross-validated calibration keeps it
            assert r.hyperparameters["split"]["calibration"] == "cv"
            assert RARE in r.classes.tolist()
            assert r.dropped_labels == []
            column = r.classes.tolist().index(RARE)
            assert r.val_proba[:, column].max() < 0.5  # no out-of-fold evidence for it
    assert places == {"val", "train"}


def test_holdout_only_drops_what_it_cannot_calibrate(easy):
    y = _with_rare_image(easy)
    holdout = CalibratedLogisticRegression(max_iter=50, calibration="holdout")
    for seed in range(10):
        r = train_classifier(easy.X, y, groups=easy.groups, estimator=holdout, random_state=seed)
        assert RARE not in r.classes.tolist()
        assert (RARE in r.excluded_labels) != (RARE in r.dropped_labels)


def test_acceptance_against_previous_accuracy(easy):
    first = train_classifier(easy.X, easy.y, groups=easy.groups, estimator=FAST_LR)
    assert first.accepted and first.previous_accuracy is None
    worse_than = train_classifier(
        easy.X, easy.y, groups=easy.groups, estimator=FAST_LR, previous_accuracy=1.0
    )
    assert not worse_than.accepted
    lenient = TrainingPolicy(accept_factor=0.5)
    ok = train_classifier(
        easy.X,
        easy.y,
        groups=easy.groups,
        estimator=FAST_LR,
        previous_accuracy=1.0,
        policy=lenient,
    )
    assert ok.accepted


def test_bad_inputs(easy):
    with pytest.raises(TrainingDataError):
        train_classifier(easy.X, easy.y[:-1])
    with pytest.raises(TrainingDataError):
        train_classifier(easy.X, np.zeros(600))
    with pytest.raises(TrainingDataError):
        train_classifier(easy.X, easy.y, groups=easy.groups[:10])
