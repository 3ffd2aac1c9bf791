"""Open, create and upgrade a project store (the database under :class:`quadrat.Project`).

:class:`Store` is the low-level handle: an engine and transactions. Users and the CLI hold
a :class:`quadrat.Project`, which wraps one. A project is any SQLAlchemy database; a
plain path means a SQLite file (the embedded default: no server). The file records its
schema version so that a later release can upgrade it (:data:`MIGRATIONS`) and an older
release refuses a newer file instead of corrupting it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from quadrat import __version__
from quadrat.errors import ConflictError, NotFoundError, ProjectError
from quadrat.store.schema import SCHEMA_VERSION, Base, Meta

#: ``MIGRATIONS[v]`` upgrades a version-``v`` file to ``v + 1`` inside one transaction.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def database_url(location: str | Path) -> str:
    """Turn a path or URL into a SQLAlchemy URL (paths become SQLite files)."""
    text = str(location)
    if "://" in text:
        try:
            make_url(text)
        except ArgumentError as exc:
            raise ProjectError(f"not a database URL: {text!r} ({exc})") from exc
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers never block the writer, and a killed writer leaves the file consistent.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Store:
    """A handle on one project database; use :meth:`session` for units of work."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def create(cls, location: str | Path) -> Store:
        """Create a new, empty project; refuses to overwrite an existing one."""
        url = database_url(location)
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if path.exists() and path.stat().st_size > 0:
                raise ConflictError(
                    "a file already exists here; open it instead", path=path, param="project"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        project = cls(_make_engine(url), url)
        Base.metadata.create_all(project.engine)
        with project.session() as session:
            session.add_all(
                [
                    Meta(key="schema_version", value=str(SCHEMA_VERSION)),
                    Meta(key="created_by", value=f"quadrat {__version__}"),
                ]
            )
        return project

    @classmethod
    def open(cls, location: str | Path, *, create: bool = False) -> Store:
        """Open an existing project, upgrading an older schema; ``create`` makes a new one."""
        url = database_url(location)
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists() or path.stat().st_size == 0:
                if create:
                    return cls.create(location)
                raise NotFoundError("no project here; create one first", path=path, param="project")
        project = cls(_make_engine(url), url)
        project._check_and_migrate()
        return project

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    @property
    def schema_version(self) -> int:
        with self.session() as session:
            value = session.scalar(select(Meta.value).where(Meta.key == "schema_version"))
        return int(value) if value is not None else 0

    def _check_and_migrate(self) -> None:
        try:
            version = self.schema_version
        except DatabaseError as exc:
            raise ProjectError(f"{self.url}: not a quadrat project ({exc.orig})") from exc
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"{self.url}: project schema v{version} is newer than this quadrat "
                f"(v{SCHEMA_VERSION}); upgrade quadrat to open it"
            )
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise ProjectError(f"{self.url}: no upgrade from schema v{version}")
            with self.engine.begin() as connection:
                step(connection)
                connection.execute(
                    update(Meta).where(Meta.key == "schema_version").values(value=str(version + 1))
                )
            version += 1
        # Tables added in this release without a migration of their own.
        Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
