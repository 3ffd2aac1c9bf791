"""``serve``: one process for HTTP (uvicorn) and ``settings.workers`` processes for jobs.

Start-up: open the project (creating or upgrading its tables), queue again every
unfinished job (:meth:`JobQueue.recover`: a server killed with ``kill -9`` left some in
progress), start the workers, then serve HTTP until SIGINT/SIGTERM. Workers are separate
processes (``spawn``: nothing of the server's threads, engines or sockets is inherited)
so a CPU-bound classification never stalls the API, and one that dies (out of memory)
takes no request with it: the supervisor thread starts a new one and queues its job again.
Every :data:`RECOVER_SECONDS` it also queues unfinished jobs that nobody waits for or runs
(no fresh heartbeat: a worker on another machine died, or a request stored its job and
could not queue it).
On Linux a worker dies with the server (``PR_SET_PDEATHSIG``), elsewhere it notices
within a second; either way no orphan keeps running jobs a restarted server also runs.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quadrat.service.settings import ServiceSettings
    from quadrat.store.project import Store

log = logging.getLogger(__name__)

#: Seconds the server waits for its workers to finish their current image on shutdown.
STOP_GRACE = 10.0
#: Seconds between the supervisor's checks on its workers.
SUPERVISE_SECONDS = 0.5
#: Seconds between the server's looks for unfinished jobs nobody runs or waits for.
RECOVER_SECONDS = 30.0
#: Seconds between a worker's checks on the server (its stop flag, whether it is alive).
WATCH_SECONDS = 0.5


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphaned workers)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _share_cores(workers: int) -> None:
    """Give each of ``workers`` processes its share of the cores (an explicit setting wins).

    Set before numpy or torch is imported in this fresh (spawned) process: N workers each
    running a thread per core would oversubscribe the machine N times.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = str(max(1, (cores or 1) // max(1, workers)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, share)


def worker_main(settings: ServiceSettings, parent: int, current: Any, stop: Any) -> None:
    """A worker process: run jobs until the server sets ``stop`` (or dies).

    ``current`` and ``stop`` are lock-free shared integers: the job being run, and 1 when
    the server asks its workers to stop.
    """
    from quadrat.service.queue import JobQueue

    _die_with_parent(parent)
    _share_cores(settings.workers)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(message)s")
    local_stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        local_stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch() -> None:  # the server's stop flag, or the server gone
        while not local_stop.wait(WATCH_SECONDS):
            if stop.value or os.getppid() != parent:
                local_stop.set()

    threading.Thread(target=watch, daemon=True).start()
    queue = JobQueue(settings)
    queue.current_job = current
    try:
        queue.run_worker(local_stop)
    finally:
        queue.close()


class WorkerPool:
    """``settings.workers`` worker processes, restarted when one dies."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._ctx = multiprocessing.get_context("spawn")
        # Shared flags without locks: a worker killed while holding a lock would leave it
        # held, and the server would hang on it at shutdown.
        self._stop = self._ctx.Value("b", 0, lock=False)
        self._slots: list[tuple[SpawnProcess, Any]] = []
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _start_one(self, current: Any | None = None) -> tuple[SpawnProcess, Any]:
        current = current if current is not None else self._ctx.Value("q", 0, lock=False)
        process = self._ctx.Process(
            target=worker_main,
            args=(self.settings, os.getpid(), current, self._stop),
            name="quadrat-worker",
            daemon=False,
        )
        process.start()
        return process, current

    def start(self) -> None:
        self._slots = [self._start_one() for _ in range(self.settings.workers)]
        self._supervisor = threading.Thread(
            target=self._supervise, name="quadrat-supervisor", daemon=True
        )
        self._supervisor.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._slots if p.pid is not None]

    def _supervise(self) -> None:
        from quadrat.service.queue import JobQueue

        queue: JobQueue | None = None
        next_recovery = time.monotonic() + RECOVER_SECONDS
        while not self._closing.wait(SUPERVISE_SECONDS):
            if time.monotonic() >= next_recovery:
                next_recovery = time.monotonic() + RECOVER_SECONDS
                try:  # jobs whose worker vanished (another machine's, or a lost enqueue)
                    queue = queue or JobQueue(self.settings)
                    queue.recover(min_age=RECOVER_SECONDS)
                except Exception:
                    log.exception("periodic recovery of unfinished jobs failed")
            for i, (process, current) in enumerate(self._slots):
                if process.is_alive() or self._closing.is_set():
                    continue
                job_id = int(current.value)
                log.warning(
                    "worker %s exited (%s) running job %s; starting another",
                    process.pid,
                    process.exitcode,
                    job_id or "none",
                )
                if job_id:
                    try:
                        queue = queue or JobQueue(self.settings)
                        queue.enqueue(job_id)
                    except Exception:
                        log.exception("could not queue job %s again", job_id)
                    current.value = 0
                self._slots[i] = self._start_one(current)
        if queue is not None:
            queue.close()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask every worker to stop after its current image, then make sure they did."""
        self._closing.set()
        self._stop.value = 1
        deadline = time.monotonic() + grace
        for process, _ in self._slots:
            process.join(max(0.0, deadline - time.monotonic()))
        for process, _ in self._slots:
            if process.is_alive():
                log.warning("worker %s did not stop in %g s; killing it", process.pid, grace)
                process.kill()
                process.join(5)
        if self._supervisor is not None:
            self._supervisor.join(5)


# ----------------------------------------------------------------------- retention

#: Seconds between the server's deletions of expired jobs and unused uploads (and one
#: shortly after start-up).
CLEANUP_SECONDS = 3600.0
#: Seconds after start-up before the first cleanup (recovery and workers come first).
FIRST_CLEANUP_SECONDS = 60.0


@dataclass(frozen=True)
class Cleanup:
    """What one cleanup deleted: job ids and ``upload:<sha256>`` names."""

    jobs: list[int]
    uploads: list[str]


def clean_up(settings: ServiceSettings, store: Store, now: datetime | None = None) -> Cleanup:
    """Delete jobs finished more than ``settings.job_retention_days`` ago with their results
    (a batch per transaction), then uploads no unfinished job names that were last
    uploaded more than ``settings.upload_retention_hours`` ago."""
    from quadrat.service import uploads as kept
    from quadrat.store import jobs as job_rows

    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.job_retention_days)
    deleted: list[int] = []
    while True:
        with store.session() as session:
            batch = job_rows.delete_finished_jobs(session, cutoff, limit=job_rows.DELETE_BATCH)
        deleted += batch
        if len(batch) < job_rows.DELETE_BATCH:
            break
    with store.session() as session:
        in_use = job_rows.image_names_in_use(session, kept.UPLOAD_PREFIX)
    return Cleanup(deleted, kept.delete_unused_uploads(settings, in_use, now=now.timestamp()))


class Janitor:
    """A thread that runs :func:`clean_up` every ``period`` seconds until stopped."""

    def __init__(
        self,
        settings: ServiceSettings,
        store: Store,
        period: float = CLEANUP_SECONDS,
        first: float = FIRST_CLEANUP_SECONDS,
    ) -> None:
        self.settings, self.store, self.period, self.first = settings, store, period, first
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quadrat-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            wait = self.period
            try:
                done = clean_up(self.settings, self.store)
            except Exception:  # the database away for a moment: next period
                log.exception("cleanup of expired jobs and uploads failed")
                continue
            self.runs += 1
            if done.jobs or done.uploads:
                log.info("cleanup: %d expired job(s), %d upload(s) deleted",
                         len(done.jobs), len(done.uploads))  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)


def _noted(signum: int, _frame: object) -> None:
    log.info("%s: stopping the workers", signal.Signals(signum).name)


#: Seconds an idle keep-alive connection stays open. Longer than the poll interval of
#: CoralNet clients (5-30 s): with uvicorn's default of 5 s, a client polling every 5 s
#: reuses a connection the server is closing and gets "connection reset" (seen with 20
#: clients in benchmarks/serve_load.py). nginx's default is 75 s.
KEEP_ALIVE_SECONDS = 75


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service until SIGINT/SIGTERM: recover jobs, start workers, serve HTTP."""
    try:
        import uvicorn
    except ImportError as exc:
        from quadrat.errors import missing_dependency

        raise missing_dependency("uvicorn", "serve", purpose="quadrat serve") from exc
    from quadrat.service.app import create_app
    from quadrat.service.queue import JobQueue, queue_location
    from quadrat.store.project import Store

    queue_location(str(settings.database))  # SQLite or PostgreSQL, before anything opens
    store = Store.open(settings.database)
    queue = JobQueue(settings, store=store)
    pool = WorkerPool(settings)
    janitor = Janitor(settings, store)
    try:
        again = queue.recover()
        log.info("%d unfinished job(s) queued again", len(again))
        app = create_app(settings, queue=queue, store=store)
        pool.start()
        log.info("workers started: %s", pool.pids)
        janitor.start()
        # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again under the
        # handlers it found: these, so that the workers are stopped below, not orphaned.
        previous = {sig: signal.signal(sig, _noted) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_level="info",
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        janitor.stop()
        pool.stop()
        with contextlib.suppress(Exception):
            queue.close()
        store.close()


__all__ = [
    "CLEANUP_SECONDS",
    "STOP_GRACE",
    "Cleanup",
    "Janitor",
    "WorkerPool",
    "clean_up",
    "serve",
    "worker_main",
]
