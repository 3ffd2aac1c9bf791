"""What the trainer chooses from data is chosen on its own calibration part, never on the
validation images that give the reported figure; the MLP stops early on held-out images."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.classifiers.budgets import keeps_epoch
from quadrat.classifiers.estimators import CalibratedLogisticRegression, CoralNetMLP
from quadrat.classifiers.synthetic import make_point_features
from quadrat.classifiers.training import train_classifier


@pytest.fixture(scope="module")
def source() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = make_point_features(
        3_000,
        n_features=16,
        n_classes=4,
        points_per_image=10,  # 300 images: a held-out tenth of them is enough
        separation=0.7,
        image_effect=0.3,
        dtype=np.float32,
        random_state=3,
    )
    return d.X, d.y, d.groups


def _small_mlp(**params: object) -> CoralNetMLP:
    return CoralNetMLP(hidden_layer_sizes=(16,), learning_rate_init=1e-2, **params)  # type: ignore[arg-type]


def test_above_cv_max_points_the_mlp_stops_early_on_the_calibration_images(source):
    X, y, groups = source
    result = train_classifier(
        X, y, groups=groups, estimator=_small_mlp(cv_max_points=100, max_iter=12)
    )
    model = result.estimator
    assert model.calibration_ == "holdout"
    curve = model.ref_accuracy_curve_
    cal = result.calibration_index
    kept = [e for e in range(1, len(curve) + 1) if keeps_epoch(curve[:e], cal.size)]
    assert model.n_iter_ == kept[-1] == result.hyperparameters["fitted"]["n_iter_"]
    assert model.epochs_run_ == len(curve) <= 12
    # The curve is the accuracy on the calibration images, recomputed here.
    assert curve[kept[-1] - 1] == pytest.approx(np.mean(model.estimator_.predict(X[cal]) == y[cal]))


def test_early_stopping_rule():
    # 400 held-out points at 0.80: one standard error is 2 points.
    assert keeps_epoch([0.5, 0.6], 400)
    assert keeps_epoch([0.80, 0.79], 400)  # a tie within noise goes to the later epoch
    assert not keeps_epoch([0.80, 0.70], 400)  # clearly worse: not kept
    assert not keeps_epoch([0.80, 0.79], 100_000)  # with many points 1 point is real


def test_training_stops_after_patience_without_a_kept_epoch(source, monkeypatch):
    from quadrat.classifiers import budgets

    # Only the first epoch is ever "kept": training stops n_iter_no_change epochs later.
    monkeypatch.setattr(budgets, "keeps_epoch", lambda curve, n: len(curve) == 1)
    X, y, groups = source
    model = _small_mlp(cv_max_points=100, max_iter=50, n_iter_no_change=3)
    model.fit(X, y, groups=groups)
    assert model.epochs_run_ == 4 and model.n_iter_ == 1


def test_the_validation_figure_comes_from_images_the_selection_never_saw(source):
    X, y, groups = source
    result = train_classifier(X, y, groups=groups, estimator=_small_mlp(cv_max_points=100))
    val_images = set(groups[result.val_index])
    assert not val_images & set(groups[result.train_index])
    assert not val_images & set(groups[result.calibration_index])  # early stopping + sigmoids
    predicted = result.estimator.predict(X[result.val_index])
    assert result.metrics.accuracy == pytest.approx(np.mean(predicted == y[result.val_index]))
    # Changing the validation points' features changes nothing that was fitted.
    X2 = X.copy()
    X2[result.val_index] += 100.0
    again = train_classifier(X2, y, groups=groups, estimator=_small_mlp(cv_max_points=100))
    np.testing.assert_array_equal(again.val_index, result.val_index)
    assert again.estimator.ref_accuracy_curve_ == result.estimator.ref_accuracy_curve_
    pairs = zip(again.estimator.estimator_.coefs_, result.estimator.estimator_.coefs_, strict=True)
    for w1, w2 in pairs:
        np.testing.assert_array_equal(w1, w2)


def test_without_early_stopping_the_budget_is_trained(source):
    X, y, groups = source
    model = _small_mlp(cv_max_points=100, max_iter=7, early_stopping=False, calibration="holdout")
    model.fit(X, y, groups=groups)
    assert not hasattr(model, "ref_accuracy_curve_")
    assert model.n_iter_ <= 7


def test_small_sources_use_cross_validated_calibration(source):
    X, y, groups = source
    model = CoralNetMLP(hidden_layer_sizes=(8,), max_iter=3).fit(
        X[:600], y[:600], groups=groups[:600]
    )
    assert model.calibration_ == "cv"  # 600 <= MLP_CV_MAX_POINTS
    assert model.n_calibration_ == 600


def test_refit_trains_on_training_and_calibration_points(source):
    X, y, groups = source
    plain = _small_mlp(cv_max_points=100).fit(X, y, groups=groups)
    refit = _small_mlp(cv_max_points=100, refit=True).fit(X, y, groups=groups)
    assert refit.calibration_ == "holdout"
    assert refit.n_train_ == plain.n_train_ + plain.n_calibration_
    assert refit.estimator_.n_iter_ <= plain.n_iter_  # the chosen epochs, not more
    assert refit.estimator_ is not plain.estimator_
    proba = refit.predict_proba(X[:50])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(refit.predict(X) == y) > 0.8
    # Stored and read back: the refitted model with the kept sigmoids.
    from quadrat.classifiers.serialize import dumps_estimator, loads_estimator

    again = loads_estimator(dumps_estimator(refit))
    np.testing.assert_allclose(again.predict_proba(X[:50]), proba, atol=1e-6)
    lr = CalibratedLogisticRegression(cv_max_points=100, refit=True).fit(X, y, groups=groups)
    assert lr.n_train_ == y.size - int(np.isin(y, lr.dropped_classes_).sum())
