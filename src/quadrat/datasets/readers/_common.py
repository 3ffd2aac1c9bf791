"""What every metadata reader shares: the format registry, CSV cells with provenance,
the dataset/site defaults, column order, and time matching against a log.

Readers translate *formats* and leave *values* as found:
:func:`quadrat.datasets.schema.validate_metadata` is the one place that decides what is
a bad latitude or date, the same way for every format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from quadrat._registry import Registry
from quadrat.datasets.schema import COLUMNS, SOURCE_FILE, SOURCE_LINE, parse_datetimes
from quadrat.errors import InputError
from quadrat.io.csv import read_csv

#: ``progress(description, done, total)``.
Progress = Callable[[str, int, int], None]

#: A reader: ``(path, **options) -> DataFrame`` (one row per image, schema column names).
MetadataReader = Callable[..., pd.DataFrame]

#: Metadata formats by name; readers register themselves where they are defined.
METADATA_READERS: Registry[MetadataReader] = Registry("metadata format")


def read_csv_strings(path: str | Path) -> pd.DataFrame:
    """Every cell as a string ("" when empty), plus ``source_file`` and ``source_line``.

    :func:`quadrat.io.csv.read_csv` with provenance columns: a leading unnamed index
    column is dropped, line numbers are exact even when quoted cells hold line breaks.
    """
    table = read_csv(path)
    frame = table.frame
    frame[SOURCE_FILE] = str(table.path)
    frame[SOURCE_LINE] = table.lines
    return frame


def default_dataset(path: Path) -> str:
    return path.resolve().parent.name or path.stem


def site_column(site_values: pd.Series | None, site: str | None, dataset: pd.Series) -> pd.Series:
    """The format's site where given, else the caller's ``site``, else the dataset name."""
    fallback = dataset if site is None else pd.Series(site, index=dataset.index, dtype="string")
    if site_values is None:
        return fallback.astype("string")
    text = site_values.astype("string").str.strip()
    return text.mask(text.isna() | (text == ""), fallback).astype("string")


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Schema columns first (those present), then the extras, provenance last."""
    provenance = [c for c in (SOURCE_FILE, SOURCE_LINE) if c in frame.columns]
    schema = [c for c in COLUMNS if c in frame.columns]
    extras = [c for c in frame.columns if c not in schema and c not in provenance]
    return frame[schema + extras + provenance]


def parse_clock_offset(text: str | float | pd.Timedelta) -> pd.Timedelta:
    """A camera clock offset: seconds (``-10800``, ``+3.5``) or a pandas duration (``-3h``)."""
    if isinstance(text, pd.Timedelta):
        return text
    if isinstance(text, int | float):
        return pd.Timedelta(seconds=float(text))
    value = str(text).strip()
    try:
        return pd.Timedelta(seconds=float(value))
    except ValueError:
        pass
    try:
        offset = pd.Timedelta(value)
    except ValueError as exc:
        raise InputError(
            "clock offset must be seconds (-10800) or a duration (-3h, 00:01:30)", value=text
        ) from exc
    if pd.isna(offset):
        raise InputError("clock offset must not be empty", value=text)
    return offset


def photo_times(
    table: pd.DataFrame, clock_offset: str | float | pd.Timedelta, timezone: str, what: str
) -> tuple[pd.Series, pd.Series]:
    """The photos' own (UTC) times and those times plus the clock offset."""
    if "datetime" not in table.columns:
        raise InputError(f"the table has no datetime column to match {what} times to")
    camera, _bad = parse_datetimes(table["datetime"], timezone=timezone)
    return camera, camera + parse_clock_offset(clock_offset)


def seconds(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as float seconds since 1970 (NaN where missing)."""
    out = np.full(len(stamps), np.nan)
    known = stamps.notna().to_numpy()
    out[known] = stamps[known].to_numpy(dtype="datetime64[ns]").astype("int64") / 1e9
    return out


def interpolate_in_time(
    at_s: np.ndarray, log_times: pd.Series, values: list[np.ndarray], max_gap_s: float
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Linear interpolation of logged ``values`` at times ``at_s`` (seconds).

    Returns the interpolated values, the distance (seconds) to the nearest log sample, and
    where that distance is within ``max_gap_s`` (a time outside the log or in a gap in it
    gets no value). Sorting is done here, so the log may come in any order.
    """
    log_s = seconds(log_times)
    order = np.argsort(log_s, kind="stable")
    log_s = log_s[order]
    after = np.clip(np.searchsorted(log_s, at_s), 0, len(log_s) - 1)
    before = np.clip(after - 1, 0, len(log_s) - 1)
    gap = np.minimum(np.abs(log_s[after] - at_s), np.abs(at_s - log_s[before]))
    matched = ~np.isnan(at_s) & (gap <= max_gap_s)
    interpolated = [np.interp(at_s, log_s, v[order]) for v in values]
    return interpolated, np.where(np.isnan(at_s), np.nan, gap), matched
