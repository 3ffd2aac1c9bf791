"""CPCe ``.cpc`` files as a format: one per image, in a folder or a ZIP (CoralNet's
"Export annotations, CPCe" downloads ``annotations_cpc.zip``), read into a point table,
and written from one as that export writes them. ZIP members are checked before anything
is unpacked (:mod:`quadrat.io.formats._zip`: names that leave the folder, sizes, zip
bombs) and errors name ``archive.zip/member.cpc`` and the line.

The file format itself (and its reader and writer) is :mod:`quadrat.io.cpce`. A .cpc
file names its image by the path it had on the CPCe user's machine; the workflow matches
that path to a stored image (CoralNet's longest trailing path-part match) and infers the
pixel scale from the stored image's size, so this reader keeps positions in CPCe units
(``x``, ``y``) beside the pixels at the default 15 units a pixel.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from quadrat.errors import InputError, QuadratError
from quadrat.io.cpce import CPCE_UNITS_PER_PIXEL, cpc_text, read_cpc, write_cpc
from quadrat.io.formats._common import check_rows, labelled, point_table
from quadrat.io.formats._zip import is_zip, unpack, write_zip
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
    """Points of a .cpc file, a folder of them, or a ZIP of them (CoralNet's
    ``annotations_cpc.zip``): ``image`` is the image path as written.

    ``x``/``y`` are CPCe units; ``row``/``column`` are pixels at 15 units a pixel (the
    workflow recomputes them at the scale the matched image gives). ``label`` is the
    point's ID code (None when blank), ``notes`` its notes code, ``file`` the .cpc file
    (``archive.zip/member.cpc`` in a ZIP), ``line`` the position's line and
    ``label_line`` the label's.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() != ".cpc" and is_zip(path):
        with unpack(path, suffixes=(".cpc",), limits=limits, what="CPCe .cpc files") as members:
            return _read_files([(m.where, m.file) for m in members], path, limits)
    return _read_files([(str(f), f) for f in cpc_files(path)], path, limits)


def _read_files(files: list[tuple[str, Path]], path: Path, limits: Limits | None) -> pd.DataFrame:
    """The point table of ``(name for messages, file)`` pairs, one .cpc file each."""
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, file in files:
        try:
            cpc = read_cpc(file, scale=1, limits=limits)  # scale 1: positions stay in units
        except QuadratError as exc:
            if str(file) == name:
                raise
            raise type(exc)(exc.message, path=name, line=exc.line, value=exc.value) from exc
        if cpc.image_path in seen:
            raise InputError(
                f"a second .cpc file for image {cpc.image_path!r}; CPCe keeps one per image",
                path=name,
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
                    "file": name,
                    "cpc_width": cpc.width,
                    "cpc_height": cpc.height,
                    "label_line": point.line + len(cpc.points),
                }
            )
        check_rows(len(records), path, limits)
    return point_table(records, EXTRA)


def _write_folder(
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


def write_cpce(
    table: pd.DataFrame,
    path: str | Path,
    *,
    code_path: str = "",
    image_dir: str = "",
    scale: int = CPCE_UNITS_PER_PIXEL,
    **_options: Any,
) -> int:
    """One ``<image stem>.cpc`` per image: in the folder ``path``, or, for a ``path``
    ending in ``.zip``, in a ZIP as CoralNet's ``annotations_cpc.zip`` (sub-folders kept
    either way). See :func:`_write_folder` for the options. Returns the number of files.
    """
    if Path(path).suffix.lower() != ".zip":
        return _write_folder(table, path, code_path=code_path, image_dir=image_dir, scale=scale)
    with tempfile.TemporaryDirectory(prefix="quadrat-cpce-") as tmp:
        try:
            count = _write_folder(table, tmp, code_path=code_path, image_dir=image_dir, scale=scale)
        except QuadratError as exc:  # name the archive, not the private folder
            raise type(exc)(exc.message, path=path, value=exc.value, param=exc.param) from exc
        files = sorted(p for p in Path(tmp).rglob("*.cpc") if p.is_file())
        write_zip(path, [(p.relative_to(tmp).as_posix(), p.read_bytes()) for p in files])
    return count


register(
    FormatInfo(
        name="cpce",
        description="CPCe .cpc files, one per image, in a ZIP (CoralNet's annotations_cpc.zip) "
        "or a folder; CoralNet's CPCe rules",
        kind="points",
        carries="positions, labels (ID), notes",
        suffix=".zip",
        read=read_cpce,
        write=write_cpce,
    )
)

__all__ = ["cpc_files", "read_cpce", "write_cpce"]
