"""What the UI keeps per application (the store, the settings, the signing secret, caches),
and per source in the project: the training record of :mod:`.training`."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from itsdangerous import URLSafeTimedSerializer

from quadrat.errors import ConflictError
from quadrat.service.settings import ServiceSettings

log = logging.getLogger(__name__)


class LruCache:
    """A small thread-safe LRU map (decoded images, encoded JPEGs)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class FailureLog:
    """Recent failures per key; a key with ``limit`` of them in ``seconds`` must wait."""

    def __init__(self, limit: int = 10, seconds: float = 60.0) -> None:
        self.limit = limit
        self.seconds = seconds
        self._times: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Whole seconds until ``key`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._times.get(key, []) if t > now - self.seconds]
            self._times[key] = recent
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[-self.limit] + self.seconds - now))

    def fail(self, key: str) -> None:
        with self._lock:
            if len(self._times) > 100_000:  # forget idle keys rather than grow without bound
                self._times.clear()
            self._times.setdefault(key, []).append(time.monotonic())


@dataclass
class UiState:
    store: Any  # quadrat.store.project.Store
    settings: ServiceSettings
    secret: str
    #: (image id, sha256) -> (H, W, 3) uint8 stored pixels, for patches.
    pixels: LruCache = field(default_factory=lambda: LruCache(4))
    #: (image id, sha256) -> JPEG bytes for display.
    jpegs: LruCache = field(default_factory=lambda: LruCache(32))
    #: (image id, sha256) -> thumbnail JPEG bytes (about 5 KB each) for the image browser.
    thumbnails: LruCache = field(default_factory=lambda: LruCache(2000))
    #: Failed sign-ins per address and per username (password guessing).
    failures: FailureLog = field(default_factory=lambda: FailureLog())
    #: Background retraining (:class:`quadrat.service.ui.training.Trainer`), set by install_ui.
    trainer: Any = None

    def undo_serializer(self) -> URLSafeTimedSerializer:
        """Signs undo tokens, so a client can only undo what the server told it it did."""
        return URLSafeTimedSerializer(self.secret, salt="quadrat-ui-undo")


# ----------------------------------------------------------------------------- training record

#: Prefix of a source's training record in the project's ``meta`` table.
RECORD_PREFIX = "ui_training:"
#: A running training without a heartbeat for this long is stale: run again elsewhere.
STALE_SECONDS = 60.0
#: Characters of a message kept in the record (the record is at most 1024 characters).
MESSAGE_CHARS = 300
_NAME_CHARS = 64
HOST = socket.gethostname()[:_NAME_CHARS]
#: States of a run that has ended (or never started).
FINISHED = ("idle", "done", "failed")


@dataclass
class TrainingStatus:
    """One source's latest training run, as recorded in the project."""

    #: idle, queued, running, done, failed
    state: str = "idle"
    #: A forced run (an admin's "Train now") rather than the policy's check.
    forced: bool = False
    #: Also suggest labels for points without any (after Generate points).
    suggest: bool = False
    requested_by: str | None = None
    requested_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    #: What happened, in words (not due yet; accepted; rejected; the error; who runs it).
    message: str | None = None
    trained: bool = False
    accepted: bool = False
    classifier_id: int | None = None
    accuracy: float | None = None
    #: Points classified again with the new classifier (accepted only).
    reclassified: int | None = None
    #: ``host:pid`` of the process running it, its latest heartbeat, and which start.
    runner: str | None = None
    heartbeat_at: str | None = None
    attempt: int = 0
    #: A run asked for while this one runs (flags forced/suggest, requested_by).
    next: dict[str, Any] | None = None
    #: The lease: the runner's private token and its heartbeat as a UNIX time.
    owner: str | None = None
    beat: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """What the page sees (the lease's token and raw time left out)."""
        out = asdict(self)
        del out["owner"], out["beat"], out["next"]
        out["queued_next"] = self.next is not None
        return out


def record_key(source_id: int) -> str:
    return f"{RECORD_PREFIX}{int(source_id)}"


def load_record(text: str | None) -> TrainingStatus | None:
    """A record from its JSON; None for none (or one this version cannot read)."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        known = {f.name for f in fields(TrainingStatus)}
        return TrainingStatus(**{k: v for k, v in data.items() if k in known})
    except (ValueError, TypeError, AttributeError):
        log.warning("unreadable training record %r; replaced by the next run", text[:80])
        return None


def dump_record(status: TrainingStatus) -> str:
    record = replace(
        status,
        message=None if status.message is None else status.message[:MESSAGE_CHARS],
        requested_by=None if status.requested_by is None else status.requested_by[:_NAME_CHARS],
    )
    return json.dumps(asdict(record), separators=(",", ":"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def is_stale(status: TrainingStatus, now: float | None = None) -> bool:
    """A ``running`` record whose runner stopped: no heartbeat for :data:`STALE_SECONDS`,
    or its process (on this machine) is gone."""
    if status.state != "running":
        return False
    now = time.time() if now is None else now
    if status.beat is None or now - float(status.beat) > STALE_SECONDS:
        return True
    host, _, pid = (status.runner or "").rpartition(":")
    if host == HOST and pid.isdigit() and int(pid) != os.getpid():
        return not _pid_alive(int(pid))
    return False


def when_text(iso: str | None) -> str:
    return "?" if not iso else iso[:19].replace("T", " ") + " UTC"


def read_record(store: Any, source_id: int) -> TrainingStatus | None:
    """The source's training record (None: none yet)."""
    from quadrat.store import annotate

    with store.session() as session:
        return load_record(annotate.meta_value(session, record_key(source_id)))


def update_record(
    store: Any, source_id: int, change: Callable[[TrainingStatus | None], TrainingStatus | None]
) -> TrainingStatus | None:
    """Apply ``change(current) -> new or None`` by compare-and-set, again on a race."""
    from quadrat.store import annotate

    key = record_key(source_id)
    for _ in range(50):
        with store.session() as session:
            text = annotate.meta_value(session, key)
        new = change(load_record(text))
        if new is None:
            return None
        with store.session() as session:
            if annotate.swap_meta_value(session, key, text, dump_record(new)):
                return new
    raise ConflictError(
        f"the training record of source {source_id} kept changing under this process",
        value=source_id,
        param="source_id",
    )


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
            reason = (
                f"accuracy {accuracy} vs {_pct(before.accuracy)} of classifier {before.id}"
                f" (needs at least {_pct(need)})"
            )
        if info.accepted:
            out[info.id] = f"accepted: {reason}"
            active[info.extractor_key] = info
        else:
            out[info.id] = f"rejected: {reason}"
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
