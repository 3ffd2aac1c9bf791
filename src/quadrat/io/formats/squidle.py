"""Squidle+ point-annotation exports (the dataframe export of an annotation set).

Dotted columns, one row per point: ``label.id, label.uuid, label.name,
label.lineage_names, comment, needs_review, tag_names, updated_at, point.id, point.x,
point.y, point.t, point.is_targeted, point.media.id, point.media.key,
point.media.path_best, point.pose.timestamp, point.pose.lat, point.pose.lon,
point.pose.alt, point.pose.dep``. ``point.x``/``point.y`` are fractions (0-1) of the
image's width and height from its top left, so the pixel needs the image's size: the
reader returns them as ``x_fraction``/``y_fraction`` and the workflow converts them
(pixel = floor(fraction x size)); the writer writes a pixel's centre, ``(column +
0.5) / width``, so a round trip gives the same pixel. The image name is the file name
of ``point.media.path_best`` (else ``point.media.key``), as the Squidle+ metadata reader
(:mod:`quadrat.datasets.readers.squidle`) names images; the label is ``label.name``
(a CATAMI or Squidle+ vocabulary name; match it to the labelset by name).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from quadrat.errors import CsvFormatError
from quadrat.io.csv import read_csv
from quadrat.io.formats._common import check_points_per_image, labelled, point_table, write_csv
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.limits import Limits

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "label.id",
    "label.uuid",
    "label.name",
    "label.lineage_names",
    "comment",
    "needs_review",
    "tag_names",
    "updated_at",
    "point.id",
    "point.x",
    "point.y",
    "point.t",
    "point.is_targeted",
    "point.media.id",
    "point.media.key",
    "point.media.path_best",
    "point.pose.timestamp",
    "point.pose.lat",
    "point.pose.lon",
    "point.pose.alt",
    "point.pose.dep",
)


def _fraction(text: str, what: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise CsvFormatError(
            f"{what} must be a fraction of the image (0 to 1), got {text!r}",
            path=path,
            line=line,
            value=text,
        )
    return value


def read_squidle(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """Points of a Squidle+ point export (positions as fractions; see the module doc)."""
    table = read_csv(path, limits=limits)
    path = table.path
    columns = {h.strip().lower(): c for h, c in zip(table.header, table.frame.columns, strict=True)}
    missing = [c for c in ("point.x", "point.y", "label.name") if c not in columns]
    if missing or ("point.media.key" not in columns and "point.media.path_best" not in columns):
        raise CsvFormatError(
            f"not a Squidle+ point export: no {', '.join(missing or ['point.media.key'])} column",
            path=path,
            line=1,
        )
    frame = table.frame
    records: list[dict[str, Any]] = []
    for k, line in enumerate(table.lines):
        line = int(line)
        best = (
            str(frame[columns["point.media.path_best"]].iloc[k]).strip()
            if ("point.media.path_best" in columns)
            else ""
        )
        key = (
            str(frame[columns["point.media.key"]].iloc[k]).strip()
            if ("point.media.key" in columns)
            else ""
        )
        name = PurePosixPath(best.split("?")[0]).name if best else key
        if not name:
            raise CsvFormatError("the point's media has no key or path", path=path, line=line)
        label = str(frame[columns["label.name"]].iloc[k]).strip() or None
        records.append(
            {
                "image": name,
                "row": 0,
                "column": 0,
                "label": label,
                "line": line,
                "x_fraction": _fraction(frame[columns["point.x"]].iloc[k], "point.x", path, line),
                "y_fraction": _fraction(frame[columns["point.y"]].iloc[k], "point.y", path, line),
            }
        )
    out = point_table(records, ("x_fraction", "y_fraction"))
    check_points_per_image(out, path, limits)
    return out


def write_squidle(table: pd.DataFrame, path: str | Path, **_options: Any) -> int:
    """Every point (unlabelled ones with an empty ``label.name``) as a Squidle+ export."""
    media = {name: k for k, name in enumerate(dict.fromkeys(table["image"]), start=1)}
    rows = []
    for number, point in enumerate(table.to_dict("records"), start=1):
        label = point.get("label_name") if labelled(point.get("label_name")) else point["label"]
        group = point.get("functional_group")
        rows.append(
            [
                "",
                "",
                label if labelled(label) else "",
                f"{group} > {label}" if labelled(group) and labelled(label) else "",
                "",
                "",
                "",
                point.get("date_annotated") if labelled(point.get("date_annotated")) else "",
                number,
                round((int(point["column"]) + 0.5) / int(point["width"]), 8),
                round((int(point["row"]) + 0.5) / int(point["height"]), 8),
                "",
                "",
                media[point["image"]],
                point["image"],
                point["image"],
                "",
                point.get("latitude") if labelled(point.get("latitude")) else "",
                point.get("longitude") if labelled(point.get("longitude")) else "",
                "",
                "",
            ]
        )
    write_csv(path, COLUMNS, rows)
    return len(rows)


register(
    FormatInfo(
        name="squidle",
        description="Squidle+ point annotation export (positions as fractions of the image)",
        kind="points",
        carries="positions, labels (by name), image positions",
        suffix=".csv",
        read=read_squidle,
        write=write_squidle,
    )
)

__all__ = ["COLUMNS", "read_squidle", "write_squidle"]
