"""Fixtures shared by all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quadrat.demo import DemoSurvey
from tests.data.survey.data import make_survey

os.environ.setdefault("QUADRAT_NO_PROGRESS", "1")


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
