"""Open, create and upgrade a project store (the database under :class:`quadrat.Project`).

:class:`Store` is the low-level handle: an engine and transactions. Users and the CLI hold
a :class:`quadrat.Project`, which wraps one. A project is any SQLAlchemy database; a
plain path means a SQLite file (the embedded default: no server), and
``postgresql+psycopg://...`` a PostgreSQL database shared by a server and its workers.

Schema versions are Alembic revisions (:mod:`quadrat.store.migrations`), recorded in the
``alembic_version`` table. ``create`` builds the tables of :mod:`quadrat.store.schema` and
stamps the newest revision; ``open`` upgrades an older database to it in one transaction
(after a backup copy of a SQLite file, ``<name>.bak-<revision>``), refuses one written by
a newer quadrat, and adopts a file of the hand-versioned format 1 (``meta.schema_version``
1, no ``alembic_version``) as the baseline revision before upgrading it.

Faults, and what users see instead of a traceback (the mapping is
:func:`quadrat.store.writes.database_errors`):

- Two writers: SQLite lets one write at a time; the other waits up to the busy timeout
  (:data:`DEFAULT_BUSY_TIMEOUT`, or ``QUADRAT_BUSY_TIMEOUT`` seconds, or ``busy_timeout=``)
  and then gets a :class:`~quadrat.errors.ConflictError`.
- A foreign file: a SQLite file is read, read-only, before anything else; one without
  quadrat's ``meta`` table is refused unchanged (it is not switched to WAL mode).
- A read-only file, folder or mount: the project opens read-only (``mode=ro``, or
  ``immutable=1`` where SQLite cannot even share memory there), so exports and reports
  work; a write is a :class:`~quadrat.errors.StateError` that says why.
- ``create`` builds the new file beside its target and links it into place when
  complete: a failure half-way leaves no stub.
- An upgrade that fails half-way rolls back (SQLite and PostgreSQL both run DDL inside the
  transaction), and two processes opening an old project at once upgrade it once: the
  upgrade holds the write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) and
  looks at the revision again under it.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from quadrat import __version__
from quadrat.errors import ConflictError, InputError, NotFoundError, ProjectError, StateError
from quadrat.io.atomic import lock_writer, remove_unlocked
from quadrat.store import migrations, upgrades
from quadrat.store.schema import SCHEMA_VERSION, Base, Meta
from quadrat.store.upgrades import SchemaState, format_version, read_state, upgrade_from
from quadrat.store.writes import database_errors

#: Seconds a writer waits for another process's write to finish before a ConflictError.
DEFAULT_BUSY_TIMEOUT = 30.0
#: Environment variable that overrides :data:`DEFAULT_BUSY_TIMEOUT` (seconds).
BUSY_TIMEOUT_ENV = "QUADRAT_BUSY_TIMEOUT"

_SQLITE_HEADER = b"SQLite format 3\x00"


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


def busy_timeout_seconds(value: float | None = None) -> float:
    """The busy timeout: ``value``, else ``QUADRAT_BUSY_TIMEOUT``, else the default."""
    if value is None:
        text = os.environ.get(BUSY_TIMEOUT_ENV)
        if not text:
            return DEFAULT_BUSY_TIMEOUT
        try:
            value = float(text)
        except ValueError:
            raise InputError(
                f"{BUSY_TIMEOUT_ENV} must be a number of seconds, not {text!r}", value=text
            ) from None
    if not value >= 0:
        raise InputError(
            f"the busy timeout must be 0 or more seconds, not {value}",
            value=value,
            param="busy_timeout",
        )
    return float(value)


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///`` URL; None for other databases and memory."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def _writable(path: Path) -> bool:
    """Whether SQLite may write the file and create its ``-wal``/``-shm`` beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _read_only_uri(path: Path, *, immutable: bool) -> str:
    flag = "immutable=1" if immutable else "mode=ro"
    return f"file:{quote(str(path))}?{flag}"


def inspect_sqlite(path: Path) -> tuple[SchemaState, str]:
    """Read a SQLite file's quadrat schema state without changing the file.

    Returns the state (format version, Alembic revision) and the read-only URI that could
    read it (``mode=ro``, else ``immutable=1``). A file that is not SQLite, or SQLite
    without quadrat's ``meta`` table, is a :class:`ProjectError`; the file is left exactly
    as it was.
    """
    if path.is_dir():
        raise ProjectError("a folder, not a project file", path=path, param="project")
    # The header is checked by SQLite, never read with open(): closing any descriptor of
    # the file drops every POSIX lock this process holds on it (its open connections'
    # too), and another process closing its last connection would then delete the -wal
    # under them, losing their writes (a server opens its project more than once).
    failure: sqlite3.Error | None = None
    for immutable in (False, True):
        uri = _read_only_uri(path, immutable=immutable)
        try:
            with closing(sqlite3.connect(uri, uri=True)) as connection:
                tables = {
                    row[0]
                    for row in connection.execute(
                        "SELECT name FROM sqlite_master WHERE type='table'"
                    )
                }
                if "meta" not in tables:
                    raise ProjectError(
                        "not a quadrat project (a SQLite database without quadrat's tables); "
                        "the file was not changed",
                        path=path,
                        param="project",
                    )
                row = connection.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
                revision = None
                if "alembic_version" in tables:
                    found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                    revision = None if found is None else str(found[0])
        except sqlite3.Error as exc:
            failure = exc
            continue
        if row is None:
            raise ProjectError(
                "an unfinished project (its creation stopped half-way): delete the file "
                "and create the project again",
                path=path,
                param="project",
            )
        return SchemaState(format_version(row[0], path), revision), uri
    text = str(failure).lower()
    if "not a database" in text:
        raise ProjectError(
            "not a quadrat project (not a SQLite database); the file was not changed",
            path=path,
            param="project",
        )
    if "unable to open" in text:
        raise ProjectError(f"cannot read the project: {failure}", path=path, param="project")
    if "locked" in text or "busy" in text:
        raise ConflictError(
            "the project is busy: another process holds it locked", path=path, param="project"
        )
    raise ProjectError(
        f"not a quadrat project, or a damaged one ({failure}); the file was not changed",
        path=path,
        param="project",
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers never block the writer, and a killed writer leaves the file consistent.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Store:
    """A handle on one project database; use :meth:`session` for units of work."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        *,
        read_only: bool = False,
        busy_timeout: float | None = None,
    ) -> None:
        self.engine = engine
        self.url = url
        #: True when the project was opened read-only (a write is a StateError).
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        path = sqlite_path(url)
        self._where: str | Path = (
            path if path is not None else make_url(url).render_as_string(hide_password=True)
        )

    @classmethod
    def create(cls, location: str | Path, *, busy_timeout: float | None = None) -> Store:
        """Create a new, empty project; refuses to overwrite an existing one.

        All or nothing: a SQLite file is built beside its target and linked into place
        when complete; another database gets its tables and metadata in one transaction.
        """
        url = database_url(location)
        path = sqlite_path(url)
        if path is None:
            engine = _make_engine(url, busy_timeout_seconds(busy_timeout))
            project = cls(engine, url, busy_timeout=busy_timeout)
            try:
                with database_errors(project._where), engine.begin() as connection:
                    found = set(inspect(connection).get_table_names())
                    if Meta.__tablename__ in found:
                        raise ConflictError(
                            "a project already exists in this database; open it instead",
                            path=project._where,
                            param="project",
                        )
                    if "alembic_version" in found:  # another application's migrations
                        raise ConflictError(
                            "this database holds another application's tables (it has an "
                            "alembic_version table); give quadrat a database of its own",
                            path=project._where,
                            param="project",
                        )
                    _build(connection)
            except BaseException:
                engine.dispose()
                raise
            return project
        if path.exists() and (path.is_dir() or path.stat().st_size > 0):
            raise ConflictError(
                "a file already exists here; open it instead", path=path, param="project"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A killed init's file (unlocked: its process is gone) goes first.
            remove_unlocked(list(path.parent.glob(f".{glob.escape(path.name)}.*.init")))
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".init", dir=path.parent)
        except OSError as exc:
            raise StateError(
                f"cannot create the project here: {exc.strerror}", path=path, param="project"
            ) from None
        tmp = Path(name)
        try:
            lock_writer(fd)  # held while the file is built
            _build_empty(tmp)
            _link_into_place(tmp, path)
        finally:
            os.close(fd)
            tmp.unlink(missing_ok=True)
        return cls.open(path, busy_timeout=busy_timeout)

    @classmethod
    def open(
        cls,
        location: str | Path,
        *,
        create: bool = False,
        read_only: bool | None = None,
        busy_timeout: float | None = None,
    ) -> Store:
        """Open an existing project, upgrading an older schema; ``create`` makes a new one.

        ``read_only``: None opens read-only when the file or its folder is not writable;
        True always. ``busy_timeout``: seconds to wait for another writer (see
        :func:`busy_timeout_seconds`).
        """
        url = database_url(location)
        timeout = busy_timeout_seconds(busy_timeout)
        path = sqlite_path(url)
        if path is None:
            project = cls(_make_engine(url, timeout), url, busy_timeout=timeout)
            try:
                project._check_and_upgrade(None)
            except BaseException:
                project.close()
                raise
            return project
        if not path.exists() or (path.is_file() and path.stat().st_size == 0):
            if create:
                return cls.create(location, busy_timeout=busy_timeout)
            raise NotFoundError("no project here; create one first", path=path, param="project")
        state, uri = inspect_sqlite(path)  # before anything may write to the file
        if read_only is None:
            read_only = not _writable(path)
        if read_only:
            engine = _make_engine(url, timeout, read_only_uri=uri)
        else:
            engine = _make_engine(url, timeout)
        project = cls(engine, url, read_only=read_only, busy_timeout=timeout)
        try:
            project._check_and_upgrade(state)
            if not read_only:  # WAL mode now, while nobody else may hold the file
                with database_errors(path, busy_timeout=timeout), engine.connect():
                    pass
        except BaseException:
            project.close()
            raise
        return project

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error.

        Database faults leave as quadrat errors (busy, read-only, disk full).
        """
        with (
            database_errors(self._where, busy_timeout=self.busy_timeout),
            self._sessions() as session,
            session.begin(),
        ):
            yield session

    @property
    def schema_version(self) -> int:
        """The format in ``meta.schema_version`` (:data:`~quadrat.store.schema.SCHEMA_VERSION`)."""
        with self.session() as session:
            value = session.scalar(select(Meta.value).where(Meta.key == "schema_version"))
        return int(value) if value is not None else 0

    @property
    def revision(self) -> str | None:
        """The Alembic revision of the schema (:data:`quadrat.store.migrations.HEAD`)."""
        with self.session() as session:
            return read_state(session.connection(), self._where).revision

    def _check_and_upgrade(self, state: SchemaState | None) -> None:
        """Refuse a newer schema; upgrade an older one (not when read-only)."""
        if state is None:
            try:
                with (
                    database_errors(self._where, busy_timeout=self.busy_timeout),
                    self.engine.connect() as connection,
                ):
                    state = read_state(connection, self._where)
            except DatabaseError as exc:
                raise ProjectError(
                    f"not a quadrat project, or the database cannot be read ({exc.orig})",
                    path=self._where,
                    param="project",
                ) from exc
        start = upgrade_from(state, self._where)
        if start is None:
            return
        if self.read_only:
            raise StateError(
                f"the project (schema revision {state.revision or f'format v{state.version}'}) "
                f"needs an upgrade to revision {migrations.HEAD}, and it is read-only; open a "
                "writable copy",
                path=self._where,
            )
        upgrades.upgrade(
            self.engine, self.url, self._where, busy_timeout_seconds(self.busy_timeout)
        )

    def close(self) -> None:
        self.engine.dispose()


def _meta_rows() -> list[dict[str, str]]:
    return [
        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
        {"key": "created_by", "value": f"quadrat {__version__}"},
    ]


def _build(connection: Connection) -> None:
    """The tables, the metadata and the newest revision, on ``connection``'s transaction."""
    Base.metadata.create_all(connection)
    connection.execute(insert(Meta), _meta_rows())
    migrations.stamp(connection, migrations.HEAD)


def _build_empty(path: Path) -> None:
    """A complete, empty project in ``path`` (rollback journal: one file, no ``-wal``)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with database_errors(path), engine.begin() as connection:
            _build(connection)
    finally:
        engine.dispose()


def _link_into_place(tmp: Path, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path``, never replacing a file made meanwhile."""
    try:
        if path.exists() and path.stat().st_size == 0:
            path.unlink()  # an empty file (touch, a failed old init) is no project
        os.link(tmp, path)
    except FileExistsError:
        raise ConflictError(
            "a file already exists here; open it instead", path=path, param="project"
        ) from None
    except OSError:
        try:  # file systems without hard links
            if path.exists():
                raise ConflictError(
                    "a file already exists here; open it instead", path=path, param="project"
                ) from None
            os.replace(tmp, path)
        except OSError as exc:
            raise StateError(
                f"cannot create the project here: {exc.strerror}", path=path, param="project"
            ) from None


def _make_engine(url: str, busy_timeout: float, *, read_only_uri: str | None = None) -> Engine:
    """An engine; for SQLite with the busy timeout, WAL mode, or read-only through ``uri``."""
    if read_only_uri is not None:

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                read_only_uri, uri=True, timeout=busy_timeout, check_same_thread=False
            )

        engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)
        event.listen(engine, "connect", _sqlite_read_pragmas)
        return engine
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url)


def _sqlite_read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()
