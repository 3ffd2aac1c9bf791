"""The tiny CATAMI fixture (tests/data/catami/data.py), written once per session, and the
tree read from it, shared by the tests of the tree, the translation and the hierarchy."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from quadrat.labels.catami import CatamiTree
from quadrat.labels.catami_io import load_caab_csv
from tests.data.catami.data import make_catami_fixture


@pytest.fixture(scope="session")
def catami_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_catami_fixture(tmp_path_factory.mktemp("catami"))


@pytest.fixture(scope="module")
def tree(catami_files: dict[str, Path]) -> CatamiTree:
    """The CAAB-CSV form of the fixture (its repair warning is tested in test_catami.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_caab_csv(catami_files["caab_csv"])
