"""COCO keypoints JSON: one annotation per labelled point, one category per label.

As the COCO "person keypoints" layout, with a single keypoint named ``point``::

    {"images": [{"id": 1, "file_name": "reef_a.jpg", "width": 320, "height": 240}],
     "categories": [{"id": 1, "name": "Porit", "supercategory": "Hard coral",
                     "keypoints": ["point"], "skeleton": []}],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                      "keypoints": [52, 39, 2], "num_keypoints": 1,
                      "bbox": [52, 39, 0, 0], "area": 0, "iscrowd": 0}]}

Keypoint ``x, y`` are the point's column and row (pixels); visibility 2. A category's
``name`` is the label's short code (``full_name`` its name). COCO has no unlabelled
annotation, so unlabelled points are left out; a machine label's ``score`` is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat._util import dumps
from quadrat.errors import InputError
from quadrat.io.atomic import write_text
from quadrat.io.formats._common import (
    check_points_per_image,
    check_rows,
    labelled,
    load_json,
    pixel,
    point_table,
)
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.limits import Limits

if TYPE_CHECKING:
    import pandas as pd


def _list(document: dict[str, Any], key: str, path: Path) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise InputError(f"COCO {key!r} must be a list", path=path, value=key)
    return value


def _object(value: Any, where: str, keys: tuple[str, ...], path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where} must be an object", path=path, value=where)
    missing = [k for k in keys if k not in value]
    if missing:
        raise InputError(f"{where} has no {', '.join(missing)}", path=path, value=where)
    return value


def read_coco(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """Points of a COCO keypoints file: each annotation's first keypoint (or its bbox's
    centre when it has none) with its category's name as the label. ``line`` is the
    annotation's position (1-based) in ``annotations``; errors name ``annotations[k]``."""
    path = Path(path)
    document = load_json(path, limits, "a COCO JSON file")
    if not isinstance(document, dict):
        raise InputError("a COCO file is a JSON object", path=path, line=1)
    images: dict[Any, str] = {}
    for k, image in enumerate(_list(document, "images", path)):
        image = _object(image, f"images[{k}]", ("id", "file_name"), path)
        images[image["id"]] = str(image["file_name"])
    categories: dict[Any, str] = {}
    for k, category in enumerate(_list(document, "categories", path)):
        category = _object(category, f"categories[{k}]", ("id", "name"), path)
        categories[category["id"]] = str(category["name"])
    annotations = _list(document, "annotations", path)
    check_rows(len(annotations), path, limits)
    records: list[dict[str, Any]] = []
    for k, annotation in enumerate(annotations):
        where = f"annotations[{k}]"
        annotation = _object(annotation, where, ("image_id",), path)
        if annotation["image_id"] not in images:
            raise InputError(
                f"{where}: image_id {annotation['image_id']!r} is not in images",
                path=path,
                value=annotation["image_id"],
            )
        category = annotation.get("category_id")
        if category is not None and category not in categories:
            raise InputError(
                f"{where}: category_id {category!r} is not in categories",
                path=path,
                value=category,
            )
        keypoints = annotation.get("keypoints")
        bbox = annotation.get("bbox")
        if isinstance(keypoints, list) and len(keypoints) >= 2:
            x, y = keypoints[0], keypoints[1]
        elif (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(isinstance(v, int | float) for v in bbox)
        ):
            x, y = bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2
        else:
            raise InputError(f"{where} has neither keypoints [x, y, v, ...] nor a bbox", path=path)
        records.append(
            {
                "image": images[annotation["image_id"]],
                "row": pixel(y, "keypoint y", path=path, where=where),
                "column": pixel(x, "keypoint x", path=path, where=where),
                "label": categories.get(category),
                "line": k + 1,
                "score": annotation.get("score"),
            }
        )
    table = point_table(records, ("score",))
    check_points_per_image(table, path, limits)
    return table


def write_coco(table: pd.DataFrame, path: str | Path, **_options: Any) -> int:
    """A COCO keypoints file of the labelled points; returns the number of annotations."""
    images: dict[str, dict[str, Any]] = {}
    categories: dict[str, dict[str, Any]] = {}
    annotations: list[dict[str, Any]] = []
    for point in table.to_dict("records"):
        name = str(point["image"])
        if name not in images:
            entry: dict[str, Any] = {"id": len(images) + 1, "file_name": name}
            if "width" in point and "height" in point:
                entry["width"], entry["height"] = int(point["width"]), int(point["height"])
            images[name] = entry
        if not labelled(point.get("label")):
            continue
        code = str(point["label"])
        if code not in categories:
            category: dict[str, Any] = {
                "id": len(categories) + 1,
                "name": code,
                "supercategory": str(point.get("functional_group") or "label"),
                "keypoints": ["point"],
                "skeleton": [],
            }
            if labelled(point.get("label_name")):
                category["full_name"] = str(point["label_name"])
            categories[code] = category
        x, y = int(point["column"]), int(point["row"])
        annotation: dict[str, Any] = {
            "id": len(annotations) + 1,
            "image_id": images[name]["id"],
            "category_id": categories[code]["id"],
            "keypoints": [x, y, 2],
            "num_keypoints": 1,
            "bbox": [x, y, 0, 0],
            "area": 0,
            "iscrowd": 0,
        }
        if point.get("status") == "machine" and labelled(point.get("confidence_1")):
            annotation["score"] = round(float(point["confidence_1"]), 4)
        annotations.append(annotation)
    document = {
        "info": {"description": "point annotations exported by quadrat"},
        "images": list(images.values()),
        "categories": list(categories.values()),
        "annotations": annotations,
    }
    write_text(path, dumps(document, indent=1) + "\n")
    return len(annotations)


register(
    FormatInfo(
        name="coco",
        description="COCO keypoints JSON, one keypoint per labelled point",
        kind="points",
        carries="positions, labels, machine score",
        suffix=".json",
        read=read_coco,
        write=write_coco,
    )
)

__all__ = ["read_coco", "write_coco"]
