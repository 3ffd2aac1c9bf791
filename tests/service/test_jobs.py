"""Deploy jobs on a real project with a trained texture classifier: results, one-line
errors, order, idempotent reruns, the attempt cap, and the queue (JSON only, recovery)."""

from __future__ import annotations

import json
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quadrat.classifiers.metrics import top_k
from quadrat.classifiers.serialize import loads_estimator
from quadrat.demo import DemoSurvey
from quadrat.errors import WeightsError
from quadrat.limits import Limits
from quadrat.service import accounts
from quadrat.service.queue import QUEUE_NAME, JobQueue, queue_path
from quadrat.service.settings import ServiceSettings
from quadrat.service.worker import MAX_JOB_ATTEMPTS, run_job
from quadrat.store import jobs, queries
from quadrat.store.features import load_features
from quadrat.store.project import Store
from quadrat.store.schema import DeployImageStatus
from quadrat.workflow import deploy
from tests.service.conftest import ImageServer, TrainedProject


@pytest.fixture
def store(trained_project: TrainedProject) -> Iterator[Store]:
    opened = Store.open(trained_project.db)
    yield opened
    opened.close()


@pytest.fixture
def user_id(store: Store) -> int:
    return accounts.add_user(store, "ann", "a long enough password", role="viewer")


def settings_for(project: TrainedProject, **options: object) -> ServiceSettings:
    return ServiceSettings(database=str(project.db), allow_private_urls=True, **options)  # type: ignore[arg-type]


def new_job(store: Store, user_id: int, classifier_id: int, images: list) -> int:
    with store.session() as session:
        return jobs.create_job(session, user_id, classifier_id, images)


def check_classifications(points: list, labels: list[tuple[int, str, str]]) -> None:
    known = {label_id: (name, code) for label_id, name, code in labels}
    for ranked in points:
        assert len(ranked) == min(5, len(labels))
        scores = [c["score"] for c in ranked]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
        assert sum(scores) <= 1.0 + 1e-6
        for c in ranked:
            assert set(c) == {"label_id", "label_name", "label_code", "score"}
            assert known[c["label_id"]] == (c["label_name"], c["label_code"])


def test_a_job_gives_results_and_one_line_errors_in_request_order(
    trained_project: TrainedProject,
    image_server: ImageServer,
    store: Store,
    user_id: int,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "images"
    (folder / "site").mkdir(parents=True)
    good = trained_project.images[0]
    (folder / "site" / "good.jpg").write_bytes(good.read_bytes())
    big = np.full((400, 500, 3), 80, dtype=np.uint8)
    Image.fromarray(big).save(folder / "site" / "big.png")
    height, width = 240, 320  # the survey's images
    assert Image.open(good).size == (width, height)
    urls = list(image_server.files)
    images = [
        (image_server.url(good.name), [(10, 10), (100, 150), (239, 319)]),
        (image_server.url("not-an-image.jpg"), [(1, 1)]),
        ("site/big.png", [(1, 1)]),
        (image_server.url(good.name), [(10, 10), (5000, 3)]),
        (image_server.url(good.name), [(10, 6000)]),
        (image_server.url("missing.jpg"), [(1, 1)]),
        ("site/good.jpg", [(20, 30)]),
        (image_server.url(urls[1]), [(5, 5), (6, 6)]),
    ]
    job_id = new_job(store, user_id, trained_project.classifier_id, images)
    settings = settings_for(
        trained_project, image_folder=folder, limits=Limits(pixels_per_image=100_000)
    )
    assert run_job(store, settings, job_id) is True

    with store.session() as session:
        info = jobs.get_job(session, job_id)
        rows = jobs.job_images(session, job_id)
    assert info.finished and (info.successes, info.failures, info.total) == (3, 5, 8)
    assert [r.url for r in rows] == [url for url, _ in images]
    assert [r.status for r in rows] == [
        DeployImageStatus.DONE,
        DeployImageStatus.FAILED,
        DeployImageStatus.FAILED,
        DeployImageStatus.FAILED,
        DeployImageStatus.FAILED,
        DeployImageStatus.FAILED,
        DeployImageStatus.DONE,
        DeployImageStatus.DONE,
    ]
    errors = [r.error for r in rows]
    assert errors[1] is not None and errors[1].startswith("Cannot decode the image")
    assert errors[2] is not None and errors[2].startswith("Image too large")
    assert "pixels_per_image" in errors[2]
    assert errors[3] == "Row value 5000 falls outside this image's valid range of 0-239."
    assert errors[4] == "Column value 6000 falls outside this image's valid range of 0-319."
    assert errors[5] == (
        f"Failed to download from the URL {image_server.url('missing.jpg')!r}: HTTP 404 Not Found"
    )
    assert all("\n" not in (e or "") for e in errors)
    for row, (_, points) in zip(rows, images, strict=True):
        if row.status == DeployImageStatus.DONE:
            assert row.result is not None and len(row.result) == len(points)
            check_classifications(row.result, trained_project.labels)
    # The same image by URL and by path: the same classifications.
    assert rows[0].result is not None and rows[6].result is not None
    first = rows[0].result[0]
    by_path = deploy.classify_points(store, trained_project.classifier_id, _rgb(good), [(10, 10)])
    assert [c["label_id"] for c in first] == [c["label_id"] for c in by_path[0]]


def _rgb(path: Path) -> np.ndarray:
    from quadrat.io.images import load_rgb

    return load_rgb(path)


def test_scores_match_the_stored_features_path(
    trained_project: TrainedProject, store: Store
) -> None:
    """Deploying an image gives the scores the classifier gives its stored features."""
    with store.session() as session:
        info = queries.latest_classifier(session, 1)
        assert info is not None and info.id == trained_project.classifier_id
        estimator = loads_estimator(queries.classifier_model(session, info.id))
        image_id, _, path = queries.image_files(session, [1])[0]
        rows = queries.points_of_images(session, [image_id])
        matrix = load_features(session, info.extractor_key, image_ids=[image_id], dtype="stored")
    order = {int(p): i for i, p in enumerate(matrix.point_ids)}
    features = matrix.features[[order[point_id] for _, point_id, _, _ in rows]]
    labels, scores = top_k(estimator.predict_proba(features), estimator.classes_, k=5)
    points = [(int(r), int(c)) for _, _, r, c in rows]
    result = deploy.classify_points(store, info.id, _rgb(Path(path)), points)
    assert len(result) == len(points)
    label_ids = {row: api_id for row, (api_id, _, _) in _labels_by_row(store).items()}
    for ranked, want_labels, want_scores in zip(result, labels, scores, strict=True):
        np.testing.assert_allclose([c["score"] for c in ranked], want_scores, atol=1e-5)
        assert [c["label_id"] for c in ranked] == [label_ids[int(x)] for x in want_labels]


def _labels_by_row(store: Store) -> dict[int, tuple[int, str, str]]:
    with store.session() as session:
        model = jobs.deploy_model(session, 1)
    return model.labels


def test_a_rerun_keeps_images_already_done(
    trained_project: TrainedProject, image_server: ImageServer, store: Store, user_id: int
) -> None:
    name = trained_project.images[0].name
    images = [(image_server.url(name), [(10, 10)]) for _ in range(3)]
    job_id = new_job(store, user_id, trained_project.classifier_id, images)
    settings = settings_for(trained_project)
    stop = threading.Event()
    stop.set()  # stopped before the first image: the job is left unfinished
    assert run_job(store, settings, job_id, stop=stop) is False
    marker = [[{"label_id": -1, "label_name": "kept", "label_code": "kept", "score": 1.0}]]
    with store.session() as session:
        assert jobs.get_job(session, job_id).status == "in_progress"
        first = jobs.job_images(session, job_id)[0]
        jobs.set_image_result(session, first.id, marker)  # done before a crash
    assert run_job(store, settings, job_id) is True
    with store.session() as session:
        rows = jobs.job_images(session, job_id)
        info = jobs.get_job(session, job_id)
    assert rows[0].result == marker
    assert [r.status for r in rows] == [DeployImageStatus.DONE] * 3
    assert rows[1].result == rows[2].result != marker
    assert info.finished and info.attempts == 2
    assert run_job(store, settings, job_id) is True  # a finished job is left alone
    with store.session() as session:
        assert jobs.get_job(session, job_id).attempts == 2
        assert jobs.job_images(session, job_id)[1].result == rows[1].result


def test_a_job_started_too_often_fails_its_pending_images(
    trained_project: TrainedProject, image_server: ImageServer, store: Store, user_id: int
) -> None:
    name = trained_project.images[0].name
    job_id = new_job(
        store, user_id, trained_project.classifier_id, [(image_server.url(name), [(1, 1)])] * 2
    )
    with store.session() as session:
        for _ in range(MAX_JOB_ATTEMPTS):  # each start killed its worker
            jobs.start_job(session, job_id)
    assert run_job(store, settings_for(trained_project), job_id) is True
    with store.session() as session:
        rows = jobs.job_images(session, job_id)
        assert jobs.get_job(session, job_id).finished
    assert [r.status for r in rows] == [DeployImageStatus.FAILED] * 2
    assert rows[0].error is not None
    assert rows[0].error.startswith(f"Not classified: the job was started {MAX_JOB_ATTEMPTS} times")


def test_an_unusable_classifier_fails_the_job_in_one_line(
    trained_project: TrainedProject,
    image_server: ImageServer,
    store: Store,
    user_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(*_args: object) -> None:
        raise WeightsError("extractor 'x' needs its weights file w.pth (sha256 abc)")

    monkeypatch.setattr(deploy, "load_classifier", missing)
    name = trained_project.images[0].name
    job_id = new_job(
        store, user_id, trained_project.classifier_id, [(image_server.url(name), [(1, 1)])]
    )
    assert run_job(store, settings_for(trained_project), job_id) is True
    with store.session() as session:
        (row,) = jobs.job_images(session, job_id)
    assert row.error == (
        "The classifier cannot be used: extractor 'x' needs its weights file w.pth (sha256 abc)"
    )


def test_an_extractor_whose_weights_file_is_absent_is_refused(tmp_path: Path) -> None:
    config = {"name": "resnet50", "weights": str(tmp_path / "w.pth"), "weights_sha256": "ab12"}
    with pytest.raises(WeightsError, match=r"w\.pth \(sha256 ab12\), which is not on this"):
        deploy.rebuild_extractor("resnet50", config, "resnet50@ab12")


def test_points_outside_are_reported_as_coralnet_does() -> None:
    with pytest.raises(ValueError, match=r"^Row value 3000 falls outside .* range of 0-2999\.$"):
        deploy.check_points([(1, 1), (3000, 1)], 3000, 4000)
    with pytest.raises(ValueError, match=r"^Column value 4000 falls outside .* of 0-3999\.$"):
        deploy.check_points([(2999, 4000)], 3000, 4000)
    deploy.check_points([(0, 0), (2999, 3999)], 3000, 4000)


# ----------------------------------------------------------------------------- the queue


class _Planted:
    """A pickle that creates a file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (str(self.marker), "w"))


def _plant(queue_file: Path, data: bytes) -> None:
    with sqlite3.connect(queue_file) as connection:
        connection.execute(
            "insert into task (queue, data, priority) values (?, ?, 0)", (QUEUE_NAME, data)
        )


def test_the_queue_holds_json_and_refuses_a_pickle(
    trained_project: TrainedProject, tmp_path: Path
) -> None:
    settings = settings_for(trained_project)
    queue = JobQueue(settings)
    try:
        queue.enqueue(41)
        path = queue_path(settings)
        assert path is not None and path == Path(str(trained_project.db) + ".queue")
        with sqlite3.connect(path) as connection:
            (raw,) = connection.execute("select data from task").fetchone()
        message = json.loads(bytes(raw))["huey_message"]
        assert message["name"] == "quadrat.service.queue.deploy_job" and message["args"] == [41]
        assert queue.queued_job_ids() == [41]
        queue.huey.storage.flush_queue()

        marker = tmp_path / "unpickled"
        _plant(path, pickle.dumps(_Planted(marker)))
        _plant(path, json.dumps({"huey_message": {"id": "x", "name": "os.system"}}).encode())
        assert queue.queued_job_ids() == []  # listing does not unpickle either
        assert queue.run_once() is True  # the pickle: refused and dropped
        assert queue.run_once() is True  # a task name that is not ours: refused
        assert queue.run_once() is False  # empty
        assert not marker.exists()
    finally:
        queue.close()


def test_recover_queues_every_unfinished_job_once_and_workers_finish_them(
    trained_project: TrainedProject, image_server: ImageServer, store: Store, user_id: int
) -> None:
    settings = settings_for(trained_project)
    name = trained_project.images[1].name
    image = (image_server.url(name), [(3, 4), (50, 60)])
    ids = [new_job(store, user_id, trained_project.classifier_id, [image] * 2) for _ in range(3)]
    assert run_job(store, settings, ids[0]) is True
    with store.session() as session:
        jobs.start_job(session, ids[1])  # a worker took it, then was killed
    queue = JobQueue(settings)
    try:
        assert queue.recover() == ids[1:]
        assert queue.recover() == []  # already waiting: not queued twice
        assert queue.queued_job_ids() == ids[1:]
        stop = threading.Event()
        worker = threading.Thread(target=queue.run_worker, args=(stop,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with store.session() as session:
                if not jobs.unfinished_job_ids(session):
                    break
            time.sleep(0.2)
        stop.set()
        worker.join(60)
        assert not worker.is_alive()
    finally:
        queue.close()
    with store.session() as session:
        assert jobs.unfinished_job_ids(session) == []
        for job_id in ids:
            info = jobs.get_job(session, job_id)
            assert (info.successes, info.failures) == (2, 0)


def test_on_postgresql_the_queue_lives_in_the_project_database(
    postgres_url: str, survey_template: DemoSurvey, image_server: ImageServer, tmp_path: Path
) -> None:
    """The same jobs on PostgreSQL: huey's PostgresStorage tables, JSON only, recovery."""
    import psycopg

    from quadrat import Project

    with Project.create(postgres_url) as project:
        src = project.create_source("reef", labelset=survey_template.labelset_csv)
        src.import_annotations(survey_template.annotations_csv, survey_template.annotated_dir)
        src.extract("texture")
        outcome = src.train(kind="lr", force=True)
        assert outcome.trained and outcome.classifier_id is not None
        classifier_id = int(outcome.classifier_id)
    settings = ServiceSettings(database=postgres_url, allow_private_urls=True)
    assert queue_path(settings) is None
    store = Store.open(postgres_url)
    queue = JobQueue(settings)
    try:
        user = accounts.add_user(store, "ann", "a long enough password", role="viewer")
        name = sorted(survey_template.annotated_dir.glob("*.jpg"))[0].name
        url = (
            image_server.url(name) if name in image_server.files else image_server.url("noise.jpg")
        )
        ids = [new_job(store, user, classifier_id, [(url, [(3, 4)])] * 2) for _ in range(2)]
        queue.enqueue(ids[0])
        marker = tmp_path / "unpickled"
        dsn = "postgresql://" + postgres_url.split("://", 1)[1]
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(
                "insert into quadrat_queue_task (queue, data, priority) values (%s, %s, 0)",
                (QUEUE_NAME, pickle.dumps(_Planted(marker))),
            )
            row = connection.execute(
                "select data from quadrat_queue_task order by id limit 1"
            ).fetchone()
        assert row is not None
        (raw,) = row
        assert json.loads(bytes(raw))["huey_message"]["args"] == [ids[0]]
        assert queue.recover() == [ids[1]]
        ran = [queue.run_once() for _ in range(4)]
        assert ran[:3] == [True, True, True] and not marker.exists()
        with store.session() as session:
            assert jobs.unfinished_job_ids(session) == []
            for job_id in ids:
                info = jobs.get_job(session, job_id)
                assert (info.successes, info.failures) == (2, 0)
    finally:
        queue.close()
        store.close()


def test_recover_leaves_jobs_with_a_live_heartbeat_alone(
    trained_project: TrainedProject, store: Store, user_id: int
) -> None:
    settings = settings_for(trained_project)
    ids = [
        new_job(store, user_id, trained_project.classifier_id, [("x.jpg", [(1, 1)])])
        for _ in range(5)
    ]
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    here, now = socket.gethostname(), time.time()
    beats = {
        ids[0]: {"t": now, "host": here, "pid": os.getpid()},  # running here
        ids[1]: {"t": now, "host": here, "pid": int(dead.stdout)},  # its process is gone
        ids[2]: {"t": now, "host": "elsewhere", "pid": 1},  # running on another machine
        ids[3]: {"t": now - 3600, "host": "elsewhere", "pid": 1},  # that machine went silent
    }
    queue = JobQueue(settings)
    try:
        for job_id, beat in beats.items():
            queue.huey.storage.put_data(
                f"heartbeat:{job_id}", queue.huey.serializer.serialize(beat)
            )
        assert queue.recover(min_age=3600) == []  # every job is younger than that
        assert queue.recover() == [ids[1], ids[3], ids[4]]
        assert queue.last_beat(ids[0]) == beats[ids[0]]
    finally:
        queue.close()


def test_an_imported_classifier_deploys_like_the_original(
    trained_project: TrainedProject, store: Store, tmp_path: Path
) -> None:
    """A portable classifier file imported into another project gives the same scores."""
    from quadrat import Project

    with Project.open(trained_project.db) as project:
        exported = project.source("reef").export_classifier(tmp_path / "reef.classifier")
    with Project.create(tmp_path / "elsewhere.db") as other:
        imported = other.import_classifier(exported)
        pixels = _rgb(trained_project.images[0])
        points = [(10, 10), (120, 200), (239, 0)]
        here = deploy.classify_points(store, trained_project.classifier_id, pixels, points)
        there = deploy.classify_points(other, imported.id, pixels, points)
    for a, b in zip(here, there, strict=True):
        assert [c["label_id"] for c in a] == [c["label_id"] for c in b]
        assert [c["label_code"] for c in a] == [c["label_code"] for c in b]
        np.testing.assert_allclose([c["score"] for c in a], [c["score"] for c in b], atol=1e-6)
