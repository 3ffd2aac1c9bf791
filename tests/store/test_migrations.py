"""Schema migrations (Alembic) on SQLite and PostgreSQL: new projects, format-1 files
from releases before Alembic, newer schemas, read-only projects, failed upgrades, and
no drift between the revisions and the models."""

from __future__ import annotations

import hashlib
import sqlite3
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, delete, insert, inspect, text, update
from sqlalchemy.pool import NullPool

from quadrat.errors import ProjectError, StateError
from quadrat.store import migrations, queries
from quadrat.store.project import Store, sqlite_path
from quadrat.store.schema import LEGACY_SCHEMA_VERSION, SCHEMA_VERSION, Base, Meta, Source

SERVICE_TABLES = {"users", "source_roles", "api_tokens", "deploy_jobs", "deploy_images"}
assert migrations.ADDED_TABLES["0002"] == SERVICE_TABLES  # what adopt() looks for


def build_format_1(
    url: str, sources: tuple[str, ...] = ("reef",), revision: str = migrations.BASELINE
) -> None:
    """A project as a release before Alembic left it: the baseline's tables (or those of
    ``revision``), meta version 1, no ``alembic_version``, and some rows."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            migrations.upgrade(connection, revision)
            connection.exec_driver_sql("DROP TABLE alembic_version")
            connection.execute(
                insert(Meta),
                [
                    {"key": "schema_version", "value": str(LEGACY_SCHEMA_VERSION)},
                    {"key": "created_by", "value": "quadrat 0.0.9"},
                ],
            )
            for name in sources:
                connection.execute(
                    text("INSERT INTO sources (name, created_at) VALUES (:n, :t)"),
                    {"n": name, "t": "2026-01-01 00:00:00"},
                )
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def dump(path: Path) -> str:
    """A SQLite file's schema and rows as SQL text (the same for a faithful copy)."""
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_listed_revisions_are_the_scripts() -> None:
    """REVISIONS (read without importing Alembic) is what versions/ holds, in order."""
    assert migrations.script_revisions() == list(migrations.REVISIONS)
    assert migrations.BASELINE == "0001" and migrations.REVISIONS[-1] == migrations.HEAD


def test_the_migrations_are_packaged() -> None:
    """setuptools ships what Alembic needs beside the code (pyproject package-data)."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "store/migrations/script.py.mako" in data["quadrat"]
    for name in ("env.py", "script.py.mako", "__init__.py", "versions/__init__.py"):
        assert (migrations.FOLDER / name).is_file()


def test_upgrade_head_matches_the_models(database_url: str) -> None:
    """Migrations and models cannot drift: autogenerate finds nothing to do after
    ``upgrade head`` on an empty database, on both backends."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            migrations.upgrade(connection)
            assert migrations.current_revision(connection) == migrations.HEAD
            assert migrations.differences(connection) == []
    finally:
        engine.dispose()


def test_a_created_project_matches_the_migrations(database_url: str) -> None:
    """``create`` builds from the models and stamps head: the same schema as upgrading."""
    Store.create(database_url).close()
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert migrations.current_revision(connection) == migrations.HEAD
            assert migrations.differences(connection) == []
    finally:
        engine.dispose()


def test_the_drift_check_can_fail(database_url: str) -> None:
    """A table the models have and the migrations lack is a difference."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            migrations.upgrade(connection, migrations.BASELINE)
            found = migrations.differences(connection)
    finally:
        engine.dispose()
    added = {diff[1].name for diff in found if diff[0] == "add_table"}
    assert added == SERVICE_TABLES


def test_the_job_queue_tables_are_not_drift(database_url: str) -> None:
    """huey keeps its queue in the project database on PostgreSQL (quadrat_queue_*):
    not quadrat's tables, and not a difference to drop."""
    Store.create(database_url).close()
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE quadrat_queue_task (id integer)")
            connection.exec_driver_sql("CREATE TABLE stray (id integer)")
            found = migrations.differences(connection)
    finally:
        engine.dispose()
    assert [(diff[0], diff[1].name) for diff in found] == [("remove_table", "stray")]


def test_a_format_1_project_is_adopted_and_upgraded(
    database_url: str, recwarn: pytest.WarningsRecorder
) -> None:
    build_format_1(database_url, ("reef", "lagoon"))
    assert not SERVICE_TABLES & tables(database_url)
    with pytest.warns(UserWarning, match=f"from revision {migrations.BASELINE} to"):
        store = Store.open(database_url)
    try:
        assert store.revision == migrations.HEAD
        assert store.schema_version == SCHEMA_VERSION
        with store.session() as session:
            assert sorted(queries.source_names(session)) == ["lagoon", "reef"]
            assert migrations.differences(session.connection()) == []
    finally:
        store.close()
    assert tables(database_url) >= SERVICE_TABLES
    again = Store.open(database_url)  # current now: no second upgrade, no warning
    again.close()


def test_two_processes_opening_an_old_project_upgrade_it_once(database_url: str) -> None:
    """The upgrade holds the write lock and reads the revision again under it: the second
    opener waits, then finds the project current (threads stand in for processes; each
    has its own connections)."""
    from concurrent.futures import ThreadPoolExecutor

    build_format_1(database_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with ThreadPoolExecutor(2) as pool:
            stores = list(pool.map(lambda _: Store.open(database_url, busy_timeout=60), [0, 1]))
    try:
        assert [store.revision for store in stores] == [migrations.HEAD] * 2
        with stores[0].session() as session:
            assert queries.source_names(session) == ["reef"]
            assert migrations.differences(session.connection()) == []
    finally:
        for store in stores:
            store.close()


def test_a_format_1_file_with_the_service_tables_is_adopted(database_url: str) -> None:
    """Development builds before Alembic made the service tables in format-1 files; such a
    file is stamped with the revision that has them instead of creating them again."""
    build_format_1(database_url, revision="0002")
    assert migrations.adopt(tables(database_url)) == "0002"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        store = Store.open(database_url)
    try:
        assert store.revision == migrations.HEAD
        with store.session() as session:
            assert migrations.differences(session.connection()) == []
    finally:
        store.close()
    assert migrations.adopt({"meta", "users"}) == migrations.BASELINE


def test_a_sqlite_upgrade_keeps_a_backup_first(tmp_path: Path) -> None:
    db = tmp_path / "survey.db"
    build_format_1(f"sqlite:///{db}")
    before = dump(db)
    with pytest.warns(UserWarning, match=r"survey\.db\.bak-0001"):
        Store.open(db).close()
    backup = tmp_path / f"survey.db.bak-{migrations.BASELINE}"
    assert dump(backup) == before  # the old file's schema and rows, still format 1
    assert "alembic_version" not in before and "CREATE TABLE users" not in before
    assert "CREATE TABLE users" in dump(db)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "survey.db",
        "survey.db.bak-0001",
    ]


def test_a_newer_revision_is_refused_unchanged(database_url: str) -> None:
    Store.create(database_url).close()
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    path = sqlite_path(database_url)
    before = digest(path) if path else None
    with pytest.raises(ProjectError, match=r"newer than this quadrat.*upgrade quadrat"):
        Store.open(database_url)
    if path is not None:
        assert digest(path) == before


def test_a_read_only_project_that_needs_an_upgrade_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    build_format_1(f"sqlite:///{db}")
    before = digest(db)
    with pytest.raises(StateError, match=r"needs an upgrade.*read-only"):
        Store.open(db, read_only=True)
    assert digest(db) == before
    assert not list(tmp_path.glob("*.bak-*"))


def test_a_failed_upgrade_changes_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp, the new tables and meta are one transaction: a failure in the last
    migration leaves the format-1 project as it was, and the next open upgrades it."""
    build_format_1(database_url)
    real = migrations.upgrade

    def upgrade_then_fail(connection: Connection, revision: str = migrations.HEAD) -> None:
        real(connection, revision)
        raise RuntimeError("power cut")

    monkeypatch.setattr(migrations, "upgrade", upgrade_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        Store.open(database_url)
    found = tables(database_url)
    assert "alembic_version" not in found and not SERVICE_TABLES & found
    monkeypatch.setattr(migrations, "upgrade", real)
    with pytest.warns(UserWarning, match="upgraded"):
        store = Store.open(database_url)
    assert store.revision == migrations.HEAD
    store.close()


def test_a_project_without_its_revision_is_named_damaged(database_url: str) -> None:
    Store.create(database_url).close()
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE alembic_version")
    finally:
        engine.dispose()
    with pytest.raises(ProjectError, match="damaged"):
        Store.open(database_url)


def test_an_older_format_than_1_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    build_format_1(f"sqlite:///{db}")
    engine = create_engine(f"sqlite:///{db}", poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(update(Meta).where(Meta.key == "schema_version").values(value="0"))
    engine.dispose()
    with pytest.raises(ProjectError, match="no upgrade from schema v0"):
        Store.open(db)


def test_a_foreign_postgresql_database_is_refused_unchanged(postgres_url: str) -> None:
    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE notes (id integer primary key)")
    finally:
        engine.dispose()
    with pytest.raises(ProjectError, match="not a quadrat project"):
        Store.open(postgres_url)
    assert tables(postgres_url) == {"notes"}


def test_create_refuses_an_existing_postgresql_project(postgres_url: str) -> None:
    from quadrat.errors import ConflictError

    Store.create(postgres_url).close()
    with pytest.raises(ConflictError, match="already exists"):
        Store.create(postgres_url)


def test_create_refuses_another_applications_migrated_database(postgres_url: str) -> None:
    from quadrat.errors import ConflictError

    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE alembic_version (version_num text)")
            connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('abc123')")
    finally:
        engine.dispose()
    with pytest.raises(ConflictError, match="another application"):
        Store.create(postgres_url)
    assert tables(postgres_url) == {"alembic_version"}


def test_a_half_built_project_has_no_tables(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, create is one transaction: a failure leaves an empty database."""
    from quadrat.store import project as store_project

    def fail(_connection: Connection, _revision: str = migrations.HEAD) -> None:
        raise OSError("connection lost")

    monkeypatch.setattr(store_project.migrations, "stamp", fail)
    with pytest.raises(OSError):
        Store.create(postgres_url)
    assert tables(postgres_url) == set()


def test_metadata_rows_survive(database_url: str) -> None:
    """Rows of every baseline table are kept by the upgrade (here: sources, meta)."""
    build_format_1(database_url, ("reef",))
    with pytest.warns(UserWarning):
        store = Store.open(database_url)
    with store.session() as session:
        created_by = session.execute(Meta.__table__.select().where(Meta.key == "created_by")).one()
        assert created_by.value == "quadrat 0.0.9"
        session.execute(delete(Source))
    store.close()
    assert set(Base.metadata.tables) <= tables(database_url)
