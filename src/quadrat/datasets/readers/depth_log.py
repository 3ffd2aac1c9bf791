"""Time-stamped depth logs (a camera's or dive computer's CSV) and matching photos to them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from quadrat.datasets.readers._common import (
    interpolate_in_time,
    ordered,
    parse_clock_offset,
    photo_times,
    read_csv_strings,
    seconds,
)
from quadrat.datasets.schema import SOURCE_FILE, SOURCE_LINE, parse_datetimes
from quadrat.errors import CsvFormatError, InputError
from quadrat.io.csv import header_key

#: Header names :func:`read_depth_log` takes for the time and the depth, in order.
_LOG_TIME_KEYS = ("datetime", "date time", "timestamp", "time")


def read_depth_log(
    path: str | Path, *, timezone: str = "UTC", columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A time-stamped depth log (a camera's or a dive computer's CSV export).

    Finds the time column (``Time``, ``timestamp``, ``datetime``) and the first column
    whose name starts with "depth"; times without an offset are read in ``timezone``
    (the camera's local clock, like its EXIF times). Columns: ``datetime`` (UTC),
    ``depth`` (metres), sorted by time. A sample with an unparseable time or depth is an
    error naming its line: a log is machine-written, so one bad line means a bad file.

    ``columns`` names the columns of a raw log without a header row, in file order (e.g.
    ``("time", "depth")``); its first line is then a sample. A file that does have a header
    row is refused with that reason rather than read as a bad first sample.
    """
    path = Path(path)
    raw = _read_headerless(path, columns) if columns is not None else read_csv_strings(path)
    by_key = {header_key(c): c for c in raw.columns if c not in (SOURCE_FILE, SOURCE_LINE)}
    time_column = next((by_key[k] for k in _LOG_TIME_KEYS if k in by_key), None)
    depth_column = next((c for k, c in by_key.items() if k.startswith("depth")), None)
    if time_column is None or depth_column is None:
        raise CsvFormatError(
            "a depth log needs a time column (Time, timestamp, datetime) and a depth column; "
            f"found {', '.join(by_key.values())} (for a log without a header row, the "
            "columns option names its columns, e.g. time, depth)",
            path=path,
            line=1,
            param="columns",
        )
    times, bad_time = parse_datetimes(raw[time_column], timezone=timezone)
    text = raw[depth_column].str.strip()
    depth = pd.to_numeric(text, errors="coerce")
    bad = bad_time | times.isna().to_numpy() | (depth.isna() & (text != "")).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise CsvFormatError(
            f"unreadable sample: {time_column}={raw[time_column].iloc[first]!r}, "
            f"{depth_column}={raw[depth_column].iloc[first]!r}",
            path=path,
            line=int(raw[SOURCE_LINE].iloc[first]),
        )
    log = pd.DataFrame({"datetime": times, "depth": depth.astype("float64")})
    log = log[log["depth"].notna()]
    if log.empty:
        raise CsvFormatError("the depth log has no samples", path=path)
    return log.sort_values("datetime", kind="stable").reset_index(drop=True)


def _read_headerless(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A CSV without a header row, its columns named by ``columns`` (in file order)."""
    from quadrat.io.csv import read_csv

    names = [str(c).strip() for c in ([columns] if isinstance(columns, str) else columns)]
    if not names or "" in names or len({header_key(n) for n in names}) != len(names):
        raise InputError(
            "columns must name each column of the depth log once (e.g. time, depth)",
            value=list(columns),
            param="columns",
        )
    table = read_csv(path)  # its "header" is the first sample
    first = table.header
    if len(first) != len(names):
        raise CsvFormatError(
            f"columns names {len(names)} columns ({', '.join(names)}) but the first line "
            f"has {len(first)} non-empty fields",
            path=path,
            line=1,
            param="columns",
        )
    keys = {header_key(cell) for cell in first}
    if keys & set(_LOG_TIME_KEYS) or any(k.startswith("depth") for k in keys):
        raise CsvFormatError(
            f"the depth log has a header row ({', '.join(first)}); leave columns out to use it",
            path=path,
            line=1,
            param="columns",
        )
    body = table.frame.set_axis(names, axis=1)
    head = pd.DataFrame([first], columns=names)
    raw = pd.concat([head, body], ignore_index=True)
    raw[SOURCE_FILE] = str(table.path)
    raw[SOURCE_LINE] = np.concatenate([[1], table.lines]).astype(np.int64)
    return raw


def read_depth_logs(
    paths: Iterable[str | Path], *, timezone: str = "UTC", columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Several depth logs (one per dive or card) as one log sorted by time.

    ``columns``: names for logs without a header row (see :func:`read_depth_log`).
    """
    logs = [read_depth_log(path, timezone=timezone, columns=columns) for path in paths]
    if not logs:
        raise InputError("no depth log given")
    merged = pd.concat(logs, ignore_index=True)
    return merged.sort_values("datetime", kind="stable").reset_index(drop=True)


def match_depth(
    table: pd.DataFrame,
    log: pd.DataFrame,
    *,
    clock_offset: str | float | pd.Timedelta = 0,
    max_gap: str | float | pd.Timedelta = 5,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Set each photo's ``depth`` from a depth log by time, interpolating between samples.

    The log's time is the photo's ``datetime`` plus ``clock_offset`` (the log device's
    clock against the camera's). Photos farther than ``max_gap`` from every sample keep
    their depth. Adds ``depth_log_gap_s`` and ``depth_matched``; ``datetime`` is unchanged.
    """
    if log.empty:
        raise InputError("the depth log has no samples to match photos to")
    _camera, shifted = photo_times(table, clock_offset, timezone, "depth-log")
    (depth,), gap, matched = interpolate_in_time(
        seconds(shifted),
        log["datetime"],
        [log["depth"].to_numpy(dtype=float)],
        parse_clock_offset(max_gap).total_seconds(),
    )
    out = table.copy()
    current = out["depth"] if "depth" in out.columns else pd.Series(np.nan, index=out.index)
    out["depth"] = current.astype("object").where(~matched, depth)
    out["depth_log_gap_s"] = gap
    out["depth_matched"] = matched
    return ordered(out)
