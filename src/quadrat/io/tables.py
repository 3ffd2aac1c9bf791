"""Read and write whole tables (metadata, manifests, reports): Parquet or CSV by suffix.

The one home of "a table file": every dataset command and report reads and writes
through here, so the same suffixes, CSV options and errors apply everywhere. Parquet
keeps dtypes (UTC datetimes, nullable strings); CSV is written with ``\\n`` line ends,
no index, ISO 8601 dates, and read back with pandas' type inference (numbers become
numbers) minus the unnamed index column ``DataFrame.to_csv`` writes by default. For
reading CSVs cell by cell as text with line numbers, use :mod:`quadrat.io.csv`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from quadrat.errors import CsvFormatError, InputError, NotFoundError
from quadrat.io.atomic import atomic_file

if TYPE_CHECKING:  # pandas is imported when a table is read or written
    import pandas as pd

#: File suffixes of tables, and the format each means.
TABLE_FORMATS: dict[str, str] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def table_format(path: str | Path) -> str:
    """ "parquet" or "csv" for ``path``'s suffix; another suffix is an InputError."""
    path = Path(path)
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"unknown table format {path.suffix or '(no suffix)'!r}; use "
            + ", ".join(sorted(TABLE_FORMATS)),
            path=path,
            value=path.suffix,
        )
    return kind


def read_table(path: str | Path, *, line_index: bool = False) -> pd.DataFrame:
    """A table from Parquet (``.parquet``/``.pq``) or CSV (any other suffix).

    ``line_index`` numbers a CSV's rows by their line in the file (header = 1), so that
    messages about a row can name its line; Parquet rows keep a 0-based range index.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise InputError("not a table file (a folder?)", path=path)
        raise NotFoundError("table not found", path=path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        frame = pd.read_csv(path, low_memory=False, encoding="utf-8-sig")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CsvFormatError(f"cannot read the table ({exc})", path=path) from exc
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: 0")]
    frame = frame.drop(columns=unnamed)
    if line_index:
        frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as Parquet or CSV (by suffix), atomically; returns ``path``.

    A frame Parquet cannot hold (mixed types in one column) is an InputError naming the
    file, and the old file, if any, is left whole.
    """
    import pyarrow as pa

    path = Path(path)
    kind = table_format(path)
    try:
        with atomic_file(path, "wb") as fh:
            if kind == "parquet":
                frame.to_parquet(fh, engine="pyarrow", index=False)
            else:
                fh.write(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"cannot write the table as Parquet: {exc}", path=path) from exc
    return path


__all__ = ["TABLE_FORMATS", "read_table", "table_format", "write_table"]
