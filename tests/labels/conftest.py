"""The tiny CATAMI fixture (tests/data/catami/data.py), written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.catami.data import make_catami_fixture


@pytest.fixture(scope="session")
def catami_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_catami_fixture(tmp_path_factory.mktemp("catami"))
