"""How a download runs (:class:`DownloadOptions`) and what the metadata table must hold."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd

from quadrat import __version__
from quadrat.datasets.shards import safe_key
from quadrat.errors import CsvFormatError, InputError

REQUIRED_COLUMNS = ("dataset", "site", "image", "url")

Layout = Literal["shards", "tree"]
Verify = Literal["decode", "header"]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DownloadOptions:
    """How to fetch: ``retries`` counts attempts after the first one.

    ``timeout`` bounds each network read; ``deadline`` (seconds) one whole attempt at a
    file and ``max_bytes`` its size (None: ``Limits.download_seconds`` and
    ``Limits.download_bytes``, see :mod:`quadrat.limits`).
    """

    workers: int = 8
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    resize: int | None = None
    jpeg_quality: int = 90
    verify: Verify = "decode"
    user_agent: str = f"quadrat/{__version__} (benthic dataset download)"
    deadline: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(
                f"workers must be at least 1, not {self.workers}",
                value=self.workers,
                param="workers",
            )
        if not self.timeout > 0:
            raise InputError(
                f"timeout must be positive, not {self.timeout}", value=self.timeout, param="timeout"
            )
        if self.retries < 0:
            raise InputError(
                f"retries cannot be negative ({self.retries})", value=self.retries, param="retries"
            )
        if self.verify not in ("decode", "header"):
            raise InputError(
                f"verify must be decode or header, not {self.verify!r}",
                value=self.verify,
                param="verify",
            )
        if self.resize is not None and self.resize < 1:
            raise InputError(
                f"resize must be a positive side length, not {self.resize}",
                value=self.resize,
                param="resize",
            )


def is_missing(value: object) -> bool:
    """Whether a table cell is missing (None, NaN, NaT, <NA>); lists and arrays are not."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


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
                param="columns",
            )
        frame[target] = frame[own]
    if "image" not in frame.columns and "url" in frame.columns:
        frame["image"] = [
            urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(str(u)).path).name)
            if not is_missing(u)
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
            " (map them with columns={NAME: COLUMN}, or give a dataset name)",
            path=source,
            param="columns",
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
