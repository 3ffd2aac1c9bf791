"""When and how a project's schema is upgraded (the Alembic revisions of :mod:`.migrations`).

:func:`read_state` reads what a database says about its schema (format version in
``meta``, Alembic revision) without changing it; :func:`upgrade_from` decides: current,
upgrade from a known revision, adopt a format-1 file (releases before Alembic) as the
baseline, or refuse (newer, damaged). :func:`upgrade` does it:

- one transaction for the stamp, every migration and the new format number: SQLite runs
  DDL inside it on a connection of its own (Python's sqlite3 would commit before each
  DDL statement), PostgreSQL always does;
- under the write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), reading
  the state again: two processes opening an old project at once upgrade it once;
- a SQLite file is first copied to ``<name>.bak-<revision>`` (SQLite's online backup);
  a PostgreSQL database is the administrator's to back up (``pg_dump``; docs/store.md);
- the upgrade is announced as a ``UserWarning`` (the CLI prints it as a warning line).
"""

from __future__ import annotations

import sqlite3
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, update
from sqlalchemy.pool import NullPool

from quadrat.errors import ProjectError
from quadrat.io.atomic import atomic_path
from quadrat.store import migrations
from quadrat.store.schema import LEGACY_SCHEMA_VERSION, SCHEMA_VERSION, Meta
from quadrat.store.writes import database_errors

#: Key of the PostgreSQL advisory lock held while a project is upgraded ("quadra").
_UPGRADE_LOCK = 0x717561647261


class SchemaState(NamedTuple):
    """What a database says about its schema, read before anything may change it."""

    #: ``meta.schema_version``: 1, the hand-versioned format; 2, versioned by Alembic.
    version: int
    #: The Alembic revision (``alembic_version``); None in a format-1 file.
    revision: str | None


def format_version(value: Any, where: str | Path) -> int:
    """``meta.schema_version`` as a number; anything else is not a quadrat project."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProjectError(
            f"not a quadrat project (schema version {value!r})", path=where, param="project"
        ) from None


def read_state(connection: Connection, where: str | Path) -> SchemaState:
    """The schema state of any database, through a SQLAlchemy connection (reads only)."""
    tables = set(inspect(connection).get_table_names())
    if "meta" not in tables:
        raise ProjectError(
            "not a quadrat project (a database without quadrat's tables); nothing was changed",
            path=where,
            param="project",
        )
    value = connection.scalar(select(Meta.value).where(Meta.key == "schema_version"))
    if value is None:
        raise ProjectError(
            "an unfinished project (its creation stopped half-way): delete it and create "
            "the project again",
            path=where,
            param="project",
        )
    revision = None
    if "alembic_version" in tables:
        found = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        revision = None if found is None else str(found)
    return SchemaState(format_version(value, where), revision)


def upgrade_from(state: SchemaState, where: str | Path) -> str | None:
    """The revision a database must be upgraded from (None: it is current).

    A format-1 file is upgraded from the baseline; a newer format, or a revision this
    quadrat does not know (a newer release wrote it), is a :class:`ProjectError`.
    """
    if state.revision is None and state.version == LEGACY_SCHEMA_VERSION:
        return migrations.BASELINE
    if state.version > SCHEMA_VERSION or (
        state.revision is not None and state.revision not in migrations.REVISIONS
    ):
        raise ProjectError(
            f"the project's schema (revision {state.revision or '?'}, format "
            f"v{state.version}) is newer than this quadrat (revision {migrations.HEAD}); "
            "upgrade quadrat to open it",
            path=where,
        )
    if state.revision is None:
        if state.version < LEGACY_SCHEMA_VERSION:
            raise ProjectError(f"no upgrade from schema v{state.version}", path=where)
        raise ProjectError(
            "a damaged project: its schema revision (table alembic_version) is missing",
            path=where,
            param="project",
        )
    return None if state.revision == migrations.HEAD else state.revision


def upgrade(engine: Engine, url: str, where: str | Path, busy_timeout: float) -> None:
    """Upgrade the project at ``url`` to :data:`~quadrat.store.migrations.HEAD`.

    ``engine`` is the project's own (used for PostgreSQL); a SQLite file gets an engine
    of its own for the upgrade (:func:`_sqlite_upgrade_engine`).
    """
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    own = _sqlite_upgrade_engine(url, busy_timeout) if path is not None else None
    try:
        with (
            database_errors(where, busy_timeout=busy_timeout),
            (own or engine).begin() as connection,
        ):
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
            state = read_state(connection, where)  # again, under the lock
            start = upgrade_from(state, where)
            if start is None:
                return  # another process upgraded it meanwhile
            if path is not None:
                note = f"a copy of the file as it was is at {backup_sqlite(path, start)}"
            else:
                note = "in one transaction (had it failed, nothing would have changed)"
            if state.revision is None:  # format 1: adopt it (as the baseline, mostly)
                migrations.stamp(
                    connection, migrations.adopt(set(inspect(connection).get_table_names()))
                )
            migrations.upgrade(connection)
            connection.execute(
                update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION))
            )
            if path is not None:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ProjectError(
                        f"the upgrade would break {len(broken)} references between tables; "
                        "nothing was changed",
                        path=where,
                    )
    finally:
        if own is not None:
            own.dispose()
    warnings.warn(
        f"{where}: upgraded the project's schema from revision {start} to "
        f"{migrations.HEAD}; {note}",
        UserWarning,
        stacklevel=2,
    )


def backup_sqlite(path: Path, revision: str) -> Path:
    """Copy the project to ``<name>.bak-<revision>`` (SQLite's online backup: consistent
    even while the file is in use; written beside and renamed, so never half a copy)."""
    target = path.with_name(f"{path.name}.bak-{revision}")
    with (
        atomic_path(target) as tmp,
        closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as source,
        closing(sqlite3.connect(tmp)) as copy,
    ):
        source.backup(copy)
    return target


def _sqlite_upgrade_engine(url: str, busy_timeout: float) -> Engine:
    """A SQLite engine for upgrades: DDL inside the transaction, which takes the write lock.

    Python's sqlite3 commits before DDL on its own; with its transaction handling off and
    an explicit ``BEGIN IMMEDIATE`` the whole upgrade is one transaction. Foreign keys are
    off while tables may be rebuilt (SQLite's procedure for schema changes, and Alembic's
    batch mode) and checked with ``PRAGMA foreign_key_check`` before the commit.
    """
    engine = create_engine(url, connect_args={"timeout": busy_timeout}, poolclass=NullPool)

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", begin)
    return engine
