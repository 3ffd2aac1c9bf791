"""One image over HTTP: a GET, then retries with exponential back-off and jitter.

Retried: timeouts, dropped connections, truncated bodies, 408, 425, 429 (honouring
``Retry-After``) and 5xx. Not retried: other 4xx (a 404 will not heal), an unknown host,
a checksum mismatch, a body that is not an image, a ``Content-Type`` that is not an image
(an HTML error page served with 200), a file over the size cap. A slow server is cut off
at the total deadline of an attempt, not only per read. The standard library's
:mod:`urllib.request` is enough for plain GETs with a timeout, so no HTTP client
dependency is added.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import http.client
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from quadrat.datasets.download.convert import Fetched, convert
from quadrat.datasets.download.options import DownloadOptions
from quadrat.errors import FetchError
from quadrat.limits import ENV_VARS, current

_RETRY_STATUS = frozenset({408, 425, 429})
#: Content types accepted as image bytes (besides ``image/*``); none given is accepted too.
_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
_CHUNK = 1 << 16


def _read_capped(response: http.client.HTTPResponse, url: str, options: DownloadOptions) -> bytes:
    """The body, refused when its type is not an image, it exceeds the size cap, or the
    attempt runs past its total deadline."""
    limits = current()
    cap = options.max_bytes if options.max_bytes is not None else limits.download_bytes
    deadline = options.deadline if options.deadline is not None else limits.download_seconds
    ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype and not ctype.startswith("image/") and ctype not in _BINARY_TYPES:
        raise FetchError(f"content type {ctype!r} is not an image", retryable=False, value=url)
    length = response.headers.get("Content-Length")
    how = f"(raise it with DownloadOptions(max_bytes=...) or {ENV_VARS['download_bytes']})"
    if length is not None and length.isdigit() and int(length) > cap:
        raise FetchError(
            f"file of {int(length):,} bytes is over the limit download_bytes = {cap:,} {how}",
            retryable=False,
            value=url,
        )
    stop_at = time.monotonic() + deadline
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise FetchError(
                f"file is over the limit download_bytes = {cap:,} {how}", retryable=False, value=url
            )
        chunks.append(chunk)
        if time.monotonic() > stop_at:
            raise FetchError(
                f"not complete after the total deadline of {deadline:g} s (raise it with "
                f"DownloadOptions(deadline=...) or {ENV_VARS['download_seconds']})",
                retryable=True,
                value=url,
            )
    return b"".join(chunks)


@dataclass(frozen=True)
class Failed:
    """An image given up on: the last attempt's error and how many attempts were made."""

    error: FetchError
    attempts: int

    @property
    def reason(self) -> str:
        return self.error.message

    @property
    def http_status(self) -> int | None:
        return self.error.http_status


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """One opener, with one TLS context, for every request: building a default SSL context
    loads the CA bundle (tens of milliseconds), too slow to repeat per image."""
    context = ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def unknown_host(error: FetchError) -> bool:
    """Whether ``error`` is DNS saying "no such host" (it will not change on a retry;
    DNS's "try again" may)."""
    cause = error.__cause__
    reason = getattr(cause, "reason", None)
    return isinstance(reason, socket.gaierror) and reason.errno == socket.EAI_NONAME


def fetch_once(
    url: str, options: DownloadOptions, *, opener: urllib.request.OpenerDirector | None = None
) -> bytes:
    """One GET; every failure becomes a :class:`FetchError` saying whether to retry.

    ``opener``: another urllib opener (``quadrat serve`` passes one that refuses private
    addresses and redirects to other schemes); default: the shared plain one.
    """
    request = urllib.request.Request(url, headers={"User-Agent": options.user_agent})
    try:
        with (opener or _opener()).open(request, timeout=options.timeout) as response:
            data = _read_capped(response, url, options)
            expected = response.headers.get("Content-Length")
    except urllib.error.HTTPError as exc:
        status = exc.code
        retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        retryable = status in _RETRY_STATUS or 500 <= status < 600
        raise FetchError(
            f"HTTP {status} {exc.reason}",
            retryable=retryable,
            http_status=status,
            retry_after=retry_after,
            value=url,
        ) from exc
    except http.client.IncompleteRead as exc:
        raise FetchError(
            f"truncated body ({len(exc.partial)} bytes received)", retryable=True, value=url
        ) from exc
    except TimeoutError as exc:
        raise FetchError(
            f"timed out after {options.timeout:g} s", retryable=True, value=url
        ) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise FetchError(
                f"timed out after {options.timeout:g} s", retryable=True, value=url
            ) from exc
        no_host = isinstance(reason, socket.gaierror) and reason.errno == socket.EAI_NONAME
        raise FetchError(f"cannot connect: {reason}", retryable=not no_host, value=url) from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise FetchError(f"connection failed: {exc!r}", retryable=True, value=url) from exc
    if expected is not None and expected.isdigit() and int(expected) != len(data):
        raise FetchError(
            f"truncated body ({len(data)} of {expected} bytes)", retryable=True, value=url
        )
    return data


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_delay(
    retry: int, options: DownloadOptions, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before retry number ``retry`` (0-based): exponential with equal jitter, or
    the server's ``Retry-After``; both capped at ``max_backoff``."""
    if retry_after is not None:
        return min(retry_after, options.max_backoff)
    ceiling = min(options.max_backoff, options.backoff * 2**retry)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def try_image(
    url: str,
    options: DownloadOptions,
    *,
    expected_sha256: str | None = None,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> Fetched | Failed:
    """Fetch, verify and convert one image, retrying transient failures; a failure once
    retries are spent (or ``stop`` is set) is returned, not raised."""
    rng = rng or random.Random()
    stop = stop or threading.Event()
    attempt = 0
    while True:
        attempt += 1
        try:
            data = fetch_once(url, options)
            digest = hashlib.sha256(data).hexdigest()
            if expected_sha256 is not None and digest != expected_sha256.lower():
                raise FetchError(
                    f"sha256 mismatch: got {digest}, expected {expected_sha256}",
                    retryable=False,
                    value=url,
                )
            stored, extension, width, height = convert(
                data, options.resize, options.jpeg_quality, options.verify
            )
            return Fetched(stored, extension, width, height, digest, attempt)
        except FetchError as exc:
            if not exc.retryable or attempt > options.retries or stop.is_set():
                return Failed(exc, attempt)
            delay = backoff_delay(attempt - 1, options, exc.retry_after, rng)
            if stop.wait(delay):
                return Failed(exc, attempt)


def fetch_image(
    url: str,
    options: DownloadOptions,
    *,
    expected_sha256: str | None = None,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> Fetched:
    """Fetch, verify and convert one image, retrying transient failures.

    Raises the last attempt's :class:`~quadrat.errors.FetchError` once retries are spent.
    """
    outcome = try_image(url, options, expected_sha256=expected_sha256, stop=stop, rng=rng)
    if isinstance(outcome, Failed):
        raise outcome.error
    return outcome
