"""A source's annotations, cover and labelset as CoralNet CSVs (written atomically).

Annotations may carry hierarchical answers (:func:`answers`, docs/hierarchy.md): three
columns after CoralNet's, only when a threshold is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
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
    from quadrat.labels.answers import Answers
    from quadrat.workflow.source import Source

#: Headers of the hierarchical answer columns, after CoralNet's (confidence in percent).
ANSWER_HEADERS = ("Answer", "Answer level", "Answer confidence")

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


def export_annotations(
    src: Source,
    path: str | Path,
    *,
    escape_formulas: bool = False,
    hierarchical_threshold: float | None = None,
    hierarchy: str | Path | None = None,
) -> int:
    """All annotated points with their metadata and latest machine suggestions.

    Metadata columns are those the images were imported with, empty ones included, in
    CoralNet's column order (:func:`metadata_order`). A ``Long Label`` column, when the
    import had one, holds each point's label name from the labelset (per label, not per
    image).
    ``escape_formulas`` prefixes ``'`` to text cells a spreadsheet would run as a formula
    (off by default: CoralNet's bytes; a warning says when it would be needed).
    ``hierarchical_threshold``: add :data:`ANSWER_HEADERS` after CoralNet's columns, each
    point's answer from its machine suggestions under ``hierarchy`` (:func:`answers`);
    None (the default) writes CoralNet's columns only.
    """
    from quadrat.labels.answers import check_pair

    check_pair(hierarchical_threshold, hierarchy)
    table = src.annotations()
    table = table[table["label"].notna()]
    found = None
    if hierarchical_threshold is not None:  # checked before anything is written
        found = point_answers(src, table, hierarchical_threshold, hierarchy)
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
    extra = None
    if found is not None:
        percent = pd.Series(np.floor(found.score * 100 + 0.5)).astype("Int64")  # as CoralNet's
        extra = pd.DataFrame(
            {
                ANSWER_HEADERS[0]: found.name.astype(str),
                ANSWER_HEADERS[1]: found.level.astype(str),
                ANSWER_HEADERS[2]: percent.astype("string").fillna("").to_numpy(),
            }
        )
    write_annotations_csv(out, path, escape_formulas=escape_formulas, extra=extra)
    return len(out)


def point_answers(
    src: Source, table: pd.DataFrame, threshold: float, hierarchy: str | Path | None
) -> Answers:
    """The hierarchical answer of each point of an :meth:`Source.annotations` table, from
    its stored top-5 machine scores (a point never scored has level '' and no score)."""
    from quadrat.labels.answers import answer_top_k, check_threshold, load_label_tree

    check_threshold(threshold)
    tree = load_label_tree(hierarchy, src.labelset())
    ks = [k for k in range(1, 6) if f"suggestion_{k}" in table]
    labels = table[[f"suggestion_{k}" for k in ks]].to_numpy(dtype=object)
    scores = table[[f"confidence_{k}" for k in ks]].to_numpy(dtype=np.float64)
    found = answer_top_k(labels.reshape(len(table), len(ks)), scores, tree, threshold)
    scored = np.array([isinstance(c, str) and c != "" for c in labels[:, 0]]) if ks else None
    if scored is None:
        scored = np.zeros(len(table), dtype=bool)
    found.name[~scored] = ""
    found.level[~scored] = ""
    found.score[~scored] = np.nan
    return found


def answers(src: Source, threshold: float, hierarchy: str | Path | None = None) -> pd.DataFrame:
    """Every machine-scored point with its hierarchical answer (docs/hierarchy.md).

    Columns: point_id, image, row, column, label (the point's current label), suggestion
    (its top machine label), confidence, answer, answer_level, answer_score. The answer
    is the deepest node of ``hierarchy`` (None: the labelset's functional groups; a CATAMI
    mapping CSV; a BIIGLE label tree JSON) whose summed top-5 scores reach ``threshold``.
    """
    table = src.annotations()
    if "suggestion_1" not in table:
        table = table.iloc[:0].assign(suggestion_1=None, confidence_1=np.nan)
    table = table[table["suggestion_1"].notna()].reset_index(drop=True)
    found = point_answers(src, table, threshold, hierarchy)
    out = table[["point_id", "image", "row", "column", "label"]].copy()
    out["suggestion"] = table["suggestion_1"]
    out["confidence"] = table["confidence_1"]
    for column, values in found.columns().items():
        out[column] = values
    return out


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
