"""A project with one source, N placeholder images and a registered extractor ``tex``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from quadrat.store.features import record_extractor
from quadrat.store.project import Store
from quadrat.store.schema import Image, Source

MakeProject = Callable[[int, int], Store]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """``make_project(n_images, feature_dim)``: image ids 1..n, extractor ``tex``."""

    def make(n_images: int, feature_dim: int) -> Store:
        project = Store.create(tmp_path / "p.db")
        with project.session() as session:
            source = Source(name="reef")
            session.add(source)
            session.flush()
            for i in range(n_images):
                session.add(
                    Image(
                        source_id=source.id,
                        name=f"{i}.jpg",
                        path=f"/x/{i}.jpg",
                        sha256="0" * 64,
                        width=10,
                        height=10,
                    )
                )
            record_extractor(session, "tex", "texture", feature_dim, {})
        return project

    return make
