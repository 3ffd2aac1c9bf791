"""The bookkeeping of a download folder: ``manifest.parquet`` (one row per image) and
``failures.csv`` (every failed URL and why), both written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from quadrat.datasets.download.options import is_missing
from quadrat.errors import InputError
from quadrat.io.tables import write_table

MANIFEST_NAME = "manifest.parquet"
FAILURES_NAME = "failures.csv"
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
_INTEGER_COLUMNS = ("bytes", "width", "height", "http_status", "attempts")


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


def manifest_frame(records: dict[str, ImageRecord]) -> pd.DataFrame:
    """The finished records as the manifest table, sorted by key."""
    # Samples still in an open shard are not on disk yet: the manifest only lists finished work.
    rows = [r.as_row() for r in records.values() if r.status != "writing"]
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for name in _INTEGER_COLUMNS:
        frame[name] = frame[name].astype("Int64")
    return frame.sort_values("key", kind="stable").reset_index(drop=True)


def save_manifest(out: Path, records: dict[str, ImageRecord]) -> None:
    """Write manifest and failure log atomically (both always reflect finished work)."""
    frame = manifest_frame(records)
    write_table(frame, out / MANIFEST_NAME)
    write_table(
        frame[frame["status"] == "failed"].loc[:, list(FAILURE_COLUMNS)], out / FAILURES_NAME
    )


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


def record_from_manifest_row(row: dict[str, Any]) -> ImageRecord:
    """An :class:`ImageRecord` from a manifest row (missing cells -> None)."""
    values: dict[str, Any] = {
        k: (None if is_missing(v) else v) for k, v in row.items() if k in MANIFEST_COLUMNS
    }
    for name in _INTEGER_COLUMNS:
        value = values.get(name)
        values[name] = None if value is None else int(value)
    values["attempts"] = values["attempts"] or 0
    return ImageRecord(**values)


def record_from_metadata(meta: dict[str, Any], shard: str) -> ImageRecord:
    """An :class:`ImageRecord` from a shard sample's JSON (a manifest lost in a kill)."""
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
