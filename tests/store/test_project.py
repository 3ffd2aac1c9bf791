"""The project file: create, reopen, schema versions, sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from quadrat.errors import ProjectError
from quadrat.store.project import MIGRATIONS, Project, database_url
from quadrat.store.schema import SCHEMA_VERSION, Meta, Source


def test_create_then_open(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    project = Project.create(path)
    with project.session() as session:
        session.add(Source(name="reef"))
    project.close()
    again = Project.open(path)
    assert again.schema_version == SCHEMA_VERSION
    with again.session() as session:
        assert again.source(session, "reef").name == "reef"


def test_create_refuses_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    Project.create(path).close()
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(path)


def test_open_missing_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="quadrat init"):
        Project.open(tmp_path / "nothing.db")


def test_open_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError):
        Project.open(path)


def test_unknown_source_lists_known(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p.db")
    with project.session() as session:
        session.add(Source(name="reef"))
    with project.session() as session, pytest.raises(ProjectError, match="reef"):
        project.source(session, "lagoon")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    project = Project.create(path)
    with project.session() as session:
        session.execute(
            update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION + 1))
        )
    project.close()
    with pytest.raises(ProjectError, match="newer"):
        Project.open(path)


def test_older_schema_is_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.db"
    project = Project.create(path)
    with project.session() as session:
        session.execute(
            update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION - 1))
        )
    project.close()
    calls: list[int] = []
    monkeypatch.setitem(MIGRATIONS, SCHEMA_VERSION - 1, lambda conn: calls.append(1))
    assert Project.open(path).schema_version == SCHEMA_VERSION
    assert calls == [1]


def test_rollback_on_error(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p.db")
    with pytest.raises(RuntimeError), project.session() as session:
        session.add(Source(name="reef"))
        session.flush()
        raise RuntimeError("boom")
    with project.session() as session, pytest.raises(ProjectError):
        project.source(session, "reef")


def test_database_url() -> None:
    assert database_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert database_url("x.db").startswith("sqlite:///")
