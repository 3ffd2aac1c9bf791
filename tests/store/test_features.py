"""The feature store: compact blocks, replace, load in one array."""

from __future__ import annotations

import numpy as np
import pytest
from tests.store.conftest import MakeProject

from quadrat.errors import ProjectError
from quadrat.store.features import (
    images_with_features,
    load_features,
    record_extractor,
    write_block,
)
from quadrat.store.project import Store
from quadrat.store.schema import FeatureBlock


@pytest.fixture
def project(make_project: MakeProject) -> Store:
    return make_project(3, 4)


def test_round_trip_float16_and_float32(project: Store) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    with project.session() as session:
        write_block(session, 1, "tex", np.arange(5), a, dtype="float16")
        write_block(session, 2, "tex", np.arange(10, 13), b, dtype="float32")
    with project.session() as session:
        m = load_features(session, "tex", source_id=1)
    assert m.point_ids.tolist() == [0, 1, 2, 3, 4, 10, 11, 12]
    np.testing.assert_allclose(m.features[:5], a, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(m.features[5:], b)
    with project.session() as session:
        block = session.get(FeatureBlock, 1)
        assert block is not None and len(block.data) == 5 * 4 * 2  # 2 bytes a value


def test_subset_and_replace(project: Store) -> None:
    with project.session() as session:
        write_block(session, 1, "tex", np.arange(2), np.zeros((2, 4), np.float32))
        write_block(session, 2, "tex", np.arange(2, 4), np.ones((2, 4), np.float32))
        write_block(session, 1, "tex", np.arange(3), np.full((3, 4), 2, np.float32))
    with project.session() as session:
        assert images_with_features(session, "tex", [1, 2, 3]) == {1, 2}
        m = load_features(session, "tex", image_ids=[1])
    assert m.point_ids.tolist() == [0, 1, 2]
    assert (m.features == 2).all()


def test_empty(project: Store) -> None:
    with project.session() as session:
        m = load_features(session, "tex", source_id=1)
    assert len(m) == 0


def test_rejects_nan_and_overflow(project: Store) -> None:
    with project.session() as session:
        with pytest.raises(ProjectError, match="NaN"):
            write_block(session, 1, "tex", np.arange(1), np.full((1, 4), np.nan, np.float32))
        with pytest.raises(ProjectError, match="float16"):
            write_block(session, 1, "tex", np.arange(1), np.full((1, 4), 1e6, np.float32))


def test_dimension_change_is_refused(project: Store) -> None:
    with project.session() as session, pytest.raises(ProjectError, match="dims"):
        record_extractor(session, "tex", "texture", 8, {})
