"""``quadrat user ...``: passwords from a hidden prompt or standard input (never an option),
roles per source, duplicates and unknown sources refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from quadrat import Project
from quadrat.cli import app
from quadrat.cli._common import EXIT_CONFLICT, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE
from quadrat.service import accounts
from quadrat.store import accounts as account_rows
from quadrat.store.schema import Role

runner = CliRunner()


def invoke(*args: str | Path, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], input=stdin)
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "serve.db"
    with Project.create(path) as project:
        project.create_source("reef")
        project.create_source("lagoon")
    return path


def roles(db: Path, name: str) -> dict[str | None, Role]:
    with Project.open(db) as project, project.store.session() as session:
        return account_rows.get_user(session, name).roles


def signs_in(db: Path, name: str, password: str) -> bool:
    with Project.open(db) as project:
        return accounts.authenticate(project.store, name, password) is not None


def test_add_reads_the_password_from_stdin(db: Path) -> None:
    code, out = invoke(
        "user", "add", "ana", "--role", "annotator", "-s", "reef", "--password-stdin", "-p", db,
        stdin="correct horse battery\n",
    )  # fmt: skip
    assert code == 0, out
    assert "added user ana (annotator on reef)" in out
    assert signs_in(db, "ana", "correct horse battery")
    assert not signs_in(db, "ana", "correct horse battery\n")
    assert roles(db, "ana") == {"reef": Role.ANNOTATOR}


def test_add_asks_twice_at_a_hidden_prompt(db: Path) -> None:
    # a mismatch asks again; the second pair agrees
    code, out = invoke(
        "user", "add", "bo", "--role", "viewer", "-p", db, stdin="one\ntwo\nsecret\nsecret\n"
    )
    assert code == 0, out
    assert "do not match" in out and "secret" not in out  # hidden: never echoed
    assert signs_in(db, "bo", "secret") and not signs_in(db, "bo", "one")
    assert roles(db, "bo") == {None: Role.VIEWER}


def test_duplicate_user_is_a_conflict_before_any_prompt(db: Path) -> None:
    assert invoke("user", "add", "ana", "--role", "admin", "--password-stdin", "-p", db,
                  stdin="pw1\n")[0] == 0  # fmt: skip
    code, out = invoke("user", "add", "ana", "--role", "viewer", "-p", db, stdin="")
    assert code == EXIT_CONFLICT and "exists already" in out
    assert "Password" not in out
    assert signs_in(db, "ana", "pw1")


def test_unknown_source_adds_nothing(db: Path) -> None:
    code, out = invoke(
        "user", "add", "cy", "--role", "viewer", "-s", "reef", "-s", "nope", "--password-stdin",
        "-p", db, stdin="pw\n",
    )  # fmt: skip
    assert code == EXIT_NOT_FOUND and "no source 'nope'" in out and "lagoon, reef" in out
    code, out = invoke("user", "list", "-p", db)
    assert code == 0 and "no users yet" in out


@pytest.mark.parametrize(
    ("args", "stdin", "status", "words"),
    [
        (["--role", "owner"], "pw\n", EXIT_USAGE, "owner"),
        (["--password-stdin"], "pw\n", EXIT_USAGE, "--role"),
        (["--role", "viewer", "--password-stdin"], "", EXIT_ERROR, "no password on standard"),
        (["--role", "viewer", "--password-stdin"], "\n", EXIT_ERROR, "no password on standard"),
    ],
)
def test_bad_add_options(db: Path, args: list[str], stdin: str, status: int, words: str) -> None:
    code, out = invoke("user", "add", "dee", *args, "-p", db, stdin=stdin)
    assert code == status, out
    assert words in out


def test_bad_username_is_refused(db: Path) -> None:
    code, out = invoke("user", "add", "a b", "--role", "viewer", "--password-stdin", "-p", db,
                       stdin="pw\n")  # fmt: skip
    assert code == EXIT_ERROR and "letters, digits" in out


def test_role_list_revoke_remove(db: Path) -> None:
    assert invoke("user", "add", "ana", "--role", "viewer", "--password-stdin", "-p", db,
                  stdin="pw\n")[0] == 0  # fmt: skip
    code, out = invoke("user", "role", "ana", "admin", "-s", "lagoon", "-p", db)
    assert code == 0 and "ana is now admin on lagoon" in out, out
    assert roles(db, "ana") == {None: Role.VIEWER, "lagoon": Role.ADMIN}
    code, out = invoke("user", "role", "ana", "annotator", "-p", db)
    assert code == 0 and roles(db, "ana")[None] == Role.ANNOTATOR
    assert invoke("user", "role", "ana", "boss", "-p", db)[0] == EXIT_USAGE
    assert invoke("user", "role", "nobody", "admin", "-p", db)[0] == EXIT_NOT_FOUND
    assert invoke("user", "role", "ana", "admin", "-s", "nope", "-p", db)[0] == EXIT_NOT_FOUND

    code, out = invoke("user", "list", "-p", db)
    assert code == 0 and "ana" in out
    assert "ana annotator every source yes" in out and "ana admin lagoon yes" in out

    with Project.open(db) as project:
        user_id = accounts.authenticate(project.store, "ana", "pw")
        assert user_id is not None
        tokens = [accounts.issue_token(project.store, user_id) for _ in range(2)]
    code, out = invoke("user", "revoke-tokens", "ana", "-p", db)
    assert code == 0 and "revoked 2 tokens of ana" in out
    with Project.open(db) as project:
        assert all(accounts.user_for_token(project.store, t) is None for t in tokens)

    code, out = invoke("user", "limits", "ana", "--max-active-jobs", "2", "-p", db)
    assert code == 0 and "max_active_jobs=2" in out
    with Project.open(db) as project, project.store.session() as session:
        assert account_rows.get_user(session, "ana").limits == {"max_active_jobs": 2}
    code, out = invoke(
        "user", "limits", "ana", "--max-suggest", "7", "--max-replicates", "300",
        "--max-similar", "9", "--max-upload-bytes", "1000", "-p", db,
    )  # fmt: skip
    assert code == 0
    with Project.open(db) as project, project.store.session() as session:
        assert account_rows.get_user(session, "ana").limits == {
            "max_active_jobs": 2,
            "max_suggest": 7,
            "max_bootstrap_replicates": 300,
            "max_similar": 9,
            "upload_bytes_per_user": 1000,
        }
    code, out = invoke("user", "limits", "ana", "--reset", "-p", db)
    assert code == 0 and "the server limits" in out

    code, out = invoke("user", "remove", "ana", "-p", db)
    assert code == 0 and "removed user ana" in out
    assert not signs_in(db, "ana", "pw")
    assert invoke("user", "remove", "ana", "-p", db)[0] == EXIT_NOT_FOUND
    # the name is free again
    assert invoke("user", "add", "ana", "--role", "viewer", "--password-stdin", "-p", db,
                  stdin="new\n")[0] == 0  # fmt: skip


def test_missing_project(tmp_path: Path) -> None:
    code, out = invoke("user", "list", "-p", tmp_path / "none.db")
    assert code == EXIT_NOT_FOUND and "none.db" in out
