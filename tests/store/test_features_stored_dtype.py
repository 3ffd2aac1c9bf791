"""load_features(dtype="stored"): float16 stays float16, float32 blocks are never narrowed."""

from __future__ import annotations

import numpy as np
import pytest
from tests.store.conftest import MakeProject

from quadrat.store.features import load_features, write_block
from quadrat.store.project import Store


@pytest.fixture
def project(make_project: MakeProject) -> Store:
    return make_project(2, 3)


def test_float16_blocks_load_as_float16_with_the_same_values(project: Store) -> None:
    a = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    with project.session() as session:
        write_block(session, 1, "tex", np.arange(4), a, dtype="float16")
        write_block(session, 2, "tex", np.arange(4, 6), a[:2], dtype="float16")
    with project.session() as session:
        stored = load_features(session, "tex", dtype="stored")
        wide = load_features(session, "tex")
    assert stored.features.dtype == np.float16
    assert wide.features.dtype == np.float32
    np.testing.assert_array_equal(stored.features.astype(np.float32), wide.features)
    np.testing.assert_array_equal(stored.point_ids, wide.point_ids)


def test_any_float32_block_keeps_float32(project: Store) -> None:
    big = np.full((2, 3), 1e6, dtype=np.float32)  # overflows float16
    with project.session() as session:
        write_block(session, 1, "tex", np.arange(2), big / 1e6, dtype="float16")
        write_block(session, 2, "tex", np.arange(2, 4), big, dtype="float32")
    with project.session() as session:
        stored = load_features(session, "tex", dtype="stored")
    assert stored.features.dtype == np.float32
    np.testing.assert_array_equal(stored.features[2:], big)


def test_no_blocks_gives_an_empty_array(project: Store) -> None:
    with project.session() as session:
        empty = load_features(session, "tex", dtype="stored")
    assert len(empty) == 0
