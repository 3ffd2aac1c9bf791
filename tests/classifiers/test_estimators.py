"""Contracts of the calibrated estimators: scikit-learn API, sizes, dtypes, calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from quadrat.classifiers import budgets
from quadrat.classifiers.budgets import coralnet_mlp_hyperparameters, mlp_epochs
from quadrat.classifiers.estimators import (
    CalibratedLogisticRegression,
    CoralNetMLP,
    make_classifier,
)
from quadrat.errors import QuadratError, TrainingDataError


@parametrize_with_checks([CalibratedLogisticRegression(), CoralNetMLP()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    ("n_train", "expected"),
    [
        (0, ((100,), 1e-3)),
        (1, ((100,), 1e-3)),
        (49_999, ((100,), 1e-3)),
        (50_000, ((200, 100), 1e-4)),
        (50_001, ((200, 100), 1e-4)),
        (5_000_000, ((200, 100), 1e-4)),
    ],
)
def test_coralnet_mlp_size_switch_at_50000(n_train, expected):
    assert coralnet_mlp_hyperparameters(n_train) == expected
    chosen = CoralNetMLP().resolved_hyperparameters(n_train)
    assert (chosen["hidden_layer_sizes"], chosen["learning_rate_init"]) == expected


def test_negative_train_size_rejected():
    with pytest.raises(ValueError):
        coralnet_mlp_hyperparameters(-1)


def test_auto_sizes_are_chosen_at_fit_time(monkeypatch, easy):
    # Lower the switch so the large network is picked without training 50,000 points.
    monkeypatch.setattr(budgets, "LARGE_SOURCE_POINTS", 300)
    small = CoralNetMLP().fit(easy.X[:200], easy.y[:200])
    assert small.hidden_layer_sizes_ == (100,)
    assert small.learning_rate_init_ == 1e-3
    large = CoralNetMLP().fit(easy.X, easy.y)  # 540 training points after calibration
    assert large.hidden_layer_sizes_ == (200, 100)
    assert large.learning_rate_init_ == 1e-4
    assert large.estimator_.hidden_layer_sizes == (200, 100)


def test_explicit_sizes_override_auto(easy):
    model = CoralNetMLP(hidden_layer_sizes=(7,), learning_rate_init=0.01, max_iter=3)
    model.fit(easy.X, easy.y)
    assert model.hidden_layer_sizes_ == (7,)
    assert model.learning_rate_init_ == 0.01
    assert model.max_iter_ == 3


def test_epoch_budget():
    assert mlp_epochs(100_000, 200) == 10  # CoralNet's 10 epochs on large sources
    assert mlp_epochs(10_000, 200) == 30  # 50 steps/epoch -> 1,500 steps
    assert mlp_epochs(1_000, 200) == budgets.MAX_MLP_EPOCHS == 60  # capped
    assert mlp_epochs(0, 200) == 60


def test_training_work_is_proportionate_to_the_points():
    """Sample passes (epochs x points) of the whole fit grow with the source and stay
    within a small multiple of CoralNet's 10 epochs: no 10,000-point cv on a 1k source."""
    mlp = CoralNetMLP()
    for n in (500, 1_000, 2_000):  # cv: cv_folds + 1 fits at the cv budget
        assert n <= mlp.cv_max_points
        epochs = mlp.resolved_hyperparameters(n, cv=True)["max_iter"]
        assert epochs <= budgets.MLP_CV_MAX_EPOCHS == 25
        passes = epochs * n * (1 + mlp.cv_folds * (mlp.cv_folds - 1) / mlp.cv_folds)
        assert passes <= 100 * n  # at most 10x CoralNet's 10 epochs of work
    for n in (2_001, 10_000, 100_000, 1_000_000):  # holdout: one fit, early stopping
        assert n > mlp.cv_max_points
        epochs = mlp.resolved_hyperparameters(n)["max_iter"]
        assert 10 <= epochs <= 60
        assert epochs * 200 <= max(1_500 + 200 * 10, 10 * n)  # steps: 1,500 or 10 epochs


def test_make_classifier():
    small = make_classifier("mlp", 49_999)
    assert small.hidden_layer_sizes == (100,)
    assert small.learning_rate_init == 1e-3
    large = make_classifier("mlp", 50_000, random_state=3)
    assert large.hidden_layer_sizes == (200, 100)
    assert large.learning_rate_init == 1e-4
    assert large.random_state == 3
    assert isinstance(make_classifier("lr", 10), CalibratedLogisticRegression)
    with pytest.raises(TrainingDataError):
        make_classifier("svm", 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", [CalibratedLogisticRegression(), CoralNetMLP(max_iter=20)])
def test_probabilities_are_calibrated_distributions(model, easy):
    # 600 points are below cv_max_points, so the default would cross-validate: this test
    # is about the holdout's carve-out, so it asks for it.
    model.set_params(calibration="holdout")
    model.fit(easy.X, easy.y)
    proba = model.predict_proba(easy.X)
    assert proba.shape == (easy.X.shape[0], model.classes_.size)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(model.predict(easy.X) == easy.y) > 0.9
    assert model.n_calibration_ == 60  # 10 % carved out
    assert model.n_train_ == 540


def test_float16_and_float32_inputs_agree_and_are_not_modified(easy):
    X16 = easy.X
    X32 = X16.astype(np.float32)
    before = X32.copy()
    a = CalibratedLogisticRegression().fit(X16, easy.y)
    b = CalibratedLogisticRegression().fit(X32, easy.y)
    np.testing.assert_allclose(a.predict_proba(X16), b.predict_proba(X32), atol=1e-6)
    np.testing.assert_array_equal(X32, before)  # scaling never touches the caller's array
    assert X16.dtype == np.float16


def test_chunked_scoring_matches_one_chunk(easy):
    model = CalibratedLogisticRegression(chunk_size=7).fit(easy.X, easy.y)
    chunked = model.predict_proba(easy.X)
    model.set_params(chunk_size=1_000_000)
    np.testing.assert_array_equal(chunked, model.predict_proba(easy.X))


def test_string_labels_and_explicit_calibration(blobs):
    X, y = blobs
    cal = np.arange(0, 300, 5)
    train = np.setdiff1d(np.arange(300), cal)
    model = CalibratedLogisticRegression().fit(
        X[train], y[train], X_calibration=X[cal], y_calibration=y[cal]
    )
    assert model.classes_.tolist() == ["a", "b", "c"]
    assert model.n_calibration_ == cal.size
    assert set(model.predict(X)) <= {"a", "b", "c"}


def test_labels_missing_from_calibration_are_dropped(blobs):
    X, y = blobs
    cal = np.flatnonzero(y != "c")[::4]  # no 'c' in the calibration points
    train = np.setdiff1d(np.arange(300), cal)
    model = CalibratedLogisticRegression().fit(
        X[train], y[train], X_calibration=X[cal], y_calibration=y[cal]
    )
    assert model.classes_.tolist() == ["a", "b"]
    assert model.dropped_classes_.tolist() == ["c"]


def test_one_sided_calibration_arguments_rejected(blobs):
    X, y = blobs
    with pytest.raises(TrainingDataError):
        CalibratedLogisticRegression().fit(X, y, X_calibration=X)


def test_too_few_labels_is_a_quadrat_and_value_error(blobs):
    X, y = blobs
    with pytest.raises(TrainingDataError) as info:
        CalibratedLogisticRegression().fit(X[:100], y[:100])  # only 'a'
    assert isinstance(info.value, QuadratError)
    assert isinstance(info.value, ValueError)


def test_same_seed_same_model(easy):
    a = CoralNetMLP(max_iter=5, random_state=4).fit(easy.X, easy.y).predict_proba(easy.X)
    b = CoralNetMLP(max_iter=5, random_state=4).fit(easy.X, easy.y).predict_proba(easy.X)
    np.testing.assert_array_equal(a, b)


def test_sgd_solver_reproduces_coralnet_lr(easy):
    model = CalibratedLogisticRegression(solver="sgd").fit(easy.X, easy.y)
    assert type(model.estimator_).__name__ == "SGDClassifier"
    assert model.estimator_.average is True
    assert np.mean(model.predict(easy.X) == easy.y) > 0.9


@pytest.mark.parametrize("threads", [None, 1, 2])
def test_blas_threads_setting_gives_the_same_model(threads, easy):
    base = CalibratedLogisticRegression().fit(easy.X, easy.y).predict_proba(easy.X)
    other = CalibratedLogisticRegression(blas_threads=threads).fit(easy.X, easy.y)
    np.testing.assert_allclose(other.predict_proba(easy.X), base, atol=1e-5)


def _twenty_small_images():
    """CoralNet's minimum: 20 images of 12 points, 5 labels each in a few images."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(20), 12)
    image_label = rng.integers(0, 5, size=(20, 2))
    y = image_label[groups, rng.integers(0, 2, size=240)]
    X = rng.normal(size=(240, 16)).astype(np.float32) + 2.0 * np.eye(5, 16)[y]
    return X, y, groups


def test_auto_calibration_keeps_every_label_of_a_small_source():
    X, y, groups = _twenty_small_images()
    for seed in range(8):
        auto = CalibratedLogisticRegression(random_state=seed)
        auto.fit(X, y, groups=groups)
        assert auto.classes_.tolist() == [0, 1, 2, 3, 4]
        # 240 points are below cv_max_points: always cv now (before, only when the
        # holdout would drop a label), so no label is ever dropped.
        assert auto.calibration_ == "cv"
        assert auto.n_train_ == auto.n_calibration_ == 240
    assert CalibratedLogisticRegression(calibration="cv").fit(X, y).calibration_ == "cv"


def test_auto_calibration_holds_out_above_cv_max_points():
    X, _, _ = _twenty_small_images()
    groups = np.arange(240) // 4  # 60 images: a held-out tenth is 6, too few
    y = np.tile(np.arange(4), 60)  # every image holds every label
    X = X + 2.0 * np.eye(4, 16)[y]
    model = CalibratedLogisticRegression(cv_max_points=239).fit(X, y, groups=groups)
    assert model.calibration_ == "cv"
    groups = np.arange(240) // 2  # 120 images: 12 held out
    model = CalibratedLogisticRegression(cv_max_points=239).fit(X, y, groups=groups)
    assert model.calibration_ == "holdout"
    assert model.n_calibration_ == 24  # 12 of 120 images
    assert model.n_train_ == 216


def test_grouped_holdout_keeps_images_together():
    X, y, groups = _twenty_small_images()
    model = CoralNetMLP(calibration="holdout", max_iter=5).fit(X, y, groups=groups)
    fit_images = set(groups[model.fit_index_])
    assert fit_images.isdisjoint(groups[model.calibration_index_])
    assert len(fit_images) + len(set(groups[model.calibration_index_])) == 20


def test_bad_calibration_mode(blobs):
    X, y = blobs
    with pytest.raises(TrainingDataError):
        CalibratedLogisticRegression(calibration="magic").fit(X, y)  # type: ignore[arg-type]


def test_mlp_trains_on_raw_features_and_lr_on_standardised_ones() -> None:
    """CoralNet's MLP sees raw features (measured better, docs/classifiers.md); LR scales."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6)) * np.array([1, 10, 100, 1, 1, 1]) + 5
    y = (X[:, 0] > 5).astype(int) + 2 * (X[:, 3] > 5)
    groups = np.arange(240) // 12
    mlp = CoralNetMLP(max_iter=5).fit(X, y, groups=groups)
    lr = CalibratedLogisticRegression().fit(X, y, groups=groups)
    assert mlp.scaler_ is None and lr.scaler_ is not None
    scaled = CoralNetMLP(max_iter=5, standardize=True).fit(X, y, groups=groups)
    assert scaled.scaler_ is not None
    np.testing.assert_allclose(scaled.scaler_.mean_, X[scaled.fit_index_].mean(0), rtol=1e-5)
    for model in (mlp, lr, scaled):
        proba = model.predict_proba(X)
        assert proba.shape == (240, 4)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
