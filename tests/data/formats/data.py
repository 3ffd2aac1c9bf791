"""Files in other tools' published layouts for the format tests, written as those tools
write them (plain text here, never by quadrat).

``make_formats_fixture(root)`` writes (deterministically) and returns name -> path, for
the coralnet fixture's three 320x240 images and their 3x3 grid of labelled points:

- ``viame``: a VIAME CSV (KWIVER header comment, metadata line, one detection per
  point: a 10x10 box around it for reef_a, a zero-size box + ``(kp)`` for reef_b, the
  top-2 species for reef_c);
- ``coco``: COCO keypoints JSON (one ``point`` keypoint per annotation);
- ``points``: ``Name,Row,Column`` (CoralNet's points upload), no labels;
- hostile files, each with the line a reader must name (``BAD[name]``).

Import it as ``from tests.data.formats import data``.
"""

from __future__ import annotations

import json
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
}


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

    put("viame_short.csv", "\n".join([*good[:3], "4,reef_a.jpg,0,1,2"]) + "\n")
    put("viame_box_text.csv", "\n".join([*good[:2], "1,reef_a.jpg,0,a,0,5,5,1,-1,Sand,1"]) + "\n")
    put("viame_pair.csv", "\n".join([*good[:2], "1,reef_a.jpg,0,0,0,5,5,1,-1,Sand"]) + "\n")
    put("coco_syntax.json", '{"images": [],\n "annotations": [\n  {"id": 1,,}\n ]}\n')
    put("points_row_text.csv", "Name,Row,Column\nreef_a.jpg,1,2\nreef_a.jpg,x,2\n")
    put("points_no_column.csv", "Name,Row\nreef_a.jpg,1\n")
    return out
