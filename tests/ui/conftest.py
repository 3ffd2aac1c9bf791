"""A generated project with users, and a real server on loopback with the UI installed.

The project (a demo survey: 20 annotated images, 3 new ones with machine suggestions from
a trained classifier) is built once per session; each test module gets its own copy and
its own server, so modules never see each other's labels.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("itsdangerous")

PASSWORDS = {"anna": "anna-password-1", "victor": "victor-password-1", "ada": "ada-password-1"}
ROLES = {"anna": "annotator", "victor": "viewer", "ada": "admin"}


@dataclass(frozen=True)
class UiServer:
    url: str
    project: Path
    #: The server's open store (one per process: never open the file a second time here).
    store: Any


class _NoQueue:
    """The UI needs no job queue; deploys are tested in tests/service."""

    def enqueue(self, job_id: int) -> None:
        raise AssertionError("the UI tests deploy nothing")


@pytest.fixture(scope="session")
def ui_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project: source 'reef', 23 images, a trained classifier, three users."""
    import quadrat
    from quadrat.demo import make_demo_survey
    from quadrat.service import accounts
    from quadrat.store.project import Store

    root = tmp_path_factory.mktemp("ui-project")
    survey = make_demo_survey(
        root / "survey", n_annotated=20, n_new=3, points_per_image=10, size=(360, 480)
    )
    path = root / "survey.db"
    with quadrat.Project.create(path) as project:
        reef = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_12")
        reef.import_annotations(survey.annotations_csv, survey.annotated_dir)
        reef.import_images([survey.new_dir])
        reef.generate_points(seed=0)
        reef.extract("texture")
        reef.train(kind="lr", seed=0)
        reef.classify()
    store = Store.open(path)
    try:
        for name, password in PASSWORDS.items():
            accounts.add_user(store, name, password, role=ROLES[name])
    finally:
        store.close()
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ui_server(
    ui_project_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiServer]:
    """uvicorn on 127.0.0.1 (a thread) serving the UI over a private copy of the project."""
    import uvicorn
    from fastapi import FastAPI

    from quadrat.service.app import create_app
    from quadrat.service.settings import ServiceSettings
    from quadrat.service.ui import install_ui
    from quadrat.store.project import Store

    folder = tmp_path_factory.mktemp("ui-server")
    project = folder / "survey.db"
    shutil.copy2(ui_project_template, project)
    settings = ServiceSettings(database=str(project))
    store = Store.open(project)  # the process's one handle on the file (see create_app)
    if os.environ.get("QUADRAT_UI_BARE_APP"):
        app = FastAPI()  # the UI alone, without the deploy API
        install_ui(app, settings, store)
    else:
        app = create_app(settings, queue=_NoQueue(), store=store)  # install_ui is in there
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI test server did not start")
        time.sleep(0.05)
    try:
        yield UiServer(f"http://127.0.0.1:{port}", project, store)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()
