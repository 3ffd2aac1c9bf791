"""VIAME CSV (KWIVER's ``detected_object_set_viame_csv``, DIVE's import): point detections.

One row per detection after ``#`` comment lines::

    # 1: Detection or Track-id,2: Video or Image Identifier,3: Unique Frame Identifier,...
    1,reef_a.jpg,0,52,39,52,39,1.0,-1,Porit,1.0

Columns: id, image name, frame, box ``TL_x, TL_y, BR_x, BR_y``, confidence, length (-1:
invalid), then ``species, confidence`` pairs, then attribute tokens (``(kp) name x y``,
``(atr) name value``, ``(note) text``). A point is written as a box centred on it
(``half_size`` pixels each side, clipped to the image; 0 by default, so the box is the
point itself) and read back as its box's centre, or as a ``(kp)`` keypoint when the row
has one. A human label is written as its species with confidence 1.0, followed by the
machine's suggestions (other labels) with their scores; the label read back is the
species with the highest confidence.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quadrat.errors import CsvFormatError
from quadrat.io.atomic import write_text
from quadrat.io.csv import decode
from quadrat.io.formats._common import (
    check_points_per_image,
    check_rows,
    integer_option,
    labelled,
    pixel,
    point_table,
)
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.limits import Limits

if TYPE_CHECKING:
    import pandas as pd

HEADER_COMMENT = (
    "# 1: Detection or Track-id,2: Video or Image Identifier,3: Unique Frame Identifier,"
    "4-7: Img-bbox(TL_x,TL_y,BR_x,BR_y),8: Detection or Length Confidence,"
    "9: Target Length (0 or -1 if invalid),10-11+: Repeated Species,Confidence Pairs or "
    "Attributes"
)
METADATA_COMMENT = "# metadata, exported_by: quadrat"


def read_viame_csv(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """Points of a VIAME CSV: each detection's centre (or ``(kp)``), its top species."""
    path = Path(path)
    text = decode(path, limits=limits)
    records: list[dict[str, Any]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for tokens in reader:
        line = reader.line_num
        if not tokens or not "".join(tokens).strip() or tokens[0].lstrip().startswith("#"):
            continue
        tokens = [t.strip() for t in tokens]
        if len(tokens) < 9:
            raise CsvFormatError(
                f"a VIAME detection has at least 9 values (id, image, frame, 4 box corners, "
                f"confidence, length), found {len(tokens)}",
                path=path,
                line=line,
                value=len(tokens),
            )
        image = tokens[1]
        if not image:
            raise CsvFormatError("the image name (column 2) is empty", path=path, line=line)
        box = [_number(t, f"box value {k + 4}", path, line) for k, t in enumerate(tokens[3:7])]
        tl_x, tl_y, br_x, br_y = box
        if br_x < tl_x or br_y < tl_y:
            raise CsvFormatError(
                "the box's bottom right lies above or left of its top left",
                path=path,
                line=line,
            )
        x, y = (tl_x + br_x) / 2, (tl_y + br_y) / 2
        species: list[tuple[str, float]] = []
        rest = tokens[9:]
        k = 0
        while k < len(rest):
            token = rest[k]
            if token.startswith("("):
                if token.startswith("(kp)"):
                    parts = token.split()
                    if len(parts) != 4:
                        raise CsvFormatError(
                            f"a keypoint is '(kp) name x y', got {token!r}", path=path, line=line
                        )
                    x = _number(parts[2], "keypoint x", path, line)
                    y = _number(parts[3], "keypoint y", path, line)
                k += 1
                continue
            if k + 1 >= len(rest):
                raise CsvFormatError(
                    f"species {token!r} has no confidence after it", path=path, line=line
                )
            species.append((token, _number(rest[k + 1], f"confidence of {token!r}", path, line)))
            k += 2
        label = max(species, key=lambda pair: pair[1])[0] if species else None
        records.append(
            {
                "image": image,
                "row": pixel(y, "y", path=path, line=line),
                "column": pixel(x, "x", path=path, line=line),
                "label": label,
                "line": line,
                "score": max((s for _, s in species), default=None),
            }
        )
    check_rows(len(records), path, limits)
    table = point_table(records, ("score",))
    check_points_per_image(table, path, limits)
    return table


def _number(text: str, what: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise CsvFormatError(
            f"{what} must be a number, got {text!r}", path=path, line=line, value=text
        )
    return value


def write_viame_csv(
    table: pd.DataFrame, path: str | Path, *, half_size: int = 0, **_options: Any
) -> int:
    """One detection per point (see the module doc); returns the number of rows."""
    half_size = integer_option(half_size, "half_size")
    frames = {name: k for k, name in enumerate(dict.fromkeys(table["image"]))}
    buffer = io.StringIO()
    buffer.write(HEADER_COMMENT + "\n" + METADATA_COMMENT + "\n")
    writer = csv.writer(buffer, lineterminator="\n")
    has_size = "width" in table and "height" in table
    for number, point in enumerate(table.to_dict("records"), start=1):
        row, column = int(point["row"]), int(point["column"])
        right = int(point["width"]) - 1 if has_size else column + half_size
        bottom = int(point["height"]) - 1 if has_size else row + half_size
        box = (
            max(0, column - half_size),
            max(0, row - half_size),
            min(right, column + half_size),
            min(bottom, row + half_size),
        )
        pairs: list[tuple[str, float]] = []
        if labelled(point.get("label")):
            pairs.append((str(point["label"]), 1.0))
        for k in range(1, 6):
            code, score = point.get(f"suggestion_{k}"), point.get(f"confidence_{k}")
            if labelled(code) and all(code != c for c, _ in pairs):
                pairs.append((str(code), round(float(score), 4) if labelled(score) else 0.0))
        confidence = max((s for _, s in pairs), default=1.0)
        cells: list[Any] = [number, point["image"], frames[point["image"]], *box, confidence, -1]
        for code, score in pairs:
            cells += [code, score]
        if half_size and box != (
            column - half_size,
            row - half_size,
            column + half_size,
            row + half_size,
        ):
            cells.append(f"(kp) point {column} {row}")
        writer.writerow(cells)
    write_text(path, buffer.getvalue())
    return len(table)


register(
    FormatInfo(
        name="viame",
        description="VIAME / DIVE detection CSV, one detection per point",
        kind="points",
        carries="positions, labels, top-5 scores",
        suffix=".csv",
        read=read_viame_csv,
        write=write_viame_csv,
    )
)

__all__ = ["read_viame_csv", "write_viame_csv"]
