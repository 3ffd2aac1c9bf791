"""``quadrat serve`` / ``quadrat worker``: options become ServiceSettings (the server itself is
replaced here; tests/service runs a real one), and a missing extra says what to install."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quadrat import Project
from quadrat.cli import app
from quadrat.cli._common import (
    EXIT_ERROR,
    EXIT_MISSING_DEPENDENCY,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from quadrat.service import queue as queue_module
from quadrat.service import server as server_module
from quadrat.service.settings import ServiceSettings

runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "survey.db"
    Project.create(path).close()
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ServiceSettings, str, int]]:
    """Calls to quadrat.service.server.serve, recorded instead of served."""
    calls: list[tuple[ServiceSettings, str, int]] = []

    def fake(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
        calls.append((settings, host, port))

    monkeypatch.setattr(server_module, "serve", fake)
    return calls


def test_defaults_are_coralnets_on_loopback(db: Path, served: list[Any]) -> None:
    code, out = invoke("serve", "-p", db)
    assert code == 0, out
    [(settings, host, port)] = served
    assert (host, port) == ("127.0.0.1", 8000)
    assert settings == ServiceSettings(database=str(db.resolve()), limits=settings.limits)
    assert (settings.images_per_job, settings.points_per_image, settings.max_active_jobs) == (
        100,
        200,
        5,
    )
    assert not settings.allow_private_urls and settings.image_folder is None
    assert settings.workers == 1
    assert "note:" not in out  # loopback: no TLS reminder


def test_every_option_reaches_the_settings(tmp_path: Path, db: Path, served: list[Any]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    tree = tmp_path / "tree.json"
    tree.write_text("[]")
    code, out = invoke(
        "serve", "-p", db, "--host", "0.0.0.0", "--port", "8123", "--workers", "3",
        "--allow-private-urls", "--image-folder", images, "--max-images", "50",
        "--max-points", "20", "--max-active-jobs", "2", "--requests-per-minute", "10",
        "--requests-per-hour", "100", "--max-request-bytes", "1000", "--max-upload-bytes", "2000",
        "--max-suggest", "7", "--max-replicates", "300", "--max-similar", "9",
        "--hierarchical-threshold", "0.6", "--hierarchy", tree,
    )  # fmt: skip
    assert code == 0, out
    [(settings, host, port)] = served
    assert (host, port) == ("0.0.0.0", 8123)
    assert settings.workers == 3 and settings.allow_private_urls
    assert settings.image_folder == images.resolve()
    assert (settings.images_per_job, settings.points_per_image, settings.max_active_jobs) == (
        50,
        20,
        2,
    )
    assert (settings.requests_per_minute, settings.requests_per_hour) == (10, 100)
    assert (settings.request_bytes, settings.upload_request_bytes) == (1000, 2000)
    assert (settings.max_suggest, settings.max_bootstrap_replicates, settings.max_similar) == (
        7,
        300,
        9,
    )
    assert settings.hierarchical_threshold == 0.6
    assert settings.hierarchy == str(tree.resolve())
    assert "TLS" in out  # not loopback: the reminder


def test_help_shows_the_defaults() -> None:
    """Rich reads ``[default: 100]`` in a help text as markup and drops it."""
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "300"})
    text = " ".join(result.output.split())
    assert "Images in one deploy request (default 100, CoralNet's)." in text
    assert " ." not in text.replace(" ... ", " ")


def test_database_url(served: list[Any]) -> None:
    url = "postgresql+psycopg://quadrat@db.example/survey"
    code, out = invoke("serve", "--database", url)
    assert code == 0, out
    assert served[0][0].database == url


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["--port", "70000"], EXIT_USAGE, "--port"),
        (["--workers", "0"], EXIT_USAGE, "--workers"),
        (["--max-images", "0"], EXIT_USAGE, "--max-images"),
        (["--image-folder", "/no/such/folder"], EXIT_NOT_FOUND, "no image folder"),
        (["--hierarchical-threshold", "1.5"], EXIT_ERROR, "hierarchical_threshold"),
        (["--hierarchy", "tree.json"], EXIT_ERROR, "needs --hierarchical-threshold"),
        (
            ["--hierarchical-threshold", "0.5", "--hierarchy", "/no/tree.json"],
            EXIT_NOT_FOUND,
            "no label tree file",
        ),
        (["--database", "sqlite:///other.db"], EXIT_ERROR, "give the project once"),
    ],
)
def test_bad_options(db: Path, served: list[Any], args: list[str], status: int, words: str) -> None:
    code, out = invoke("serve", "-p", db, *args)
    assert code == status, out
    assert words in out
    assert served == []


def test_a_missing_project_is_not_created(tmp_path: Path, served: list[Any]) -> None:
    code, out = invoke("serve", "-p", tmp_path / "none.db")
    assert code == EXIT_NOT_FOUND and "quadrat init" in out
    assert not (tmp_path / "none.db").exists() and served == []


@pytest.mark.parametrize("module", ["uvicorn", "fastapi", "huey", "argon2"])
def test_missing_serve_extra_names_the_pip_command(
    db: Path, served: list[Any], monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    code, out = invoke("serve", "-p", db)
    assert code == EXIT_MISSING_DEPENDENCY, out
    assert f"'{module}'" in out and "pip install 'quadrat[serve]'" in out
    assert served == []


def test_missing_postgres_driver_names_the_pip_command(
    served: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    code, out = invoke("serve", "--database", "postgresql+psycopg://u@h/db")
    assert code == EXIT_MISSING_DEPENDENCY and "pip install 'quadrat[postgres]'" in out


def test_worker_runs_a_queue_until_stopped(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class FakeQueue:
        def __init__(self, settings: ServiceSettings) -> None:
            seen["settings"] = settings

        def run_worker(self, stop: threading.Event | None = None) -> None:
            seen["stop"] = stop

        def close(self) -> None:
            seen["closed"] = True

    monkeypatch.setattr(queue_module, "JobQueue", FakeQueue)
    images = tmp_path / "images"
    images.mkdir()
    code, out = invoke("worker", "-p", db, "--allow-private-urls", "--image-folder", images)
    assert code == 0, out
    settings = seen["settings"]
    assert settings.database == str(db.resolve()) and settings.allow_private_urls
    assert settings.image_folder == images.resolve()
    assert isinstance(seen["stop"], threading.Event) and seen["closed"]
