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
- :func:`iter_csv` gives the same table in chunks of about :data:`CSV_CHUNK_BYTES`, so a
  reader that normalises as it goes never holds the whole text (a 1M-row export).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
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

#: Bytes of CSV text :func:`iter_csv` parses at a time (each chunk ends at a record
#: boundary, so a chunk holding one huge quoted cell may be longer).
CSV_CHUNK_BYTES = 8 << 20

_BOM = b"\xef\xbb\xbf"

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
    return _table(path, header, raw.iloc[1:], lines[1:])


def _table(path: Path, header: list[str], body: pd.DataFrame, body_lines: np.ndarray) -> CsvTable:
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


@dataclass(frozen=True)
class _Chunk:
    """Bytes ``start:stop`` of a file (whole records) and each record's first line."""

    start: int
    stop: int
    lines: np.ndarray


def iter_csv(
    path: str | Path, *, limits: Limits | None = None, chunk_bytes: int | None = CSV_CHUNK_BYTES
) -> Iterator[CsvTable]:
    """:func:`read_csv` in pieces: tables of about ``chunk_bytes`` of text each.

    Concatenated, the chunks' frames and lines are exactly :func:`read_csv`'s (the first
    chunk may have no rows, never no header). A first pass checks the file in
    ``chunk_bytes`` blocks (UTF-8, quoting, a constant number of fields, the row limit)
    and finds record boundaries; the second parses one chunk at a time. A file with
    anything unusual (a ragged row, a stray quote, a lone CR, a leading blank line, an
    encoding error) and ``chunk_bytes=None`` are read whole by :func:`read_csv`, so
    errors and quirks are the same either way.
    """
    path = Path(path)
    limits = current(limits)
    plan = None if chunk_bytes is None else _plan_chunks(path, limits, max(int(chunk_bytes), 1))
    if plan is None:
        yield read_csv(path, limits=limits)
        return
    fields, chunks = plan
    header: list[str] | None = None
    with path.open("rb") as fh:
        for chunk in chunks:
            fh.seek(chunk.start)
            raw = _parse_arrow_bytes(fh.read(chunk.stop - chunk.start), fields)
            if raw is None or len(raw) != len(chunk.lines):  # the first pass said it would
                if header is None:  # parse: the file changed meanwhile, or a pyarrow quirk
                    yield read_csv(path, limits=limits)
                    return
                raise CsvFormatError(
                    "not a valid CSV (did the file change while it was read?)",
                    path=path,
                    line=int(chunk.lines[0]) if len(chunk.lines) else None,
                )
            lines = chunk.lines
            if header is None:
                header = [str(h).strip() for h in raw.iloc[0].tolist()]
                raw, lines = raw.iloc[1:], lines[1:]
            yield _table(path, list(header), raw, lines)


def _plan_chunks(path: Path, limits: Limits, chunk_bytes: int) -> tuple[int, list[_Chunk]] | None:
    """(fields per record, chunks) when the file can be streamed exactly, else None.

    Refuses (LimitError) a file over ``csv_bytes`` or ``csv_rows``, as :func:`read_csv`.
    """
    try:
        if not path.is_file():
            return None
        limits.check(
            "csv_bytes", path.stat().st_size, what="CSV file is too large (bytes)", path=path
        )
        fh = path.open("rb")
    except OSError:
        return None
    chunks: list[_Chunk] = []
    fields: int | None = None
    records = 0
    with fh:
        pending = b""
        offset = 0  # file offset of pending[0]
        newlines = 0  # newlines before pending[0]
        at_end = False
        while not at_end:
            data = fh.read(chunk_bytes)
            at_end = len(data) < chunk_bytes
            if offset == 0 and not pending:
                if b"\x00" in data[:BINARY_PROBE] or not data.strip():
                    return None
                if data.startswith(_BOM):
                    data, offset = data[len(_BOM) :], len(_BOM)
                if data.startswith((b"\n", b"\r")):
                    return None  # a leading blank line: read_csv's own handling
            pending += data
            split = len(pending) if at_end else _last_boundary(pending)
            if split <= 0:
                continue  # no record ends in this block yet (a huge quoted cell)
            block = pending[:split]
            scanned = _scan(block, newlines)
            if scanned is None:
                return None
            lines, counts = scanned
            if fields is None and len(counts):
                fields = int(counts[0])
            if len(counts) and (counts != fields).any():
                return None  # a ragged row: read_csv reports it with its line
            chunks.append(_Chunk(offset, offset + split, lines))
            records += len(lines)
            newlines += block.count(b"\n")
            offset += split
            pending = pending[split:]
    if fields is None or records == 0:
        return None
    limits.check("csv_rows", records - 1, what="CSV file has too many rows", path=path)
    return fields, chunks


def _last_boundary(data: bytes) -> int:
    """Length of the longest prefix of whole records (after its last unquoted newline)."""
    i = data.rfind(b"\n")
    if i < 0:
        return 0
    odd = data.count(b'"', 0, i) % 2
    while odd:  # newline i lies inside a quoted cell: step back to the one before
        j = data.rfind(b"\n", 0, i)
        if j < 0:
            return 0
        odd = (odd + data.count(b'"', j, i)) % 2
        i = j
    return i + 1


def _scan(block: bytes, newlines_before: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(first line of each record, fields of each record) of whole records, or None when
    the block is not plain RFC 4180 CSV (stray quote, lone CR, not UTF-8)."""
    import numpy as np

    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if block.count(b"\r") != block.count(b"\r\n"):
        return None
    buf = np.frombuffer(block, dtype=np.uint8)
    quotes = np.flatnonzero(buf == 34)
    if len(quotes) % 2:
        return None  # an unterminated quoted cell
    if len(quotes):
        padded = np.r_[np.uint8(10), buf, np.uint8(10)]  # a field edge before and after
        opening, closing = quotes[0::2], quotes[1::2]
        escaped = np.zeros(len(opening), dtype=bool)
        escaped[1:] = opening[1:] == closing[:-1] + 1  # "" inside a quoted cell
        before = padded[opening]  # the byte before each opening quote
        after = padded[closing + 2]  # the byte after each closing quote
        if not (escaped | (before == 44) | (before == 10)).all():
            return None
        following = np.r_[opening[1:], -1] == closing + 1  # closes an escape pair
        if not (following | (after == 44) | (after == 10) | (after == 13)).all():
            return None
    newline = np.flatnonzero(buf == 10)
    comma = np.flatnonzero(buf == 44)
    newline_all = newline
    if len(quotes):  # only separators outside quoted cells count
        newline = newline[np.searchsorted(quotes, newline) % 2 == 0]
        comma = comma[np.searchsorted(quotes, comma) % 2 == 0]
    starts = np.r_[0, newline + 1]
    padded_end = np.r_[buf, np.uint8(10), np.uint8(10)]
    first, second = padded_end[starts], padded_end[starts + 1]
    blank = (starts >= len(buf)) | (first == 10) | ((first == 13) & (second == 10))
    lines = np.asarray(np.searchsorted(newline_all, starts)) + 1 + newlines_before
    counts = np.bincount(np.searchsorted(starts, comma, side="right") - 1, minlength=len(starts))
    return lines[~blank].astype(np.int64), (counts + 1)[~blank]


def _parse_arrow_bytes(data: bytes, fields: int) -> pd.DataFrame | None:
    """pyarrow's CSV reader on whole records of ``fields`` cells, every cell a string."""
    import pandas as pd
    import pyarrow as pa
    from pyarrow import csv as pacsv

    names = [f"f{i}" for i in range(fields)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
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
    "CSV_CHUNK_BYTES",
    "CsvTable",
    "decode",
    "header_key",
    "iter_csv",
    "read_csv",
    "read_csv_frame",
    "read_header",
]
