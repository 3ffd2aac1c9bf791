"""Schema migrations of the project store (Alembic), for SQLite and PostgreSQL.

The revisions live in ``versions/`` and are written by hand (``op.create_table``...), so
each is a frozen record of one schema change; ``tests/store/test_migrations.py`` checks
that upgrading to :data:`HEAD` gives exactly the tables of :mod:`quadrat.store.schema`
(Alembic's ``compare_metadata`` finds no difference), so models and migrations cannot
drift. :mod:`quadrat.store.project` decides when to migrate; this module runs Alembic on
a connection the caller holds (one transaction for the whole upgrade).

Alembic is imported only inside these functions: opening an up-to-date project reads
``alembic_version`` with plain SQL and compares it with :data:`REVISIONS`, so the common
path never pays Alembic's import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

#: This folder: Alembic's ``script_location`` (env.py, script.py.mako, versions/).
FOLDER = Path(__file__).resolve().parent

#: Every revision, oldest first (checked against versions/ by the tests). A file at a
#: revision not listed here was written by a newer quadrat.
REVISIONS = ("0001", "0002", "0003")
#: The schema of quadrat's hand-versioned format 1 (``meta.schema_version`` 1).
BASELINE = REVISIONS[0]
#: The revision this quadrat writes.
HEAD = REVISIONS[-1]
#: Tables each revision adds, for adopting a format-1 file: development builds between the
#: service tables (commit 47388dc) and Alembic made them with ``create_all`` in format 1.
ADDED_TABLES = {
    "0002": frozenset({"users", "source_roles", "api_tokens", "deploy_jobs", "deploy_images"}),
}


def adopt(tables: set[str]) -> str:
    """The revision a format-1 file (no ``alembic_version``) is stamped with: the baseline,
    or the newest revision whose tables it already has (each revision in turn)."""
    revision = BASELINE
    for candidate in REVISIONS[1:]:
        added = ADDED_TABLES.get(candidate)
        if not added or not added <= tables:
            break
        revision = candidate
    return revision


#: Tables that other code keeps in the project database, outside the models and the
#: migrations: huey's job queue on PostgreSQL (quadrat.service.queue). Autogenerate and
#: the drift check leave them alone instead of proposing to drop them.
UNMANAGED_PREFIXES = ("quadrat_queue_",)


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic's ``include_name`` hook: everything but :data:`UNMANAGED_PREFIXES` tables."""
    return not (type_ == "table" and name is not None and name.startswith(UNMANAGED_PREFIXES))


def config(connection: Connection) -> Config:
    """An Alembic configuration that runs on ``connection`` (in its transaction)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER))
    cfg.attributes["connection"] = connection
    return cfg


def stamp(connection: Connection, revision: str = HEAD) -> None:
    """Record ``revision`` in ``alembic_version`` without running any migration."""
    from alembic import command

    command.stamp(config(connection), revision)


def upgrade(connection: Connection, revision: str = HEAD) -> None:
    """Run every migration from the recorded revision up to ``revision``."""
    from alembic import command

    command.upgrade(config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database (None when it has no ``alembic_version``)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def differences(connection: Connection) -> list[Any]:
    """What Alembic's autogenerate finds between the database and the models (none: good)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from quadrat.store.schema import Base

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, Base.metadata))


def script_revisions() -> list[str]:
    """The revisions in versions/, oldest first (what :data:`REVISIONS` must list)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(FOLDER))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
