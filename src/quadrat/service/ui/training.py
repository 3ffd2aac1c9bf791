"""Retraining from the browser: CoralNet's policy after confirmations, and "Train now".

Why an in-process background thread and not the service's job queue
(:class:`quadrat.service.queue.JobQueue`): that queue carries deploy job ids only, and
a job's state lives in the ``deploy_jobs``/``deploy_images`` tables; a training job would
need a job kind, its own state and a schema change, for work that runs at most once at a
time per project and whose result is already recorded in the classifier history. So one
daemon thread of the HTTP process trains, one source at a time, and the request that asks
for it returns at once. What it keeps in memory is only the latest run's status (shown on
the sources page); what a run decided (accepted or rejected, and why) is recomputed from
the stored classifier history (:func:`verdicts`), so a restart loses nothing that matters.
An interrupted run leaves nothing behind (a classifier is stored in one transaction at its
end). With several server processes on one project each may train; the policy re-reads
the confirmed count each time, so the worst case is one extra classifier in the history.

Generate points asks the same thread to extract the new points' features and classify
them with the active classifier, so a new image gets the machine's suggestions.

After each confirmation the page's request only *nudges* the trainer: the check (count of
confirmed images against :class:`~quadrat.classifiers.policy.TrainingPolicy`) and any
training happen in the thread, at most one check waiting per source.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from quadrat.errors import QuadratError, StateError

log = logging.getLogger(__name__)


@dataclass
class TrainingStatus:
    """The latest background run for one source."""

    #: idle, queued, running, done, failed
    state: str = "idle"
    #: A forced run (an admin's "Train now") rather than the policy's check.
    forced: bool = False
    #: Also suggest labels for points without any (after Generate points).
    suggest: bool = False
    requested_by: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    #: What happened, in words (not due yet; accepted; rejected; the error).
    message: str | None = None
    trained: bool = False
    accepted: bool = False
    classifier_id: int | None = None
    accuracy: float | None = None
    #: Points classified again with the new classifier (accepted only).
    reclassified: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    forced: bool
    suggest: bool
    requested_by: str | None


@dataclass
class Trainer:
    """One background thread that trains sources when asked (see the module docstring)."""

    store: Any  # quadrat.store.project.Store
    _status: dict[int, TrainingStatus] = field(default_factory=dict)
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def status(self, source_id: int) -> TrainingStatus:
        with self._lock:
            return self._status.get(source_id, TrainingStatus())

    def request(
        self,
        source_id: int,
        *,
        forced: bool,
        requested_by: str | None = None,
        suggest: bool = False,
    ) -> bool:
        """Queue a run for the source; False when an equal one is queued already (a forced
        or suggesting request upgrades a waiting policy check). Never waits for the run."""
        with self._lock:
            waiting = self._pending.get(source_id)
            if waiting is not None:
                if (forced and not waiting.forced) or (suggest and not waiting.suggest):
                    waiting.forced = waiting.forced or forced
                    waiting.suggest = waiting.suggest or suggest
                    if forced:
                        waiting.requested_by = requested_by
                    self._status[source_id].forced = waiting.forced
                    self._status[source_id].suggest = waiting.suggest
                    return True
                return False
            self._pending[source_id] = _Pending(forced, suggest, requested_by)
            previous = self._status.get(source_id)
            if previous is None or previous.state != "running" or forced or suggest:
                self._status[source_id] = TrainingStatus(
                    state="queued", forced=forced, suggest=suggest, requested_by=requested_by
                )
            self._start()
        self._wake.set()
        return True

    def nudge(self, source_id: int) -> None:
        """After a confirmation: check the policy in the background (train if it is due)."""
        self.request(source_id, forced=False)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running (tests and shutdown)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._pending or any(
                    s.state in ("queued", "running") for s in self._status.values()
                )
            if not busy:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------------- the thread

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="quadrat-ui-train", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(timeout=60)
            self._wake.clear()
            while True:
                with self._lock:
                    if not self._pending:
                        break
                    source_id, pending = next(iter(self._pending.items()))
                    del self._pending[source_id]
                    status = TrainingStatus(
                        state="running",
                        forced=pending.forced,
                        suggest=pending.suggest,
                        requested_by=pending.requested_by,
                        started_at=_now(),
                    )
                    self._status[source_id] = status
                try:
                    self._run(source_id, status)
                    status.state = "done"
                except QuadratError as exc:
                    status.state, status.message = "failed", str(exc)
                except Exception as exc:  # a thread must not die silently
                    log.exception("background training of source %d failed", source_id)
                    status.state, status.message = "failed", f"{type(exc).__name__}: {exc}"
                status.finished_at = _now()

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
            # A policy check first: when no training is due this returns at once.
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


def verdicts(history: list[Any], accept_factor: float | None = None) -> dict[int, str]:
    """Why each classifier of a source's history (oldest first) was accepted or rejected,
    by CoralNet's rule: better than ``accept_factor`` x the active one's accuracy, per
    extractor (the first of a series is always accepted)."""
    from quadrat.classifiers.policy import TrainingPolicy

    factor = accept_factor if accept_factor is not None else TrainingPolicy().accept_factor
    active: dict[str, Any] = {}
    out: dict[int, str] = {}
    for info in history:
        before = active.get(info.extractor_key)
        accuracy = _pct(info.accuracy)
        if before is None:
            reason = f"first classifier on {info.extractor_key}"
        else:
            need = None if before.accuracy is None else before.accuracy * factor
            versus = (
                f"accuracy {accuracy} vs {_pct(before.accuracy)} of classifier {before.id}"
                f" (needs at least {_pct(need)})"
            )
            reason = versus
        if info.accepted:
            out[info.id] = f"accepted: {reason}"
            active[info.extractor_key] = info
        else:
            out[info.id] = f"rejected: {reason}"
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
