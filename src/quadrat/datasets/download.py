"""Download the images a metadata table lists by URL, into tar shards or a folder tree.

Why it is built this way:

- **Shards** (WebDataset convention, see :mod:`quadrat.datasets.shards`) are what the
  self-supervised pretraining streams; a **folder tree** ``<out>/<dataset>/<site>/<image>``
  is BenthicNet's on-disk layout. Both are written atomically (temporary name, then
  ``os.replace``), so a killed run never leaves a file that looks complete but is not.
- **Resume** trusts what is on disk: completed shards (their member names) or tree files;
  the manifest adds each image's checksum and size. Failed images are tried again.
- **Concurrency** is a thread pool with a bounded window of requests in flight (downloads
  wait on the network, not the CPU; the window bounds the bytes held in memory).
- **Retries** with exponential back-off and jitter on timeouts, dropped connections,
  truncated bodies, 408, 429 (honouring ``Retry-After``) and 5xx; never on other 4xx
  (a 404 will not heal) or on a body that is not an image.
- The standard library's :mod:`urllib.request` is enough for plain GETs with a timeout,
  so no HTTP client dependency is added.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from quadrat import __version__
from quadrat.datasets.shards import (
    Sample,
    ShardWriter,
    list_shards,
    read_shard,
    remove_partial_shards,
    safe_key,
    shard_index,
    shard_keys,
)
from quadrat.errors import CsvFormatError, InputError

try:  # POSIX; elsewhere runs are not locked against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

REQUIRED_COLUMNS = ("dataset", "site", "image", "url")
MANIFEST_NAME = "manifest.parquet"
FAILURES_NAME = "failures.csv"
LOCK_NAME = "download.lock"
MANIFEST_COLUMNS = (
    "key",
    "dataset",
    "site",
    "image",
    "url",
    "shard",
    "sha256",
    "source_sha256",
    "bytes",
    "width",
    "height",
    "status",
    "error",
    "http_status",
    "attempts",
)
FAILURE_COLUMNS = ("key", "url", "error", "http_status", "attempts")
_RETRY_STATUS = frozenset({408, 425, 429})
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp", "BMP": "bmp"}

Layout = Literal["shards", "tree"]
Verify = Literal["decode", "header"]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DownloadOptions:
    """How to fetch: ``retries`` counts attempts after the first one."""

    workers: int = 8
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    resize: int | None = None
    jpeg_quality: int = 90
    verify: Verify = "decode"
    user_agent: str = f"quadrat/{__version__} (benthic dataset download)"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(
                f"--workers must be at least 1, not {self.workers}", value=self.workers
            )
        if not self.timeout > 0:
            raise InputError(f"--timeout must be positive, not {self.timeout}", value=self.timeout)
        if self.retries < 0:
            raise InputError(f"--retries cannot be negative ({self.retries})", value=self.retries)
        if self.verify not in ("decode", "header"):
            raise InputError(f"--verify must be decode or header, not {self.verify!r}")
        if self.resize is not None and self.resize < 1:
            raise InputError(
                f"--resize must be a positive side length, not {self.resize}", value=self.resize
            )


@dataclass
class ImageRecord:
    """One image's outcome: a manifest row."""

    key: str
    dataset: str
    site: str
    image: str
    url: str
    shard: str | None = None
    sha256: str | None = None
    source_sha256: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    status: str = "pending"
    error: str | None = None
    http_status: int | None = None
    attempts: int = 0

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in MANIFEST_COLUMNS}


@dataclass
class DownloadSummary:
    """What a run did; ``skipped`` were already complete from an earlier run."""

    total: int
    skipped: int
    downloaded: int
    failed: int
    bytes: int
    seconds: float
    manifest: Path
    failures: Path
    written: list[Path] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.downloaded / self.seconds if self.seconds > 0 else math.nan


class FetchError(Exception):
    """One failed attempt; ``retryable`` says whether another attempt may succeed."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after
        self.attempts = 1
        self.unknown_host = False


# --------------------------------------------------------------------------- the table


def prepare_table(
    frame: pd.DataFrame,
    *,
    source: str | Path | None = None,
    columns: dict[str, str] | None = None,
    dataset: str | None = None,
    site: str | None = None,
) -> pd.DataFrame:
    """Check a metadata table and give each distinct image a sample ``key``.

    ``columns`` maps a BenthicNet column to the table's own name for it (e.g. Squidle+'s
    ``{"url": "path_best"}``). A table without ``image`` takes the URL's file name; without
    ``dataset`` it takes ``dataset``; without ``site``, ``site`` or else the dataset name
    (a survey with no site field is one site, as the metadata readers do). Rows repeating
    an image (one per annotated point, as in a point export) collapse to one; the same
    image name with two URLs is an error. ``source`` (the file the table came from) makes
    messages name file and line (a ``source_line`` column, as the readers add, wins).
    """
    frame = frame.copy()
    for target, own in (columns or {}).items():
        if own not in frame.columns:
            raise CsvFormatError(
                f"no column {own!r} to use as {target!r}; "
                f"found {', '.join(map(str, frame.columns))}",
                path=source,
                value=sorted(map(str, frame.columns)),
            )
        frame[target] = frame[own]
    if "image" not in frame.columns and "url" in frame.columns:
        frame["image"] = [
            urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(str(u)).path).name)
            if not _is_missing(u)
            else None
            for u in frame["url"]
        ]
    if "dataset" not in frame.columns and dataset is not None:
        frame["dataset"] = dataset
    if "site" not in frame.columns and (site is not None or "dataset" in frame.columns):
        frame["site"] = site if site is not None else frame["dataset"]
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}"
            " (map them with --column NAME=COLUMN, or give --dataset)",
            path=source,
        )
    frame = frame.reset_index(drop=True)
    line_of = _line_numbers(frame, source)
    for name in REQUIRED_COLUMNS:
        empty = frame[name].isna() | (frame[name].astype(str).str.strip() == "")
        if empty.any():
            first = int(np.flatnonzero(empty.to_numpy())[0])
            raise CsvFormatError(f"empty {name!r}", path=source, line=line_of(first), value=None)
        frame[name] = frame[name].astype(str).str.strip()
    for position, url in enumerate(frame["url"]):
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise InputError(
                f"only http(s) URLs can be downloaded: {url!r}",
                path=source,
                line=line_of(position),
                value=url,
            )
    for name in ("dataset", "site", "image"):
        for position, part in enumerate(frame[name]):
            if part in (".", "..") or "/" in part or "\\" in part:
                raise InputError(
                    f"{name!r} must be a plain file or folder name: {part!r}",
                    path=source,
                    line=line_of(position),
                    value=part,
                )
    if "sha256" in frame.columns:
        expected = frame["sha256"].dropna().astype(str)
        bad = expected[~expected.str.fullmatch(r"[0-9a-fA-F]{64}")]
        if not bad.empty:
            raise InputError(
                f"sha256 must be 64 hexadecimal digits: {bad.iloc[0]!r}",
                path=source,
                line=line_of(int(bad.index[0])),
                value=bad.iloc[0],
            )
    frame["_line"] = [line_of(i) for i in range(len(frame))]
    frame = frame.drop_duplicates(subset=["dataset", "site", "image", "url"], keep="first")
    clash = frame.duplicated(subset=["dataset", "site", "image"], keep=False)
    if clash.any():
        row = frame[clash].iloc[0]
        raise InputError(
            f"image {row['image']!r} of {row['dataset']}/{row['site']} is listed "
            f"with different URLs: {row['url']!r}",
            path=source,
            line=row["_line"],
            value=row["url"],
        )
    frame["key"] = [
        safe_key(f"{d}__{s}__{PurePosixPath(i).stem}")
        for d, s, i in zip(frame["dataset"], frame["site"], frame["image"], strict=True)
    ]
    clash = frame.duplicated(subset=["key"], keep=False)
    if clash.any():
        row = frame[clash].iloc[0]
        raise InputError(
            f"two images map to the same sample key {row['key']!r} "
            "(names differ only in punctuation or extension)",
            path=source,
            line=row["_line"],
            value=row["key"],
        )
    return frame.reset_index(drop=True)


def _line_numbers(frame: pd.DataFrame, source: str | Path | None) -> Callable[[int], int | None]:
    """Row position -> 1-based file line: the readers' ``source_line`` column when present,
    else position + 2 for a CSV (header is line 1; exact unless a field spans lines)."""
    if "source_line" in frame.columns:
        recorded = pd.to_numeric(frame["source_line"], errors="coerce").to_numpy()

        def recorded_line(position: int) -> int | None:
            value = recorded[position]
            return None if np.isnan(value) else int(value)

        return recorded_line
    is_csv = source is not None and str(source).lower().endswith((".csv", ".csv.gz", ".tsv"))

    def line_of(position: int) -> int | None:
        return position + 2 if is_csv else None

    return line_of


def read_table(path: str | Path) -> pd.DataFrame:
    """A metadata table from CSV or parquet (the leading unnamed index column is dropped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("table not found", path=path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CsvFormatError(f"cannot read the table ({exc})", path=path) from exc
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: 0")]
    return frame.drop(columns=unnamed)


# --------------------------------------------------------------------------- fetching


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """One opener, with one TLS context, for every request: building a default SSL context
    loads the CA bundle (tens of milliseconds), too slow to repeat per image."""
    context = ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def fetch_once(url: str, options: DownloadOptions) -> bytes:
    """One GET; every failure becomes a :class:`FetchError` saying whether to retry."""
    request = urllib.request.Request(url, headers={"User-Agent": options.user_agent})
    try:
        with _opener().open(request, timeout=options.timeout) as response:
            data: bytes = response.read()
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
        ) from exc
    except http.client.IncompleteRead as exc:
        raise FetchError(
            f"truncated body ({len(exc.partial)} bytes received)", retryable=True
        ) from exc
    except TimeoutError as exc:
        raise FetchError(f"timed out after {options.timeout:g} s", retryable=True) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise FetchError(f"timed out after {options.timeout:g} s", retryable=True) from exc
        # "No such host" will not change between retries ("try again" from DNS may).
        unknown_host = isinstance(reason, socket.gaierror) and reason.errno == socket.EAI_NONAME
        error = FetchError(f"cannot connect: {reason}", retryable=not unknown_host)
        error.unknown_host = unknown_host
        raise error from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise FetchError(f"connection failed: {exc!r}", retryable=True) from exc
    if expected is not None and expected.isdigit() and int(expected) != len(data):
        raise FetchError(f"truncated body ({len(data)} of {expected} bytes)", retryable=True)
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


@dataclass
class Fetched:
    """A finished image: stored bytes and what the manifest needs about them."""

    data: bytes
    extension: str
    width: int
    height: int
    source_sha256: str
    attempts: int


def has_end_marker(data: bytes, fmt: str) -> bool:
    """Whether a JPEG ends with its end-of-image marker (or a PNG with its IEND chunk): a
    cut-off file does not. Trailing bytes after the marker (some cameras append data) make
    this False, and the caller then falls back to a full decode."""
    if fmt == "JPEG":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "PNG":
        return data.endswith(b"IEND\xaeB`\x82")
    return False


def convert(
    data: bytes, resize: int | None, jpeg_quality: int, verify: Verify = "decode"
) -> tuple[bytes, str, int, int]:
    """Check the image is whole, optionally shrink the shortest side to ``resize`` (never
    enlarge); returns ``(bytes, extension, width, height)``. Unresized images keep their
    original bytes, so their checksum matches the server's file.

    ``verify="decode"`` decodes every pixel (catches any corrupt or truncated file);
    ``"header"`` only parses the header and checks the end marker, several times faster on
    large photos, falling back to a decode when there is no marker to check.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "JPEG"
            shrink = resize is not None and min(im.size) > resize
            if not shrink and verify == "header" and has_end_marker(data, fmt):
                return data, _EXTENSIONS.get(fmt, fmt.lower()), im.width, im.height
            if shrink and fmt == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale where that still leaves at least
                # the target size: several times faster, and every byte is still decoded.
                assert resize is not None
                factor = resize / min(im.size)
                im.draft(im.mode, (math.ceil(im.width * factor), math.ceil(im.height * factor)))
            im.load()
            if resize is None or not shrink:
                return data, _EXTENSIONS.get(fmt, fmt.lower()), im.width, im.height
            # Re-encoding drops EXIF, so bake the orientation into the pixels first.
            upright = ImageOps.exif_transpose(im)
            scale = resize / min(upright.size)
            size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
            small = upright.resize(size, Image.Resampling.LANCZOS)
    except UnidentifiedImageError as exc:
        raise FetchError("not an image", retryable=False) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # A cut-off JPEG without Content-Length: a second attempt may get all of it.
        raise FetchError(f"undecodable image ({exc})", retryable=True) from exc
    out = io.BytesIO()
    if fmt == "JPEG":
        small.convert("RGB").save(out, "JPEG", quality=jpeg_quality)
    else:
        small.save(out, fmt)
    return out.getvalue(), _EXTENSIONS.get(fmt, fmt.lower()), small.width, small.height


def fetch_image(
    url: str,
    options: DownloadOptions,
    *,
    expected_sha256: str | None = None,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> Fetched:
    """Fetch, verify and convert one image, retrying transient failures.

    Raises :class:`FetchError` (with ``attempts`` set) once retries are spent.
    """
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
                    f"sha256 mismatch: got {digest}, expected {expected_sha256}", retryable=False
                )
            stored, extension, width, height = convert(
                data, options.resize, options.jpeg_quality, options.verify
            )
            return Fetched(stored, extension, width, height, digest, attempt)
        except FetchError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt > options.retries or stop.is_set():
                raise
            delay = backoff_delay(attempt - 1, options, exc.retry_after, rng)
            if stop.wait(delay):
                raise


# --------------------------------------------------------------------------- the run


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return str(value)


def _row_metadata(row: pd.Series) -> dict[str, Any]:
    """The table row as JSON-ready values (NaN -> null); internal columns dropped."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if str(name).startswith("_"):
            continue
        out[str(name)] = None if _is_missing(value) else value
    return out


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask is process-wide, not thread-safe


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # what _atomic_write's mkstemp makes


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files a killed run left in ``directory`` (not recursive)."""
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if p.is_file() and _TEMPORARY.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _manifest_frame(records: dict[str, ImageRecord]) -> pd.DataFrame:
    # Samples still in an open shard are not on disk yet: the manifest only lists finished work.
    rows = [r.as_row() for r in records.values() if r.status != "writing"]
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for name in ("bytes", "width", "height", "http_status", "attempts"):
        frame[name] = frame[name].astype("Int64")
    return frame.sort_values("key", kind="stable").reset_index(drop=True)


def read_manifest(out: str | Path) -> pd.DataFrame:
    """The manifest of a download folder (empty frame with its columns when absent)."""
    path = Path(out) / MANIFEST_NAME
    if not path.is_file():
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"unreadable manifest ({exc}); delete it to rebuild from the shards", path=path
        ) from exc


def _record_from_manifest_row(row: dict[str, Any]) -> ImageRecord:
    values: dict[str, Any] = {
        k: (None if _is_missing(v) else v) for k, v in row.items() if k in MANIFEST_COLUMNS
    }
    for name in ("bytes", "width", "height", "http_status", "attempts"):
        value = values.get(name)
        values[name] = None if value is None else int(value)
    values["attempts"] = values["attempts"] or 0
    return ImageRecord(**values)


def _record_from_metadata(meta: dict[str, Any], shard: str) -> ImageRecord:
    return ImageRecord(
        key=str(meta["key"]),
        dataset=str(meta["dataset"]),
        site=str(meta["site"]),
        image=str(meta["image"]),
        url=str(meta["url"]),
        shard=shard,
        sha256=meta.get("sha256"),
        source_sha256=meta.get("source_sha256"),
        bytes=meta.get("bytes"),
        width=meta.get("width"),
        height=meta.get("height"),
        status="ok",
        attempts=int(meta.get("attempts") or 1),
    )


class _Run:
    """State of one download run: the records, the writer, and the bookkeeping files."""

    def __init__(
        self, table: pd.DataFrame, out: Path, layout: Layout, shard_size: int, prefix: str
    ) -> None:
        self.table = table
        self.out = out
        self.layout = layout
        self.shard_size = shard_size
        self.prefix = prefix
        self.records: dict[str, ImageRecord] = {}
        self.since_save = 0
        self.downloaded = 0
        self.failed = 0
        self.bytes = 0
        self.writer: ShardWriter | None = None

    def open_writer(self) -> None:
        """Shards continue after the highest one on disk."""
        if self.layout == "shards":
            self.writer = ShardWriter(
                self.out,
                self.prefix,
                max_samples=self.shard_size,
                start_index=self.start_index(),
                on_shard_done=self.on_shard_done,
            )

    # ---- one finished image
    def accept(self, row: pd.Series, outcome: Fetched | FetchError) -> None:
        """Record one image's outcome and store its bytes (shard or tree file)."""
        key = str(row["key"])
        record = ImageRecord(
            key=key, dataset=row["dataset"], site=row["site"], image=row["image"], url=row["url"]
        )
        if isinstance(outcome, FetchError):
            record.status = "failed"
            record.error = outcome.reason
            record.http_status = outcome.http_status
            record.attempts = outcome.attempts
            self.records[key] = record
            self.failed += 1
            self.since_save += 1
        else:
            record.sha256 = hashlib.sha256(outcome.data).hexdigest()
            record.source_sha256 = outcome.source_sha256
            record.bytes = len(outcome.data)
            record.width, record.height = outcome.width, outcome.height
            record.attempts = outcome.attempts
            self.downloaded += 1
            self.bytes += len(outcome.data)
            if self.writer is not None:
                record.status = "writing"  # becomes "ok" when its shard is renamed into place
                self.records[key] = record
                record.shard = self.writer.write(_sample(row, record, outcome))
            else:
                path = self.out / record.dataset / record.site / record.image
                _atomic_write(path, lambda p: p.write_bytes(outcome.data))
                record.shard = self._rel(path)
                record.status = "ok"
                self.records[key] = record
                self.since_save += 1
        if self.since_save >= self.shard_size:
            self.save()

    def finish(self) -> None:
        """Close the last (short) shard and save."""
        if self.writer is not None:
            self.writer.flush()
        self.save()

    def abandon(self) -> None:
        """After an error or Ctrl-C: drop the open shard (its images are fetched again
        next time) and save what is safely on disk."""
        if self.writer is not None:
            self.writer.abort()
        self.records = {k: r for k, r in self.records.items() if r.status != "writing"}
        self.save()

    # ---- resume
    def completed(self) -> set[str]:
        """Keys already stored by an earlier run (on disk, complete)."""
        previous = read_manifest(self.out)
        by_key = {str(r["key"]): r for r in previous.to_dict("records")}
        done: set[str] = set()
        remove_stale_temporaries(self.out)
        if self.layout == "shards":
            remove_partial_shards(self.out, self.prefix)
            for shard in list_shards(self.out, self.prefix):
                keys = shard_keys(shard)
                recorded = [
                    k
                    for k in keys
                    if k in by_key
                    and by_key[k]["shard"] == shard.name
                    and by_key[k]["status"] == "ok"
                ]
                if len(recorded) < len(keys):
                    # Killed between renaming the shard and saving the manifest.
                    for sample in read_shard(shard):
                        meta = sample.metadata()
                        if meta.get("key"):
                            self.records[sample.key] = _record_from_metadata(meta, shard.name)
                for key in recorded:
                    self.records[key] = _record_from_manifest_row(by_key[key])
                done.update(keys)
        else:
            for folder in {
                self.out / d / t
                for d, t in zip(self.table["dataset"], self.table["site"], strict=True)
            }:
                remove_stale_temporaries(folder)
            for row in self.table.itertuples(index=False):
                path = self.out / row.dataset / row.site / row.image
                if not path.is_file():
                    continue
                key = str(row.key)
                old = by_key.get(key)
                if old is not None and old["status"] == "ok" and old["shard"] == self._rel(path):
                    self.records[key] = _record_from_manifest_row(old)
                else:
                    self.records[key] = self._record_from_file(row, path)
                done.add(key)
        # Keep earlier successes of images no longer in the table: they are still on disk.
        for key, old in by_key.items():
            if key not in self.records and old["status"] == "ok" and self._exists(old):
                self.records[key] = _record_from_manifest_row(old)
        return done

    def _exists(self, row: dict[str, Any]) -> bool:
        shard = row.get("shard")
        return isinstance(shard, str) and (self.out / shard).is_file()

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def _record_from_file(self, row: Any, path: Path) -> ImageRecord:
        data = path.read_bytes()
        width: int | None = None
        height: int | None = None
        try:
            with Image.open(path) as im:
                width, height = im.size
        except (OSError, UnidentifiedImageError):
            pass
        return ImageRecord(
            key=str(row.key),
            dataset=row.dataset,
            site=row.site,
            image=row.image,
            url=row.url,
            shard=self._rel(path),
            sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data),
            width=width,
            height=height,
            status="ok",
            attempts=0,
        )

    def start_index(self) -> int:
        shards = list_shards(self.out, self.prefix)
        return shard_index(shards[-1], self.prefix) + 1 if shards else 0

    # ---- bookkeeping
    def save(self) -> None:
        """Write manifest and failure log atomically (both always reflect finished work)."""
        frame = _manifest_frame(self.records)
        _atomic_write(self.out / MANIFEST_NAME, lambda p: frame.to_parquet(p, index=False))
        failed = frame[frame["status"] == "failed"].loc[:, list(FAILURE_COLUMNS)]
        _atomic_write(self.out / FAILURES_NAME, lambda p: failed.to_csv(p, index=False))
        self.since_save = 0

    def on_shard_done(self, path: Path, keys: list[str]) -> None:
        for key in keys:
            self.records[key].shard = path.name
            self.records[key].status = "ok"
        self.save()


def _sample(row: pd.Series, record: ImageRecord, outcome: Fetched) -> Sample:
    """The WebDataset sample: image bytes, the table row + checksums as JSON, [class]."""
    extra = ("status", "shard", "error", "http_status")
    meta = {
        **_row_metadata(row),
        **{k: v for k, v in record.as_row().items() if k not in extra},
    }
    parts = {
        outcome.extension: outcome.data,
        "json": json.dumps(meta, default=_jsonable, sort_keys=True).encode(),
    }
    if "cls" in row.index and not _is_missing(row["cls"]):
        parts["cls"] = str(int(row["cls"])).encode()
    return Sample(record.key, parts)


class _Fetcher:
    """Fetch one table row (in a worker thread); a host DNS does not know is not asked
    again for every other image on it."""

    def __init__(self, options: DownloadOptions, stop: threading.Event) -> None:
        self.options = options
        self.stop = stop
        self.unknown_hosts: set[str] = set()

    def __call__(self, row: pd.Series) -> Fetched | FetchError:
        expected = row.get("sha256")
        host = urllib.parse.urlsplit(row["url"]).hostname or ""
        if host in self.unknown_hosts:
            error = FetchError(f"cannot connect: unknown host {host}", retryable=False)
            error.attempts = 0
            return error
        try:
            return fetch_image(
                row["url"],
                self.options,
                expected_sha256=None if _is_missing(expected) else str(expected),
                stop=self.stop,
            )
        except FetchError as exc:
            if exc.unknown_host:
                self.unknown_hosts.add(host)
            return exc


def bounded_map(
    pool: ThreadPoolExecutor,
    function: Callable[[pd.Series], Fetched | FetchError],
    rows: Iterator[pd.Series],
    window: int,
) -> Iterator[tuple[pd.Series, Fetched | FetchError]]:
    """``(row, function(row))`` in completion order, with at most ``window`` submitted
    and unfinished at any time (``pool.map`` would submit every row up front)."""
    in_flight: dict[Future[Fetched | FetchError], pd.Series] = {}
    for row in rows:
        in_flight[pool.submit(function, row)] = row
        if len(in_flight) >= window:
            break
    while in_flight:
        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in finished:
            row = in_flight.pop(future)
            following = next(rows, None)
            if following is not None:
                in_flight[pool.submit(function, following)] = following
            yield row, future.result()


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """One run per output folder at a time: two would write the same shard names. The lock
    (``flock`` on ``download.lock``) dies with its process, so a killed run never blocks."""
    with open(out / LOCK_NAME, "a+") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise InputError(
                    "another download is writing into this folder; wait for it or stop it",
                    path=out,
                ) from exc
        yield


def download_images(
    table: pd.DataFrame,
    out: str | Path,
    *,
    layout: Layout = "shards",
    shard_size: int = 1000,
    prefix: str = "shard",
    options: DownloadOptions | None = None,
    source: str | Path | None = None,
    columns: dict[str, str] | None = None,
    dataset: str | None = None,
    site: str | None = None,
    progress: Progress | None = None,
) -> DownloadSummary:
    """Download every image of ``table`` into ``out``; rerun the same call to resume.

    ``layout="shards"`` writes ``<prefix>-NNNNNN.tar`` of at most ``shard_size`` samples
    (``<key>.jpg`` + ``<key>.json`` [+ ``<key>.cls`` when the table has a ``cls`` column]);
    ``layout="tree"`` writes ``<out>/<dataset>/<site>/<image>``. Either way ``out`` gets
    ``manifest.parquet`` (one row per image) and ``failures.csv`` (every failed URL and why).
    """
    options = options or DownloadOptions()
    if layout not in ("shards", "tree"):
        raise InputError(f"layout must be 'shards' or 'tree', not {layout!r}", value=layout)
    if shard_size < 1:
        raise InputError(f"--shard-size must be at least 1, not {shard_size}", value=shard_size)
    frame = prepare_table(table, source=source, columns=columns, dataset=dataset, site=site)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        run = _Run(frame, out, layout, shard_size, prefix)
        started = time.monotonic()
        todo = frame[~frame["key"].isin(run.completed())]
        total, skipped = len(frame), len(frame) - len(todo)
        if progress is not None:
            progress("download", skipped, total)
        run.open_writer()
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="download")
        rows = (row for _, row in todo.iterrows())
        try:
            results = bounded_map(pool, _Fetcher(options, stop), rows, 2 * options.workers)
            for done, (row, outcome) in enumerate(results, start=skipped + 1):
                run.accept(row, outcome)
                if progress is not None:
                    progress("download", done, total)
            run.finish()
        except BaseException:
            stop.set()  # workers stop retrying; queued rows are cancelled
            pool.shutdown(wait=True, cancel_futures=True)
            run.abandon()
            raise
        pool.shutdown(wait=True)
        return DownloadSummary(
            total=total,
            skipped=skipped,
            downloaded=run.downloaded,
            failed=run.failed,
            bytes=run.bytes,
            seconds=time.monotonic() - started,
            manifest=out / MANIFEST_NAME,
            failures=out / FAILURES_NAME,
            written=list(run.writer.written) if run.writer is not None else [],
        )
