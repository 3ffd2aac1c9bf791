"""The benchmark's second feature generator: Zipf labels, sub-modes, per-image offsets."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.classifiers.synthetic import make_subclass_features, split_by_image
from quadrat.errors import InputError


def test_labels_are_zipf_like_and_images_share_an_offset() -> None:
    d = make_subclass_features(20_000, n_features=64, n_classes=10, random_state=0)
    counts = np.bincount(d.y, minlength=10)
    expected = 20_000 / np.arange(1, 11) / np.sum(1 / np.arange(1, 11))
    np.testing.assert_allclose(counts, expected, rtol=0.15)
    assert counts[0] > 5 * counts[-1]
    assert d.X.shape == (20_000, 64) and d.X.dtype == np.float16
    assert np.all(np.bincount(d.groups) == 50)
    # Per-image offset: points of one image are closer to each other than to another's
    # (same label), beyond what the labels explain.
    X = d.X.astype(np.float64)
    same = [X[(d.groups == g) & (d.y == 0)].mean(axis=0) for g in range(40)]
    spread_between_images = np.mean(np.var(np.array(same), axis=0))
    assert spread_between_images > 0.05


def test_each_label_has_two_sub_modes() -> None:
    d = make_subclass_features(
        4_000,
        n_features=32,
        n_classes=2,
        mode_spread=2.0,
        separation=0.1,
        image_offset=0.0,
        random_state=1,
    )
    from sklearn.cluster import KMeans

    X = d.X[d.y == 0].astype(np.float64)
    one = KMeans(1, n_init=1, random_state=0).fit(X).inertia_
    two = KMeans(2, n_init=3, random_state=0).fit(X).inertia_
    assert two < 0.6 * one  # two well-separated clusters within one label


def test_split_by_image_has_three_disjoint_parts() -> None:
    d = make_subclass_features(5_000, n_features=8, random_state=2)
    s = split_by_image(d.groups, reference=0.1, validation=0.1, random_state=0)
    parts = [set(d.groups[p]) for p in (s.train, s.reference, s.validation)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert len(parts[1]) == len(parts[2]) == 10 and len(parts[0]) == 80
    assert s.train.size + s.reference.size + s.validation.size == 5_000


def test_bad_generator_arguments() -> None:
    with pytest.raises(InputError):
        make_subclass_features(0)
    with pytest.raises(InputError):
        split_by_image(np.array([0, 0, 1]))
    with pytest.raises(InputError):
        split_by_image(np.arange(10), reference=0.6, validation=0.5)
