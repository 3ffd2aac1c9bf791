"""The BenthicNet image-metadata table: its columns, their dtypes, and row validation.

A metadata table is a plain :class:`pandas.DataFrame` with the columns of :data:`COLUMNS`
(one row per image; free extra columns after them), so every pandas tool and the
subsampling and partition code work on it directly. Readers (``readers.py``) map each
survey format into these column names but leave the values as found; :func:`validate_metadata`
is the single place that coerces them to :data:`DTYPES` and names every row it cannot
trust, so one set of rules covers every format.

Conventions: ``datetime`` is UTC (naive values are read in the ``timezone`` given,
UTC by default); ``depth`` is metres below the surface (positive down) and ``altitude``
metres above the seafloor; ``latitude``/``longitude`` are WGS84 decimal degrees.
The image file lives at ``<root>/<dataset>/<site>/<image>``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quadrat.errors import CsvFormatError, InputError
from quadrat.io.tables import read_table, write_table

#: BenthicNet's metadata columns, in its order.
COLUMNS: tuple[str, ...] = (
    "dataset",
    "site",
    "image",
    "url",
    "latitude",
    "longitude",
    "datetime",
    "depth",
    "altitude",
    "platform",
)

#: Columns a table must have; every row needs a non-blank value in each.
REQUIRED_COLUMNS: tuple[str, ...] = ("dataset", "site", "image")

#: The dtype of every schema column after validation.
DTYPES: dict[str, str] = {
    "dataset": "string",
    "site": "string",
    "image": "string",
    "url": "string",
    "latitude": "float64",
    "longitude": "float64",
    "datetime": "datetime64[ns, UTC]",
    "depth": "float64",
    "altitude": "float64",
    "platform": "string",
}

#: Optional provenance columns readers add so that problems can name the file and line.
SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"

#: A reader's note that a row could not be read properly (e.g. an unreadable image);
#: validation turns it into an issue and removes the column.
READ_ISSUE = "read_issue"

#: Columns of :attr:`ValidationReport.issues`.
ISSUE_COLUMNS: tuple[str, ...] = (
    "row",
    SOURCE_FILE,
    SOURCE_LINE,
    "image",
    "column",
    "value",
    "reason",
)

#: Dates before this are a typo or a clock that was never set (no digital survey photo
#: is older). A clock reset to 1970 or 2000 passes: compare with a GPX track or log.
EARLIEST_DATETIME = pd.Timestamp("1950-01-01", tz="UTC")

OnError = Literal["raise", "drop", "keep"]

#: A clock time followed by a UTC offset (Z, +00, -0300, +05:30): the value is not naive.
_OFFSET_RE = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$"


@dataclass
class ValidationReport:
    """The validated table and every problem found, one issue per (row, reason).

    ``table`` holds the schema columns with their :data:`DTYPES` (values that failed
    coercion become missing) followed by the extra columns; with ``on_error="drop"`` the
    bad rows are gone from it, with ``"keep"`` they stay. ``issues`` has the columns of
    :data:`ISSUE_COLUMNS`; ``row`` is the row's position in the table that was validated.
    """

    table: pd.DataFrame
    issues: pd.DataFrame
    n_rows: int
    dropped: bool = False
    bad_rows: list[int] = field(default_factory=list)

    @property
    def n_bad(self) -> int:
        """How many rows have at least one issue."""
        return len(self.bad_rows)

    def reason_counts(self) -> pd.Series:
        """Number of rows per reason, most frequent first."""
        if self.issues.empty:
            return pd.Series(dtype="int64", name="rows")
        counts = self.issues.groupby("reason")["row"].nunique().sort_values(ascending=False)
        return counts.rename("rows")


def empty_issues() -> pd.DataFrame:
    """An issue table with no rows and the right columns."""
    return pd.DataFrame({name: pd.Series(dtype="object") for name in ISSUE_COLUMNS})


def _clean_strings(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def _numbers(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Floats, and a mask of non-blank cells that are not finite numbers."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        bad = np.isinf(values.to_numpy())
    else:
        text = _clean_strings(series)
        blank = text.isna().to_numpy()
        try:  # pyarrow's cast is vectorised; it refuses the whole column on one bad cell
            cast = pc.cast(pa.array(text, type=pa.large_string()), pa.float64())
            values = pd.Series(cast.to_numpy(zero_copy_only=False), index=series.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = pd.to_numeric(text, errors="coerce")
        values = values.astype("float64")
        bad = (~blank & values.isna().to_numpy()) | np.isinf(values.to_numpy())
    return values.where(~bad), bad


def _to_utc(parsed: pd.Series, timezone: str) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC")
    return parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def parse_datetimes(
    series: pd.Series, *, timezone: str = "UTC", dayfirst: bool = False
) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps, and a mask of non-blank cells that are not a date-time.

    Values with an offset (``2023-09-24T14:52:43-03:00``) keep it; naive values are read
    in ``timezone``. ISO 8601 is tried first (fast, vectorised); the cells it refuses are
    retried once per distinct value with pandas' flexible parser (``10/6/2022 13:50:40``).
    """
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        parsed = pd.to_datetime(series)
        return _to_utc(parsed, timezone).astype(DTYPES["datetime"]), np.zeros(len(series), bool)
    text = _clean_strings(series)
    blank = text.isna().to_numpy()
    out = pd.Series(pd.NaT, index=series.index, dtype=DTYPES["datetime"])
    bad = np.zeros(len(series), dtype=bool)
    if blank.all():
        return out, bad
    # EXIF and dive-log style "2020:02:02 11:11:27": make the date part ISO first.
    # (No look-ahead: pyarrow's RE2 runs this vectorised, Python's re would run per cell.)
    text = text.str.replace(r"^(\d{4}):(\d\d):(\d\d)([ T])", r"\1-\2-\3\4", regex=True)
    # Group by "has an explicit offset" so naive values are localised, aware ones converted.
    offsets = pc.match_substring_regex(pa.array(text, type=pa.large_string()), _OFFSET_RE)
    has_offset = np.asarray(pc.fill_null(offsets, False).to_numpy(zero_copy_only=False), bool)
    for aware in (False, True):
        chosen = ~blank & (has_offset == aware)
        if not chosen.any():
            continue
        values = text[chosen]
        parsed = _ns_range(pd.to_datetime(values, format="ISO8601", errors="coerce", utc=aware))
        retry = parsed.isna().to_numpy()
        if retry.any():
            fallback = {v: _parse_one(v, aware, dayfirst) for v in values[retry].unique()}
            parsed = parsed.astype("object")
            parsed[retry] = values[retry].map(fallback)
            parsed = pd.to_datetime(parsed, utc=aware)
        converted = parsed.dt.tz_convert("UTC") if aware else _to_utc(parsed, timezone)
        out[chosen] = converted.astype(DTYPES["datetime"])
        bad[chosen] = out[chosen].isna().to_numpy()
    return out, bad


def _parse_one(value: str, aware: bool, dayfirst: bool) -> pd.Timestamp:
    """pandas' flexible parser on one value; NaT when it fails or leaves pandas' range."""
    try:
        stamp = pd.Timestamp(pd.to_datetime(value, dayfirst=dayfirst, utc=aware))
        return stamp.as_unit("ns") if _YEARS[0] <= stamp.year <= _YEARS[1] else pd.NaT
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return pd.NaT


#: Years a nanosecond timestamp holds (pandas' datetime64[ns] range, with a margin).
_YEARS = (1678, 2261)


def _ns_range(parsed: pd.Series) -> pd.Series:
    """Nanosecond unit, with dates outside its range (year 1, 9999: typos) made missing."""
    inside = parsed.dt.year.between(*_YEARS)
    return parsed.where(inside).dt.as_unit("ns")


def _raise_first(issues: pd.DataFrame, n_bad: int) -> None:
    first = issues.iloc[0]
    path = first[SOURCE_FILE] if isinstance(first[SOURCE_FILE], str) else None
    line = int(first[SOURCE_LINE]) if pd.notna(first[SOURCE_LINE]) else None
    where = "" if line is not None else f"row {int(first['row'])}: "
    others = f" ({n_bad - 1} more bad row(s))" if n_bad > 1 else ""
    raise InputError(
        f"{where}image {first['image']!r}: {first['reason']}{others}",
        path=path,
        line=line,
        value=first["value"],
    )


@dataclass(frozen=True)
class _Problem:
    """Rows failing one check: the mask, the column and values to show, and why."""

    mask: np.ndarray
    column: str
    values: pd.Series
    reason: str


def validate_metadata(
    table: pd.DataFrame,
    *,
    on_error: OnError = "raise",
    timezone: str = "UTC",
    dayfirst: bool = False,
) -> ValidationReport:
    """Coerce ``table`` to the schema and name every row that cannot be trusted.

    Checks: required columns present and non-blank; latitude in [-90, 90], longitude in
    [-180, 180], both or neither given, not 0/0 ("null island", a GPS that had no fix);
    numbers and date-times parseable; date-times not before 1950; altitude not negative;
    (dataset, site, image) unique (the first occurrence is kept, later ones are bad); and
    any ``read_issue`` a reader left. Coordinates that fail a check are cleared (missing)
    so that no spatial step uses them. ``on_error``: ``"raise"`` raises an
    :class:`~quadrat.errors.InputError` naming the first bad row (with file and line when
    the table has ``source_file``/``source_line``); ``"drop"`` removes bad rows;
    ``"keep"`` keeps them (their unparseable values become missing).
    A missing required column always raises: no row could be kept.
    """
    if on_error not in ("raise", "drop", "keep"):
        raise ValueError(f"on_error must be 'raise', 'drop' or 'keep', not {on_error!r}")
    _require_columns(table)
    n_rows = len(table)
    frame = table.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    problems: list[_Problem] = []

    for name in ("dataset", "site", "image", "url", "platform"):
        if name in frame.columns:
            out[name] = _clean_strings(frame[name])
        else:
            out[name] = pd.Series(pd.NA, index=frame.index, dtype="string")
    for name in REQUIRED_COLUMNS:
        problems.append(_Problem(out[name].isna().to_numpy(), name, out[name], f"{name} is empty"))

    unparseable: dict[str, np.ndarray] = {}
    for name in ("latitude", "longitude", "depth", "altitude"):
        if name in frame.columns:
            values, unparseable[name] = _numbers(frame[name])
            problems.append(
                _Problem(unparseable[name], name, frame[name], f"{name} is not a number")
            )
            out[name] = values
        else:
            out[name] = pd.Series(np.nan, index=frame.index, dtype="float64")
    either_bad = unparseable.get("latitude", False) | unparseable.get("longitude", False)
    coordinate_problems = _coordinate_problems(out, np.asarray(either_bad, dtype=bool))
    problems.extend(coordinate_problems)
    untrusted = np.logical_or.reduce([p.mask for p in coordinate_problems]) | either_bad
    for name in ("latitude", "longitude"):  # so that no spatial step uses them
        out[name] = out[name].mask(untrusted)
    problems.append(
        _Problem(
            (out["altitude"] < 0).to_numpy(),
            "altitude",
            out["altitude"],
            "altitude is negative (metres above the seafloor)",
        )
    )

    if "datetime" in frame.columns:
        stamps, bad = parse_datetimes(frame["datetime"], timezone=timezone, dayfirst=dayfirst)
        problems.append(_Problem(bad, "datetime", frame["datetime"], "datetime is not a date-time"))
        early = (stamps < EARLIEST_DATETIME).to_numpy(dtype=bool)
        problems.append(
            _Problem(early, "datetime", stamps, "datetime before 1950 (camera clock unset?)")
        )
        out["datetime"] = stamps.mask(early)
    else:
        out["datetime"] = pd.Series(pd.NaT, index=frame.index, dtype=DTYPES["datetime"])

    lines = frame[SOURCE_LINE] if SOURCE_LINE in frame.columns else None
    problems.append(_duplicate_problem(out, lines))
    if READ_ISSUE in frame.columns:
        note = _clean_strings(frame[READ_ISSUE])
        problems.append(_Problem(note.notna().to_numpy(), "image", note, "unreadable image"))

    issues = _collect(problems, frame, out["image"])
    bad_rows = sorted(set(issues["row"].astype(int))) if len(issues) else []
    result = pd.DataFrame({name: out[name].astype(DTYPES[name]) for name in COLUMNS})
    for name in frame.columns:
        if name not in DTYPES and name != READ_ISSUE:
            result[name] = frame[name]

    if bad_rows and on_error == "raise":
        _raise_first(issues, len(bad_rows))
    dropped = on_error == "drop" and bool(bad_rows)
    if dropped:
        result = result.drop(index=bad_rows).reset_index(drop=True)
    return ValidationReport(
        table=result, issues=issues, n_rows=n_rows, dropped=dropped, bad_rows=bad_rows
    )


def _require_columns(table: pd.DataFrame) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    if not missing:
        return
    path = None
    if SOURCE_FILE in table.columns and len(table):
        path = table[SOURCE_FILE].iloc[0]
    raise CsvFormatError(
        f"missing required column(s) {', '.join(missing)}; found "
        f"{', '.join(map(str, table.columns)) or 'none'}",
        path=path if isinstance(path, str) else None,
        value=missing,
    )


def _coordinate_problems(out: dict[str, pd.Series], unparseable: np.ndarray) -> list[_Problem]:
    """Range, null-island and half-given checks (a value that did not parse is not "absent")."""
    lat, lon = out["latitude"], out["longitude"]
    return [
        _Problem((lat.abs() > 90).to_numpy(), "latitude", lat, "latitude out of range [-90, 90]"),
        _Problem(
            (lon.abs() > 180).to_numpy(), "longitude", lon, "longitude out of range [-180, 180]"
        ),
        _Problem(
            ((lat == 0) & (lon == 0)).to_numpy(),
            "latitude",
            lat,
            'latitude/longitude 0/0 ("null island": no GPS fix)',
        ),
        _Problem(
            (lat.isna() ^ lon.isna()).to_numpy() & ~unparseable,
            "latitude",
            lat,
            "only one of latitude/longitude is given",
        ),
    ]


def _duplicate_problem(out: dict[str, pd.Series], lines: pd.Series | None) -> _Problem:
    """Every repeat of a (dataset, site, image) key after its first row."""
    names = list(REQUIRED_COLUMNS)
    key = pd.DataFrame({name: out[name] for name in names})
    complete = key.notna().all(axis=1).to_numpy()
    duplicate = complete & key.duplicated(keep="first").to_numpy()
    first_row = pd.Series(np.arange(len(key)), index=key.index)
    if duplicate.any():
        first_row = key.assign(_row=first_row).groupby(names, dropna=False)["_row"].transform("min")
    if lines is None:
        first = "row " + first_row.astype("string")
    else:
        first = "line " + lines.iloc[first_row.to_numpy()].reset_index(drop=True).astype("string")
    shown = "first at " + first
    return _Problem(duplicate, "image", shown, "duplicate (dataset, site, image)")


def _collect(problems: list[_Problem], frame: pd.DataFrame, images: pd.Series) -> pd.DataFrame:
    """One issue row per (row, problem), ordered by row."""
    parts: list[pd.DataFrame] = []
    for problem in problems:
        rows = np.flatnonzero(problem.mask)
        if not len(rows):
            continue
        shown = problem.values.iloc[rows].astype("object").to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "row": rows,
                    SOURCE_FILE: _column_or_na(frame, SOURCE_FILE, rows),
                    SOURCE_LINE: _column_or_na(frame, SOURCE_LINE, rows),
                    "image": images.iloc[rows].astype("object").to_numpy(),
                    "column": problem.column,
                    "value": shown,
                    "reason": problem.reason,
                }
            )
        )
    if not parts:
        return empty_issues()
    issues = pd.concat(parts, ignore_index=True)
    issues = issues.sort_values("row", kind="stable").reset_index(drop=True)
    issues["value"] = issues["value"].map(lambda v: None if _is_missing(v) else v)
    return issues


def _column_or_na(frame: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(rows), None, dtype=object)
    return frame[name].iloc[rows].astype("object").to_numpy()


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def write_metadata(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a metadata table as Parquet or CSV (by suffix), atomically.

    :func:`quadrat.io.tables.write_table`: an interrupted run never leaves half a table
    (or destroys the old one). Parquet keeps the dtypes (UTC datetimes, nullable
    strings); CSV writes ISO 8601.
    """
    return write_table(table, path)


def read_metadata_table(
    path: str | Path, *, required: Sequence[str] = ("dataset", "site", "latitude", "longitude")
) -> pd.DataFrame:
    """A metadata table (as written by :func:`write_metadata`) for spatial work.

    CSV rows are indexed by their file line, so later errors can name it; ``required``
    columns must be present. A position at latitude 0, longitude 0 is set to missing
    with a warning: it is the "null island" a GPS without a fix writes, and
    :func:`validate_metadata` reports it as a bad row for the same reason.
    """
    path = Path(path)
    table = read_table(path, line_index=True)
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; read the survey with a metadata reader "
            "and validate_metadata first",
            path=path,
            value=list(table.columns),
        )
    if "latitude" in table.columns and "longitude" in table.columns:
        lat = pd.to_numeric(table["latitude"], errors="coerce")
        lon = pd.to_numeric(table["longitude"], errors="coerce")
        null_island = ((lat == 0) & (lon == 0)).to_numpy()
        if null_island.any():
            warnings.warn(
                f"{path}: {int(null_island.sum())} row(s) at latitude 0, longitude 0 "
                "treated as missing coordinates",
                stacklevel=2,
            )
            table = table.copy()
            table.loc[null_island, ["latitude", "longitude"]] = np.nan
    return table
