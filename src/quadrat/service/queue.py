"""The deploy job queue: huey on the project's own database engine, carrying only job ids.

Why huey: a small, well-kept queue library (one dependency, no broker) with SQL storages
for both of quadrat's back ends: :class:`huey.SqliteStorage` for a SQLite project and
:class:`huey.PostgresStorage` (``FOR UPDATE SKIP LOCKED`` to hand each entry to one
worker, ``LISTEN/NOTIFY`` to wake idle ones) for PostgreSQL, so workers on several
machines share one queue with no Redis to run.

Where the queue lives: for a SQLite project in a sibling file ``<project>.queue`` (huey
takes an exclusive lock on its file for every dequeue; in its own file that never waits
on, or stalls, the project's writers, and the project holds only quadrat's tables); for
PostgreSQL in the project's database, in tables prefixed ``quadrat_queue_``.

The queue is not the record: a job's state lives in the project (:mod:`quadrat.store.jobs`),
so a lost queue entry (huey deletes an entry when a worker takes it; that worker may then
be killed) loses nothing: :meth:`JobQueue.recover` queues again every unfinished job that
is neither waiting nor running (a running job's worker writes a heartbeat every
:data:`HEARTBEAT_SECONDS`), and a run is idempotent (:mod:`quadrat.service.worker`).

Nothing from the queue is ever unpickled: huey's pickle serializer is replaced by
:class:`JSONSerializer`, which reads JSON or refuses the entry.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat.errors import InputError, QuadratError, missing_dependency

if TYPE_CHECKING:
    from huey import Huey

    from quadrat.service.settings import ServiceSettings
    from quadrat.store.project import Store

log = logging.getLogger(__name__)

#: The huey queue's name (a key in its tables).
QUEUE_NAME = "quadrat-deploy"
#: Table prefix of the queue in a PostgreSQL project.
POSTGRES_PREFIX = "quadrat_queue"
#: Seconds an idle SQLite worker waits before looking at the queue again.
POLL_SECONDS = 0.2
#: Seconds a worker waits after a job failed outside its images (the database away).
FAILURE_PAUSE = 1.0
#: Seconds between a running job's heartbeats (written to the queue's key-value table).
HEARTBEAT_SECONDS = 10.0
#: A job not queued whose last heartbeat is older than this is queued again (its worker,
#: here or on another machine, is gone).
STALE_SECONDS = 60.0
_HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    """Whether a process runs with this pid. A zombie does not: after ``kill -9`` of a
    server its workers exit but stay zombies until reaped, and a restart in that window
    must requeue their jobs at once, not after the periodic recovery."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): signal 0 is all we know
        return True
    # "pid (comm) S ...": the state follows the last ')' (comm may hold spaces and ')').
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class JSONSerializer:
    """huey's serializer interface (``serialize``/``deserialize``) in JSON, not pickle.

    A huey message is a namedtuple of plain values (ids, names, numbers, ``eta`` as a
    datetime, nested messages for pipelines); each is written as JSON with its field
    names. Anything else in the queue (a pickle planted in its table) is refused.
    """

    _MESSAGE = "huey_message"

    def serialize(self, data: Any) -> bytes:
        return json.dumps(self._encode(data), separators=(",", ":")).encode("utf-8")

    def deserialize(self, data: bytes | memoryview) -> Any:
        try:
            value = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(
                "a queue entry is not JSON; refused (the queue is never unpickled)"
            ) from exc
        return self._decode(value)

    def _encode(self, value: Any) -> Any:
        from huey.registry import Message

        if isinstance(value, Message):
            fields = {name: self._encode(getattr(value, name)) for name in Message._fields}
            if isinstance(value.eta, datetime):
                fields["eta"] = {"datetime": value.eta.isoformat()}
            if isinstance(value.expires_resolved, datetime):
                fields["expires_resolved"] = {"datetime": value.expires_resolved.isoformat()}
            return {self._MESSAGE: fields}
        if isinstance(value, tuple | list):
            return [self._encode(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self._encode(v) for k, v in value.items()}
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise TypeError(f"the deploy queue carries JSON values only, not {type(value).__name__}")

    def _decode(self, value: Any) -> Any:
        from huey.registry import Message

        if isinstance(value, dict) and set(value) == {self._MESSAGE}:
            fields = value[self._MESSAGE]
            if not isinstance(fields, dict) or not set(fields) <= set(Message._fields):
                raise InputError("a queue entry is not a huey message; refused")
            decoded = {k: self._decode(v) for k, v in fields.items()}
            for key in ("eta", "expires_resolved"):
                stamp = fields.get(key)
                if isinstance(stamp, dict):
                    decoded[key] = datetime.fromisoformat(str(stamp.get("datetime")))
            for key in ("on_complete", "on_error", "chord_config"):
                if decoded.get(key) is not None and not isinstance(decoded[key], Message):
                    raise InputError(f"a queue entry's {key} is not a message; refused")
            return Message(**decoded)
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        if isinstance(value, dict):
            return {k: self._decode(v) for k, v in value.items()}
        return value


def queue_location(database: str) -> tuple[str, dict[str, Any]]:
    """``("sqlite", {"filename": ...})`` or ``("postgres", {"dsn": ...})`` for a project."""
    from quadrat.store.project import database_url, sqlite_path

    url = database_url(database)
    path = sqlite_path(url)
    if path is not None:
        return "sqlite", {"filename": str(path) + ".queue"}
    scheme, _, rest = url.partition("://")
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        return "postgres", {"dsn": f"postgresql://{rest}"}
    raise InputError(
        f"the deploy queue runs on SQLite or PostgreSQL projects, not {scheme!r}",
        value=scheme,
        param="database",
    )


def _make_huey(database: str) -> Huey:
    try:
        from huey import Huey
        from huey.storage import PostgresStorage, SqliteStorage
    except ImportError as exc:
        raise missing_dependency("huey", "serve", purpose="the deploy job queue") from exc
    kind, options = queue_location(database)
    if kind == "sqlite":
        return Huey(
            QUEUE_NAME,
            results=False,
            serializer=JSONSerializer(),
            storage_class=SqliteStorage,
            timeout=30,
            **options,
        )
    return Huey(
        QUEUE_NAME,
        results=False,
        serializer=JSONSerializer(),
        storage_class=PostgresStorage,
        table_prefix=POSTGRES_PREFIX,
        read_timeout=POLL_SECONDS * 5,
        **options,
    )


class JobQueue:
    """Deploy jobs waiting for a worker: enqueue ids, recover after a crash, run workers."""

    def __init__(self, settings: ServiceSettings, *, store: Store | None = None) -> None:
        self.settings = settings
        self._store = store
        self._own_store = store is None
        self.huey = _make_huey(str(settings.database))
        self._task = self.huey.task(name="deploy_job")(self._run)
        self._stop: threading.Event | None = None
        #: Where a worker process shows the job it runs (a shared ``multiprocessing.Value``
        #: set by :mod:`quadrat.service.server`), so a dead worker's job is queued again.
        self.current_job: Any = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from quadrat.store.project import Store

            self._store = Store.open(self.settings.database)
        return self._store

    def enqueue(self, job_id: int) -> None:
        """Queue a job (already created in the project) for the next free worker."""
        self._task(int(job_id))

    def queued_job_ids(self) -> list[int]:
        """Ids of the jobs waiting in the queue, in order (entries not ours are skipped)."""
        ids = []
        for task in self.huey.pending():
            args = task.args
            if len(args) == 1 and isinstance(args[0], int):
                ids.append(int(args[0]))
        return ids

    def recover(self, *, min_age: float = 0.0, stale: float = STALE_SECONDS) -> list[int]:
        """Queue again every unfinished job that nobody is running or waiting for; their ids.

        A job counts as running while its worker's heartbeat (every
        :data:`HEARTBEAT_SECONDS`) is younger than ``stale`` and, when that worker was on
        this machine, its process is alive: so a restarted server queues at once the jobs
        its killed workers held, and leaves alone those that workers on other machines run.
        ``min_age``: skip jobs created less than that many seconds ago (a request that
        has stored its job and is about to queue it).
        """
        from quadrat.store import jobs

        with self.store.session() as session:
            unfinished = jobs.unfinished_job_ids(session)
            if min_age > 0:
                now = time.time()
                unfinished = [
                    job_id
                    for job_id in unfinished
                    if now - jobs.get_job(session, job_id).created_at.timestamp() >= min_age
                ]
        waiting = set(self.queued_job_ids())
        again = [
            job_id
            for job_id in unfinished
            if job_id not in waiting and not self._running(job_id, stale)
        ]
        for job_id in again:
            self.enqueue(job_id)
        if again:
            log.info("queued %d unfinished deploy job(s) again: %s", len(again), again)
        return again

    # ------------------------------------------------------------------ heartbeats

    @staticmethod
    def _beat_key(job_id: int) -> str:
        return f"heartbeat:{int(job_id)}"

    def beat(self, job_id: int) -> None:
        """Record that this process is running ``job_id`` now."""
        value = {"t": time.time(), "host": _HOST, "pid": os.getpid()}
        self.huey.storage.put_data(self._beat_key(job_id), self.huey.serializer.serialize(value))

    def last_beat(self, job_id: int) -> dict[str, Any] | None:
        """The job's latest heartbeat (``t``, ``host``, ``pid``), None when it has none."""
        from huey.constants import EmptyData

        data = self.huey.storage.peek_data(self._beat_key(job_id))
        if data is EmptyData:
            return None
        try:
            value = self.huey.serializer.deserialize(data)
        except InputError:
            return None
        return value if isinstance(value, dict) else None

    def _running(self, job_id: int, stale: float) -> bool:
        beat = self.last_beat(job_id)
        if beat is None or not isinstance(beat.get("t"), int | float):
            return False
        if beat.get("host") == _HOST and not _pid_alive(int(beat.get("pid") or 0)):
            return False
        return time.time() - float(beat["t"]) < stale

    def _run(self, job_id: int) -> None:
        from quadrat.service.worker import run_job

        if self.current_job is not None:
            self.current_job.value = int(job_id)
        finished = threading.Event()

        def pulse() -> None:
            while not finished.wait(HEARTBEAT_SECONDS):
                try:
                    self.beat(job_id)
                except Exception as exc:  # the queue's database away for a moment
                    log.warning("deploy job %s: heartbeat not written: %s", job_id, exc)

        self.beat(job_id)
        heart = threading.Thread(target=pulse, name=f"heartbeat-{job_id}", daemon=True)
        heart.start()
        try:
            done = run_job(self.store, self.settings, int(job_id), stop=self._stop)
        except Exception:
            # The project was away (busy, connection lost): the job is intact; try later.
            log.exception("deploy job %s failed outside its images; queued again", job_id)
            time.sleep(FAILURE_PAUSE)
            done = False
        finally:
            finished.set()
            heart.join()
        if not done:
            self.enqueue(job_id)
        self.huey.storage.delete_data(self._beat_key(job_id))
        if self.current_job is not None:
            self.current_job.value = 0

    def run_once(self) -> bool:
        """Take one entry from the queue and run it; False when the queue was empty.

        An entry that is not quadrat's JSON (see :class:`JSONSerializer`) is dropped with a
        warning, never run.
        """
        try:
            task = self.huey.dequeue()
        except (InputError, TypeError, ValueError, KeyError) as exc:
            log.warning("refused a deploy queue entry: %s", exc)
            return True
        except Exception as exc:
            if "not found in TaskRegistry" not in str(exc):
                raise
            log.warning("refused a deploy queue entry: %s", exc)
            return True
        if task is None:
            return False
        self.huey.execute(task)
        return True

    def run_worker(self, stop: threading.Event | None = None) -> None:
        """Run jobs until ``stop`` is set (blocking); a job stopped half-way is queued again."""
        self._stop = stop if stop is not None else threading.Event()
        log.info("deploy worker %d started", os.getpid())
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except QuadratError as exc:
                log.warning("deploy queue unavailable: %s", exc)
                ran = False
            if not ran:
                self._stop.wait(POLL_SECONDS)
        log.info("deploy worker %d stopped", os.getpid())

    def close(self) -> None:
        """Close the queue's connection and the project this queue opened."""
        self.huey.storage.close()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None


def queue_path(settings: ServiceSettings) -> Path | None:
    """The SQLite queue file of a SQLite project (None for PostgreSQL)."""
    kind, options = queue_location(str(settings.database))
    return Path(options["filename"]) if kind == "sqlite" else None


__all__ = [
    "HEARTBEAT_SECONDS",
    "POSTGRES_PREFIX",
    "QUEUE_NAME",
    "STALE_SECONDS",
    "JSONSerializer",
    "JobQueue",
    "queue_location",
    "queue_path",
]
