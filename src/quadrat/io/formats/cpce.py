"""CPCe ``.cpc`` files as a format: a folder of them (one per image) read into a point
table, and written from one, as CoralNet's "Export annotations, CPCe" writes them.

The file format itself (and its reader and writer) is :mod:`quadrat.io.cpce`. A .cpc
file names its image by the path it had on the CPCe user's machine; the workflow matches
that path to a stored image (CoralNet's longest trailing path-part match) and infers the
pixel scale from the stored image's size, so this reader keeps positions in CPCe units
(``x``, ``y``) beside the pixels at the default 15 units a pixel.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from quadrat.errors import InputError
from quadrat.io.cpce import CPCE_UNITS_PER_PIXEL, cpc_text, read_cpc, write_cpc
from quadrat.io.formats._common import check_rows, labelled, point_table
from quadrat.io.formats.registry import FormatInfo, register
from quadrat.io.paths import resolve_under
from quadrat.limits import Limits

if TYPE_CHECKING:
    import pandas as pd

#: Extra columns of the point table read from .cpc files.
EXTRA = ("x", "y", "number", "notes", "file", "cpc_width", "cpc_height", "label_line")


def cpc_files(path: str | Path) -> list[Path]:
    """``path`` itself, or every ``*.cpc`` under the folder ``path`` (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cpc" and p.is_file())
        if not files:
            raise InputError("no .cpc files in this folder", path=path)
        return files
    return [path]


def read_cpce(path: str | Path, *, limits: Limits | None = None) -> pd.DataFrame:
    """Points of a .cpc file or a folder of them: ``image`` is the image path as written.

    ``x``/``y`` are CPCe units; ``row``/``column`` are pixels at 15 units a pixel (the
    workflow recomputes them at the scale the matched image gives). ``label`` is the
    point's ID code (None when blank), ``notes`` its notes code, ``file`` the .cpc file,
    ``line`` the position's line and ``label_line`` the label's.
    """
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for file in cpc_files(path):
        cpc = read_cpc(file, scale=1, limits=limits)  # scale 1: positions stay in units
        if cpc.image_path in seen:
            raise InputError(
                f"a second .cpc file for image {cpc.image_path!r}; CPCe keeps one per image",
                path=file,
                line=1,
                value=cpc.image_path,
            )
        seen.add(cpc.image_path)
        for point in cpc.points:
            records.append(
                {
                    "image": cpc.image_path,
                    "row": round(point.row / CPCE_UNITS_PER_PIXEL),
                    "column": round(point.column / CPCE_UNITS_PER_PIXEL),
                    "label": point.code or None,
                    "line": point.line,
                    "x": point.column,
                    "y": point.row,
                    "number": point.number,
                    "notes": point.notes,
                    "file": str(file),
                    "cpc_width": cpc.width,
                    "cpc_height": cpc.height,
                    "label_line": point.line + len(cpc.points),
                }
            )
        check_rows(len(records), Path(path), limits)
    return point_table(records, EXTRA)


def write_cpce(
    table: pd.DataFrame,
    path: str | Path,
    *,
    code_path: str = "",
    image_dir: str = "",
    scale: int = CPCE_UNITS_PER_PIXEL,
    **_options: Any,
) -> int:
    """One ``<image stem>.cpc`` per image under the folder ``path`` (sub-folders kept).

    ``table`` needs ``width`` and ``height`` (pixels); each file's image path is
    ``image_dir`` joined (Windows style) with the image name, its code file ``code_path``
    (CoralNet's ``local_image_dir`` / ``local_code_filepath``). Unlabelled points get the
    ID ``""``; a ``notes`` column fills the notes. Returns the number of files.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, rows in table.groupby("image", sort=True):
        name = str(name)
        relative = PurePosixPath(name.replace("\\", "/")).with_suffix(".cpc")
        target = resolve_under(out, str(relative), param="path")
        target.parent.mkdir(parents=True, exist_ok=True)
        notes = rows["notes"] if "notes" in rows else [""] * len(rows)
        points = [
            (int(r), int(c), str(code) if labelled(code) else "", str(n) if labelled(n) else "")
            for r, c, code, n in zip(rows["row"], rows["column"], rows["label"], notes, strict=True)
        ]
        windows_name = name.replace("/", "\\")
        image_path = f"{image_dir.rstrip(chr(92))}\\{windows_name}" if image_dir else windows_name
        first = rows.iloc[0]
        write_cpc(
            target,
            cpc_text(
                image_path=image_path,
                width=int(first["width"]),
                height=int(first["height"]),
                points=points,
                code_path=code_path,
                scale=scale,
            ),
        )
        count += 1
    return count


register(
    FormatInfo(
        name="cpce",
        description="CPCe .cpc files (a folder, one per image), CoralNet's CPCe rules",
        kind="points",
        carries="positions, labels (ID), notes",
        suffix="",
        read=read_cpce,
        write=write_cpce,
    )
)

__all__ = ["cpc_files", "read_cpce", "write_cpce"]
