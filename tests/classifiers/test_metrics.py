"""Metrics against hand-computed examples; top-k and the alleviate curve."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from quadrat.classifiers.metrics import alleviate_curve, choose_threshold, evaluate, top_k
from quadrat.errors import InputError


def test_evaluate_hand_example():
    y_true = ["a", "a", "b", "b", "c"]
    y_pred = ["a", "b", "b", "b", "a"]
    m = evaluate(y_true, y_pred)
    assert m.accuracy == pytest.approx(3 / 5)
    assert m.labels.tolist() == ["a", "b", "c"]
    table = m.per_label.set_index("label")
    assert table.loc["a", "precision"] == pytest.approx(1 / 2)
    assert table.loc["a", "recall"] == pytest.approx(1 / 2)
    assert table.loc["b", "precision"] == pytest.approx(2 / 3)
    assert table.loc["b", "recall"] == pytest.approx(1.0)
    assert table.loc["b", "f1"] == pytest.approx(0.8)
    assert table.loc["c", "f1"] == 0.0
    assert table["support"].tolist() == [2, 2, 1]
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    json.dumps(m.to_dict())


def test_evaluate_fixed_label_order_includes_absent_labels():
    m = evaluate([1, 1], [1, 1], labels=[2, 1, 3])
    assert m.confusion.tolist() == [[0, 0, 0], [0, 2, 0], [0, 0, 0]]
    assert m.per_label.set_index("label").loc[[2, 3], "f1"].tolist() == [0.0, 0.0]
    assert m.macro_f1 == pytest.approx(1.0)  # over labels present in y_true only


def test_macro_f1_ignores_labels_absent_from_the_truth():
    """A label only predicted (never true) is not averaged in; it still costs precision."""
    y_true = ["a", "a", "b", "b"]
    y_pred = ["a", "x", "b", "b"]
    m = evaluate(y_true, y_pred, labels=["a", "b", "x", "y"])
    assert m.labels.tolist() == ["a", "b", "x", "y"]  # per-label rows still list all
    f1_a = 2 * 1.0 * 0.5 / 1.5
    assert m.macro_f1 == pytest.approx((f1_a + 1.0) / 2)
    assert m.macro_f1 == pytest.approx(
        f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro")
    )


def test_evaluate_empty_and_mismatched():
    assert np.isnan(evaluate([], [], labels=["a"]).accuracy)
    with pytest.raises(InputError):
        evaluate([1, 2], [1])


@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_top_k_matches_full_sort(k):
    rng = np.random.default_rng(k)
    proba = rng.dirichlet(np.ones(9), size=200)
    classes = np.array([f"L{i}" for i in range(9)])
    labels, scores = top_k(proba, classes, k=k)
    order = np.argsort(-proba, axis=1)[:, :k]
    np.testing.assert_array_equal(labels, classes[order])
    np.testing.assert_array_equal(scores, np.take_along_axis(proba, order, axis=1))
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_top_k_clamps_to_number_of_classes_and_validates():
    labels, scores = top_k(np.array([[0.2, 0.8]]), np.array([10, 20]), k=5)
    assert labels.tolist() == [[20, 10]]
    assert scores.tolist() == [[0.8, 0.2]]
    with pytest.raises(InputError):
        top_k(np.ones((2, 3)), np.array([1, 2]))
    with pytest.raises(InputError):
        top_k(np.ones((2, 2)), np.array([1, 2]), k=0)


def _four_points():
    # top scores 0.9 (right), 0.8 (wrong), 0.6 (right), 0.4 (wrong)
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.4, 0.3, 0.3]])
    y_true = np.array(["x", "x", "x", "y"])
    return proba, y_true, np.array(["x", "y", "z"])


def test_alleviate_curve_hand_example():
    proba, y_true, classes = _four_points()
    curve = alleviate_curve(proba, y_true, classes, thresholds=[0.0, 0.5, 0.6, 0.85, 1.0])
    assert list(curve.columns) == [
        "threshold",
        "fraction_accepted",
        "accuracy_accepted",
        "overall_accuracy",
    ]
    np.testing.assert_allclose(curve["fraction_accepted"], [1.0, 0.75, 0.75, 0.25, 0.0])
    np.testing.assert_allclose(
        curve["accuracy_accepted"], [0.5, 2 / 3, 2 / 3, 1.0, np.nan], equal_nan=True
    )
    # (accepted and correct + not accepted) / n
    np.testing.assert_allclose(curve["overall_accuracy"], [0.5, 0.75, 0.75, 1.0, 1.0])


def test_alleviate_curve_monotonic_fraction():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(6) * 0.5, size=1000)
    classes = np.arange(6)
    y_true = np.where(rng.random(1000) < 0.7, proba.argmax(axis=1), rng.integers(0, 6, 1000))
    curve = alleviate_curve(proba, y_true, classes)
    assert len(curve) == 101
    assert np.all(np.diff(curve["fraction_accepted"]) <= 0)
    assert np.all(np.diff(curve["overall_accuracy"]) >= -1e-12)
    assert curve["fraction_accepted"].iloc[0] == 1.0
    # brute force for every threshold
    top = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    for row in curve.itertuples():
        accepted = top >= row.threshold
        assert row.fraction_accepted == pytest.approx(accepted.mean())
        if accepted.any():
            assert row.accuracy_accepted == pytest.approx(correct[accepted].mean())
        assert row.overall_accuracy == pytest.approx(
            (np.sum(correct & accepted) + np.sum(~accepted)) / 1000
        )


def test_alleviate_curve_shape_errors():
    with pytest.raises(InputError):
        alleviate_curve(np.ones((3, 2)), np.zeros(4), np.arange(2))


def test_choose_threshold():
    proba, y_true, classes = _four_points()
    curve = alleviate_curve(proba, y_true, classes, thresholds=[0.0, 0.5, 0.6, 0.85, 1.0])
    assert choose_threshold(curve, 0.5) == 0.0
    assert choose_threshold(curve, 0.6) == 0.5
    assert choose_threshold(curve, 0.99) == 0.85
    never = pd.DataFrame(
        {
            "threshold": [0.0, 1.0],
            "fraction_accepted": [1.0, 0.0],
            "accuracy_accepted": [0.4, np.nan],
            "overall_accuracy": [0.4, 1.0],
        }
    )
    assert choose_threshold(never, 0.9) is None
    with pytest.raises(InputError):
        choose_threshold(curve, 1.5)


def test_metrics_read_as_a_json_mapping():
    m = evaluate([0, 1, 1], [0, 1, 0])
    assert m["accuracy"] == m.accuracy == pytest.approx(2 / 3)
    as_dict = dict(m)
    assert set(as_dict) == {"accuracy", "macro_f1", "n", "labels", "confusion", "per_label"}
    assert as_dict == m.to_dict()
    json.dumps(as_dict)
