"""Retraining as a job: one run per source at a time across processes (a lease in the
project's ``meta`` table), a dead runner's run taken over, Train now refused clearly while
a training runs, and a queued run kept in the project."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quadrat.service.ui import state as ui_state
from quadrat.service.ui.state import TrainingStatus, dump_record, read_record, record_key
from quadrat.service.ui.training import MAX_ATTEMPTS, Trainer
from quadrat.store import annotate
from tests.ui.conftest import UiServer

requests = pytest.importorskip("requests")


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    """An empty project, on SQLite and on PostgreSQL."""
    import quadrat

    project = quadrat.Project.create(database_url)
    yield project.store
    project.close()


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Trainer._run replaced by a short fake that records (runner token, source)."""
    calls: list[tuple[str, int]] = []

    def run(self: Trainer, source_id: int, status: TrainingStatus) -> None:
        calls.append((self.token, source_id))
        time.sleep(0.2)
        status.trained, status.message = True, "fake training"

    monkeypatch.setattr(Trainer, "_run", run)
    return calls


def put_record(store: Any, source_id: int, status: TrainingStatus | None) -> None:
    with store.session() as session:
        old = annotate.meta_value(session, record_key(source_id))
        new = None if status is None else dump_record(status)
        assert annotate.swap_meta_value(session, record_key(source_id), old, new)


def wait_state(store: Any, source_id: int, states: tuple[str, ...], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read_record(store, source_id)
        if found is not None and found.state in states:
            return found
        time.sleep(0.05)
    raise AssertionError(f"source {source_id} never reached {states}: {found}")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_swap_meta_value_is_compare_and_set(store: Any) -> None:
    with store.session() as s:
        assert annotate.swap_meta_value(s, "lease:1", None, "a")
        assert not annotate.swap_meta_value(s, "lease:1", None, "b")  # there already
        assert not annotate.swap_meta_value(s, "lease:1", "b", "c")  # not what is there
        assert annotate.swap_meta_value(s, "lease:1", "a", "c")
        assert annotate.meta_items(s, "lease:") == {"lease:1": "c"}
        assert annotate.meta_items(s, "lease_") == {}  # "_" is not a wildcard
        assert annotate.swap_meta_value(s, "lease:1", "c", None)
        assert annotate.meta_value(s, "lease:1") is None


def test_of_many_processes_claiming_one_run_exactly_one_wins(store: Any) -> None:
    trainers = [Trainer(store) for _ in range(6)]
    put_record(store, 1, TrainingStatus(state="queued", forced=True, requested_by="ada"))
    start = threading.Barrier(len(trainers))
    won: list[Any] = []

    def claim(trainer: Trainer) -> None:
        start.wait()
        won.append(trainer._claim(1, None))

    threads = [threading.Thread(target=claim, args=(t,)) for t in trainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    [winner] = [w for w in won if w is not None]
    assert winner.state == "running" and winner.requested_by == "ada" and winner.attempt == 1
    assert read_record(store, 1).owner == winner.owner  # type: ignore[union-attr]


def test_train_now_while_one_waits_or_runs_is_refused(
    store: Any, fake_runs: list[tuple[str, int]]
) -> None:
    first, second = Trainer(store), Trainer(store)
    first.close()  # no thread here: the run stays queued until claimed below
    second.close()
    asked = first.request(1, forced=True, requested_by="ada")
    assert asked.queued and asked.status.state == "queued"
    again = second.request(1, forced=True, requested_by="bob")
    assert not again.queued and "queued already" in str(again.reason)
    assert first._claim(1, None) is not None
    busy = second.request(1, forced=True, requested_by="bob")
    assert not busy.queued
    assert "running since" in str(busy.reason) and "Train now by ada" in str(busy.reason)
    # New points' suggestions are not refused: they run after the training.
    assert second.request(1, forced=False, suggest=True).queued
    first._execute(1, read_record(store, 1))  # type: ignore[arg-type]
    after = read_record(store, 1)
    assert after is not None and after.state == "queued" and after.suggest
    assert "after the previous run (done: fake training)" in str(after.message)
    assert fake_runs == [(first.token, 1)]


def test_two_trainers_asked_at_once_train_once(
    store: Any, fake_runs: list[tuple[str, int]]
) -> None:
    trainers = [Trainer(store), Trainer(store)]
    try:
        answers = [t.request(7, forced=True, requested_by=f"u{i}") for i, t in enumerate(trainers)]
        assert [a.queued for a in answers] == [True, False]
        assert trainers[0].wait_idle(30)
        assert [source for _token, source in fake_runs] == [7]
        done = read_record(store, 7)
        assert done is not None and done.state == "done" and done.trained
        assert done.started_at and done.finished_at and done.runner
    finally:
        for trainer in trainers:
            trainer.close()


def test_a_dead_or_silent_runner_does_not_hold_the_source(
    store: Any, fake_runs: list[tuple[str, int]]
) -> None:
    now = time.time()
    alive_elsewhere = TrainingStatus(
        state="running", forced=True, requested_by="ada", runner="elsewhere:12", beat=now
    )
    put_record(store, 1, alive_elsewhere)
    silent = TrainingStatus(state="running", attempt=1, runner="elsewhere:12", beat=now - 600)
    put_record(store, 2, silent)
    gone = f"{ui_state.HOST}:{dead_pid()}"
    put_record(store, 3, TrainingStatus(state="running", attempt=1, runner=gone, beat=now))
    trainer = Trainer(store)
    try:
        assert trainer.status(1).state == "running"  # a live runner elsewhere keeps it
        for source_id in (2, 3):  # silent for too long; its process gone on this machine
            shown = trainer.status(source_id)
            assert shown.state == "queued" and "stopped without finishing" in str(shown.message)
        for source_id in (2, 3):
            done = wait_state(store, source_id, ("done",))
            assert done.attempt == 2 and done.runner == trainer.runner
        assert sorted(s for _t, s in fake_runs) == [2, 3]
        assert read_record(store, 1).state == "running"  # type: ignore[union-attr]
    finally:
        trainer.close()


def test_a_run_whose_runner_keeps_dying_fails_after_max_attempts(store: Any) -> None:
    put_record(
        store,
        4,
        TrainingStatus(state="running", attempt=MAX_ATTEMPTS, runner="elsewhere:1", beat=1.0),
    )
    trainer = Trainer(store)
    trainer.close()
    assert trainer._claim(4, None) is None
    failed = read_record(store, 4)
    assert (
        failed is not None
        and failed.state == "failed"
        and "not started again" in str(failed.message)
    )
    assert trainer.request(4, forced=True, requested_by="ada").queued  # Train now again


CHILD = """
import pathlib, sys, time
from quadrat.service.ui.training import Trainer
from quadrat.store.project import Store
path, go, mode = sys.argv[1:4]
if mode == "hang":
    Trainer._run = lambda self, source_id, status: time.sleep(600)
store = Store.open(path)
trainer = Trainer(store)
print("ready", flush=True)
while not pathlib.Path(go).exists():
    time.sleep(0.01)
asked = trainer.request(1, forced=True, requested_by=mode)
print("queued" if asked.queued else "refused: " + str(asked.reason), flush=True)
print("idle" if trainer.wait_idle(120) else "busy", flush=True)
trainer.close()
store.close()
"""


def _children(project: Path, go: Path, modes: list[str]) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(project), str(go), mode],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for mode in modes
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    go.touch()
    return children


def test_two_processes_asked_to_train_one_source_train_it_once(
    ui_project_template: Path, tmp_path: Path
) -> None:
    from quadrat.store import queries
    from quadrat.store.project import Store

    project = tmp_path / "survey.db"
    shutil.copy2(ui_project_template, project)
    children = _children(project, tmp_path / "go", ["one", "two"])
    outputs = [child.communicate(timeout=180)[0].split("\n") for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    answers = sorted(out[0] for out in outputs)
    assert answers[0] == "queued" and answers[1].startswith("refused: A "), outputs
    assert all(out[1] == "idle" for out in outputs), outputs
    store = Store.open(project)
    try:
        with store.session() as session:
            assert len(queries.classifier_history(session, 1)) == 2  # the template's + one
        done = read_record(store, 1)
        assert done is not None and done.state == "done" and done.trained and done.forced
    finally:
        store.close()


def test_a_runner_killed_mid_run_is_taken_over(
    ui_project_template: Path, tmp_path: Path, fake_runs: list[tuple[str, int]]
) -> None:
    from quadrat.store.project import Store

    project = tmp_path / "survey.db"
    shutil.copy2(ui_project_template, project)
    [child] = _children(project, tmp_path / "go", ["hang"])
    store = Store.open(project)
    trainer = Trainer(store)
    try:
        running = wait_state(store, 1, ("running",))
        assert running.runner == f"{ui_state.HOST}:{child.pid}"
        assert trainer.status(1).state == "running"  # alive: nobody else may run it
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        assert trainer.status(1).state == "queued"  # its process is gone: run it again
        done = wait_state(store, 1, ("done",))
        assert done.attempt == 2 and done.forced and done.requested_by == "hang"
        assert fake_runs == [(trainer.token, 1)]
    finally:
        if child.poll() is None:
            child.kill()
        trainer.close()
        store.close()


def test_train_now_over_http_answers_409_while_a_training_runs(ui_server: UiServer) -> None:
    from tests.ui.test_api import detail, signed_in

    running = TrainingStatus(
        state="running",
        forced=True,
        requested_by="bob",
        started_at="2026-12-03T10:00:00+00:00",
        runner="other-host:4242",
        beat=time.time() + 3600,  # keeps beating for the test's length
    )
    put_record(ui_server.store, 1, running)
    try:
        admin, csrf = signed_in(ui_server, "ada")
        reply = admin.post(
            ui_server.url + "/ui/api/sources/1/train", headers={"X-CSRF-Token": csrf}
        )
        assert reply.status_code == 409, reply.text
        assert "running since 2026-12-03 10:00:00 UTC on other-host:4242" in detail(reply)
        assert "Train now by bob" in detail(reply)
        shown = admin.get(ui_server.url + "/ui/api/sources/1/training").json()["training"]
        assert shown["state"] == "running" and shown["started_at"] == running.started_at
        assert "owner" not in shown and "beat" not in shown
    finally:
        put_record(ui_server.store, 1, None)


def test_a_server_that_starts_runs_what_waits_without_a_request(
    store: Any, fake_runs: list[tuple[str, int]]
) -> None:
    """A run queued (or left running by a server that died) starts when the next server
    starts, not at the first page someone opens; the server stops its thread on the way out."""
    from fastapi.testclient import TestClient

    from quadrat.service.app import create_app
    from quadrat.service.settings import ServiceSettings
    from tests.ui.conftest import _NoQueue

    put_record(store, 1, TrainingStatus(state="queued", forced=True, requested_by="ada"))
    gone = f"{ui_state.HOST}:{dead_pid()}"
    put_record(store, 2, TrainingStatus(state="running", attempt=1, runner=gone, beat=time.time()))
    put_record(store, 3, TrainingStatus(state="done", trained=True))
    app = create_app(ServiceSettings(database=store.url), queue=_NoQueue(), store=store)
    trainer = app.state.quadrat_ui.trainer
    with TestClient(app):  # runs the lifespan: start-up, then shut-down
        assert wait_state(store, 1, ("done",)).requested_by == "ada"
        assert wait_state(store, 2, ("done",)).attempt == 2
    assert sorted(s for _t, s in fake_runs) == [1, 2]  # the finished run is left alone
    assert trainer._thread is None or not trainer._thread.is_alive()
    assert not trainer.resume()  # nothing waits now
