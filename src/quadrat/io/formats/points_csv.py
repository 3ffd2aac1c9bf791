"""Unannotated point locations: CoralNet's points CSV (``Name, Row, Column`` only).

CoralNet's "upload points" form takes this file, and CoralNet exports points only through
CPCe files (coralnet#444); quadrat writes it for any source, labelled or not, so the
same points can be annotated elsewhere (TagLab, CoralNet) or loaded into another source.
Rows and columns are 0-based pixels from the top left, as in CoralNet's annotation CSVs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat.errors import CsvFormatError
from quadrat.io.csv import header_key, read_csv
from quadrat.io.formats._common import check_points_per_image, pixel, point_table, write_csv
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.limits import Limits

if TYPE_CHECKING:
    import pandas as pd

HEADER = ("Name", "Row", "Column")


def read_points_csv(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """The points of a ``Name, Row, Column`` CSV (other columns are ignored), unlabelled."""
    table = read_csv(path, limits=limits)
    path = table.path
    keys = {
        header_key(h): column for h, column in zip(table.header, table.frame.columns, strict=True)
    }
    missing = [h for h in HEADER if header_key(h) not in keys]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; a points CSV has Name, Row, Column "
            f"(found: {', '.join(table.header)})",
            path=path,
            line=1,
        )
    names = table.frame[keys["name"]]
    rows = table.frame[keys["row"]]
    columns = table.frame[keys["column"]]
    records: list[dict[str, Any]] = []
    for name, row, column, line in zip(names, rows, columns, table.lines, strict=True):
        line = int(line)
        if not str(name).strip():
            raise CsvFormatError("Name is empty", path=path, line=line)
        records.append(
            {
                "image": str(name).strip(),
                "row": _integer(row, "Row", path, line),
                "column": _integer(column, "Column", path, line),
                "label": None,
                "line": line,
            }
        )
    frame = point_table(records)
    check_points_per_image(frame, path, limits)
    return frame


def _integer(value: str, what: str, path: Path, line: int) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise CsvFormatError(
            f"{what} must be a non-negative integer, got {value!r}",
            path=path,
            line=line,
            value=value,
        )
    return pixel(text, what, path=path, line=line)


def write_points_csv(table: pd.DataFrame, path: str | Path, **_options: Any) -> int:
    """Write every point of ``table`` (labelled or not) as ``Name, Row, Column``."""
    rows = zip(table["image"], table["row"].astype(int), table["column"].astype(int), strict=True)
    write_csv(path, HEADER, rows)
    return len(table)


register(
    FormatInfo(
        name="coralnet-points",
        description="CoralNet points CSV: Name, Row, Column (unannotated point locations)",
        kind="points",
        carries="positions",
        suffix=".csv",
        read=read_points_csv,
        write=write_points_csv,
    )
)

__all__ = ["HEADER", "read_points_csv", "write_points_csv"]
