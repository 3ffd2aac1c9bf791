"""What the UI keeps per application: the store, the settings, the signing secret, caches."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import URLSafeTimedSerializer

from quadrat.service.settings import ServiceSettings


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
    #: Failed sign-ins per address and per username (password guessing).
    failures: FailureLog = field(default_factory=lambda: FailureLog())
    #: Background retraining (:class:`quadrat.service.ui.training.Trainer`), set by install_ui.
    trainer: Any = None

    def undo_serializer(self) -> URLSafeTimedSerializer:
        """Signs undo tokens, so a client can only undo what the server told it it did."""
        return URLSafeTimedSerializer(self.secret, salt="quadrat-ui-undo")
