"""A source's annotations, cover and labelset as CoralNet CSVs (written atomically)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quadrat.io.coralnet import (
    LONG_LABEL,
    METADATA_COLUMNS,
    cover_table,
    write_annotations_csv,
    write_labelset_csv,
    write_percent_cover_csv,
)

if TYPE_CHECKING:
    from quadrat.workflow.source import Source

#: CoralNet counts a point as confirmed once a person (or alleviation) has accepted it.
COVER_STATUS = {
    "imported": "confirmed",
    "confirmed": "confirmed",
    "alleviate": "confirmed",
    "machine": "unconfirmed",
}


def cover(src: Source, intervals: bool = False, **options: Any) -> pd.DataFrame:
    """Per-image percent cover of a source (CoralNet's image-covers table).

    With ``intervals`` or any ``options`` (``level``, ``corrected``, ``confidence``,
    ``replicates``, ``seed``): the table of :func:`quadrat.workflow.cover.cover`, with
    estimate (and bound) columns after CoralNet's.
    """
    if intervals or options:
        from quadrat.workflow import cover as uncertainty

        return uncertainty.cover(src, intervals, **options)
    table = src.annotations()
    frame = pd.DataFrame(
        {
            "image_id": table["image_id"],
            "image_name": table["image"],
            "label": table["label"],
            "status": table["status"].map(COVER_STATUS),
        }
    )
    return cover_table(frame, src.labelset())


def export_annotations(src: Source, path: str | Path, *, escape_formulas: bool = False) -> int:
    """All annotated points with their metadata and latest machine suggestions.

    Metadata columns are those the images were imported with, empty ones included, in
    CoralNet's column order (:func:`metadata_order`). A ``Long Label`` column, when the
    import had one, holds each point's label name from the labelset (per label, not per
    image).
    ``escape_formulas`` prefixes ``'`` to text cells a spreadsheet would run as a formula
    (off by default: CoralNet's bytes; a warning says when it would be needed).
    """
    table = src.annotations()
    table = table[table["label"].notna()]
    metadata = pd.json_normalize(table["metadata"].tolist()).set_index(table.index)
    out = pd.DataFrame({"image": table["image"]})
    for column in metadata_order(metadata.columns):
        out[column] = metadata[column]
    for column in ("row", "column", "label", "annotator", "date_annotated"):
        out[column] = table[column]
    if LONG_LABEL in metadata.columns:
        out["long_label"] = table["label_name"]
    for k in range(1, 6):
        if f"suggestion_{k}" in table:
            out[f"machine_suggestion_{k}"] = table[f"suggestion_{k}"]
            out[f"machine_confidence_{k}"] = table[f"confidence_{k}"]
    write_annotations_csv(out, path, escape_formulas=escape_formulas)
    return len(out)


def metadata_order(columns: Iterable[str]) -> list[str]:
    """Image-metadata columns for export in the order they were imported, with CoralNet's
    own columns (:data:`METADATA_COLUMNS`) in CoralNet's relative order; other columns
    (a source's renamed aux columns) keep their places. ``Long Label`` is left out: it is
    not image metadata (it is written after the label)."""
    names = [str(c) for c in columns if str(c) != LONG_LABEL]
    rank = {c: i for i, c in enumerate(METADATA_COLUMNS)}
    known = iter(sorted((c for c in names if c in rank), key=rank.__getitem__))
    return [next(known) if c in rank else c for c in names]


def export_cover(
    src: Source,
    path: str | Path,
    *,
    escape_formulas: bool = False,
    intervals: bool = False,
    **options: Any,
) -> int:
    """CoralNet's percent-cover CSV; returns the number of rows (images, sites or 1).

    With ``intervals`` or ``options`` (see :func:`cover`): CoralNet's columns, then the
    estimate and bound columns; a per-image table's ``ALL IMAGES`` row then holds the
    source's estimate and interval.
    """
    if intervals or options:
        from quadrat.workflow import cover as uncertainty

        table = uncertainty.cover(src, intervals, **options)
        summary = None
        if table.attrs["level"].kind == "image" and len(table) > 1:
            summary = uncertainty.cover(src, intervals, **{**options, "level": "source"})
        uncertainty.write_cover(table, path, summary=summary, escape_formulas=escape_formulas)
        return len(table)
    table = cover(src)
    write_percent_cover_csv(table, path, escape_formulas=escape_formulas)
    return len(table)


def export_labelset(src: Source, path: str | Path, *, escape_formulas: bool = False) -> int:
    """The labelset as a CoralNet labelset CSV; returns the number of labels."""
    labelset = src.labelset()
    write_labelset_csv(labelset, path, escape_formulas=escape_formulas)
    return len(labelset)
