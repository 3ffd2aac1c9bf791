"""Fixtures for ``quadrat serve``: a project with a trained classifier, users, images, servers.

- ``trained_project``: a private copy of a small project (one source ``reef``, the demo
  labelset, a texture-feature ``lr`` classifier), built once per session.
- ``users``: makes users with a role and hands back their tokens.
- ``image_server``: a loopback HTTP server (127.0.0.1, a thread) serving generated JPEGs.
- ``api``: the app in-process (``TestClient``) over the project, with a :class:`FakeQueue`.
- ``live_server``: ``python -m quadrat.service`` in a subprocess on loopback, with its
  workers, killed at teardown.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from quadrat.demo import DemoSurvey

MEDIA_TYPE = "application/vnd.api+json"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TrainedProject:
    """A project file with one source and one accepted classifier."""

    #: A SQLite file, or a database URL (PostgreSQL).
    db: Path | str
    source: str
    classifier_id: int
    #: Labels of the source: (label id as the API reports it, name, short code).
    labels: list[tuple[int, str, str]]
    #: Image files of the survey (JPEGs the classifier has seen the like of).
    images: list[Path]


def build_trained(location: Path | str, survey: DemoSurvey) -> TrainedProject:
    """A project at ``location`` (a file or a database URL): source ``reef``, an lr classifier."""
    from sqlalchemy import select

    import quadrat
    from quadrat.store.schema import Label

    with quadrat.Project.create(location) as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        src.extract("texture")
        outcome = src.train(kind="lr")
        assert outcome.trained and outcome.classifier_id is not None, outcome.message
        with project.store.session() as session:
            labels = [
                (int(cid if cid is not None else i), str(name), str(code))
                for i, name, code, cid in session.execute(
                    select(Label.id, Label.name, Label.short_code, Label.coralnet_id)
                )
            ]
    images = sorted(survey.new_dir.glob("*.jpg")) + sorted(survey.annotated_dir.glob("*.jpg"))
    assert images
    return TrainedProject(location, "reef", int(outcome.classifier_id), labels, images)


@pytest.fixture(scope="session")
def trained_template(
    survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory
) -> TrainedProject:
    return build_trained(tmp_path_factory.mktemp("serve-project") / "project.db", survey_template)


@pytest.fixture
def trained_project(trained_template: TrainedProject, tmp_path: Path) -> TrainedProject:
    """A private copy of the project file, so each test starts with no users or jobs."""
    db = tmp_path / "project.db"
    shutil.copyfile(Path(trained_template.db), db)
    return TrainedProject(
        db,
        trained_template.source,
        trained_template.classifier_id,
        trained_template.labels,
        trained_template.images,
    )


@dataclass
class Users:
    """Makes users on a project and remembers their tokens."""

    db: Path | str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        name: str,
        *,
        role: str | None = "viewer",
        sources: list[str] | None = None,
        limits: dict[str, int] | None = None,
    ) -> str:
        """A new user (``role`` on ``sources``, None: every source); returns a token."""
        from quadrat.service import accounts
        from quadrat.store import accounts as rows
        from quadrat.store.project import Store

        store = Store.open(self.db)
        try:
            user_id = accounts.add_user(store, name, PASSWORD, role=role, sources=sources)
            if limits:
                with store.session() as session:
                    rows.set_user_limits(session, name, limits)
            token = accounts.issue_token(store, user_id)
        finally:
            store.close()
        self.tokens[name], self.ids[name] = token, user_id
        return token

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[name]}"}


@pytest.fixture
def users(trained_project: TrainedProject) -> Users:
    return Users(trained_project.db)


# ------------------------------------------------------------------ loopback images


def make_jpeg(height: int = 120, width: int = 160, seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=85)
    return out.getvalue()


@dataclass
class ImageServer:
    """Files served over loopback HTTP: ``url(name)`` for each of ``files``."""

    base: str
    files: dict[str, bytes]

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture(scope="session")
def image_server(trained_template: TrainedProject) -> Iterator[ImageServer]:
    files: dict[str, bytes] = {p.name: p.read_bytes() for p in trained_template.images[:4]}
    files["noise.jpg"] = make_jpeg()
    files["not-an-image.jpg"] = b"this is text, not a JPEG"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ImageServer(f"http://127.0.0.1:{server.server_address[1]}", files)
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ in-process app


class FakeQueue:
    """Records the job ids the app queues (nothing runs them)."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def enqueue(self, job_id: int) -> None:
        self.ids.append(job_id)


@dataclass
class Api:
    """The app in-process, its queue and the settings it was made with."""

    client: Any  # fastapi.testclient.TestClient
    queue: FakeQueue
    settings: Any  # ServiceSettings
    project: TrainedProject

    def deploy_url(self, classifier_id: int | None = None) -> str:
        return f"/api/classifier/{classifier_id or self.project.classifier_id}/deploy/"


@pytest.fixture
def make_api(trained_project: TrainedProject, tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """``make_api(**settings)``: a TestClient over the project with those settings."""
    from fastapi.testclient import TestClient

    from quadrat.service.app import create_app
    from quadrat.service.settings import ServiceSettings

    clients: list[Any] = []

    def make(**overrides: Any) -> Api:
        options: dict[str, Any] = {"database": str(trained_project.db), "allow_private_urls": True}
        options.update(overrides)
        settings = ServiceSettings(**options)
        queue = FakeQueue()
        client = TestClient(create_app(settings, queue=queue), raise_server_exceptions=True)
        client.__enter__()
        clients.append(client)
        return Api(client, queue, settings, trained_project)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


# ------------------------------------------------------------------ a real server


@dataclass(frozen=True)
class LiveServer:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: Path | str, log: Path, *extra: str, ready_seconds: float = 90.0) -> LiveServer:
    """``python -m quadrat.service`` on a free loopback port, once it answers HTTP."""
    import requests

    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    out = log.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quadrat.service",
            "--database",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow-private-urls",
            *extra,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )
    out.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_seconds
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{base}/api/user/nobody/", timeout=5).status_code == 403:
                return LiveServer(base, process, log)
        if time.monotonic() > deadline:
            stop_server(process)
            raise AssertionError(f"server did not answer in {ready_seconds} s:\n{log.read_text()}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def live_server(trained_project: TrainedProject, tmp_path: Path) -> Iterator[LiveServer]:
    pytest.importorskip("quadrat.service.server")
    server = start_server(trained_project.db, tmp_path / "server.log")
    try:
        yield server
    finally:
        stop_server(server.process)
