"""Files in other tools' published layouts for the format tests, written as those tools
write them (plain text here, never by quadrat).

``make_formats_fixture(root)`` writes (deterministically) and returns name -> path, for
the coralnet fixture's three 320x240 images and their 3x3 grid of labelled points:

- ``viame``: a VIAME CSV (KWIVER header comment, metadata line, one detection per
  point: a 10x10 box around it for reef_a, a zero-size box + ``(kp)`` for reef_b, the
  top-2 species for reef_c);
- ``coco``: COCO keypoints JSON (one ``point`` keypoint per annotation);
- ``points``: ``Name,Row,Column`` (CoralNet's points upload), no labels;
- ``biigle.csv`` / ``biigle.zip``: BIIGLE CSV image annotation report (points, one circle,
  one polygon that readers skip), the ZIP as BIIGLE sends it (one CSV per volume);
- ``label_tree.json``: a BIIGLE label tree (labels under group parents);
- ``squidle.csv``: a Squidle+ point export (positions as fractions of the image);
- hostile files, each with the line a reader must name (``BAD[name]``).

Import it as ``from tests.data.formats import data``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tests.data.coralnet.data import GRID, IMAGES, LABELS, POINT_LABELS, SUGGESTIONS

VIAME_HEADER = (
    "# 1: Detection or Track-id,2: Video or Image Identifier,3: Unique Frame Identifier,"
    "4-7: Img-bbox(TL_x,TL_y,BR_x,BR_y),8: Detection or Length Confidence,"
    "9: Target Length (0 or -1 if invalid),10-11+: Repeated Species,Confidence Pairs or "
    "Attributes"
)

#: file name -> (line the reader must name, or None for JSON) of each hostile file.
BAD: dict[str, int | None] = {
    "viame_short.csv": 4,
    "viame_box_text.csv": 3,
    "viame_pair.csv": 3,
    "coco_syntax.json": 3,
    "points_row_text.csv": 3,
    "points_no_column.csv": 1,
    "biigle_points.csv": 3,
    "squidle_x.csv": 2,
}

BIIGLE_HEADER = (
    "annotation_label_id,label_id,label_name,label_hierarchy,user_id,firstname,lastname,"
    "image_id,filename,image_longitude,image_latitude,shape_id,shape_name,points,"
    "attributes,annotation_id,created_at"
)
SQUIDLE_HEADER = (
    "label.id,label.uuid,label.name,label.lineage_names,comment,needs_review,tag_names,"
    "updated_at,point.id,point.x,point.y,point.t,point.is_targeted,point.media.id,"
    "point.media.key,point.media.path_best,point.pose.timestamp,point.pose.lat,"
    "point.pose.lon,point.pose.alt,point.pose.dep"
)


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def biigle_lines() -> list[str]:
    names = {code: (lid, name, group) for lid, code, name, group in LABELS}
    lines = [BIIGLE_HEADER]
    k = 0
    for image_id, name in enumerate(IMAGES, start=1):
        for (row, col), code in zip(GRID, POINT_LABELS[name], strict=True):
            k += 1
            lid, label, group = names[code]
            shape = "4,Circle" if k == 5 else "1,Point"
            coords = f"[{col}.4,{row}.4,20]" if k == 5 else f"[{col},{row}]"
            attrs = _csv_cell('{"size":12345,"width":320,"height":240}')
            lines.append(
                f"{k},{lid},{_csv_cell(label)},{_csv_cell(group + ' > ' + label)},7,Ada,Diver,"
                f"{image_id},{name},-149.82,-17.48,{shape},{_csv_cell(coords)},{attrs},{k},"
                "2024-03-05 10:00:00"
            )
        if name == "reef_a.jpg":
            lines.append(
                f"999,84,Sand,Sand,7,Ada,Diver,{image_id},{name},,,3,Polygon,"
                '"[1,1,10,1,10,10,1,1]",{},999,2024-03-05 10:00:00'
            )
    return lines


def label_tree_document() -> dict[str, object]:
    groups = sorted({group for *_, group in LABELS})
    labels: list[dict[str, object]] = [
        {"id": 1000 + k, "name": g, "parent_id": None, "color": "aaaaaa", "label_tree_id": 3}
        for k, g in enumerate(groups)
    ]
    for lid, _code, name, group in LABELS:
        labels.append(
            {
                "id": lid,
                "name": name,
                "parent_id": 1000 + groups.index(group),
                "color": "0099ff",
                "label_tree_id": 3,
            }
        )
    return {"id": 3, "name": "Reef", "description": "test tree", "labels": labels}


def squidle_lines() -> list[str]:
    names = {code: name for _, code, name, _ in LABELS}
    lines = [SQUIDLE_HEADER]
    k = 0
    for media, name in enumerate(IMAGES, start=1):
        for (row, col), code in zip(GRID, POINT_LABELS[name], strict=True):
            k += 1
            x, y = (col + 0.25) / 320, (row + 0.75) / 240
            lines.append(
                f"{k},uuid-{k},{_csv_cell(names[code])},Biota > {names[code]},,False,,"
                f"2024-03-05T10:00:00,{k},{x},{y},,False,{media},{name[:-4]},"
                f"https://bucket.example.org/survey/{name},2024-03-01T00:00:00,-17.48,"
                "-149.82,2.0,10.0"
            )
    return lines


def viame_lines() -> list[str]:
    lines = [VIAME_HEADER, "# metadata, fps: 1, exported_by: dive:python"]
    det = 0
    for frame, name in enumerate(IMAGES):
        for (row, col), code in zip(GRID, POINT_LABELS[name], strict=True):
            det += 1
            if name == "reef_a.jpg":
                box = f"{col - 5},{row - 5},{col + 5},{row + 5}"
                tail = f"{code},1.0"
            elif name == "reef_b.jpg":
                box = f"{col},{row},{col},{row}"
                tail = f"{code},0.97,(kp) head {col} {row},(note) checked"
            else:
                (s1, _c1), (s2, _c2) = SUGGESTIONS[name]
                other = s1 if code != s1 else s2
                tail = f"{code},0.81,{other},0.12"
                box = f"{col - 2},{row - 2},{col + 2},{row + 2}"
            lines.append(f"{det},{name},{frame},{box},1.0,-1,{tail}")
    return lines


def coco_document() -> dict[str, object]:
    codes = [code for _, code, _, _ in LABELS]
    images = [
        {"id": 10 + k, "file_name": name, "width": 320, "height": 240}
        for k, name in enumerate(IMAGES)
    ]
    annotations = []
    for k, name in enumerate(IMAGES):
        for (row, col), code in zip(GRID, POINT_LABELS[name], strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 10 + k,
                    "category_id": codes.index(code) + 1,
                    "keypoints": [col, row, 2],
                    "num_keypoints": 1,
                    "bbox": [col, row, 0, 0],
                    "area": 0,
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": k + 1, "name": code, "supercategory": group, "keypoints": ["point"], "skeleton": []}
        for k, (_, code, _, group) in enumerate(LABELS)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_formats_fixture(root: Path) -> dict[str, Path]:
    """Write the files described in the module doc under ``root``; name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        out[name] = root / name
        out[name].write_text(text, encoding="utf-8")

    good = viame_lines()
    put("viame.csv", "\n".join(good) + "\n")
    put("coco.json", json.dumps(coco_document(), indent=1))
    points = ["Name,Row,Column"] + [f"{n},{r},{c}" for n in IMAGES for r, c in GRID]
    put("points.csv", "\n".join(points) + "\n")

    biigle = biigle_lines()
    put("biigle.csv", "\n".join(biigle) + "\n")
    out["biigle.zip"] = root / "biigle.zip"
    with zipfile.ZipFile(out["biigle.zip"], "w") as archive:
        half = biigle.index(next(line for line in biigle if ",2,reef_b.jpg," in line))
        archive.writestr("12_csv_image_annotation_report_volume_a.csv", "\n".join(biigle[:half]))
        archive.writestr(
            "13_csv_image_annotation_report_volume_b.csv", "\n".join([biigle[0], *biigle[half:]])
        )
    put("label_tree.json", json.dumps(label_tree_document()))
    squidle = squidle_lines()
    put("squidle.csv", "\n".join(squidle) + "\n")
    put("biigle_points.csv", "\n".join([*biigle[:2], biigle[2].replace("[159,39]", "[159]")]))
    put("squidle_x.csv", "\n".join([squidle[0], squidle[1].replace(",0.1", ",1.7", 1)]))

    put("viame_short.csv", "\n".join([*good[:3], "4,reef_a.jpg,0,1,2"]) + "\n")
    put("viame_box_text.csv", "\n".join([*good[:2], "1,reef_a.jpg,0,a,0,5,5,1,-1,Sand,1"]) + "\n")
    put("viame_pair.csv", "\n".join([*good[:2], "1,reef_a.jpg,0,0,0,5,5,1,-1,Sand"]) + "\n")
    put("coco_syntax.json", '{"images": [],\n "annotations": [\n  {"id": 1,,}\n ]}\n')
    put("points_row_text.csv", "Name,Row,Column\nreef_a.jpg,1,2\nreef_a.jpg,x,2\n")
    put("points_no_column.csv", "Name,Row\nreef_a.jpg,1\n")
    return out
