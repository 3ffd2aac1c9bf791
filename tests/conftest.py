"""Fixtures shared by all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quadrat.demo import DemoSurvey
from tests.data.survey.data import make_survey

os.environ.setdefault("QUADRAT_NO_PROGRESS", "1")
# CNN tests run eager PyTorch (OpenVINO's conversion would add seconds to each extractor);
# tests/extractors/test_runtimes.py and the parity test cover what ``auto`` picks.
os.environ.setdefault("QUADRAT_RUNTIME", "eager")

TESTS = Path(__file__).resolve().parent


def shared_data_dir() -> Path | None:
    """``$QUADRAT_SHARED_DATA``, else ``../shared/data`` beside the checkout, if it exists."""
    env = os.environ.get("QUADRAT_SHARED_DATA")
    candidate = Path(env) if env else TESTS.parent.parent / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); tests using it skip cleanly without it."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data folder absent (set QUADRAT_SHARED_DATA or use ../shared/data)")
    return path


@pytest.fixture(scope="session")
def survey_template(tmp_path_factory: pytest.TempPathFactory) -> DemoSurvey:
    """A tiny synthetic survey, made once per session; copy it before changing files."""
    return make_survey(tmp_path_factory.mktemp("survey"))


@pytest.fixture
def survey(survey_template: DemoSurvey, tmp_path: Path) -> DemoSurvey:
    """A private copy of the synthetic survey that a test may damage."""
    import shutil

    root = tmp_path / "survey"
    shutil.copytree(survey_template.root, root)
    return DemoSurvey(
        root=root,
        labelset_csv=root / survey_template.labelset_csv.name,
        annotations_csv=root / survey_template.annotations_csv.name,
        annotated_dir=root / survey_template.annotated_dir.name,
        new_dir=root / survey_template.new_dir.name,
        truth=survey_template.truth,
    )
