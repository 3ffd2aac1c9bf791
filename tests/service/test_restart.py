"""A server killed with ``kill -9`` while jobs are queued and running finishes every job
after a restart: none lost, none stuck "In Progress" (bounded waits, no speed asserted)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from quadrat.demo import DemoSurvey
from quadrat.store import jobs
from quadrat.store.project import Store
from tests.service._jobs_helpers import descendants
from tests.service.conftest import (
    MEDIA_TYPE,
    ImageServer,
    LiveServer,
    TrainedProject,
    Users,
    start_server,
    stop_server,
)

requests = pytest.importorskip("requests")

#: Jobs submitted (CoralNet's default of 5 active jobs a user) and their size: with two
#: workers and the kill after the first image, three jobs are still queued and two
#: running; small, so that finishing them after the restart is quick.
JOBS = 5
IMAGES_PER_JOB = 4
POINTS_PER_IMAGE = 20
#: The killed-worker test's job: long enough that the worker is still on it when it dies.
WORKER_JOB_IMAGES = 8
WORKER_JOB_POINTS = 40
#: Bounds on the waits (the machine may be loaded; nothing here measures speed).
STARTED_WAIT = 300.0
FINISH_WAIT = 900.0
#: Bound on the wait for killed processes to be reaped (see :func:`kill_hard`).
REAP_WAIT = 30.0
#: Seconds between looks at a job's state or status (the user's rates are lifted).
POLL = 0.2


def _start(database: str, log: Path, *extra: str) -> LiveServer:
    """conftest's ``start_server`` with a database URL as well as a file."""
    return start_server(database, log, *extra)  # type: ignore[arg-type]


def kill_hard(server: LiveServer) -> None:
    """SIGKILL the server and every process under it (its workers), as a crash would.

    Then wait (bounded) until the orphaned workers are reaped: until then they are zombies
    that ``kill(pid, 0)`` still finds, so a restart at once would take their jobs for
    running and leave them to the periodic recovery (30 s later) instead of queueing them
    at start-up, as after a real crash, where the restart comes later than this.
    """
    below = descendants(server.process.pid)
    os.kill(server.process.pid, signal.SIGKILL)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    deadline = time.monotonic() + REAP_WAIT
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in below):
        time.sleep(0.05)


def submit(server: LiveServer, headers: dict[str, str], classifier_id: int, data: list) -> int:
    response = requests.post(
        f"{server.base}/api/classifier/{classifier_id}/deploy/",
        data=json.dumps({"data": data}),
        headers={**headers, "Content-Type": MEDIA_TYPE},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    return int(location.rstrip("/").split("/")[-2])


def job_states(db: Path | str) -> dict[int, tuple[str, int, int, int]]:
    store = Store.open(db)
    try:
        with store.session() as session:
            ids = [int(i) for i in range(1, 1000) if jobs.find_job(session, i) is not None]
            out = {}
            for job_id in ids:
                info = jobs.get_job(session, job_id)
                out[job_id] = (str(info.status), info.successes, info.failures, info.total)
            return out
    finally:
        store.close()


@dataclass(frozen=True)
class Backend:
    """A project with a trained classifier on one backend, and a user's token."""

    database: str
    classifier_id: int
    token: str


UNTHROTTLED = {"requests_per_minute": 10**6, "requests_per_hour": 10**6}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest,
    trained_project: TrainedProject,
    users: Users,
    survey_template: DemoSurvey,
) -> Backend:
    """The SQLite copy of the trained project, or the same survey trained on PostgreSQL.

    Polling is not what these tests are about: the user's request rates are lifted.
    """
    if request.param == "sqlite":
        token = users.add("ann", limits=UNTHROTTLED)
        return Backend(str(trained_project.db), trained_project.classifier_id, token)
    from quadrat import Project
    from quadrat.service import accounts
    from quadrat.store import accounts as account_rows

    url = str(request.getfixturevalue("postgres_url"))
    with Project.create(url) as project:
        src = project.create_source("reef", labelset=survey_template.labelset_csv)
        src.import_annotations(survey_template.annotations_csv, survey_template.annotated_dir)
        src.extract("texture")
        outcome = src.train(kind="lr", force=True)
        assert outcome.trained and outcome.classifier_id is not None
        user_id = accounts.add_user(project.store, "ann", "a long enough password", role="viewer")
        with project.store.session() as session:
            account_rows.set_user_limits(session, "ann", UNTHROTTLED)
        token = accounts.issue_token(project.store, user_id)
    return Backend(url, int(outcome.classifier_id), token)


def test_jobs_survive_kill_9(
    backend: Backend, trained_project: TrainedProject, image_server: ImageServer, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Token {backend.token}"}
    database = backend.database
    names = [p.name for p in trained_project.images[:4]]
    points = [{"row": 5 + 3 * i, "column": 7 + 4 * i} for i in range(POINTS_PER_IMAGE)]
    log = tmp_path / "server.log"
    server = _start(database, log, "--workers", "2")
    try:
        job_ids = []
        for j in range(JOBS):
            data = [
                {
                    "type": "image",
                    "attributes": {"url": image_server.url(names[(i + j) % 4]), "points": points},
                }
                for i in range(IMAGES_PER_JOB)
            ]
            job_ids.append(submit(server, headers, backend.classifier_id, data))
        # Wait until a worker has finished at least one image, then crash everything.
        deadline = time.monotonic() + STARTED_WAIT
        while time.monotonic() < deadline:
            states = job_states(database)
            if any(s[1] + s[2] > 0 for s in states.values()):
                break
            time.sleep(POLL)
        kill_hard(server)
    finally:
        stop_server(server.process)
    at_kill = job_states(database)
    assert any(done + failed > 0 for _, done, failed, _ in at_kill.values()), log.read_text()
    unfinished = [j for j, s in at_kill.items() if s[0] != "done"]
    assert unfinished, "every job ended before the kill; nothing was tested"

    server = _start(database, log, "--workers", "2")
    try:
        deadline = time.monotonic() + FINISH_WAIT
        results: dict[int, dict] = {}
        while time.monotonic() < deadline and len(results) < len(job_ids):
            for job_id in job_ids:
                if job_id in results:
                    continue
                response = requests.get(
                    f"{server.base}/api/deploy_job/{job_id}/status/", headers=headers, timeout=60
                )
                assert response.status_code == 200, response.text
                body = response.json()
                if "status" not in body["data"][0].get("attributes", {}):
                    results[job_id] = body  # requests followed the 303 to the result
            time.sleep(POLL)
        assert len(results) == len(job_ids), (job_states(database), log.read_text())
    finally:
        stop_server(server.process)

    for body in results.values():
        images = body["data"]
        assert len(images) == IMAGES_PER_JOB
        for image in images:
            attributes = image["attributes"]
            assert "points" in attributes or "errors" in attributes
            if "points" in attributes:
                assert len(attributes["points"]) == POINTS_PER_IMAGE
    final = job_states(database)
    assert all(state == "done" for state, *_ in final.values())
    # Good images, so every image was classified: none lost or failed by the crash.
    assert all((done, failed) == (IMAGES_PER_JOB, 0) for _, done, failed, _ in final.values()), (
        final
    )


def _workers(pid: int) -> list[int]:
    """The server's job workers (spawned processes, not multiprocessing's resource tracker)."""
    found = []
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.append(child)
    return found


def test_a_killed_worker_is_replaced_and_its_job_finished(
    trained_project: TrainedProject, users: Users, image_server: ImageServer, tmp_path: Path
) -> None:
    token = users.add("bob", limits={"requests_per_minute": 10**6, "requests_per_hour": 10**6})
    headers = {"Authorization": f"Token {token}"}
    name = trained_project.images[0].name
    points = [{"row": 5 + 3 * i, "column": 7 + 4 * i} for i in range(WORKER_JOB_POINTS)]
    data = [
        {"type": "image", "attributes": {"url": image_server.url(name), "points": points}}
        for _ in range(WORKER_JOB_IMAGES)
    ]
    log = tmp_path / "server.log"
    server = start_server(trained_project.db, log, "--workers", "1")
    try:
        job_id = submit(server, headers, trained_project.classifier_id, data)
        deadline = time.monotonic() + STARTED_WAIT
        while time.monotonic() < deadline and job_states(trained_project.db)[job_id][1] == 0:
            time.sleep(POLL)
        (worker,) = _workers(server.process.pid)
        os.kill(worker, signal.SIGKILL)
        assert job_states(trained_project.db)[job_id][0] != "done"
        deadline = time.monotonic() + FINISH_WAIT
        while time.monotonic() < deadline and job_states(trained_project.db)[job_id][0] != "done":
            assert server.process.poll() is None, log.read_text()
            time.sleep(POLL)
        state, done, failed, total = job_states(trained_project.db)[job_id]
        assert (state, done, failed, total) == ("done", WORKER_JOB_IMAGES, 0, WORKER_JOB_IMAGES), (
            log.read_text()
        )
        replacement = _workers(server.process.pid)
        assert len(replacement) == 1 and replacement != [worker]
    finally:
        stop_server(server.process)
    assert server.process.returncode == 0, log.read_text()
