"""Squidle+ dataframe exports: a media list, or a point export (one row per point)."""

from __future__ import annotations

from collections.abc import Iterable
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


def _squidle_fields(columns: Iterable[str]) -> dict[str, str]:
    """Media-level field -> header, for a media list (``key``, ``pose.lat``) or a point
    export (``point.media.key``, ``point.pose.lat``; point-level ``point.id`` is ignored)."""
    fields: dict[str, str] = {}
    for column in columns:
        if column.startswith("point.media."):
            fields[column.removeprefix("point.media.")] = column
        elif column.startswith("point.pose."):
            fields[column.removeprefix("point.")] = column
        elif column.startswith("media."):
            fields.setdefault(column.removeprefix("media."), column)
        elif not column.startswith(("point.", "label.")):
            fields.setdefault(column, column)
    return fields


@METADATA_READERS.register("squidle")
def read_squidle(
    path: str | Path,
    *,
    dataset: str | None = None,
    site: str | None = None,
    platform: str | None = None,
) -> pd.DataFrame:
    """A Squidle+ dataframe export: its media list, or a point-annotation export.

    Maps ``key`` / ``path_best`` / ``pose.{lat,lon,dep,alt,timestamp}`` and, when the
    export has them, ``deployment.campaign.key`` (dataset) and ``deployment.key`` (site).
    A point export (one row per annotated point) becomes one row per image with
    ``n_points``. The image name is the file name of ``path_best`` (else the media key);
    Squidle+ timestamps are UTC.
    """
    path = Path(path)
    raw = read_csv_strings(path)
    names = _squidle_fields(raw.columns)
    if "key" not in names and "path_best" not in names:
        raise CsvFormatError(
            "not a Squidle+ export: no media key or path_best column; found "
            + ", ".join(c for c in raw.columns if c not in (SOURCE_FILE, SOURCE_LINE)),
            path=path,
            line=1,
        )
    if any(c.startswith("point.") for c in raw.columns):  # one row per point: per image
        media = names.get("id") or names.get("key") or names["path_best"]
        grouped = raw.groupby(media, sort=False)
        first = grouped.head(1).reset_index(drop=True)
        first["n_points"] = grouped.size().to_numpy()
        raw = first

    def column(name: str) -> pd.Series | None:
        return raw[names[name]] if name in names else None

    out = pd.DataFrame(index=raw.index)
    url = column("path_best")
    key = column("key")
    if url is not None:
        out["image"] = url.str.strip().str.rsplit("/", n=1).str[-1]
        if key is not None:
            out["image"] = out["image"].mask(out["image"] == "", key)
        out["url"] = url
    else:
        assert key is not None  # checked above
        out["image"] = key
    campaign = column("deployment.campaign.key")
    if dataset is not None or campaign is None:
        out["dataset"] = dataset if dataset is not None else default_dataset(path)
    else:
        out["dataset"] = campaign
    out["dataset"] = out["dataset"].astype("string")
    out["site"] = site_column(column("deployment.key"), site, out["dataset"])
    for source, target in (
        ("pose.lat", "latitude"),
        ("pose.lon", "longitude"),
        ("pose.dep", "depth"),
        ("pose.alt", "altitude"),
    ):
        values = column(source)
        if values is not None:
            out[target] = values
    stamp = column("pose.timestamp")
    if stamp is not None:
        # Squidle+ writes UTC without an offset; say so, so no local timezone applies.
        text = stamp.str.strip()
        out["datetime"] = text.mask(text != "", text + "+00:00")
    if platform is not None:
        out["platform"] = platform
    for name in ("key", "id"):
        values = column(name)
        if values is not None:
            out[f"media_{name}"] = values
    if "n_points" in raw.columns:
        out["n_points"] = raw["n_points"]
    out[SOURCE_FILE] = raw[SOURCE_FILE]
    out[SOURCE_LINE] = raw[SOURCE_LINE]
    return ordered(out)
