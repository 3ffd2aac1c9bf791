"""Alembic's environment for the project store: Alembic runs this file for each command.

quadrat runs Alembic on a connection it already holds, inside its own transaction
(``config.attributes["connection"]``; see :mod:`quadrat.store.migrations`). A developer
writing a new revision may also run the ``alembic`` command with ``sqlalchemy.url`` set.
SQLite cannot alter most of a table in place, so operations are rendered as "batch"
operations there (copy the table, move the rows, rename).
"""

from __future__ import annotations

from alembic import context
from alembic.config import Config
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from quadrat.errors import ProjectError
from quadrat.store.migrations import include_name
from quadrat.store.schema import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(config: Config) -> None:
    """On the caller's connection when it gave one, else on ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise ProjectError("set sqlalchemy.url, or pass a connection in config.attributes")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as own:
            _run(own)
    finally:
        engine.dispose()


def run_offline(config: Config) -> None:
    """SQL scripts (``alembic upgrade head --sql``) for a DBA to review and run."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_config: Config | None
try:
    _config = context.config
except (AttributeError, NameError):  # imported outside an Alembic command (import checks)
    _config = None
if _config is not None:
    if context.is_offline_mode():
        run_offline(_config)
    else:
        run_online(_config)
