"""Squidle+ point-annotation exports (an annotation set's ``dataframe.csv`` export).

What Squidle+ gives (``/api/annotation_set/{id}/export?template=dataframe.csv``, as the
public sqapi scripts request it): a pandas frame flattened with ``json_normalize``, its
columns sorted by name (``sort_index(axis=1)``) and written with the frame's index as a
leading unnamed column. One row per point; dotted column names such as ``label.id,
label.name, label.lineage_names, point.id, point.x, point.y, point.media.key,
point.media.path_best, point.pose.lat, point.pose.lon, ...``. Checked against exports
and the scripts that read them (the Squidle+ ML scripts of leoguen/Squidle_ML_Algorithm,
whose bots crop at ``x * media.width``):

- ``point.x`` / ``point.y`` are **fractions** (0-1) of the image's width and height from
  its top left, not pixels: the reader returns them as ``x_fraction``/``y_fraction`` and
  the workflow converts them to the pixel that holds the position (``floor(fraction x
  size)``, clipped to the last pixel); a value over 1 is refused, with a hint that it
  looks like a pixel. The writer writes a pixel's centre, ``(column + 0.5) / width``, so
  a round trip gives the same pixel.
- A point without a position (a whole-image label: empty ``point.x``/``point.y``) is not
  a point on the image; it is left out and counted in ``attrs["skipped_without_position"]``.
- Column names match whatever the separator: ``point.x``, ``point_x`` (a frame saved
  again by pandas) and ``Point X`` are one column (:func:`quadrat.io.csv.header_key`);
  the leading index column is dropped.
- The image name is the file name of ``point.media.path_best`` (else
  ``point.media.key``), as the Squidle+ metadata reader
  (:mod:`quadrat.datasets.readers.squidle`) names images; the label is ``label.name``
  (a CATAMI or Squidle+ vocabulary name; match it to the labelset by name).

Written: the columns of :data:`COLUMNS` in Squidle+'s (sorted) order after the unnamed
index column, as the export itself lays them out.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from quadrat.errors import CsvFormatError
from quadrat.io.csv import header_key, read_csv
from quadrat.io.formats._common import check_points_per_image, labelled, point_table, write_csv
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.limits import Limits

if TYPE_CHECKING:
    import pandas as pd

#: The export's columns (the common ``include_columns`` of sqapi scripts), sorted by name
#: as the ``dataframe.csv`` template sorts them.
COLUMNS = tuple(
    sorted(
        (
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
    )
)


def _fraction(text: str, what: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        hint = (
            "; Squidle+ gives positions as fractions, and this looks like a pixel"
            if value > 1.0
            else ""
        )
        raise CsvFormatError(
            f"{what} must be a fraction of the image (0 to 1), got {text!r}{hint}",
            path=path,
            line=line,
            value=text,
        )
    return value


def read_squidle(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """Points of a Squidle+ point export (positions as fractions; see the module doc)."""
    table = read_csv(path, limits=limits)
    path = table.path
    columns = {header_key(h): c for h, c in zip(table.header, table.frame.columns, strict=True)}
    x_key, y_key, label_key = header_key("point.x"), header_key("point.y"), header_key("label.name")
    key_key, best_key = header_key("point.media.key"), header_key("point.media.path_best")
    needed = {"point.x": x_key, "point.y": y_key, "label.name": label_key}
    missing = [name for name, key in needed.items() if key not in columns]
    if missing or (key_key not in columns and best_key not in columns):
        raise CsvFormatError(
            f"not a Squidle+ point export: no {', '.join(missing or ['point.media.key'])} column",
            path=path,
            line=1,
        )
    frame = table.frame

    def cell(key: str, k: int) -> str:
        return str(frame[columns[key]].iloc[k]).strip() if key in columns else ""

    records: list[dict[str, Any]] = []
    skipped = 0
    for k, line in enumerate(table.lines):
        line = int(line)
        x_text, y_text = cell(x_key, k), cell(y_key, k)
        if not x_text and not y_text:
            skipped += 1  # a whole-image label: no point on the image
            continue
        best, key = cell(best_key, k), cell(key_key, k)
        name = PurePosixPath(best.split("?")[0]).name if best else key
        if not name:
            raise CsvFormatError("the point's media has no key or path", path=path, line=line)
        records.append(
            {
                "image": name,
                "row": 0,
                "column": 0,
                "label": cell(label_key, k) or None,
                "line": line,
                "x_fraction": _fraction(x_text, "point.x", path, line),
                "y_fraction": _fraction(y_text, "point.y", path, line),
            }
        )
    out = point_table(records, ("x_fraction", "y_fraction"))
    out.attrs["skipped_without_position"] = skipped
    check_points_per_image(out, path, limits)
    return out


def write_squidle(table: pd.DataFrame, path: str | Path, **_options: Any) -> int:
    """Every point (unlabelled ones with an empty ``label.name``) as a Squidle+ export."""
    media = {name: k for k, name in enumerate(dict.fromkeys(table["image"]), start=1)}
    rows = []
    for number, point in enumerate(table.to_dict("records"), start=1):
        label = point.get("label_name") if labelled(point.get("label_name")) else point["label"]
        group = point.get("functional_group")
        values = {
            "label.name": label if labelled(label) else "",
            "label.lineage_names": (
                f"{group} > {label}" if labelled(group) and labelled(label) else ""
            ),
            "updated_at": (
                point.get("date_annotated") if labelled(point.get("date_annotated")) else ""
            ),
            "point.id": number,
            "point.x": round((int(point["column"]) + 0.5) / int(point["width"]), 8),
            "point.y": round((int(point["row"]) + 0.5) / int(point["height"]), 8),
            "point.media.id": media[point["image"]],
            "point.media.key": point["image"],
            "point.media.path_best": point["image"],
            "point.pose.lat": point.get("latitude") if labelled(point.get("latitude")) else "",
            "point.pose.lon": point.get("longitude") if labelled(point.get("longitude")) else "",
        }
        rows.append([number - 1, *(values.get(column, "") for column in COLUMNS)])
    write_csv(path, ["", *COLUMNS], rows)
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
