"""One download run: resume from disk, fetch in a bounded thread pool, store, keep books.

- **Resume** trusts what is on disk: completed shards (their member names) or tree files;
  the manifest adds each image's checksum and size. Failed images are tried again.
- **Concurrency** is a thread pool with a bounded window of requests in flight (downloads
  wait on the network, not the CPU; the window bounds the bytes held in memory).
- One run per output folder at a time (a ``flock`` that dies with its process).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, UnidentifiedImageError

from quadrat._util import jsonable
from quadrat.datasets.download.convert import Fetched
from quadrat.datasets.download.http import Failed, try_image, unknown_host
from quadrat.datasets.download.manifest import (
    FAILURES_NAME,
    MANIFEST_NAME,
    ImageRecord,
    read_manifest,
    record_from_manifest_row,
    record_from_metadata,
    save_manifest,
)
from quadrat.datasets.download.options import (
    DownloadOptions,
    Layout,
    Progress,
    is_missing,
    prepare_table,
)
from quadrat.datasets.shards import (
    Sample,
    ShardWriter,
    list_shards,
    read_shard,
    remove_partial_shards,
    shard_index,
    shard_keys,
)
from quadrat.errors import ConflictError, FetchError, InputError
from quadrat.io.atomic import remove_stale_temporaries, write_bytes
from quadrat.io.paths import resolve_all_under, resolve_under

try:  # POSIX; elsewhere runs are not locked against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "download.lock"


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


def _row_metadata(row: pd.Series) -> dict[str, Any]:
    """The table row as JSON-ready values (NaN -> null); internal columns dropped."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if str(name).startswith("_"):
            continue
        out[str(name)] = None if is_missing(value) else value
    return out


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
    def accept(self, row: pd.Series, outcome: Fetched | Failed) -> None:
        """Record one image's outcome and store its bytes (shard or tree file)."""
        key = str(row["key"])
        record = ImageRecord(
            key=key, dataset=row["dataset"], site=row["site"], image=row["image"], url=row["url"]
        )
        if isinstance(outcome, Failed):
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
                write_bytes(path, outcome.data)
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
                            self.records[sample.key] = record_from_metadata(meta, shard.name)
                for key in recorded:
                    self.records[key] = record_from_manifest_row(by_key[key])
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
                    self.records[key] = record_from_manifest_row(old)
                else:
                    self.records[key] = self._record_from_file(row, path)
                done.add(key)
        # Keep earlier successes of images no longer in the table: they are still on disk.
        for key, old in by_key.items():
            if key not in self.records and old["status"] == "ok" and self._exists(old):
                self.records[key] = record_from_manifest_row(old)
        return done

    def _exists(self, row: dict[str, Any]) -> bool:
        shard = row.get("shard")
        if not isinstance(shard, str):
            return False
        try:  # a manifest is a file too: its paths stay inside out
            return resolve_under(self.out, shard).is_file()
        except InputError:
            return False

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
        save_manifest(self.out, self.records)
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
        "json": json.dumps(jsonable(meta), default=str, sort_keys=True).encode(),
    }
    if "cls" in row.index and not is_missing(row["cls"]):
        parts["cls"] = str(int(row["cls"])).encode()
    return Sample(record.key, parts)


class _Fetcher:
    """Fetch one table row (in a worker thread); a host DNS does not know is not asked
    again for every other image on it."""

    def __init__(self, options: DownloadOptions, stop: threading.Event) -> None:
        self.options = options
        self.stop = stop
        self.unknown_hosts: set[str] = set()

    def __call__(self, row: pd.Series) -> Fetched | Failed:
        expected = row.get("sha256")
        host = urllib.parse.urlsplit(row["url"]).hostname or ""
        if host in self.unknown_hosts:
            error = FetchError(f"cannot connect: unknown host {host}", value=row["url"])
            return Failed(error, attempts=0)
        outcome = try_image(
            row["url"],
            self.options,
            expected_sha256=None if is_missing(expected) else str(expected),
            stop=self.stop,
        )
        if isinstance(outcome, Failed) and unknown_host(outcome.error):
            self.unknown_hosts.add(host)
        return outcome


def bounded_map(
    pool: ThreadPoolExecutor,
    function: Callable[[pd.Series], Fetched | Failed],
    rows: Iterator[pd.Series],
    window: int,
) -> Iterator[tuple[pd.Series, Fetched | Failed]]:
    """``(row, function(row))`` in completion order, with at most ``window`` submitted
    and unfinished at any time (``pool.map`` would submit every row up front)."""
    in_flight: dict[Future[Fetched | Failed], pd.Series] = {}
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
                raise ConflictError(
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
        raise InputError(
            f"layout must be 'shards' or 'tree', not {layout!r}", value=layout, param="layout"
        )
    if shard_size < 1:
        raise InputError(
            f"shard_size must be at least 1, not {shard_size}",
            value=shard_size,
            param="shard_size",
        )
    frame = prepare_table(table, source=source, columns=columns, dataset=dataset, site=site)
    out = Path(out)
    if layout == "tree":  # dataset/site/image from the table become paths: keep them in out
        resolve_all_under(
            out,
            (
                (f"{d}/{s}/{i}", None)
                for d, s, i in zip(frame["dataset"], frame["site"], frame["image"], strict=True)
            ),
            path=source,
            param="table",
        )
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
