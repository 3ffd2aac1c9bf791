"""The background block writer: grouped transactions, whole images only, errors surface."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from tests.store.conftest import MakeProject

from quadrat.errors import ProjectError
from quadrat.store.block_writer import BlockWriter
from quadrat.store.features import load_features, write_blocks
from quadrat.store.project import Store
from quadrat.store.schema import FeatureBlock

N_IMAGES = 6


@pytest.fixture
def project(make_project: MakeProject) -> Store:
    return make_project(N_IMAGES, 4)


def _block(image_id: int, n: int = 3) -> tuple[int, np.ndarray, np.ndarray]:
    ids = np.arange(n, dtype=np.int64) + 10 * image_id
    return image_id, ids, np.full((n, 4), float(image_id), dtype=np.float32)


def _stored(project: Store) -> dict[int, int]:
    with project.session() as session:
        return {b.image_id: b.n_points for b in session.query(FeatureBlock).all()}


def test_everything_put_is_written_once_in_groups(project: Store) -> None:
    commits: list[list[int]] = []
    gate = threading.Event()

    def written(ids: list[int]) -> None:
        commits.append(ids)
        gate.wait(5)  # hold the first commit so the rest pile up into one group

    with BlockWriter(project, "tex", on_written=written) as writer:
        for image_id in range(1, N_IMAGES + 1):
            writer.put(*_block(image_id))
        gate.set()
    assert sorted(i for ids in commits for i in ids) == list(range(1, N_IMAGES + 1))
    assert len(commits) < N_IMAGES  # grouped, not one transaction per image
    assert _stored(project) == dict.fromkeys(range(1, N_IMAGES + 1), 3)
    with project.session() as session:
        matrix = load_features(session, "tex")
    assert sorted(matrix.point_ids.tolist()) == sorted(
        int(p) for i in range(1, N_IMAGES + 1) for p in _block(i)[1]
    )


def test_images_before_an_error_in_the_body_are_kept(project: Store) -> None:
    with pytest.raises(RuntimeError, match="decoder died"), BlockWriter(project, "tex") as writer:
        writer.put(*_block(1))
        writer.put(*_block(2))
        raise RuntimeError("decoder died")
    assert _stored(project) == {1: 3, 2: 3}


def test_a_bad_block_fails_its_whole_group_and_surfaces(project: Store) -> None:
    image_id, ids, features = _block(2)
    features[0, 0] = np.nan
    with (
        pytest.raises(ProjectError, match=r"image id 2.*NaN"),
        BlockWriter(project, "tex", max_group=10) as writer,
    ):
        writer.put(image_id, ids, features)
    assert _stored(project) == {}


def test_write_blocks_checks_all_before_writing_and_replaces(project: Store) -> None:
    with project.session() as session:
        write_blocks(session, "tex", [_block(1), _block(2)])
    bad = _block(3)
    bad[2][1, 1] = np.inf
    with pytest.raises(ProjectError, match="image id 3"), project.session() as session:
        write_blocks(session, "tex", [_block(4), bad])
    assert _stored(project) == {1: 3, 2: 3}
    with project.session() as session:
        write_blocks(session, "tex", [_block(1, n=5)])  # replaced, not duplicated
    assert _stored(project) == {1: 5, 2: 3}
