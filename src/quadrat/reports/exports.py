"""A source's annotations, cover and labelset as CoralNet CSVs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quadrat.engine import annotation_table, labelset_table
from quadrat.io.coralnet import (
    cover_table,
    write_annotations_csv,
    write_labelset_csv,
    write_percent_cover_csv,
)
from quadrat.store.project import Project
from quadrat.store.schema import AnnotationStatus

#: CoralNet counts a point as confirmed once a person (or alleviation) has accepted it.
_COVER_STATUS = {
    AnnotationStatus.IMPORTED.value: "confirmed",
    AnnotationStatus.CONFIRMED.value: "confirmed",
    AnnotationStatus.ALLEVIATE.value: "confirmed",
    AnnotationStatus.MACHINE.value: "unconfirmed",
}


def source_cover(project: Project, source_name: str) -> pd.DataFrame:
    """Per-image percent cover of a source (CoralNet's image-covers table)."""
    with project.session() as session:
        source = project.source(session, source_name)
        table = annotation_table(session, source)
        labelset = labelset_table(session, source)
    frame = pd.DataFrame(
        {
            "image_id": table["image_id"],
            "image_name": table["image"],
            "label": table["label"],
            "status": table["status"].map(_COVER_STATUS),
        }
    )
    return cover_table(frame, labelset)


def export_annotations(project: Project, source_name: str, path: str | Path) -> int:
    """All annotated points with their metadata and latest machine suggestions."""
    with project.session() as session:
        source = project.source(session, source_name)
        table = annotation_table(session, source)
    table = table[table["label"].notna()]
    metadata = pd.json_normalize(table["metadata"].tolist()).set_index(table.index)
    out = pd.DataFrame({"image": table["image"]})
    for column in metadata.columns:
        out[column] = metadata[column]
    for column in ("row", "column", "label", "annotator", "date_annotated"):
        out[column] = table[column]
    for k in range(1, 6):
        if f"suggestion_{k}" in table:
            out[f"machine_suggestion_{k}"] = table[f"suggestion_{k}"]
            out[f"machine_confidence_{k}"] = table[f"confidence_{k}"]
    write_annotations_csv(out, path)
    return len(out)


def export_cover(project: Project, source_name: str, path: str | Path) -> int:
    cover = source_cover(project, source_name)
    write_percent_cover_csv(cover, path)
    return len(cover)


def export_labelset(project: Project, source_name: str, path: str | Path) -> int:
    with project.session() as session:
        labelset = labelset_table(session, project.source(session, source_name))
    write_labelset_csv(labelset, path)
    return len(labelset)
