"""Retention: finished jobs expire with their results after ``job_retention_days`` (then a
poll is the API's 404), unfinished ones never; uploads go once no unfinished job names them
and their ``upload_retention_hours`` have passed; a user's uploads have a byte quota."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from quadrat.errors import LimitError
from quadrat.service import uploads
from quadrat.service.server import Janitor, clean_up
from quadrat.service.settings import ServiceSettings
from quadrat.store import jobs as job_rows
from quadrat.store.project import Store
from quadrat.store.schema import DeployImage, DeployJob, JobStatus
from tests.service.conftest import Api, TrainedProject, Users, make_jpeg

NOW = datetime.now(UTC)
NOT_FOUND = [{"detail": "This deploy job doesn't exist or is not accessible"}]


@pytest.fixture
def store(api: Api) -> Iterator[Store]:
    opened = Store.open(api.project.db)
    try:
        yield opened
    finally:
        opened.close()


def _job(
    store: Store,
    user_id: int,
    classifier_id: int,
    *,
    urls: tuple[str, ...] = ("http://127.0.0.1/a.jpg",),
    finished_days_ago: float | None = None,
    created_days_ago: float = 60,
    status: JobStatus = JobStatus.DONE,
) -> int:
    """A job made ``created_days_ago``; finished ``finished_days_ago`` (None: ``status``)."""
    with store.session() as session:
        job_id = job_rows.create_job(session, user_id, classifier_id, [(u, [(1, 1)]) for u in urls])
        values: dict[str, object] = {"created_at": NOW - timedelta(days=created_days_ago)}
        if finished_days_ago is not None:
            values |= {"status": JobStatus.DONE, "finished_at": NOW - timedelta(finished_days_ago)}
        else:
            values["status"] = status
        session.execute(update(DeployJob).where(DeployJob.id == job_id).values(**values))
    return job_id


def _stored(store: Store) -> tuple[set[int], int]:
    with store.session() as session:
        ids = set(session.scalars(select(DeployJob.id)))
        images = int(session.scalar(select(func.count()).select_from(DeployImage)) or 0)
    return {int(i) for i in ids}, images


def test_finished_jobs_past_retention_go_with_their_results(
    api: Api, users: Users, store: Store
) -> None:
    users.add("ana")
    user, classifier = users.ids["ana"], api.project.classifier_id
    old = [_job(store, user, classifier, urls=("u1", "u2"), finished_days_ago=d) for d in (31, 400)]
    recent = _job(store, user, classifier, finished_days_ago=29)
    pending = _job(store, user, classifier, status=JobStatus.PENDING, created_days_ago=400)
    running = _job(store, user, classifier, status=JobStatus.IN_PROGRESS, created_days_ago=400)
    assert _stored(store)[1] == 7

    done = clean_up(api.settings, store, now=NOW)  # job_retention_days: 30 (CoralNet's)
    assert sorted(done.jobs) == sorted(old)
    assert _stored(store) == ({recent, pending, running}, 3)  # their images gone with them
    assert clean_up(api.settings, store, now=NOW).jobs == []  # nothing twice

    shorter = ServiceSettings(database=api.settings.database, job_retention_days=1)
    assert clean_up(shorter, store, now=NOW).jobs == [recent]  # the setting decides
    assert _stored(store)[0] == {pending, running}  # unfinished: never, however old


def test_deletion_runs_in_batches_until_done(
    api: Api, users: Users, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    users.add("ana")
    monkeypatch.setattr(job_rows, "DELETE_BATCH", 2)
    user, classifier = users.ids["ana"], api.project.classifier_id
    old = [_job(store, user, classifier, finished_days_ago=40) for _ in range(5)]
    assert sorted(clean_up(api.settings, store, now=NOW).jobs) == sorted(old)
    assert _stored(store) == (set(), 0)


def test_a_polled_job_is_a_404_once_deleted(api: Api, users: Users, store: Store) -> None:
    users.add("ana")
    job_id = _job(store, users.ids["ana"], api.project.classifier_id, finished_days_ago=31)
    status = f"/api/deploy_job/{job_id}/status/"
    seen = api.client.get(status, headers=users.headers("ana"), follow_redirects=False)
    assert seen.status_code == 303

    clean_up(api.settings, store, now=NOW)
    for url in (status, f"/api/deploy_job/{job_id}/result/"):
        gone = api.client.get(url, headers=users.headers("ana"), follow_redirects=False)
        assert gone.status_code == 404, url
        assert gone.json() == {"errors": NOT_FOUND}
    me = api.client.get("/api/user/ana/", headers=users.headers("ana")).json()
    assert me["data"]["recently_completed_jobs"] == []


def _age(path: Path, hours: float) -> None:
    then = time.time() - 3600 * hours
    os.utime(path, (then, then))


def test_uploads_named_by_unfinished_jobs_are_kept(api: Api, users: Users, store: Store) -> None:
    users.add("ana")
    user, classifier = users.ids["ana"], api.project.classifier_id
    active, finished, loose, fresh = (
        uploads.save_upload(api.settings, make_jpeg(seed=s)) for s in range(4)
    )
    folder = uploads.upload_folder(api.settings)
    for name in (active, finished, loose):
        _age(folder / name.removeprefix(uploads.UPLOAD_PREFIX), hours=48)
    _job(store, user, classifier, urls=(active,), status=JobStatus.PENDING)
    _job(store, user, classifier, urls=(finished, active), finished_days_ago=1)  # kept job

    done = clean_up(api.settings, store)  # upload_retention_hours: 24
    assert done.jobs == [] and sorted(done.uploads) == sorted([finished, loose])
    assert uploads.upload_path(api.settings, active).is_file()
    assert uploads.upload_path(api.settings, fresh).is_file()  # younger than the retention
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        n.removeprefix(uploads.UPLOAD_PREFIX) for n in (active, fresh)
    )  # nothing left aside
    # Uploading a deleted image again keeps it again.
    assert uploads.save_upload(api.settings, make_jpeg(seed=1)) == finished
    assert uploads.upload_path(api.settings, finished).is_file()


def test_uploading_again_restarts_an_uploads_retention(api: Api) -> None:
    name = uploads.save_upload(api.settings, make_jpeg(seed=7))
    path = uploads.upload_path(api.settings, name)
    _age(path, hours=48)
    assert uploads.save_upload(api.settings, make_jpeg(seed=7)) == name
    assert time.time() - path.stat().st_mtime < 60
    assert uploads.delete_unused_uploads(api.settings, set()) == []


def test_leftovers_of_killed_deletions_and_writes_go(api: Api) -> None:
    name = uploads.save_upload(api.settings, make_jpeg(seed=8))
    folder = uploads.upload_folder(api.settings)
    digest = name.removeprefix(uploads.UPLOAD_PREFIX)
    (folder / f".{digest}.expired").write_bytes(b"half deleted")
    (folder / f".{digest}.abcd1234.tmp").write_bytes(b"half written")
    (folder / "notes.txt").write_text("not ours: never touched")
    _age(folder / "notes.txt", hours=1000)
    uploads.delete_unused_uploads(api.settings, set())  # a deletion may be under way: kept
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [digest, f".{digest}.expired", "notes.txt"]
    )
    uploads.delete_unused_uploads(api.settings, set(), now=time.time() + 7200)  # 2 h later
    assert sorted(p.name for p in folder.iterdir()) == sorted([digest, "notes.txt"])


def test_the_janitor_cleans_up_periodically(api: Api, users: Users, store: Store) -> None:
    users.add("ana")
    first = _job(store, users.ids["ana"], api.project.classifier_id, finished_days_ago=45)
    janitor = Janitor(api.settings, store, period=0.05, first=0.0)
    janitor.start()
    try:
        deadline = time.monotonic() + 10
        while janitor.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first not in _stored(store)[0]
        second = _job(store, users.ids["ana"], api.project.classifier_id, finished_days_ago=45)
        runs = janitor.runs
        while janitor.runs < runs + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert janitor.runs >= runs + 2 and second not in _stored(store)[0]
    finally:
        janitor.stop()
    assert not janitor._thread.is_alive()


def test_upload_quota_per_user(api: Api, users: Users, store: Store) -> None:
    users.add("ana", limits={"upload_bytes_per_user": 10_000})
    user = users.ids["ana"]
    image = make_jpeg(seed=3)
    name = uploads.save_upload(api.settings, image)
    _job(store, user, api.project.classifier_id, urls=(name,), status=JobStatus.PENDING)
    with store.session() as session:
        held = job_rows.user_image_names(session, user, uploads.UPLOAD_PREFIX)
        others = job_rows.user_image_names(session, user + 1000, uploads.UPLOAD_PREFIX)
    assert held == {name} and others == set()
    assert uploads.upload_bytes(api.settings, held) == len(image)

    limit = len(image) + len(image) // 2
    mine = api.settings.for_user({"upload_bytes_per_user": limit})
    uploads.check_upload_quota(mine, held, [image])  # already held: counted once
    with pytest.raises(LimitError, match="upload_bytes_per_user") as over:
        uploads.check_upload_quota(mine, held, [make_jpeg(seed=4)])
    assert over.value.param == "upload_bytes_per_user"
    uploads.check_upload_quota(api.settings, held, [make_jpeg(seed=4)])  # the server's 1 GiB


def test_serve_help_shows_the_retention_options() -> None:
    from typer.testing import CliRunner

    from quadrat.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    options = ("--job-retention-days", "--upload-retention-hours", "--max-upload-bytes-per-user")
    for option in options:
        assert option in result.output


def test_retention_on_postgresql(
    postgres_url: str, trained_project: TrainedProject, tmp_path: Path
) -> None:
    """The same deletions on PostgreSQL (timestamptz comparisons, the join for uploads)."""
    from quadrat import Project
    from quadrat.service import accounts

    portable = tmp_path / "reef.classifier"
    with Project.open(trained_project.db) as project:
        project.source("reef").export_classifier(portable)
    with Project.create(postgres_url) as project:
        classifier = project.import_classifier(portable).id
    settings = ServiceSettings(database=postgres_url, image_folder=tmp_path)
    pg = Store.open(postgres_url)
    try:
        user = accounts.add_user(pg, "ana", "a long enough password", role="viewer")
        kept_upload = uploads.save_upload(settings, make_jpeg(seed=5))
        loose_upload = uploads.save_upload(settings, make_jpeg(seed=6))
        for name in (kept_upload, loose_upload):
            _age(uploads.upload_path(settings, name), hours=48)
        old = _job(pg, user, classifier, urls=(loose_upload,), finished_days_ago=31)
        recent = _job(pg, user, classifier, finished_days_ago=2)
        pending = _job(pg, user, classifier, urls=(kept_upload,), status=JobStatus.PENDING)
        done = clean_up(settings, pg)
        assert done.jobs == [old] and done.uploads == [loose_upload]
        assert _stored(pg) == ({recent, pending}, 2)
        assert uploads.upload_path(settings, kept_upload).is_file()
    finally:
        pg.close()


def test_serve_runs_the_janitor_beside_the_workers(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` starts the janitor on its store and stops it on the way out."""
    import uvicorn

    from quadrat.service import server

    events: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name
            self.pids: list[int] = []

        def __call__(self, settings: ServiceSettings, store: Store | None = None) -> Recorder:
            events.append(f"{self.name} made" + (" with the store" if store else ""))
            return self

        def start(self) -> None:
            events.append(f"{self.name} start")

        def stop(self) -> None:
            events.append(f"{self.name} stop")

    monkeypatch.setattr(server, "Janitor", Recorder("janitor"))
    monkeypatch.setattr(server, "WorkerPool", Recorder("pool"))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: events.append("http"))
    server.serve(api.settings)
    assert events == [
        "pool made",
        "janitor made with the store",
        "pool start",
        "janitor start",
        "http",
        "janitor stop",
        "pool stop",
    ]
