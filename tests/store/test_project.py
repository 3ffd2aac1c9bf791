"""The project store: create, reopen, schema versions, sources, transactions.

Upgrades of older projects: tests/store/test_migrations.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from quadrat.errors import ConflictError, NotFoundError, ProjectError
from quadrat.store import migrations, queries
from quadrat.store.project import Store, database_url
from quadrat.store.schema import SCHEMA_VERSION, Meta, Source


def test_create_then_open(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    project = Store.create(path)
    with project.session() as session:
        session.add(Source(name="reef"))
    project.close()
    again = Store.open(path)
    assert again.schema_version == SCHEMA_VERSION
    with again.session() as session:
        assert queries.get_source(session, "reef").name == "reef"


def test_create_refuses_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    Store.create(path).close()
    with pytest.raises(ConflictError, match="already exists"):
        Store.create(path)


def test_open_missing_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no project here") as caught:
        Store.open(tmp_path / "nothing.db")
    assert caught.value.param == "project" and "quadrat" not in str(caught.value)


def test_open_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError):
        Store.open(path)


def test_unknown_source_lists_known(tmp_path: Path) -> None:
    project = Store.create(tmp_path / "p.db")
    with project.session() as session:
        session.add(Source(name="reef"))
    with project.session() as session, pytest.raises(NotFoundError, match="reef"):
        queries.get_source(session, "lagoon")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    project = Store.create(path)
    with project.session() as session:
        session.execute(
            update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION + 1))
        )
    project.close()
    with pytest.raises(ProjectError, match="newer"):
        Store.open(path)


def test_a_new_project_is_at_the_newest_revision(tmp_path: Path) -> None:
    project = Store.create(tmp_path / "p.db")
    assert project.revision == migrations.HEAD
    assert project.schema_version == SCHEMA_VERSION


def test_rollback_on_error(tmp_path: Path) -> None:
    project = Store.create(tmp_path / "p.db")
    with pytest.raises(RuntimeError), project.session() as session:
        session.add(Source(name="reef"))
        session.flush()
        raise RuntimeError("boom")
    with project.session() as session:
        assert queries.find_source(session, "reef") is None


def test_database_url() -> None:
    assert database_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert database_url("x.db").startswith("sqlite:///")
