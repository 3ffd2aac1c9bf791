"""Import step: labelsets, CoralNet annotation exports with their images, new images.

Each import validates its whole input (every row, every image file, every point inside
its image, every label in the labelset) before writing anything, then writes in one
transaction: bad input leaves the project as it was.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quadrat._util import jsonable
from quadrat.errors import (
    DuplicateImportError,
    ImageError,
    InputError,
    PointOutsideImageError,
    StateError,
)
from quadrat.io.coralnet import LONG_LABEL, read_annotations_csv, resolve_labels
from quadrat.io.coralnet import read_labelset as read_labelset_file
from quadrat.io.images import check_complete, list_images, read_image_info
from quadrat.io.paths import resolve_all_under, resolve_under
from quadrat.store import queries, writes
from quadrat.workflow._common import Progress, no_progress

if TYPE_CHECKING:
    from quadrat.io.images import ImageInfo
    from quadrat.workflow.source import Source


@dataclass
class ImportSummary:
    """What an import added, and warnings worth a look (e.g. EXIF-rotated images)."""

    images: int = 0
    points: int = 0
    annotations: int = 0
    warnings: list[str] = field(default_factory=list)
    #: ``(image name, CSV line)`` of images left out because they were missing
    #: (``skip_missing=True``), in CSV order.
    skipped: list[tuple[str, int]] = field(default_factory=list)


def read_labelset(path: str | Path) -> pd.DataFrame:
    """A labelset (CoralNet CSV or CoralNet-Toolbox Labels.json), checked
    (see :func:`quadrat.io.coralnet.read_labelset`)."""
    return read_labelset_file(path)


def label_rows(table: pd.DataFrame) -> list[tuple[str, str, str | None, int | None]]:
    """``(name, short_code, functional_group, coralnet_id)`` of a labelset table."""
    return [
        (
            str(row.name),
            str(row.short_code),
            None if pd.isna(row.functional_group) else str(row.functional_group),
            None if pd.isna(row.label_id) else int(row.label_id),
        )
        for row in table.itertuples(index=False)
    ]


def import_labelset(src: Source, path: str | Path) -> int:
    """Add the labels of a labelset file (CSV or Toolbox JSON) the source does not have yet."""
    rows = label_rows(read_labelset(path))
    with src.project.store.session() as session:
        return writes.add_labels(session, src.id, rows)


def _drop_excluded(table: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    if not exclude:
        return table
    names = table["image"].astype(str)
    dropped = np.zeros(len(table), dtype=bool)
    for pattern in exclude:
        dropped |= names.map(lambda n, p=pattern: fnmatch.fnmatchcase(n, p)).to_numpy(bool)
    return table[~dropped].reset_index(drop=True)


def import_annotations(
    src: Source,
    csv_path: str | Path,
    image_dir: str | Path,
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    *,
    skip_missing: bool = False,
) -> ImportSummary:
    """Import a CoralNet annotation export and its images, all or nothing.

    Every image named in the CSV must exist in ``image_dir``, be complete, be new to the
    source, and contain its points; every label must be in the source's labelset.
    Images whose name matches a glob in ``exclude`` are left out; with ``skip_missing``,
    so are images absent from ``image_dir`` (listed in ``ImportSummary.skipped``).
    """
    csv_path, image_dir = Path(csv_path), Path(image_dir)
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir, param="image_dir")
    return import_table(
        src,
        read_annotations_csv(csv_path),
        image_dir,
        path=csv_path,
        exclude=exclude,
        progress=progress,
        skip_missing=skip_missing,
    )


def import_table(
    src: Source,
    table: pd.DataFrame,
    image_dir: str | Path,
    *,
    path: str | Path,
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    skip_missing: bool = False,
) -> ImportSummary:
    """Import a table of points (``image``, ``row``, ``column``, ``label``, ``line``; as
    :func:`~quadrat.io.coralnet.read_annotations_csv` returns, or a point table of
    :mod:`quadrat.io.formats`) and its images from ``image_dir``, all or nothing.
    ``path`` is the file the table was read from (named in errors)."""
    progress = progress or no_progress
    csv_path, image_dir = Path(path), Path(image_dir)
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir, param="image_dir")
    table = _drop_excluded(table, exclude)
    resolve_all_under(  # every name stays inside image_dir; lists all offending rows
        image_dir,
        zip(table["image"].astype(str), table["line"].astype(int), strict=True),
        path=csv_path,
    )
    meta_columns = list(table.attrs.get("metadata_columns", []))
    summary = ImportSummary()
    with src.project.store.session() as session:
        labels = queries.label_ids(session, src.id)
        if "label" in table and table["label"].notna().any():
            if not labels:
                raise StateError(
                    f"source {src.name!r} has no labelset yet; import one first "
                    "(a CoralNet labelset CSV)",
                    param="labelset",
                )
            labelled = table["label"].notna()
            codes = resolve_labels(
                table.loc[labelled, "label"],
                queries.labelset_table(session, src.id),
                path=csv_path,
                lines=table.loc[labelled, "line"],
            )
            table["label_id"] = pd.Series(codes.map(labels), index=codes.index).astype("Int64")
        else:
            table["label_id"] = pd.Series(pd.NA, index=table.index, dtype="Int64")

        existing = queries.image_names(session, src.id)
        # Row positions per image, in CSV order; each image's rows are sliced when used
        # (a list of every group's frame would copy the whole table once more).
        positions = table.groupby("image", sort=False).indices
        groups = [(name, positions[name]) for name in pd.unique(table["image"])]
        planned: list[tuple[str, ImageInfo, np.ndarray]] = []
        for done, (name, where) in enumerate(groups, start=1):
            rows = table.iloc[where]
            if skip_missing and _missing(image_dir, str(name)):
                summary.skipped.append((str(name), int(rows["line"].iloc[0])))
                progress("checking images", done, len(groups))
                continue
            info = _check_image(src, csv_path, image_dir, str(name), rows, existing, summary)
            planned.append((str(name), info, where))
            progress("checking images", done, len(groups))

        for name, info, where in planned:
            rows = table.iloc[where]
            first = rows.iloc[0]
            image_id = writes.add_image(
                session,
                src.id,
                name=name,
                path=str(info.path.resolve()),
                sha256=info.sha256,
                width=info.width,
                height=info.height,
                exif_orientation=info.exif_orientation,
                metadata=_image_metadata(first, meta_columns, "long_label" in table),
            )
            coords = list(zip(rows["row"].astype(int), rows["column"].astype(int), strict=True))
            point_ids = writes.add_points(session, image_id, coords, "imported")
            blank = pd.Series(None, index=rows.index)
            annotations = [
                (point_id, int(label_id), _text(annotator), _parse_date(date))
                for point_id, label_id, annotator, date in zip(
                    point_ids,
                    rows["label_id"],
                    rows.get("annotator", blank),
                    rows.get("date_annotated", blank),
                    strict=True,
                )
                if not pd.isna(label_id)
            ]
            summary.images += 1
            summary.points += len(point_ids)
            summary.annotations += writes.add_imported_annotations(session, annotations)
    return summary


def _image_metadata(first: pd.Series, columns: list[str], long_label: bool) -> dict[str, Any]:
    """An image's metadata: every metadata column of the CSV in its order, None when empty
    (so an export keeps empty columns); a ``Long Label`` column is recorded as present
    only (its values are per point and come from the labelset on export)."""
    metadata = {c: jsonable(first[c]) if pd.notna(first[c]) else None for c in columns}
    if long_label:
        metadata[LONG_LABEL] = None
    return metadata


def _missing(image_dir: Path, name: str) -> bool:
    """Whether the CSV's image ``name`` is absent (containment is checked before)."""
    return not (image_dir / name).is_file()


def _check_image(
    src: Source,
    csv_path: Path,
    image_dir: Path,
    name: str,
    rows: pd.DataFrame,
    existing: set[str],
    summary: ImportSummary,
) -> ImageInfo:
    """The image's info once it is new, present, complete and holds all its points."""
    first_line = int(rows["line"].iloc[0])
    if name in existing:
        raise DuplicateImportError(
            f"image {name!r} is already in source {src.name!r}; nothing was imported",
            path=csv_path,
            line=first_line,
            value=name,
        )
    path = resolve_under(image_dir, name, path=csv_path, line=first_line)
    if not path.is_file():
        raise ImageError(
            f"image {name!r} listed here is not in {image_dir}", path=csv_path, line=first_line
        )
    info = read_image_info(path)
    check_complete(path)
    outside = (
        (rows["row"] < 0)
        | (rows["row"] >= info.height)
        | (rows["column"] < 0)
        | (rows["column"] >= info.width)
    )
    if outside.any():
        bad = rows[outside].iloc[0]
        raise PointOutsideImageError(
            f"point (row {bad['row']}, column {bad['column']}) lies outside image "
            f"{name!r} ({info.height} rows x {info.width} columns)",
            path=csv_path,
            line=int(bad["line"]),
        )
    if info.exif_orientation != 1:
        summary.warnings.append(
            f"{path}: EXIF orientation {info.exif_orientation}; point coordinates "
            "refer to the stored pixels, not the rotated view"
        )
    return info


def import_images(
    src: Source, paths: Sequence[str | Path], progress: Progress | None = None
) -> ImportSummary:
    """Add images without annotations (new photos to be classified), all or nothing.

    A folder adds the images directly inside it (:func:`quadrat.io.images.list_images`).
    """
    progress = progress or no_progress
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(list_images(p))
        elif p.is_file():
            files.append(p)
        else:
            raise ImageError("image not found", path=p, param="paths")
    summary = ImportSummary()
    with src.project.store.session() as session:
        existing = queries.image_names(session, src.id)
        for done, path in enumerate(files, start=1):
            if path.name in existing:
                raise DuplicateImportError(
                    f"image {path.name!r} is already in source {src.name!r}; nothing was imported",
                    path=path,
                    value=path.name,
                )
            info = read_image_info(path)
            check_complete(path)
            writes.add_image(
                session,
                src.id,
                name=path.name,
                path=str(path.resolve()),
                sha256=info.sha256,
                width=info.width,
                height=info.height,
                exif_orientation=info.exif_orientation,
            )
            existing.add(path.name)
            summary.images += 1
            progress("importing images", done, len(files))
    return summary


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _parse_date(value: Any) -> datetime | None:
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    return stamp.to_pydatetime()
