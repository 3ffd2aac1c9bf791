"""BIIGLE: the "CSV image annotation report" (BIIGLE's ZIP of CSVs, or one of them) and
label trees (JSON).

BIIGLE's report download (``CsvReportGenerator``, extension ``zip``) is a ZIP of CSVs:
one ``<volume id>-<volume name>.csv`` per volume, or one per label tree or per user when
the report separates them. Reading takes the ZIP (every ``.csv`` member, checked as
:mod:`quadrat.io.formats._zip` says) or one CSV; writing to a ``.zip`` gives BIIGLE's
ZIP with one volume, to any other name the CSV.

Report columns (``biigle/reports`` CsvReportGenerator): ``annotation_label_id, label_id,
label_name, label_hierarchy, user_id, firstname, lastname, image_id, filename,
image_longitude, image_latitude, shape_id, shape_name, points, attributes,
annotation_id, created_at``. ``points`` is a JSON array of pixel coordinates: ``[x, y]``
for a Point (shape 1), ``[x, y, r]`` for a Circle (shape 4). Points and circles (their
centres) are read; other shapes (lines, polygons, rectangles, ellipses, whole frames)
are not points and are left out (counted in the table's ``attrs["skipped_shapes"]``).
The label read is ``label_name``. Writing gives one Point row per labelled point
(BIIGLE has no unlabelled annotation), the image size in ``attributes``.

A label tree is BIIGLE's JSON of a tree (``GET /api/v1/label-trees/{id}``, or the
``label_trees.json`` of a tree export: a list of them): ``{"name": ..., "labels": [{"id",
"name", "parent_id", "color"}, ...]}``. Labels with children are groups: each leaf
becomes a label (short code and name = its name, or ``Parent > Child`` when two leaves
share a name) whose functional group is its top-most ancestor. Written back, functional
groups are the parents of their labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat._util import dumps
from quadrat.errors import CsvFormatError, InputError, QuadratError
from quadrat.io.atomic import write_text
from quadrat.io.csv import header_key, read_csv
from quadrat.io.formats._common import (
    check_file,
    check_points_per_image,
    csv_text,
    integer_option,
    labelled,
    load_json,
    pixel,
    point_table,
    write_csv,
)
from quadrat.io.formats._zip import is_zip, unpack, write_zip
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.limits import Limits, current

if TYPE_CHECKING:
    import pandas as pd

REPORT_COLUMNS = (
    "annotation_label_id",
    "label_id",
    "label_name",
    "label_hierarchy",
    "user_id",
    "firstname",
    "lastname",
    "image_id",
    "filename",
    "image_longitude",
    "image_latitude",
    "shape_id",
    "shape_name",
    "points",
    "attributes",
    "annotation_id",
    "created_at",
)
#: BIIGLE writes JSON cells without spaces.
COMPACT = (",", ":")
#: BIIGLE shape ids (``app/Shape.php``) whose annotation is a point: Point, Circle.
POINT_SHAPES = {"1": "Point", "4": "Circle"}


def read_biigle_report(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """Points of a BIIGLE CSV image annotation report: the ZIP BIIGLE's report download
    gives (one CSV per volume, label tree or user), or one of its CSVs."""
    import pandas as pd

    path = check_file(path, limits, "a BIIGLE CSV report")
    if not is_zip(path):
        return _read_report_csv(path, limits)
    limits = current(limits)
    tables = []
    with unpack(path, suffixes=(".csv",), limits=limits, what="a BIIGLE CSV report") as members:
        for member in members:
            try:
                tables.append(_read_report_csv(member.file, limits))
            except QuadratError as exc:
                raise type(exc)(
                    exc.message, path=member.where, line=exc.line, value=exc.value
                ) from exc
    table = pd.concat(tables, ignore_index=True)
    table.attrs["skipped_shapes"] = sum(t.attrs.get("skipped_shapes", 0) for t in tables)
    check_points_per_image(table, path, limits)
    return table


def _read_report_csv(path: Path, limits: Limits | None) -> pd.DataFrame:
    table = read_csv(path, limits=limits)
    keys = {
        header_key(h): column for h, column in zip(table.header, table.frame.columns, strict=True)
    }
    needed = ("filename", "label_name", "points")
    missing = [c for c in needed if header_key(c) not in keys]
    shape_id_key, shape_name_key = header_key("shape_id"), header_key("shape_name")
    if missing or (shape_id_key not in keys and shape_name_key not in keys):
        raise CsvFormatError(
            f"not a BIIGLE CSV report: no {', '.join(missing or ['shape_id'])} column",
            path=path,
            line=1,
        )
    frame = table.frame
    shape_ids = frame[keys[shape_id_key]] if shape_id_key in keys else None
    shape_names = frame[keys[shape_name_key]] if shape_name_key in keys else None
    records: list[dict[str, Any]] = []
    skipped = 0
    for k, line in enumerate(table.lines):
        line = int(line)
        shape_id = str(shape_ids.iloc[k]).strip() if shape_ids is not None else ""
        shape_name = str(shape_names.iloc[k]).strip() if shape_names is not None else ""
        if shape_id not in POINT_SHAPES and shape_name not in POINT_SHAPES.values():
            skipped += 1
            continue
        raw = str(frame[keys[header_key("points")]].iloc[k])
        try:
            coords = json.loads(raw)
        except json.JSONDecodeError:
            coords = None
        if (
            not isinstance(coords, list)
            or len(coords) < 2
            or not all(isinstance(v, int | float) for v in coords[:2])
        ):
            raise CsvFormatError(
                f"points must be a JSON array [x, y, ...] of pixel coordinates, got {raw!r}",
                path=path,
                line=line,
                value=raw,
            )
        name = str(frame[keys[header_key("filename")]].iloc[k]).strip()
        if not name:
            raise CsvFormatError("filename is empty", path=path, line=line)
        label = str(frame[keys[header_key("label_name")]].iloc[k]).strip() or None
        records.append(
            {
                "image": name,
                "row": pixel(coords[1], "y", path=path, line=line),
                "column": pixel(coords[0], "x", path=path, line=line),
                "label": label,
                "line": line,
            }
        )
    out = point_table(records)
    out.attrs["skipped_shapes"] = skipped
    check_points_per_image(out, path, limits)
    return out


def write_biigle_report(
    table: pd.DataFrame,
    path: str | Path,
    *,
    volume: str = "quadrat",
    volume_id: int | str = 1,
    **_options: Any,
) -> int:
    """A BIIGLE CSV report of the labelled points (one Point annotation each).

    A ``path`` ending in ``.zip`` gets what BIIGLE's report download gives: a ZIP holding
    one CSV, ``<volume_id>-<volume>.csv`` (options ``volume``, ``volume_id``); any other
    name gets the CSV itself."""
    image_ids = {name: k for k, name in enumerate(dict.fromkeys(table["image"]), start=1)}
    label_ids: dict[str, int] = {}
    rows: list[list[Any]] = []
    for point in table.to_dict("records"):
        if not labelled(point.get("label")):
            continue
        name = point["label_name"] if labelled(point.get("label_name")) else point["label"]
        label_id = label_ids.setdefault(str(name), len(label_ids) + 1)
        group = point.get("functional_group")
        hierarchy = f"{group} > {name}" if labelled(group) else str(name)
        attributes = (
            dumps(
                {"width": int(point["width"]), "height": int(point["height"])}, separators=COMPACT
            )
            if "width" in point and "height" in point
            else "{}"
        )
        rows.append(
            [
                len(rows) + 1,
                label_id,
                name,
                hierarchy,
                "",
                "",
                point.get("annotator") or "",
                image_ids[point["image"]],
                point["image"],
                point.get("longitude"),
                point.get("latitude"),
                1,
                "Point",
                dumps([int(point["column"]), int(point["row"])], separators=COMPACT),
                attributes,
                len(rows) + 1,
                "",
            ]
        )
    if Path(path).suffix.lower() == ".zip":
        member = volume_file_name(integer_option(volume_id, "volume_id"), str(volume))
        write_zip(path, [(member, csv_text(REPORT_COLUMNS, rows).encode("utf-8"))])
    else:
        write_csv(path, REPORT_COLUMNS, rows)
    return len(rows)


def volume_file_name(volume_id: int, volume: str) -> str:
    """The CSV's name in BIIGLE's report ZIP: ``<volume id>-<volume name>.csv``, with
    characters a file name cannot hold replaced by ``_`` (BIIGLE sanitises it too)."""
    safe = "".join(ch if ch.isalnum() or ch in " -_.()" else "_" for ch in volume).strip(" .")
    return f"{volume_id}-{safe or 'volume'}.csv"


def read_biigle_label_links(
    path: str | Path, *, limits: Limits | None = None
) -> list[dict[str, Any]]:
    """Every label of a BIIGLE label tree JSON (one tree, or a list of trees), as BIIGLE
    writes it: objects with ``id``, ``name`` and ``parent_id`` (None at a root)."""
    path = Path(path)
    document = load_json(path, limits, "a BIIGLE label tree JSON file")
    trees = document if isinstance(document, list) else [document]
    labels: list[dict[str, Any]] = []
    for t, tree in enumerate(trees):
        if not isinstance(tree, dict) or not isinstance(tree.get("labels"), list):
            raise InputError(
                f"label tree {t} must be an object with a 'labels' list", path=path, value=t
            )
        for k, label in enumerate(tree["labels"]):
            if not isinstance(label, dict) or "id" not in label or "name" not in label:
                raise InputError(
                    f"label tree {t}, labels[{k}] must be an object with id and name",
                    path=path,
                    value=k,
                )
            labels.append(label)
    return labels


def read_biigle_label_tree(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """A labelset table (name, short_code, functional_group, label_id) of a label tree:
    its leaves, each under its root as the functional group."""
    import pandas as pd

    path = Path(path)
    labels = read_biigle_label_links(path, limits=limits)
    by_id = {label["id"]: label for label in labels}
    parents = {label.get("parent_id") for label in labels if label.get("parent_id") is not None}
    leaves = [label for label in labels if label["id"] not in parents]

    def root(label: dict[str, Any]) -> str | None:
        seen = set()
        parent = label.get("parent_id")
        top = None
        while parent is not None and parent in by_id and parent not in seen:
            seen.add(parent)
            top = by_id[parent]
            parent = top.get("parent_id")
        return None if top is None else str(top["name"])

    names = [str(label["name"]).strip() for label in leaves]
    rows: list[dict[str, Any]] = []
    for label, name in zip(leaves, names, strict=True):
        parent = by_id.get(label.get("parent_id"))
        if names.count(name) > 1 and parent is not None:
            name = f"{parent['name']} > {name}"
        rows.append({"name": name, "short_code": name, "functional_group": root(label)})
    if not rows:
        raise InputError("the label tree has no labels", path=path)
    table = pd.DataFrame(rows, columns=["name", "short_code", "functional_group"])
    table["label_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
    return table


def write_biigle_label_tree(labelset: pd.DataFrame, path: str | Path, **_options: Any) -> int:
    """A BIIGLE label tree JSON: functional groups as parents of their labels."""
    labels: list[dict[str, Any]] = []
    groups: dict[str, int] = {}
    for row in labelset.itertuples(index=False):
        group = getattr(row, "functional_group", None)
        parent = None
        if labelled(group):
            if str(group) not in groups:
                groups[str(group)] = len(labels) + 1
                labels.append(
                    {
                        "id": len(labels) + 1,
                        "name": str(group),
                        "parent_id": None,
                        "color": "999999",
                    }
                )
            parent = groups[str(group)]
        labels.append(
            {"id": len(labels) + 1, "name": str(row.name), "parent_id": parent, "color": "0099ff"}
        )
    document = {"name": "quadrat labelset", "description": "exported by quadrat", "labels": labels}
    write_text(path, dumps(document, indent=1) + "\n")
    return len(labelset)


register(
    FormatInfo(
        name="biigle",
        description="BIIGLE CSV image annotation report: BIIGLE's ZIP of per-volume CSVs "
        "(or one CSV); point and circle shapes",
        kind="points",
        carries="positions, labels, image positions",
        suffix=".zip",
        read=read_biigle_report,
        write=write_biigle_report,
    )
)
register(
    FormatInfo(
        name="biigle-label-tree",
        description="BIIGLE label tree JSON (labels and their parents)",
        kind="labelset",
        carries="label names, groups",
        suffix=".json",
        read=read_biigle_label_tree,
        write=write_biigle_label_tree,
    )
)

__all__ = [
    "REPORT_COLUMNS",
    "read_biigle_label_links",
    "read_biigle_label_tree",
    "read_biigle_report",
    "write_biigle_label_tree",
    "write_biigle_report",
]
