"""Retraining from the browser: CoralNet's policy after confirmations, and "Train now",
one run per source at a time across every server process on the project.

Why a lease in the project, not the deploy queue: the queue (:mod:`quadrat.service.queue`)
carries deploy job ids and runs only where ``quadrat serve`` started workers, while the UI
also runs without one. A source's run is one record in the ``meta`` table (key
``ui_training:<source id>``, JSON; :mod:`.state`), changed only by compare-and-set
(:func:`quadrat.store.annotate.swap_meta_value`, atomic on SQLite and PostgreSQL; no schema
change): its state (queued, running, done, failed), who asked, when it started, its
outcome, and while it runs the lease: the runner (host:pid) and a heartbeat every
:data:`HEARTBEAT_SECONDS`. A process claims a queued run by swapping it to ``running``
under its name; of two only one swap succeeds. A runner that dies stops beating: after
:data:`~.state.STALE_SECONDS` (at once if its process on this machine is gone) the next
process to look runs it again, at most :data:`MAX_ATTEMPTS` times. A queued run survives
a restart. Each process has one daemon thread, started on demand (a request, a
confirmation, a status read that finds a queued or stale run, or the server's start when
a run waits), that polls the records
every :data:`POLL_SECONDS` while any is queued or running and stops after
:data:`IDLE_SECONDS` idle.

Confirmations only *nudge*: the policy check runs in the thread once the keys pause for
:data:`CHECK_QUIET_SECONDS` (at most :data:`CHECK_MAX_DELAY_SECONDS` after the first),
reading only; a due check claims the lease, and ``Source.train`` checks the policy again
under it, so two processes never train the same round. An interrupted run stores no
classifier (one is stored in one transaction at its end); why each classifier was accepted
or rejected comes from the stored history (:func:`verdicts`). Generate points asks for a
run that extracts the new points' features and classifies them.

Why this module is long: the lease's state machine (request, claim, heartbeat, release,
takeover of a dead runner) is one idea; split, each half would need the other's rules.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quadrat.errors import QuadratError, StateError
from quadrat.service.ui.state import (
    FINISHED,
    HOST,
    RECORD_PREFIX,
    TrainingStatus,
    is_stale,
    load_record,
    read_record,
    update_record,
    verdicts,
    when_text,
)

if TYPE_CHECKING:
    from quadrat.workflow.train import PolicyProgress

log = logging.getLogger(__name__)

#: Seconds between a running training's heartbeats.
HEARTBEAT_SECONDS = 10.0
#: Starts of one run (its runner died each time) before it is failed instead.
MAX_ATTEMPTS = 3
#: Seconds between the thread's looks at the records while anything is queued or running.
POLL_SECONDS = 5.0
#: Seconds the thread lingers with nothing to do before it stops (restarted on demand).
IDLE_SECONDS = 60.0
#: The policy check runs once confirmations pause this long...
CHECK_QUIET_SECONDS = 2.0
#: ...and at the latest this long after the first confirmation it follows.
CHECK_MAX_DELAY_SECONDS = 30.0


@dataclass(frozen=True)
class Requested:
    """The answer to a request: queued (or merged into a waiting run), or why not."""

    queued: bool
    status: TrainingStatus
    reason: str | None = None


def _who(status: TrainingStatus) -> str:
    if status.forced:
        return f"Train now by {status.requested_by or 'an admin'}"
    return "Generate points" if status.suggest else "CoralNet's policy"


class Trainer:
    """Trains sources in a background thread of this process, under the project's
    per-source lease (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        self.store = store  # quadrat.store.project.Store
        self.runner = f"{HOST}:{os.getpid()}"
        self.token = f"{self.runner}:{uuid.uuid4().hex[:12]}"
        #: source id -> (first, latest) nudge since its last policy check (monotonic).
        self._checks: dict[int, tuple[float, float]] = {}
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, source_id: int) -> TrainingStatus | None:
        return read_record(self.store, source_id)

    def _update(
        self, source_id: int, change: Callable[[TrainingStatus | None], TrainingStatus | None]
    ) -> TrainingStatus | None:
        return update_record(self.store, source_id, change)

    # ------------------------------------------------------------------------- the API

    def status(self, source_id: int) -> TrainingStatus:
        """The source's latest run; a pending policy check here shows as queued. Starts
        this process's thread when a run waits (queued, or its runner gone)."""
        status = self.record(source_id) or TrainingStatus()
        if is_stale(status):
            status = replace(
                status,
                state="queued",
                message=f"the run started {when_text(status.started_at)} on {status.runner} "
                "stopped without finishing; it will run again",
            )
            self._start()
        elif status.state == "queued":
            self._start()
        with self._lock:
            checking = source_id in self._checks or source_id in self._running
        if checking and status.state in FINISHED:
            status = TrainingStatus(state="queued", message="policy check after confirmations")
        return status

    def request(
        self,
        source_id: int,
        *,
        forced: bool,
        requested_by: str | None = None,
        suggest: bool = False,
    ) -> Requested:
        """Queue a run for the source in the project, for whichever process claims it
        first. Not queued again when an equal or stronger one waits or when a forced
        training runs (``reason`` says since when and for whom); a forced or suggesting
        request upgrades a waiting one. Never waits for the run."""
        refused: list[str] = []

        def change(current: TrainingStatus | None) -> TrainingStatus | None:
            refused.clear()
            fresh = TrainingStatus(
                state="queued",
                forced=forced,
                suggest=suggest,
                requested_by=requested_by,
                requested_at=_now(),
            )
            if current is None or current.state in FINISHED or is_stale(current):
                return fresh
            if current.state == "queued":
                if (forced and not current.forced) or (suggest and not current.suggest):
                    return replace(
                        current,
                        forced=current.forced or forced,
                        suggest=current.suggest or suggest,
                        requested_by=requested_by if forced else current.requested_by,
                    )
                refused.append(
                    f"A run of this source ({_who(current)}) is queued already since "
                    f"{when_text(current.requested_at)}."
                )
                return None
            # running, with a live runner
            trains = current.forced or not current.suggest
            if forced and trains:
                refused.append(
                    f"A training of this source ({_who(current)}) is running since "
                    f"{when_text(current.started_at)} on {current.runner}; its outcome shows "
                    "here when it ends."
                )
                return None
            waiting = dict(current.next or {})
            merged = {
                "forced": bool(waiting.get("forced")) or forced,
                "suggest": bool(waiting.get("suggest")) or suggest,
                "requested_by": requested_by if forced else waiting.get("requested_by"),
            }
            if merged == waiting:
                refused.append("A run after the running one is queued already.")
                return None
            return replace(current, next=merged)

        new = self._update(source_id, change)
        self._wake.set()  # before _start: a thread about to stop sees it and stays
        self._start()
        status = new if new is not None else (self.record(source_id) or TrainingStatus())
        return Requested(new is not None, status, refused[0] if refused else None)

    def nudge(self, source_id: int) -> None:
        """After a confirmation: check the policy in the background once the keys pause.
        Memory only (a check lost in a restart is made at the next confirmation)."""
        now = time.monotonic()
        with self._lock:
            waiting = self._checks.get(source_id)
            self._checks[source_id] = (now if waiting is None else waiting[0], now)
        if waiting is None:
            self._wake.set()  # the thread's next wait ends at this check's time
        self._start()

    def resume(self) -> bool:
        """At server start: start the thread if a run waits in the project (queued, or left
        running by a process that stopped), so it runs without waiting for a request.
        True when one does."""
        from quadrat.store import annotate

        with self.store.session() as session:
            records = annotate.meta_items(session, RECORD_PREFIX)
        waiting = any(
            (s := load_record(t)) is not None and (s.state == "queued" or is_stale(s))
            for t in records.values()
        )
        if waiting:
            self._start()
        return waiting

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending here nor queued or running in the project."""
        from quadrat.store import annotate

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._checks or self._running)
            if not busy:
                with self.store.session() as session:
                    records = annotate.meta_items(session, RECORD_PREFIX)
                busy = any(
                    (s := load_record(t)) is not None and s.state in ("queued", "running")
                    for t in records.values()
                )
            if not busy:
                return True
            time.sleep(0.05)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (after the run in progress, if any)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------------- the thread

    def _start(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="quadrat-ui-train", daemon=True
                )
                self._thread.start()

    def _due_check(self) -> tuple[int | None, float]:
        """A source whose policy check is due now, else the seconds until the next one."""
        now = time.monotonic()
        wait = POLL_SECONDS
        with self._lock:
            for source_id, (first, latest) in self._checks.items():
                when = min(latest + CHECK_QUIET_SECONDS, first + CHECK_MAX_DELAY_SECONDS)
                if when <= now:
                    del self._checks[source_id]
                    self._running.add(source_id)  # shown as queued until it is recorded
                    return source_id, 0.0
                wait = min(wait, when - now)
        return None, wait

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            watching = True
            try:
                source_id, wait = self._due_check()
                if source_id is not None:
                    self._check(source_id)
                    idle_since = time.monotonic()
                    continue
                ran, watching = self._claim_waiting()
                if ran:
                    idle_since = time.monotonic()
                    continue
            except Exception:  # the project away for a moment: try again later
                log.exception("background training: looking for work failed")
                wait = POLL_SECONDS
            with self._lock:
                if (
                    not self._checks
                    and not watching
                    and not self._wake.is_set()
                    and time.monotonic() - idle_since > IDLE_SECONDS
                ):
                    self._thread = None
                    return
            self._wake.wait(max(0.05, wait))
            self._wake.clear()

    def _claim_waiting(self) -> tuple[bool, bool]:
        """Run one queued (or stale) run of any source; ``(ran one, any queued or running)``."""
        from quadrat.store import annotate

        with self.store.session() as session:
            records = annotate.meta_items(session, RECORD_PREFIX)
        watching = False
        for key, text in sorted(records.items()):
            status = load_record(text)
            if status is None or status.state not in ("queued", "running"):
                continue
            watching = True
            if status.state == "queued" or is_stale(status):
                source_id = int(key[len(RECORD_PREFIX) :])
                claimed = self._claim(source_id, None)
                if claimed is not None:
                    self._execute(source_id, claimed)
                    return True, True
        return False, watching

    def _claim(self, source_id: int, fresh: TrainingStatus | None) -> TrainingStatus | None:
        """Take the source's lease for a waiting run (or ``fresh``, a due policy check);
        None when another process holds it or nothing waits."""

        def change(current: TrainingStatus | None) -> TrainingStatus | None:
            attempt = 1
            notice = None
            if current is None or current.state in FINISHED:
                if fresh is None:
                    return None
                base = fresh
            elif current.state == "queued":
                base = current
            elif is_stale(current):
                base, attempt = current, current.attempt + 1
                notice = (
                    f"taken over: the run started {when_text(current.started_at)} on "
                    f"{current.runner} stopped without finishing"
                )
                log.warning("training of source %d: %s", source_id, notice)
                if attempt > MAX_ATTEMPTS:
                    return replace(
                        current,
                        state="failed",
                        finished_at=_now(),
                        owner=None,
                        beat=None,
                        message=f"stopped {current.attempt} times without finishing (its "
                        f"process ended each time; at most MAX_ATTEMPTS = {MAX_ATTEMPTS}); "
                        "not started again",
                    )
            else:
                return None  # a live runner has it
            now = _now()
            return TrainingStatus(
                state="running",
                forced=base.forced,
                suggest=base.suggest,
                requested_by=base.requested_by,
                requested_at=base.requested_at or now,
                started_at=now,
                message=notice or f"running on {self.runner} since {when_text(now)}",
                runner=self.runner,
                heartbeat_at=now,
                attempt=attempt,
                next=base.next,
                owner=self.token,
                beat=time.time(),
            )

        claimed = self._update(source_id, change)
        return claimed if claimed is not None and claimed.state == "running" else None

    def _mine(self, current: TrainingStatus | None) -> bool:
        return current is not None and current.state == "running" and current.owner == self.token

    def _execute(self, source_id: int, status: TrainingStatus) -> None:
        """Run a claimed run with heartbeats, then record its outcome (and queue the run
        asked for meanwhile)."""
        finished = threading.Event()

        def beat(current: TrainingStatus | None) -> TrainingStatus | None:
            if not self._mine(current):
                return None
            assert current is not None
            return replace(current, beat=time.time(), heartbeat_at=_now())

        def pulse() -> None:
            while not finished.wait(HEARTBEAT_SECONDS):
                try:
                    self._update(source_id, beat)
                except Exception as exc:  # the project busy for a moment
                    log.warning("training of source %d: heartbeat not written: %s", source_id, exc)

        with self._lock:
            self._running.add(source_id)
        heart = threading.Thread(target=pulse, name=f"train-beat-{source_id}", daemon=True)
        heart.start()
        outcome = replace(status, message=None)
        try:
            self._run(source_id, outcome)
            outcome.state = "done"
        except QuadratError as exc:
            outcome.state, outcome.message = "failed", str(exc)
        except Exception as exc:  # a thread must not die silently
            log.exception("background training of source %d failed", source_id)
            outcome.state, outcome.message = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            finished.set()
            heart.join()

        def release(current: TrainingStatus | None) -> TrainingStatus | None:
            if not self._mine(current):
                log.warning("training of source %d: lease lost before the end", source_id)
                return None
            assert current is not None
            done = replace(outcome, finished_at=_now(), owner=None, beat=None, next=None)
            if not current.next:
                return done
            return TrainingStatus(
                state="queued",
                forced=bool(current.next.get("forced")),
                suggest=bool(current.next.get("suggest")),
                requested_by=current.next.get("requested_by"),
                requested_at=done.finished_at,
                message=f"after the previous run ({done.state}: {done.message})",
            )

        try:
            self._update(source_id, release)
        finally:
            with self._lock:
                self._running.discard(source_id)

    def _check(self, source_id: int) -> None:
        """CoralNet's policy, reading only; train under the lease when it is due."""
        try:
            self._check_policy(source_id)
        finally:
            with self._lock:
                self._running.discard(source_id)

    def _check_policy(self, source_id: int) -> None:
        current = self.record(source_id)
        if current is not None and (
            current.state == "queued" or (current.state == "running" and not is_stale(current))
        ):
            return  # that run checks the policy itself
        try:
            due, message = self._policy_due(source_id)
        except QuadratError as exc:
            due, message = False, str(exc)
            failed: str | None = "failed"
        else:
            failed = None
        if due:
            claimed = self._claim(source_id, TrainingStatus(state="queued", requested_at=_now()))
            if claimed is not None:
                self._execute(source_id, claimed)
            return
        now = _now()
        verdict = TrainingStatus(
            state=failed or "done", started_at=now, finished_at=now, message=message
        )
        self._update(
            source_id,
            lambda cur: verdict if cur is None or cur.state in FINISHED else None,
        )

    def _policy_due(self, source_id: int) -> tuple[bool, str]:
        """Whether CoralNet's policy trains now, as ``Source.train`` decides (reads only)."""
        progress = policy_progress(self.store, source_id)
        return progress.due, "" if progress.due else progress.message

    def _run(self, source_id: int, status: TrainingStatus) -> None:
        from quadrat.store import queries
        from quadrat.workflow.project import Project

        with self.store.session() as session:
            name = queries.source_by_id(session, source_id).name
            latest = queries.classifier_history(session, source_id)
        source = Project(self.store).source(name)
        kind = latest[-1].kind if latest and latest[-1].kind in ("mlp", "lr") else "mlp"
        if status.forced:
            _extract_missing(source)
        try:
            # The policy again, under the lease: when no training is due this returns at once.
            outcome = source.train(kind=kind, force=status.forced)
        except StateError:  # due, but labelled points lack features: extract, then train
            _extract_missing(source)
            outcome = source.train(kind=kind, force=status.forced)
        status.message = outcome.message
        status.trained = outcome.trained
        status.accepted = outcome.accepted
        status.classifier_id = outcome.classifier_id
        status.accuracy = outcome.accuracy
        if outcome.accepted:
            status.reclassified = source.classify().points
        elif status.suggest and source.active_classifier() is not None:
            _extract_missing(source)  # the new points' features, then their suggestions
            status.reclassified = source.classify().points


def policy_progress(store: Any, source_id: int) -> PolicyProgress:
    """CoralNet's policy for the source now, as ``Source.train`` decides (reads only)."""
    from quadrat.store import queries
    from quadrat.workflow.project import Project

    with store.session() as session:
        name = queries.source_by_id(session, source_id).name
    return Project(store).source(name).policy_progress()


def _extract_missing(source: Any) -> None:
    """Features for points that lack them (points added by hand, new images), when the
    source's extractor needs no weights file; otherwise training says what is missing."""
    from quadrat import create_extractor
    from quadrat.store import queries

    key = source.extractor_key()
    with source.project.store.session() as session:
        names = dict(queries.stored_extractors(session, source.id))
    try:
        extractor = create_extractor(names.get(key, key))
    except QuadratError:
        return  # a CNN needs its weights: `quadrat extract` with them
    if extractor.key == key:
        source.extract(extractor, workers=1)


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["Requested", "Trainer", "TrainingStatus", "verdicts"]
