"""CoralNet annotation exports (and the image-metadata export) as one row per image."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from quadrat.datasets.readers._common import (
    METADATA_READERS,
    default_dataset,
    ordered,
    read_csv_strings,
    site_column,
)
from quadrat.datasets.schema import SOURCE_FILE, SOURCE_LINE
from quadrat.errors import CsvFormatError
from quadrat.io.coralnet import read_annotations_csv
from quadrat.io.csv import header_key, read_header

#: CoralNet metadata field -> schema column (Height (cm) is converted to metres).
_CORALNET_FIELDS = {
    "Date": "datetime",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Depth": "depth",
    "Height (cm)": "altitude",
}


@METADATA_READERS.register("coralnet")
def read_coralnet_metadata(
    path: str | Path,
    *,
    dataset: str | None = None,
    site: str | None = None,
    platform: str | None = None,
    site_field: str = "Aux1",
) -> pd.DataFrame:
    """Image metadata from a CoralNet annotation export (or its metadata-only export).

    One row per image (each field's first non-empty value among its points), with
    ``n_points``. CoralNet's
    ``Height (cm)`` (camera above the bottom) becomes ``altitude`` in metres; the site
    comes from ``site_field`` (CoralNet's Aux1 by convention), else a field a source renamed
    to "Site"; other non-empty metadata
    fields are kept as snake_case extras. Annotation files go through
    :func:`quadrat.io.coralnet.read_annotations_csv`; a file without Row/Column is read
    as CoralNet's image-metadata export.
    """
    path = Path(path)
    header = read_header(path)
    if {"row", "column"} <= {header_key(h) for h in header}:
        points = read_annotations_csv(path)
        fields = list(points.attrs.get("metadata_columns", []))
        per_image = points.groupby("image", sort=False)
        images = per_image.first().reset_index()
        frame = images[["image", *fields]].copy()
        frame["n_points"] = per_image.size().to_numpy()
        frame[SOURCE_LINE] = per_image["line"].min().to_numpy()
    else:
        raw = read_csv_strings(path)
        by_key = {header_key(c): c for c in raw.columns}
        if "name" not in by_key:
            raise CsvFormatError(
                f"missing the Name column of a CoralNet export; found {', '.join(header)}",
                path=path,
                line=1,
            )
        frame = raw.rename(columns={by_key["name"]: "image"}).drop(columns=[SOURCE_FILE])
        fields = [c for c in frame.columns if c not in ("image", SOURCE_LINE)]
    frame[SOURCE_FILE] = str(path)
    out = _coralnet_to_schema(
        frame, fields, path, dataset=dataset, site=site, site_field=site_field
    )
    if platform is not None:
        out.insert(out.columns.get_loc(SOURCE_FILE), "platform", platform)
    return out


def _coralnet_to_schema(
    frame: pd.DataFrame,
    fields: list[str],
    path: Path,
    *,
    dataset: str | None,
    site: str | None,
    site_field: str,
) -> pd.DataFrame:
    by_key = {header_key(f): f for f in fields}
    out = pd.DataFrame({"image": frame["image"].astype("string")}, index=frame.index)
    out["dataset"] = pd.Series(
        dataset if dataset is not None else default_dataset(path), index=frame.index
    ).astype("string")
    site_name = by_key.get(header_key(site_field)) or by_key.get("site")
    out["site"] = site_column(frame[site_name] if site_name else None, site, out["dataset"])
    used = {site_name}
    for field, target in _CORALNET_FIELDS.items():
        name = by_key.get(header_key(field))
        if name is None:
            continue
        used.add(name)
        out[target] = _centimetres_to_metres(frame[name]) if target == "altitude" else frame[name]
    for name in fields:
        if name in used:
            continue
        text = frame[name].astype("string").str.strip()
        if (text.notna() & (text != "")).any():
            out[re.sub(r"\W+", "_", name.strip().lower()).strip("_")] = text
    for name in ("n_points", SOURCE_FILE, SOURCE_LINE):
        if name in frame.columns:
            out[name] = frame[name]
    return ordered(out)


def _centimetres_to_metres(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return (numbers / 100).astype("object").where(numbers.notna(), values)
