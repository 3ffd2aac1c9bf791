"""The one lenient CSV reader: every cell a string, exact line numbers, clear errors.

CoralNet exports, labelsets, covers, survey metadata, depth logs and CATAMI tables all
come through here, so every CSV quadrat reads is decoded, parsed and reported on the same
way:

- UTF-8 (a byte-order mark is fine); a file with NUL bytes is refused as binary, an
  undecodable byte names its offset, an empty file says so.
- Every cell stays a string (``""`` when empty): readers decide what a value means and
  name the line of a bad one. pyarrow's multi-threaded reader is the fast path; pandas'
  C parser the exact one (repeated quirks, ragged rows with their line number).
- :attr:`CsvTable.lines` holds each row's first line in the file (header = line 1), also
  when quoted cells hold line breaks or blank lines sit between rows.
- Blank rows are dropped; so are columns with an empty or ``Unnamed: N`` header (the
  index column ``DataFrame.to_csv`` writes by default).
- :func:`header_key` is the one header normalisation (case, spaces, ``_``, ``.``, ``-``).
- A file over ``Limits.csv_bytes`` is refused before it is read, one with more data rows
  than ``Limits.csv_rows`` once parsed (:mod:`quadrat.limits`).
- :func:`quadrat.io.csv_chunks.iter_csv` gives the same table in chunks, so a reader that
  normalises as it goes never holds the whole text (a 1M-row export).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quadrat.errors import CsvFormatError
from quadrat.limits import Limits, current

if TYPE_CHECKING:  # pandas, numpy and pyarrow are imported when a file is read
    import numpy as np
    import pandas as pd

#: How many leading bytes are checked for NUL (a binary file, e.g. an image or a zip).
BINARY_PROBE = 65536

_UNNAMED_RE = re.compile(r"^Unnamed: \d+$")
_KEY_RE = re.compile(r"[\s_.\-]+")
_RAGGED_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNCLOSED_RE = re.compile(r"EOF inside string starting at row (\d+)")


def header_key(header: object) -> str:
    """A header cell compared case-, space-, underscore-, dot- and dash-insensitively.

    >>> header_key(" Label_Code"), header_key("pose.lat"), header_key("Date-Time")
    ('label code', 'pose lat', 'date time')
    """
    return _KEY_RE.sub(" ", str(header).strip().lower()).strip()


@dataclass(frozen=True)
class CsvTable:
    """A parsed CSV: string cells, the header as written, and each row's line number.

    ``frame`` has one column per kept header cell; a repeated name gets pandas' ``.1``,
    ``.2`` suffix there, while ``header`` keeps the names as written (so a format that
    forbids repeats can say which).
    """

    path: Path
    header: list[str]
    frame: pd.DataFrame
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)


def decode(path: str | Path, *, limits: Limits | None = None) -> str:
    """The text of a CSV file, or a :class:`CsvFormatError` saying why it is not one.

    A file over ``limits.csv_bytes`` raises LimitError before a byte of it is read.
    """
    path = Path(path)
    try:
        if path.is_file():
            current(limits).check(
                "csv_bytes", path.stat().st_size, what="CSV file is too large (bytes)", path=path
            )
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CsvFormatError("file not found", path=path) from exc
    except IsADirectoryError as exc:
        raise CsvFormatError("is a folder, expected a CSV file", path=path) from exc
    except OSError as exc:
        raise CsvFormatError(f"cannot read file: {exc}", path=path) from exc
    if not data.strip():
        raise CsvFormatError("empty file (expected a CSV with a header row)", path=path)
    if b"\x00" in data[:BINARY_PROBE]:
        raise CsvFormatError("not a CSV file (binary content)", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"not a UTF-8 text CSV (undecodable byte at offset {exc.start})",
            path=path,
            value=exc.start,
        ) from exc


def read_header(path: str | Path) -> list[str]:
    """The header cells of a CSV file (stripped), reading only its first record."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError, ValueError):
        decode(path)  # the precise message (missing, folder, binary, not UTF-8)
        raise
    except csv.Error as exc:
        raise CsvFormatError(f"not a valid CSV header: {exc}", path=path, line=1) from exc


def read_csv(path: str | Path, *, limits: Limits | None = None) -> CsvTable:
    """Parse a CSV file into string cells with exact line numbers (see the module doc).

    Over ``limits.csv_bytes`` or ``limits.csv_rows``: LimitError.
    """
    import numpy as np

    path = Path(path)
    limits = current(limits)
    text = decode(path, limits=limits)
    raw = _parse_arrow(text)
    if raw is None:
        raw = _parse_pandas(text, path)
    lines = record_lines(text)
    if lines is None or len(lines) != len(raw):
        lines = np.arange(1, len(raw) + 1, dtype=np.int64)
    if len(raw) == 0:
        raise CsvFormatError("empty file (expected a CSV with a header row)", path=path)

    limits.check("csv_rows", len(raw) - 1, what="CSV file has too many rows", path=path)
    header = [str(h).strip() for h in raw.iloc[0].tolist()]
    return table_from_rows(path, header, raw.iloc[1:], lines[1:])


def table_from_rows(
    path: Path, header: list[str], body: pd.DataFrame, body_lines: np.ndarray
) -> CsvTable:
    """Drop blank rows and unnamed columns, name the columns: the rows after the header."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    body.columns = range(body.shape[1])
    blank = np.ones(len(body), dtype=bool)
    for column in body.columns:
        blank &= pc.equal(pa.array(body[column]), "").to_numpy(zero_copy_only=False)
    if blank.any():
        body = body.loc[~blank]
        body_lines = body_lines[~blank]
    keep = [i for i, h in enumerate(header) if h != "" and not _UNNAMED_RE.match(h)]
    body = body.iloc[:, keep]
    header = [header[i] for i in keep]
    body.columns = _unique(header)
    body = body.reset_index(drop=True)
    return CsvTable(path=path, header=header, frame=body, lines=np.asarray(body_lines))


def _unique(names: list[str]) -> list[str]:
    """pandas' renaming of repeated column names: ``a, a`` -> ``a, a.1``."""
    seen: dict[str, int] = {}
    out: list[str] = []
    taken = set(names)
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        n = seen[name]
        while True:
            n += 1
            candidate = f"{name}.{n}"
            if candidate not in taken:
                break
        seen[name] = n
        taken.add(candidate)
        out.append(candidate)
    return out


def record_lines(text: str) -> np.ndarray | None:
    """1-based first line of every non-blank record, or None when that is just 1..n.

    Only files with blank lines or quoted line breaks need this; it is a vectorised scan
    of newline positions, skipping those inside quoted fields.
    """
    import numpy as np

    body = text.rstrip("\r\n")
    quoted_breaks = '"' in body  # a quoted field may hold a line break
    blank_lines = "\n\n" in body or "\n\r\n" in body or body.startswith(("\n", "\r\n"))
    if not quoted_breaks and not blank_lines:
        return None
    encoded = body.encode("utf-8")
    buffer = np.frombuffer(encoded, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == 10)
    separators = newlines
    if quoted_breaks:
        spans = np.array(
            [m.span() for m in re.finditer(rb'"(?:[^"]|"")*"', encoded)], dtype=np.int64
        ).reshape(-1, 2)
        if len(spans):
            k = np.searchsorted(spans[:, 0], newlines, side="right") - 1
            inside = (k >= 0) & (newlines < spans[np.clip(k, 0, None), 1])
            separators = newlines[~inside]
    record_starts = np.r_[0, separators + 1]
    line_of = np.asarray(np.searchsorted(newlines, record_starts)) + 1  # newlines before, + 1
    # Drop blank records (an empty line: the record starts at a newline or CR LF).
    padded = np.r_[buffer, np.uint8(10)]
    first = padded[record_starts]
    second = padded[np.minimum(record_starts + 1, len(padded) - 1)]
    blank = (first == 10) | ((first == 13) & (second == 10))
    return line_of[~blank].astype(np.int64)


def _parse_arrow(text: str) -> pd.DataFrame | None:
    """Fast path: pyarrow's CSV reader, every cell a string. None if pyarrow objects."""
    import pandas as pd
    import pyarrow as pa
    from pyarrow import csv as pacsv

    try:
        n_fields = len(next(csv.reader(io.StringIO(text))))
    except (csv.Error, StopIteration):
        return None
    names = [f"f{i}" for i in range(n_fields)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def _parse_pandas(text: str, path: Path) -> pd.DataFrame:
    """Slow, exact path: pandas' C parser, with line-numbered errors."""
    import pandas as pd

    try:
        raw = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype="string[pyarrow]",
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            index_col=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise CsvFormatError("empty file (expected a CSV with a header row)", path=path) from exc
    except pd.errors.ParserError as exc:
        match = _RAGGED_RE.search(str(exc))
        if match:
            expected, line, saw = (int(g) for g in match.groups())
            raise CsvFormatError(
                f"row has {saw} fields but the header has {expected}",
                path=path,
                line=line,
                value=saw,
            ) from exc
        unclosed = _UNCLOSED_RE.search(str(exc))
        if unclosed:  # pandas counts records from 0 (the header): name the record's line
            record = int(unclosed.group(1))
            lines = record_lines(text)
            line = int(lines[record]) if lines is not None and record < len(lines) else record + 1
            raise CsvFormatError(
                'a quoted cell is never closed (a " is missing before the end of the file)',
                path=path,
                line=line,
            ) from exc
        raise CsvFormatError(f"not a valid CSV: {exc}", path=path) from exc
    return raw.fillna("")


def read_csv_frame(path: str | Path) -> pd.DataFrame:
    """A CSV as a frame of strings (``attrs["lines"]``: each row's line), for table readers
    that need no line numbers in their own messages (CATAMI tables, translations)."""
    table = read_csv(path)
    frame = table.frame
    frame.attrs["path"] = str(table.path)
    frame.attrs["lines"] = table.lines
    return frame


__all__ = [
    "CsvTable",
    "decode",
    "header_key",
    "read_csv",
    "read_csv_frame",
    "read_header",
]
