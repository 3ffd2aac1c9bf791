"""CSVs read in chunks: :func:`read_csv`'s table, a piece at a time.

A CoralNet export of a large source has a million rows; read whole, its text, its parsed
cells and the normalised frame are all in memory at once (800 MB and more). Here a first
pass reads the file in blocks of ``chunk_bytes`` and checks that it is plain RFC 4180 CSV
(UTF-8, quotes only around whole cells, a lone CR nowhere, the same number of cells in
every record, no more than ``Limits.csv_rows`` rows), noting where records end and each
record's first line; the second pass parses one block at a time with pyarrow. Anything
unusual is read whole by :func:`quadrat.io.csv.read_csv`, so the rows, lines, quirks and
errors are always that function's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quadrat.errors import CsvFormatError
from quadrat.io.csv import BINARY_PROBE, CsvTable, read_csv, table_from_rows
from quadrat.limits import Limits, current

if TYPE_CHECKING:  # pandas, numpy and pyarrow are imported when a file is read
    import numpy as np
    import pandas as pd

#: Bytes of CSV text :func:`iter_csv` parses at a time (each chunk ends at a record
#: boundary, so a chunk holding one huge quoted cell may be longer).
CSV_CHUNK_BYTES = 8 << 20

_BOM = b"\xef\xbb\xbf"


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
            yield table_from_rows(path, list(header), raw, lines)


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


__all__ = ["CSV_CHUNK_BYTES", "iter_csv"]
