"""Small synthetic feature sets shared by the classifier tests."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.classifiers.synthetic import SyntheticFeatures, make_point_features


@pytest.fixture(scope="session")
def easy() -> SyntheticFeatures:
    """600 points, 32 dims, 4 well-separated labels, images of 20 points (float16)."""
    return make_point_features(
        600,
        n_features=32,
        n_classes=4,
        points_per_image=20,
        separation=1.0,
        image_effect=0.1,
        random_state=1,
    )


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """300 float32 points, 8 dims, 3 labels 'a'/'b'/'c' (string labels on purpose)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), 100)
    centres = {"a": 0.0, "b": 2.0, "c": 4.0}
    X = rng.normal(size=(300, 8)).astype(np.float32) + np.array([centres[v] for v in y])[:, None]
    return X.astype(np.float32), y
