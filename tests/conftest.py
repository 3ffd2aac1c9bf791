"""Fixtures shared by all tests, and the settings that keep the suite steady under load."""

from __future__ import annotations

import os

# Under pytest-xdist (the README's `-n 2`), one compute thread per worker: two workers each
# running two OpenMP/BLAS threads on two cores oversubscribe them, and OpenMP's spin-waits
# then slow both. Set before numpy or torch is imported; an explicit setting wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from quadrat.demo import DemoSurvey
from tests.data.survey.data import make_survey

# No wall-clock limits in property tests: hypothesis' per-example deadline and its
# "generation too slow" health check both fail on a loaded machine, not on a bug.
settings.register_profile("quadrat", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("quadrat")

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
