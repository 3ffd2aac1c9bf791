"""Fixtures for the io tests: the shared real-data folder and the generated CoralNet source."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

TESTS = Path(__file__).resolve().parents[1]


def load_fixture_module(name: str) -> ModuleType:
    """Import ``tests/data/<name>/data.py`` under a unique module name."""
    path = TESTS / "data" / name / "data.py"
    spec = importlib.util.spec_from_file_location(f"quadrat_fixture_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def coralnet_module() -> ModuleType:
    return load_fixture_module("coralnet")


@pytest.fixture(scope="session")
def coralnet_fixture(tmp_path_factory: pytest.TempPathFactory, coralnet_module) -> dict:
    """The generated tiny CoralNet source (read-only for tests: copy before modifying)."""
    return coralnet_module.make_coralnet_fixture(tmp_path_factory.mktemp("coralnet"))


@pytest.fixture(scope="session")
def image_fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return load_fixture_module("images").make_image_fixtures(tmp_path_factory.mktemp("images"))
