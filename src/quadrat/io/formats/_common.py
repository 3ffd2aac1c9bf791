"""What every format module shares: the point table, file checks, JSON and CSV plumbing.

A *point table* is a pandas DataFrame with one row per point:

=============  =====================================================================
column         meaning
=============  =====================================================================
image          the image's name (a file name, or a path relative to the images root)
row, column    the point's pixel (integers, 0-based, from the top left)
label          the label as the file gives it (short code or name); None: unlabelled
line           where the point is in the file read (1-based), for error messages
=============  =====================================================================

Readers may add columns (``notes``, ``score``, ``x``/``y`` for normalised positions);
writers read the ones they need and ignore the rest. The workflow builds the table for
writers from a source (with ``width``, ``height``, ``label_name``, ``status``,
``suggestion_k``/``confidence_k``, ``latitude``/``longitude`` when known).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat.errors import InputError, NotFoundError
from quadrat.io.atomic import write_text
from quadrat.limits import Limits, current

if TYPE_CHECKING:
    import pandas as pd

POINT_COLUMNS = ("image", "row", "column", "label", "line")


def check_file(path: str | Path, limits: Limits | None, what: str) -> Path:
    """``path`` once it is a non-empty file within ``limits.csv_bytes``."""
    path = Path(path)
    limits = current(limits)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise NotFoundError("file not found", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read file: {exc}", path=path) from exc
    if path.is_dir():
        raise InputError(f"is a folder, expected {what}", path=path)
    limits.check("csv_bytes", size, what=f"{what} is too large (bytes)", path=path)
    if size == 0:
        raise InputError(f"empty file (expected {what})", path=path)
    return path


def load_json(path: str | Path, limits: Limits | None, what: str) -> Any:
    """Parse a JSON file (``json``, nothing else); errors name the line and column."""
    path = check_file(path, limits, what)
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise InputError(f"not {what} (binary content)", path=path, line=1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text at byte {exc.start} (expected {what})", path=path
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON ({exc.msg}, column {exc.colno}); expected {what}",
            path=path,
            line=exc.lineno,
        ) from exc
    except RecursionError as exc:
        raise InputError(f"JSON nested too deeply; expected {what}", path=path) from exc


def pixel(value: Any, what: str, *, path: Path, line: int | None = None, where: str = "") -> int:
    """A non-negative pixel index from a number (rounded half to even, as Python rounds)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < -0.5:
        place = f" ({where})" if where else ""
        raise InputError(
            f"{what} must be a non-negative number, got {value!r}{place}",
            path=path,
            line=line,
            value=value,
        )
    return max(0, round(number))


def point_table(records: Sequence[dict[str, Any]], extra: Iterable[str] = ()) -> pd.DataFrame:
    """A point table from records with the :data:`POINT_COLUMNS` keys (and ``extra``)."""
    import pandas as pd

    columns = [*POINT_COLUMNS, *extra]
    table = pd.DataFrame.from_records(list(records), columns=columns)
    for name in ("row", "column", "line"):
        table[name] = table[name].astype("int64")
    table["label"] = table["label"].astype(object).where(table["label"].notna(), None)
    return table


def check_points_per_image(table: pd.DataFrame, path: Path, limits: Limits | None) -> None:
    """LimitError (at the first point over the limit) when an image has too many points."""
    limits = current(limits)
    if table.empty:
        return
    rank = table.groupby("image", sort=False).cumcount() + 1
    over = rank > limits.points_per_image
    if over.any():
        first = table[over].iloc[0]
        count = int((table["image"] == first["image"]).sum())
        limits.check(
            "points_per_image",
            count,
            what=f"image {first['image']!r} has too many points",
            path=path,
            line=int(first["line"]),
        )


def check_rows(count: int, path: Path, limits: Limits | None) -> None:
    """LimitError when a file holds more records than ``limits.csv_rows``."""
    current(limits).check("csv_rows", count, what="file has too many records", path=path)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], newline: str = "\n") -> str:
    """CSV text (``csv`` module quoting) of a header and rows; None cells are empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue()


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV atomically (see :func:`csv_text`)."""
    write_text(path, csv_text(header, rows))


def labelled(value: Any) -> bool:
    """Whether a table cell holds a label (not None, NaN or blank)."""
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    try:
        import pandas as pd

        if value is pd.NA:
            return False
    except ImportError:  # pragma: no cover
        pass
    return str(value).strip() != ""


def text(value: Any) -> str | None:
    """A cell as stripped text, or None when empty."""
    return str(value).strip() if labelled(value) else None


def integer_option(value: Any, param: str) -> int:
    """A writer's integer option given as a number or text (from the command line)."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if isinstance(value, bool) or number < 0:
        raise InputError(
            f"{param} must be a non-negative integer, got {value!r}", value=value, param=param
        )
    return number


def bool_option(value: Any, param: str) -> bool:
    """A writer's yes/no option given as a bool or text (yes/no, true/false, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true", "1", "on"):
        return True
    if text in ("no", "false", "0", "off"):
        return False
    raise InputError(f"{param} must be yes or no, got {value!r}", value=value, param=param)


__all__ = [
    "POINT_COLUMNS",
    "bool_option",
    "check_file",
    "check_points_per_image",
    "check_rows",
    "csv_text",
    "integer_option",
    "labelled",
    "load_json",
    "pixel",
    "point_table",
    "text",
    "write_csv",
]
