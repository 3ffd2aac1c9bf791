"""``quadrat demo --serve``: the demo project, an admin user who can sign in, and the server
started on loopback (``serve`` is replaced here; tests/ui runs a real one)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.cli._common import EXIT_ERROR

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

runner = CliRunner()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str, int]]:
    """Calls to quadrat.service.server.serve, recorded instead of served."""
    from quadrat.service import server as server_module

    calls: list[tuple[Any, str, int]] = []

    def fake(settings: Any, host: str = "127.0.0.1", port: int = 8000) -> None:
        calls.append((settings, host, port))

    monkeypatch.setattr(server_module, "serve", fake)
    return calls


def _authenticate(project: Path, username: str, password: str) -> int | None:
    from quadrat.service import accounts
    from quadrat.store.project import Store

    store = Store.open(project)
    try:
        return accounts.authenticate(store, username, password)
    finally:
        store.close()


def test_demo_serve_adds_an_admin_and_serves_on_loopback(tmp_path: Path, served: list[Any]) -> None:
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--annotated-images", "20", "--new-images", "2"]
    result = runner.invoke(app, [*args, "--serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    [(settings, host, port)] = served
    assert (host, port) == ("127.0.0.1", 8765)
    assert settings.database == str((out / "demo.db").resolve())
    text = " ".join(result.output.split())
    assert "http://127.0.0.1:8765/ui/" in text
    found = re.search(r"password: (\S+)", text)
    assert found, text
    assert _authenticate(out / "demo.db", "demo-admin", found.group(1)) is not None
    assert _authenticate(out / "demo.db", "demo-admin", "wrong") is None

    # Again with the password on standard input: nothing printed, that one works.
    result = runner.invoke(app, [*args, "--serve", "--password-stdin"], input="my own secret 42\n")
    assert result.exit_code == 0, result.output
    assert "password:" not in result.output
    assert served[-1][2] == 8000
    assert _authenticate(out / "demo.db", "demo-admin", "my own secret 42") is not None


def test_password_stdin_needs_serve(tmp_path: Path, served: list[Any]) -> None:
    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "d"), "--password-stdin"])
    assert result.exit_code == EXIT_ERROR, result.output
    assert "--serve" in result.output
    assert not served and not (tmp_path / "d").exists()


def test_serve_prints_the_ui_address(tmp_path: Path, served: list[Any]) -> None:
    from quadrat import Project

    Project.create(tmp_path / "s.db").close()
    result = runner.invoke(app, ["serve", "-p", str(tmp_path / "s.db"), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/ui/" in result.output
