"""Cell helpers shared by the CoralNet readers and writers (vectorised with pyarrow)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quadrat.errors import CsvFormatError
from quadrat.io.atomic import atomic_file
from quadrat.io.csv import read_csv
from quadrat.limits import Limits

INT_RE = r"\d{1,18}"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"


def read_raw(
    path: Path, *, limits: Limits | None = None
) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """(string cells, header cells, 1-based line of each row) through :mod:`quadrat.io.csv`."""
    table = read_csv(path, limits=limits)
    return table.frame, table.header, table.lines


def fail_first(
    bad: np.ndarray, values: pd.Series, lines: np.ndarray, path: Path, message: str
) -> None:
    """Raise CsvFormatError for the first flagged row (message may use {value})."""
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    value = values.iloc[i]
    more = int(bad.sum()) - 1
    suffix = f" ({more} more such rows)" if more else ""
    raise CsvFormatError(
        message.format(value=repr(value)) + suffix, path=path, line=int(lines[i]), value=value
    )


def strings(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, copy=False)


def text_cells(series: pd.Series) -> pd.Series:
    """Stripped strings with empty cells as <NA> (pyarrow compute: no Python loop)."""
    arr = pc.utf8_trim_whitespace(pa.array(series, type=pa.large_string(), from_pandas=True))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, type=arr.type), arr)
    return strings(arr, series.index)


def mask(result: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(result, False).to_numpy(zero_copy_only=False), dtype=bool)


def nonneg_int(series: pd.Series, header: str, lines: np.ndarray, path: Path) -> pd.Series:
    checks = RowChecks(path)
    values = checked_nonneg_int(series, header, lines, checks)
    checks.raise_first()
    return values


def checked_nonneg_int(
    series: pd.Series, header: str, lines: np.ndarray, checks: RowChecks
) -> pd.Series:
    """Non-negative integers (0 where a cell is bad); empty and bad cells go to ``checks``."""
    s = text_cells(series)
    arr = pa.array(s)
    empty = mask(pc.is_null(arr))
    checks.note(f"{header} is empty (every point needs one)", empty, s, lines)
    ok = mask(pc.match_substring_regex(arr, r"^\d{1,18}$"))
    checks.note(f"{header} must be a non-negative integer, got {{value}}", ~ok & ~empty, s, lines)
    if not ok.all():
        arr = pc.if_else(pa.array(ok), arr, pa.scalar("0", type=arr.type))
    values = pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)
    return pd.Series(values.astype(np.int64), index=series.index)


class RowChecks:
    """Bad rows found chunk by chunk, raised as :func:`fail_first` would on the whole file.

    Each check (its message) keeps its first bad row and a count over all chunks; the
    error raised is the first check, in the order checks were first noted, with any bad
    row: the same message, line and "N more such rows" as one pass over the whole file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._found: dict[str, tuple[int, object, int]] = {}  # message -> (line, value, n)

    def note(self, message: str, bad: np.ndarray, values: pd.Series, lines: np.ndarray) -> None:
        """Record the rows flagged in ``bad`` (``message`` may use ``{value}``)."""
        line, value, count = self._found.get(message, (0, None, 0))
        n = int(bad.sum())
        if n and not count:
            i = int(np.flatnonzero(bad)[0])
            line, value = int(lines[i]), values.iloc[i]
        self._found[message] = (line, value, count + n)

    def raise_first(self, messages: list[str] | None = None) -> None:
        """Raise CsvFormatError for the first check (of ``messages``, else all) with a bad row."""
        for message in self._found if messages is None else messages:
            line, value, count = self._found.get(message, (0, None, 0))
            if count:
                more = count - 1
                suffix = f" ({more} more such rows)" if more else ""
                raise CsvFormatError(
                    message.format(value=repr(value)) + suffix,
                    path=self.path,
                    line=line,
                    value=value,
                )


def floats(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for blanks, mask of non-blank cells that are not numbers)."""
    arr = pa.array(series)
    present = ~mask(pc.is_null(arr))
    try:
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), np.zeros(len(series), dtype=bool)
    except pa.ArrowInvalid:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return values, present & np.isnan(values)


def parse_dates(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps, parsing each distinct string once (exports repeat them a lot)."""
    arr = pa.array(series)
    uniques = pc.unique(pc.drop_null(arr))
    parsed = pd.to_datetime(
        pd.Series(uniques.to_pylist(), dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    position = pc.index_in(arr, value_set=uniques).to_numpy(zero_copy_only=False)
    position = np.where(pd.isna(position), -1, position).astype(np.int64)
    lookup = np.r_[parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns")]
    values = pd.Series(lookup[position], index=series.index).dt.tz_localize("UTC")
    bad = (position >= 0) & pd.isna(values).to_numpy()
    return values, bad


#: A cell a spreadsheet may read as a formula (OWASP "CSV injection"): one that starts
#: with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return...
FORMULA_START = r"^[=+\-@\t\r]"
#: ...unless it is just a number (``-0.5``, ``+3``, ``-1e-3``): that is data, not a formula.
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


def formula_cells(series: pd.Series) -> np.ndarray:
    """Mask of the text cells a spreadsheet would read as a formula (numbers excluded)."""
    arr = pa.array(series.astype("string"), type=pa.large_string(), from_pandas=True)
    starts = mask(pc.match_substring_regex(arr, FORMULA_START))
    if not starts.any():
        return starts
    return starts & ~mask(pc.match_substring_regex(arr, _NUMBER))


def _escape(text: str) -> str:
    return "'" + text


def guard_formulas(frame: pd.DataFrame, path: str | Path, *, escape: bool) -> pd.DataFrame:
    """Prefix ``'`` to formula-like cells and headers when ``escape``; else warn about them.

    Off by default in every writer: CoralNet's exports are reproduced byte for byte, and a
    cell such as ``-`` or ``=`` is data to CoralNet. The warning names the first cell and
    the parameter (``escape_formulas``) that makes the file safe to open in a spreadsheet.
    """
    headers = [str(c) for c in frame.columns]
    bad_headers = [h for h, b in zip(headers, formula_cells(pd.Series(headers)), strict=True) if b]
    masks = {c: formula_cells(frame[c]) for c in frame.columns}
    total = len(bad_headers) + sum(int(m.sum()) for m in masks.values())
    if total == 0:
        return frame
    if escape:
        out = frame.copy()
        for c, m in masks.items():
            if m.any():
                column = out[c].astype("string").astype(object)
                column[m] = column[m].map(_escape)
                out[c] = column.astype("string")
        return out.rename(columns={h: _escape(h) for h in bad_headers})
    if bad_headers:
        first = f"header {bad_headers[0]!r}"
    else:
        column = next(c for c, m in masks.items() if m.any())
        row = int(np.flatnonzero(masks[column])[0])
        first = f"line {row + 2}, column {column!r}: {frame[column].iloc[row]!r}"
    warnings.warn(
        f"{path}: {total} cell(s) would be read as a formula by a spreadsheet (first: "
        f"{first}); pass escape_formulas=True to prefix them with ' before sharing the file",
        UserWarning,
        stacklevel=4,
    )
    return frame


def write_csv(frame: pd.DataFrame, path: str | Path, *, escape_formulas: bool = False) -> Path:
    """Write to a temporary file beside ``path`` then rename: readers never see half a file.

    ``escape_formulas``: see :func:`guard_formulas` (a warning when off and needed).
    """
    frame = guard_formulas(frame, path, escape=escape_formulas)
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return Path(path)


def blank(series: pd.Series) -> pd.Series:
    """Strings for CSV cells, with missing values as empty cells."""
    return series.astype("string").fillna("")


def format_dates(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        s = series
        s = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return s.dt.strftime(_DATE_FORMAT).astype("string").fillna("")
    return blank(series)
