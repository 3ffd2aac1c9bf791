"""Logistic regression's ``C="auto"``: the penalty is chosen by calibrated accuracy on
points the model was not fitted on (calibration images or folds), never on the validation
images, and the walk along the grid stops when more grid values stop helping."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from quadrat.classifiers import budgets, regularization
from quadrat.classifiers.estimators import CalibratedLogisticRegression
from quadrat.classifiers.serialize import dumps_estimator, loads_estimator
from quadrat.classifiers.synthetic import make_point_features
from quadrat.classifiers.training import train_classifier
from quadrat.errors import TrainingDataError


@pytest.fixture(scope="module")
def source() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = make_point_features(
        3_000,
        n_features=24,
        n_classes=4,
        points_per_image=10,
        separation=0.4,
        image_effect=0.5,
        dtype=np.float32,
        random_state=5,
    )
    return d.X, d.y, d.groups


@pytest.fixture
def search_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Search at any size (the fixture is far under LR_SEARCH_MIN_POINTS)."""
    monkeypatch.setattr(budgets, "LR_SEARCH_MIN_POINTS", 0)


def _first_best(scores: list[tuple[float, float]]) -> float:
    values = [s for _, s in scores]
    return scores[int(np.argmax(values))][0]


def test_holdout_walks_the_grid_and_keeps_the_most_accurate_c(source, search_everywhere):
    X, y, groups = source
    model = CalibratedLogisticRegression(cv_max_points=100).fit(X, y, groups=groups)
    assert model.calibration_ == "holdout"
    tried = [c for c, _ in model.C_scores_]
    assert tried == sorted(budgets.LR_CS)[: len(tried)]  # strongest penalty first
    assert _first_best(model.C_scores_) == model.C_
    assert model.estimator_.C == model.C_
    assert model.estimator_.get_params()["warm_start"] is False
    # The walk stopped at most LR_PATH_PATIENCE values after its best.
    best_at = tried.index(model.C_)
    assert len(tried) - 1 - best_at <= budgets.LR_PATH_PATIENCE
    # The model kept is the one fitted at C_: it scores as that fit did.
    assert np.mean(model.predict(X) == y) > 0.5


def test_cv_calibration_chooses_on_the_same_folds(source, search_everywhere):
    X, y, groups = source
    model = CalibratedLogisticRegression().fit(X[:1500], y[:1500], groups=groups[:1500])
    assert model.calibration_ == "cv"
    assert model.C_scores_ and _first_best(model.C_scores_) == model.C_
    assert model.estimator_.C == model.C_
    # The search's out-of-fold scores calibrate the model: the same classifier as
    # CalibratedClassifierCV(ensemble=False) at that C, which refits the folds.
    fixed = CalibratedLogisticRegression(C=model.C_).fit(X[:1500], y[:1500], groups=groups[:1500])
    np.testing.assert_allclose(model.estimator_.coef_, fixed.estimator_.coef_, rtol=1e-6)
    np.testing.assert_allclose(
        model.predict_proba(X[1500:]), fixed.predict_proba(X[1500:]), atol=0.02
    )
    assert np.mean(model.predict(X[1500:]) == fixed.predict(X[1500:])) > 0.97
    again = loads_estimator(dumps_estimator(model))
    np.testing.assert_allclose(again.predict_proba(X[:40]), model.predict_proba(X[:40]), atol=1e-6)


def test_the_choice_never_sees_the_validation_images(source, search_everywhere):
    X, y, groups = source
    estimator = CalibratedLogisticRegression(cv_max_points=100)
    result = train_classifier(X, y, groups=groups, estimator=estimator)
    X2 = X.copy()
    X2[result.val_index] = -X2[result.val_index] * 50.0
    again = train_classifier(X2, y, groups=groups, estimator=estimator)
    np.testing.assert_array_equal(again.val_index, result.val_index)
    assert again.estimator.C_scores_ == result.estimator.C_scores_
    np.testing.assert_array_equal(
        again.estimator.estimator_.coef_, result.estimator.estimator_.coef_
    )
    fitted = result.hyperparameters["fitted"]
    assert fitted["C_"] == result.estimator.C_
    assert [tuple(p) for p in fitted["C_scores_"]] == result.estimator.C_scores_


def test_small_sources_keep_c_one_without_a_search(source):
    X, y, groups = source
    assert y.size < budgets.LR_SEARCH_MIN_POINTS
    model = CalibratedLogisticRegression(cv_max_points=100).fit(X, y, groups=groups)
    assert model.C_ == 1.0 and model.C_scores_ == []
    assert model.estimator_.C == 1.0


def test_a_fixed_c_is_used_as_given(source, search_everywhere):
    X, y, groups = source
    model = CalibratedLogisticRegression(C=0.5, cv_max_points=100).fit(X, y, groups=groups)
    assert model.C_ == 0.5 and model.C_scores_ == []
    assert model.estimator_.C == 0.5


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"C": "big"}, "C"),
        ({"C": -1.0}, "C"),
        ({"C": True}, "C"),
        ({"Cs": ()}, "Cs"),
        ({"Cs": (0.1, 0.0)}, "Cs"),
        ({"Cs": ("a",)}, "Cs"),
    ],
)
def test_bad_penalties_are_refused_by_name(source, params, param):
    X, y, groups = source
    with pytest.raises(TrainingDataError) as info:
        CalibratedLogisticRegression(**params).fit(X[:200], y[:200], groups=groups[:200])
    assert info.value.param == param
    assert isinstance(info.value, ValueError)


def test_the_walk_stops_after_patience_and_ties_go_to_the_stronger_penalty(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    fold = (X[:150], y[:150], X[150:], y[150:])
    grid = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    monkeypatch.setattr(regularization, "calibrated_accuracy", lambda s, t, c, m: 0.5)
    base = LogisticRegression()
    found = regularization.walk(base, [fold], grid, patience=2)
    assert [c for c, _ in found.tried] == [1e-3, 1e-2, 1e-1]  # best, then 2 without a gain
    assert base.C == found.models[0].C == 1e-3
    # The held-out scores kept are the best model's.
    np.testing.assert_allclose(found.held_scores, found.models[0].decision_function(X[150:]))
    falling = iter([0.6, 0.7, 0.65, 0.8, 0.1])
    monkeypatch.setattr(regularization, "calibrated_accuracy", lambda s, t, c, m: next(falling))
    found = regularization.walk(LogisticRegression(), [fold], grid, patience=2)
    assert [c for c, _ in found.tried] == list(grid)  # the gain at 1.0 reset the count
    assert found.models[0].C == 1.0


@pytest.mark.parametrize("n_classes", [2, 4])
def test_calibrated_accuracy_is_scikit_learns_calibration(n_classes):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6))
    y = np.argmax(X[:, :n_classes] + rng.normal(scale=1.5, size=(400, n_classes)), axis=1)
    model = LogisticRegression(C=0.01).fit(X[:200], y[:200])
    held = np.arange(200)
    direct = CalibratedClassifierCV(
        FrozenEstimator(model), method="sigmoid", cv=[(held, held)]
    ).fit(X[200:], y[200:])
    expected = float(np.mean(direct.predict(X[200:]) == y[200:]))
    scores = model.decision_function(X[200:]).reshape(200, -1)
    assert regularization.calibrated_accuracy(scores, y[200:], np.unique(y)) == expected


def test_a_label_missing_from_a_fold_scores_below_every_other():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, np.array([0, 0, 2, 2]))
    scores = regularization._held_out_scores(model, X, np.array([0, 1, 2]))
    assert scores.shape == (4, 3)
    assert np.all(scores[:, 1] < scores[:, [0, 2]].min(axis=1))


def test_the_choice_is_stored_and_read_back(source, search_everywhere):
    X, y, groups = source
    model = CalibratedLogisticRegression(cv_max_points=100, Cs=(0.01, 1.0)).fit(X, y, groups=groups)
    again = loads_estimator(dumps_estimator(model))
    assert again.C == "auto" and again.Cs == (0.01, 1.0) and again.C_ == model.C_
    np.testing.assert_allclose(again.predict_proba(X[:40]), model.predict_proba(X[:40]), atol=1e-6)
