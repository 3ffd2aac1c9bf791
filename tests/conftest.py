"""Fixtures shared by all tests, and the settings that keep the suite steady under load."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Under pytest-xdist (the README's `-n 2`), one compute thread per worker: two workers each
# running two OpenMP/BLAS threads on two cores oversubscribe them, and OpenMP's spin-waits
# then slow both. Set before numpy or torch is imported; an explicit setting wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import importlib.util
import subprocess
from collections.abc import Iterator
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
# Networks converted for OpenVINO are cached per weights (extractors/model_cache.py): in a
# folder of this run, not the user's ~/.cache, so runs are independent.
if "QUADRAT_MODEL_CACHE" not in os.environ:
    _model_cache = tempfile.mkdtemp(prefix="quadrat-test-model-cache-")
    os.environ["QUADRAT_MODEL_CACHE"] = _model_cache
    atexit.register(shutil.rmtree, _model_cache, ignore_errors=True)

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


# ------------------------------------------------------------------------ PostgreSQL
# QUADRAT_TEST_POSTGRES_URL: a server (superuser or CREATEDB role) the tests may create
# databases on; .ci/run starts a throwaway cluster and sets it. Without it, a cluster is
# started here (one per pytest-xdist worker) when initdb/pg_ctl exist; else the
# PostgreSQL tests skip, or fail when QUADRAT_REQUIRE_POSTGRES=1 (CI).
POSTGRES_URL_ENV = "QUADRAT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "QUADRAT_REQUIRE_POSTGRES"


def _no_postgres(why: str) -> None:
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_POSTGRES_ENV}=1) but {why}")
    pytest.skip(f"no PostgreSQL: {why}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's ``postgres`` database, as a superuser."""
    if importlib.util.find_spec("psycopg") is None:
        _no_postgres("psycopg is not installed (pip install 'quadrat[postgres]')")
    from tests.postgres import Cluster, find_bin

    given = os.environ.get(POSTGRES_URL_ENV)
    if given:
        yield given
        return
    bindir = find_bin()
    if bindir is None:
        _no_postgres(f"initdb and pg_ctl are not installed, and {POSTGRES_URL_ENV} is not set")
    assert bindir is not None
    cluster = Cluster(bindir)
    try:
        url = cluster.start()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        cluster.stop()
        _no_postgres(f"a throwaway cluster did not start: {exc}")
        raise
    try:
        yield url
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for this test (dropped afterwards), as a SQLAlchemy URL."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"quadrat_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:  # WITH (FORCE): connections a test left open
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new project goes, once on each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'project.db'}"
    return str(request.getfixturevalue("postgres_url"))
