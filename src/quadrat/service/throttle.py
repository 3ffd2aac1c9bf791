"""Request rate limits: CoralNet's 60 a minute and 1000 an hour per user (per address unsigned).

The counts live in this process's memory, which is right for one server process (what
``quadrat serve`` runs: uvicorn with one process, the deploy work in separate worker
processes). Several API processes behind a balancer would each count on their own, so a
user could make that many times the requests; such a deployment needs a shared counter
(Redis, the database) in place of :class:`RateLimiter`. Counts also start again when the
server restarts. A few lines of sliding-window log did the job; a library would bring a
storage layer this one process does not need.

The window is a sliding log of request times, as Django REST framework's throttles (which
CoralNet uses) keep: a request is allowed when fewer than ``n`` were allowed in the last
``seconds``; a refused request is not counted. The wait reported is the time until the
oldest counted request leaves the fullest window, rounded up to a whole second.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

#: Windows of CoralNet's two throttles ("burst" and "sustained"), in seconds.
MINUTE = 60.0
HOUR = 3600.0


def throttled_message(wait: int) -> str:
    """CoralNet's (Django REST framework's) 429 detail."""
    unit = "second" if wait == 1 else "seconds"
    return f"Request was throttled. Expected available in {wait} {unit}."


class RateLimiter:
    """Sliding-window request counts per key (``user:<id>``, ``addr:<ip>``); thread-safe."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def hit(self, key: str, rates: Sequence[tuple[int, float]]) -> int | None:
        """Count a request if every ``(n, seconds)`` rate allows it; else the seconds to wait.

        Returns None when the request is allowed (and counted), or a whole number of
        seconds (at least 1) after which it would be.
        """
        now = self._clock()
        longest = max(seconds for _, seconds in rates)
        with self._lock:
            log = self._log.get(key)
            if log is None:
                if len(self._log) >= self._max_keys:
                    self._forget_idle(now, longest)
                log = self._log[key] = deque()
            while log and log[0] <= now - longest:
                log.popleft()
            wait = 0.0
            for n, seconds in rates:
                recent = [t for t in _tail(log, n) if t > now - seconds]
                if len(recent) >= n:
                    # The n-th most recent request must leave the window first.
                    wait = max(wait, recent[0] + seconds - now)
            if wait > 0:
                return max(1, math.ceil(wait))
            log.append(now)
            keep = max(n for n, _ in rates)
            while len(log) > keep:
                log.popleft()
            return None

    def _forget_idle(self, now: float, longest: float) -> None:
        for key in [k for k, log in self._log.items() if not log or log[-1] <= now - longest]:
            del self._log[key]

    def reset(self) -> None:
        with self._lock:
            self._log.clear()


def _tail(log: deque[float], n: int) -> list[float]:
    """The last ``n`` entries, oldest first."""
    if n >= len(log):
        return list(log)
    return list(log)[-n:]
