"""Fixtures for the io tests: the shared real-data folder and the generated CoralNet source."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.data.coralnet import data as coralnet_data
from tests.data.images import data as images_data


@pytest.fixture(scope="session")
def coralnet_module() -> ModuleType:
    return coralnet_data


@pytest.fixture(scope="session")
def coralnet_fixture(tmp_path_factory: pytest.TempPathFactory, coralnet_module) -> dict:
    """The generated tiny CoralNet source (read-only for tests: copy before modifying)."""
    return coralnet_module.make_coralnet_fixture(tmp_path_factory.mktemp("coralnet"))


@pytest.fixture(scope="session")
def image_fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return images_data.make_image_fixtures(tmp_path_factory.mktemp("images"))
