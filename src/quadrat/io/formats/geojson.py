"""GeoJSON for QGIS: one Point feature per georeferenced image (with its cover) and one
per point (with its label), all at the image's position (RFC 7946, WGS 84 lon/lat).

A photo's position comes from its metadata (CoralNet's ``Latitude``/``Longitude``
columns, or ``lat``/``lon`` keys from survey metadata readers); images without one are
left out and counted in the returned collection's ``quadrat`` member. Image features
carry ``kind: "image"``, ``points``, ``labelled`` and ``cover_<code>`` (percent of the
image's labelled points); point features ``kind: "point"``, ``number``, ``row``,
``column``, ``label``, ``label_name`` and ``status``. Export only: a GeoJSON file
holds no pixel-exact position of a point inside its photo beyond these properties.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat._util import dumps
from quadrat.io.atomic import write_text
from quadrat.io.formats._common import bool_option, labelled
from quadrat.io.formats.registry import FormatInfo, register

if TYPE_CHECKING:
    import pandas as pd


def _coordinate(value: Any, low: float, high: float) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def geojson_document(table: pd.DataFrame, *, points: bool = True) -> dict[str, Any]:
    """The FeatureCollection for ``table`` (needs ``latitude`` and ``longitude`` columns)."""
    features: list[dict[str, Any]] = []
    skipped: list[str] = []
    for name, rows in table.groupby("image", sort=True):
        first = rows.iloc[0]
        lat = _coordinate(first.get("latitude"), -90.0, 90.0)
        lon = _coordinate(first.get("longitude"), -180.0, 180.0)
        if lat is None or lon is None:
            skipped.append(str(name))
            continue
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        labels = [str(v) for v in rows["label"] if labelled(v)]
        counts = Counter(labels)
        properties: dict[str, Any] = {
            "kind": "image",
            "image": str(name),
            "points": len(rows),
            "labelled": len(labels),
        }
        for code in sorted(counts):
            properties[f"cover_{code}"] = round(100.0 * counts[code] / len(labels), 4)
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
        if not points:
            continue
        for k, point in enumerate(rows.to_dict("records"), start=1):
            features.append(
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {
                        "kind": "point",
                        "image": str(name),
                        "number": int(point.get("number") or k),
                        "row": int(point["row"]),
                        "column": int(point["column"]),
                        "label": point["label"] if labelled(point["label"]) else None,
                        "label_name": point.get("label_name")
                        if labelled(point.get("label_name"))
                        else None,
                        "status": point.get("status"),
                    },
                }
            )
    return {
        "type": "FeatureCollection",
        "features": features,
        "quadrat": {"images_without_position": skipped},
    }


def write_geojson(table: pd.DataFrame, path: str | Path, **options: Any) -> int:
    """Write :func:`geojson_document` (``points=False``: images only); returns features."""
    document = geojson_document(table, points=bool_option(options.get("points", True), "points"))
    write_text(path, dumps(document) + "\n")
    return len(document["features"])


register(
    FormatInfo(
        name="geojson",
        description="GeoJSON of georeferenced images (cover) and their points (labels), for QGIS",
        kind="map",
        carries="image positions, cover, labels",
        suffix=".geojson",
        write=write_geojson,
    )
)

__all__ = ["geojson_document", "write_geojson"]
