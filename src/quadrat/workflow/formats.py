"""Import and export in other tools' formats (:mod:`quadrat.io.formats`).

Two ways points come in:

- with ``image_dir``: the file's images are new to the source and read from that folder,
  as a CoralNet annotation CSV import (:func:`quadrat.workflow.importing.import_table`);
- without: the points go onto images already in the source (``import_images`` first)
  that have no points yet, matched by name, as CoralNet's "upload points" and "upload
  CPC" do. CPCe files always take this way: an image is matched by CoralNet's longest
  trailing path-part match (``D:\\Site A\\T1\\01.jpg`` matches ``T1/01.jpg`` before
  ``01.jpg``) and the CPCe scale is the .cpc's width over the image's, which must be a
  whole number equal to the heights' ratio (15 for CPCe 4.x, 12 for CPCe 3.5).

Either way the import is all or nothing, and labels resolve against the labelset (short
code, then name, then label id).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

from quadrat.errors import ConflictError, InputError, NotFoundError, PointOutsideImageError
from quadrat.io.formats import get_format, list_formats
from quadrat.io.formats._common import check_points_per_image, labelled
from quadrat.limits import Limits
from quadrat.store import queries, writes
from quadrat.workflow._common import Progress, no_progress
from quadrat.workflow.importing import ImportSummary, import_table, label_rows

if TYPE_CHECKING:
    import pandas as pd

    from quadrat.workflow.source import Source

#: CoralNet's CPC label mappings: the ID alone, or ID and Notes joined by ``+``.
LABEL_MAPPINGS = ("id_only", "id_and_notes")


def formats_table() -> list[dict[str, Any]]:
    """One row per format: name, import, export, kind, carries, description."""
    return [
        {
            "name": f.name,
            "import": f.imports,
            "export": f.exports,
            "kind": f.kind,
            "carries": f.carries,
            "description": f.description,
        }
        for f in list_formats()
    ]


def export_table(src: Source) -> pd.DataFrame:
    """Every point of the source with what writers use: the annotation table's columns
    plus ``width``, ``height``, ``functional_group``, ``latitude``, ``longitude``."""
    table = src.annotations().copy()
    with src.project.store.session() as session:
        sizes = queries.image_sizes(session, src.id)
    table["width"] = table["image"].map(lambda n: sizes[n][1])
    table["height"] = table["image"].map(lambda n: sizes[n][2])
    labelset = src.labelset()
    groups = dict(zip(labelset["short_code"], labelset["functional_group"], strict=True))
    table["functional_group"] = table["label"].map(groups)
    table["latitude"] = table["metadata"].map(lambda m: _position(m, ("latitude", "lat")))
    table["longitude"] = table["metadata"].map(
        lambda m: _position(m, ("longitude", "lon", "long", "lng"))
    )
    return table


def _position(metadata: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(metadata, dict):
        return None
    for key, value in metadata.items():
        if str(key).strip().lower().replace("pose.", "") in keys and labelled(value):
            return value
    return None


#: CoralNet's export filters: every label, or only confirmed ones (machine labels that
#: were not accepted are written as unlabelled points).
ANNOTATION_FILTERS = ("all", "confirmed_only")


def export(
    src: Source,
    path: str | Path,
    format: str,
    *,
    annotation_filter: str = "all",
    **options: Any,
) -> int:
    """Write the source in ``format`` (see ``quadrat.io.formats.list_formats``); returns
    the records written (points, annotations, files or labels, per format). ``options``
    go to the format's writer (e.g. cpce: ``image_dir``, ``code_path``)."""
    info = get_format(format)
    if info.write is None:
        raise InputError(f"format {format!r} cannot be exported", value=format, param="format")
    if annotation_filter not in ANNOTATION_FILTERS:
        raise InputError(
            f"annotation_filter must be one of {', '.join(ANNOTATION_FILTERS)}, "
            f"got {annotation_filter!r}",
            value=annotation_filter,
            param="annotation_filter",
        )
    if info.kind == "labelset":
        return info.write(src.labelset(), path, **options)
    table = export_table(src)
    if annotation_filter == "confirmed_only":
        machine = table["status"] == "machine"
        table["label"] = table["label"].astype(object).where(~machine, None)
        table["label_name"] = table["label_name"].astype(object).where(~machine, None)
    return info.write(table, path, **options)


def import_labelset(
    src: Source, path: str | Path, format: str, *, limits: Limits | None = None
) -> int:
    """Add the labels of a labelset file in ``format`` (e.g. ``"biigle-label-tree"``) the
    source does not have yet; returns how many."""
    info = get_format(format)
    if info.kind != "labelset" or info.read is None:
        raise InputError(f"format {format!r} holds no labelset", value=format, param="format")
    rows = label_rows(info.read(path, limits=limits))
    with src.project.store.session() as session:
        return writes.add_labels(session, src.id, rows)


def import_annotations(
    src: Source,
    path: str | Path,
    format: str,
    image_dir: str | Path | None = None,
    *,
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    skip_missing: bool = False,
    label_mapping: str = "id_only",
    limits: Limits | None = None,
) -> ImportSummary:
    """Import a file in ``format`` (see the module doc for ``image_dir``)."""
    info = get_format(format)
    if info.read is None:
        raise InputError(f"format {format!r} cannot be imported", value=format, param="format")
    if info.kind == "labelset":
        raise InputError(
            f"format {format!r} is a labelset: import it as one (import_labelset)",
            value=format,
            param="format",
        )
    if label_mapping not in LABEL_MAPPINGS:
        raise InputError(
            f"label_mapping must be one of {', '.join(LABEL_MAPPINGS)}, got {label_mapping!r}",
            value=label_mapping,
            param="label_mapping",
        )
    table = info.read(path, limits=limits)
    if format == "cpce":
        if image_dir is not None:
            raise InputError(
                "CPCe files go onto images already in the source (import them first); "
                "give no image folder",
                param="image_dir",
            )
        table = _match_cpce(src, table, label_mapping)
    elif "x_fraction" in table:
        table = _denormalise(src, table, image_dir, Path(path))
    if image_dir is not None:
        return import_table(
            src,
            table,
            image_dir,
            path=path,
            exclude=exclude,
            progress=progress,
            skip_missing=skip_missing,
        )
    return _attach(src, table, Path(path), progress or no_progress, limits)


def _parts(name: str) -> list[str]:
    return [p.lower() for p in name.replace("\\", "/").split("/") if p and not p.endswith(":")]


def _match_cpce(src: Source, table: pd.DataFrame, label_mapping: str) -> pd.DataFrame:
    """Stored image names, pixel rows and columns and labels of .cpc points."""
    with src.project.store.session() as session:
        sizes = queries.image_sizes(session, src.id)
    stored = {name: _parts(name) for name in sizes}
    table = table.copy()
    for cpc_path, where in table.groupby("image", sort=False).indices.items():
        rows = table.iloc[where]
        file, line = str(rows["file"].iloc[0]), 1
        wanted = _parts(str(PureWindowsPath(cpc_path)))
        best, matches = 0, []
        for name, parts in stored.items():
            n = 0
            while n < min(len(parts), len(wanted)) and parts[-1 - n] == wanted[-1 - n]:
                n += 1
            if n > best:
                best, matches = n, [name]
            elif n == best and n:
                matches.append(name)
        if not matches:
            raise NotFoundError(
                f"no image of source {src.name!r} matches {cpc_path!r} (import the images first)",
                path=file,
                line=line,
                value=cpc_path,
            )
        if len(matches) > 1:
            raise InputError(
                f"{cpc_path!r} matches several images equally well: {', '.join(sorted(matches))}",
                path=file,
                line=line,
                value=cpc_path,
            )
        name = matches[0]
        _, width, height = sizes[name]
        cpc_w, cpc_h = int(rows["cpc_width"].iloc[0]), int(rows["cpc_height"].iloc[0])
        scale = cpc_w // width if cpc_w % width == 0 else 0
        if scale < 1 or cpc_h != scale * height:
            raise InputError(
                f"could not establish an integer scale factor from line 1: {cpc_w}x{cpc_h} "
                f"CPCe units for the {width}x{height} image {name!r}",
                path=file,
                line=line,
                value=(cpc_w, cpc_h),
            )
        table.loc[table.index[where], "image"] = name
        table.loc[table.index[where], "row"] = [round(int(y) / scale) for y in rows["y"]]
        table.loc[table.index[where], "column"] = [round(int(x) / scale) for x in rows["x"]]
        if label_mapping == "id_and_notes":
            table.loc[table.index[where], "label"] = [
                None if not labelled(code) else f"{code}+{notes}" if labelled(notes) else code
                for code, notes in zip(rows["label"], rows["notes"], strict=True)
            ]
    return table


def _denormalise(
    src: Source, table: pd.DataFrame, image_dir: str | Path | None, path: Path
) -> pd.DataFrame:
    """Pixel rows and columns from positions given as fractions of the image's size."""
    from quadrat.io.images import read_image_info
    from quadrat.io.paths import resolve_under

    with src.project.store.session() as session:
        sizes = {n: (w, h) for n, (_, w, h) in queries.image_sizes(session, src.id).items()}
    table = table.copy()
    for name, where in table.groupby("image", sort=False).indices.items():
        rows = table.iloc[where]
        if image_dir is not None:
            file = resolve_under(image_dir, str(name), path=path, line=int(rows["line"].iloc[0]))
            if not file.is_file():
                continue  # import_table names the missing image with its line
            info = read_image_info(file)
            width, height = info.width, info.height
        elif name in sizes:
            width, height = sizes[name]
        else:
            continue  # _attach names it
        table.loc[table.index[where], "column"] = [
            min(width - 1, int(float(x) * width)) for x in rows["x_fraction"]
        ]
        table.loc[table.index[where], "row"] = [
            min(height - 1, int(float(y) * height)) for y in rows["y_fraction"]
        ]
    return table


def _attach(
    src: Source, table: pd.DataFrame, path: Path, progress: Progress, limits: Limits | None
) -> ImportSummary:
    """Points (and labels) onto stored images that have none yet, all or nothing."""
    import pandas as pd

    from quadrat.io.coralnet import resolve_labels

    check_points_per_image(table, path, limits)
    files = table["file"] if "file" in table else pd.Series(str(path), index=table.index)
    summary = ImportSummary()
    with src.project.store.session() as session:
        sizes = queries.image_sizes(session, src.id)
        counts = queries.point_counts(session, src.id)
        labels = queries.label_ids(session, src.id)
        has_label = table["label"].map(labelled)
        label_ids = pd.Series(pd.NA, index=table.index, dtype="Int64")
        labelset = queries.labelset_table(session, src.id)
        for file, where in files[has_label].groupby(files[has_label], sort=False).groups.items():
            codes = resolve_labels(  # per file: an unknown label names its file and line
                table.loc[where, "label"].astype(str),
                labelset,
                path=file,
                lines=table.loc[where, "label_line" if "label_line" in table else "line"],
            )
            label_ids.loc[where] = codes.map(labels).astype("Int64")
        groups = table.groupby("image", sort=False).indices
        planned = []
        for done, (name, where) in enumerate(groups.items(), start=1):
            rows = table.iloc[where]
            file, line = str(files.iloc[where[0]]), int(rows["line"].iloc[0])
            if name not in sizes:
                raise NotFoundError(
                    f"image {name!r} is not in source {src.name!r}; import the image first, "
                    "or give the folder of new images",
                    path=file,
                    line=line,
                    value=name,
                )
            image_id, width, height = sizes[name]
            if counts.get(image_id):
                raise ConflictError(
                    f"image {name!r} already has {counts[image_id]} points; nothing was imported",
                    path=file,
                    line=line,
                    value=name,
                )
            for r, c, point_line in zip(rows["row"], rows["column"], rows["line"], strict=True):
                if not (0 <= int(r) < height and 0 <= int(c) < width):
                    raise PointOutsideImageError(
                        f"point (row {r}, column {c}) lies outside image {name!r} "
                        f"({height} rows x {width} columns)",
                        path=str(files.loc[rows.index[0]]),
                        line=int(point_line),
                    )
            planned.append((image_id, where))
            progress("checking images", done, len(groups))
        for image_id, where in planned:
            rows = table.iloc[where]
            coords = list(zip(rows["row"].astype(int), rows["column"].astype(int), strict=True))
            point_ids = writes.add_points(session, image_id, coords, "imported")
            chosen = label_ids.iloc[where]
            annotations = [
                (point_id, int(label_id), None, None)
                for point_id, label_id in zip(point_ids, chosen, strict=True)
                if not pd.isna(label_id)
            ]
            summary.images += 1
            summary.points += len(point_ids)
            summary.annotations += writes.add_imported_annotations(session, annotations)
    return summary


__all__ = [
    "ANNOTATION_FILTERS",
    "LABEL_MAPPINGS",
    "export",
    "export_table",
    "formats_table",
    "import_annotations",
    "import_labelset",
]
