"""Whole-split probe metrics: equal to scikit-learn on the concatenated, masked data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    matthews_corrcoef,
)

from quadrat.errors import InputError
from quadrat.probes.metrics import (
    SplitCollector,
    depth_groups,
    flat_metrics,
    hierarchical_metrics,
)


def _toy(n: int = 90, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.4).astype(np.int8)
    scores = np.clip(0.3 * y + 0.7 * rng.random((n, k)), 0.0, 1.0)
    mask = rng.random((n, k)) > 0.2
    return y, scores, mask


def test_flat_metrics_match_sklearn() -> None:
    y = np.array(["a", "b", "c", "a", "b", "a"])
    pred = np.array(["a", "c", "c", "a", "b", "b"])
    got = flat_metrics(y, pred)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert got["n"] == 6


def test_collected_batches_equal_sklearn_on_the_concatenated_split() -> None:
    y, s, m = _toy()
    collector = SplitCollector()
    for start in range(0, len(y), 16):  # uneven last batch on purpose
        collector.add(y[start : start + 16], s[start : start + 16], m[start : start + 16])
    got = collector.compute()
    pred = (s >= 0.5).astype(np.int8)
    assert got["micro_ap"] == pytest.approx(average_precision_score(y[m], s[m]))
    assert got["micro_f1"] == pytest.approx(f1_score(y[m], pred[m]))
    right = ((y == pred) | ~m).all(axis=1)
    assert got["subset_accuracy"] == pytest.approx(right[m.any(axis=1)].mean())
    assert got["n_bits"] == int(m.sum())
    # A mean of per-batch APs is a different number: the point of scoring whole splits.
    per_batch = np.mean(
        [
            average_precision_score(y[i : i + 16][m[i : i + 16]], s[i : i + 16][m[i : i + 16]])
            for i in range(0, len(y), 16)
        ]
    )
    assert per_batch != pytest.approx(got["micro_ap"], abs=1e-9)


def test_masked_entries_do_not_change_any_metric() -> None:
    y, s, m = _toy(seed=1)
    groups = {"all": np.arange(y.shape[1]), "first": np.array([0, 1])}
    before = hierarchical_metrics(y, s, m, groups=groups)
    rng = np.random.default_rng(5)
    y2, s2 = y.copy(), s.copy()
    y2[~m] = 1 - y2[~m]
    s2[~m] = rng.random(int((~m).sum()))
    after = hierarchical_metrics(y2, s2, m, groups=groups)
    assert after == before
    unmasked = hierarchical_metrics(y2, s2, groups=groups)
    assert unmasked["micro_ap"] != pytest.approx(before["micro_ap"])


def test_depth_groups_and_per_group_metrics() -> None:
    depths = np.array([0, 1, 1, 2, 0, 1])
    heads = np.array(["biota"] * 4 + ["relief"] * 2)
    assert {k: v.tolist() for k, v in depth_groups(depths).items()} == {
        "depth_0": [0, 4],
        "depth_1": [1, 2, 5],
        "depth_2": [3],
    }
    by_head = depth_groups(depths, heads)
    assert list(by_head) == [
        "biota/depth_0",
        "biota/depth_1",
        "biota/depth_2",
        "relief/depth_0",
        "relief/depth_1",
    ]
    y, s, m = _toy(k=6, seed=2)
    got = hierarchical_metrics(y, s, m, groups=depth_groups(depths))["groups"]["depth_1"]
    cols = np.array([1, 2, 5])
    yy, ss, mm = y[:, cols], s[:, cols], m[:, cols]
    pred = (ss >= 0.5).astype(np.int8)
    assert got["ap"] == pytest.approx(average_precision_score(yy[mm], ss[mm]))
    assert got["f1"] == pytest.approx(f1_score(yy[mm], pred[mm]))
    assert got["mcc"] == pytest.approx(matthews_corrcoef(yy[mm], pred[mm]))
    right = ((yy == pred) | ~mm).all(axis=1)
    assert got["exact_match"] == pytest.approx(right[mm.any(axis=1)].mean())


def test_group_without_positives_has_nan_ap_not_zero() -> None:
    y = np.zeros((4, 2), dtype=np.int8)
    y[:, 0] = [1, 0, 1, 0]
    s = np.full((4, 2), 0.2)
    got = hierarchical_metrics(y, s, groups={"empty": [1]})
    assert np.isnan(got["groups"]["empty"]["ap"])
    assert got["groups"]["empty"]["exact_match"] == 1.0


@pytest.mark.parametrize(
    ("y", "s", "m", "message"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), None, "one shape"),
        (np.full((3, 2), 2), np.zeros((3, 2)), None, "0 or 1"),
        (np.zeros((3, 2)), np.full((3, 2), np.nan), None, "finite"),
        (np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2)), "bool"),
    ],
)
def test_bad_input_raises_input_error(
    y: np.ndarray, s: np.ndarray, m: np.ndarray | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        hierarchical_metrics(y, s, m)


def test_group_outside_the_columns_is_named() -> None:
    y, s, m = _toy(k=3)
    with pytest.raises(InputError, match="'deep'"):
        hierarchical_metrics(y, s, m, groups={"deep": [5]})
