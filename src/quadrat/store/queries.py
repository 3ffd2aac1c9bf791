"""Every read of the project store: the one module above the ORM that writes ``select(``.

The workflow (``quadrat.workflow``), the reports and the CLI never build SQL; they call
these functions with a session from :meth:`quadrat.store.project.Store.session` and get
plain Python back (ints, dicts, frozen dataclasses, pandas frames), never ORM objects.
Writes live in :mod:`quadrat.store.writes`, feature blocks in :mod:`quadrat.store.features`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quadrat._util import chunked
from quadrat.errors import NotFoundError, StateError
from quadrat.store.features import load_features
from quadrat.store.schema import (
    Annotation,
    AnnotationStatus,
    ClassifierRecord,
    ExtractorRecord,
    FeatureBlock,
    Image,
    Label,
    Point,
    Score,
    Source,
)

#: Annotation statuses a classifier learns from (a person's labels).
HUMAN_STATUSES: tuple[str, ...] = tuple(s.value for s in AnnotationStatus.human())
#: Every annotation status, in CoralNet's order of trust.
STATUSES: tuple[str, ...] = tuple(s.value for s in AnnotationStatus)


@dataclass(frozen=True)
class SourceInfo:
    """A source's row: what a :class:`quadrat.Source` handle reads when it needs it."""

    id: int
    name: str
    point_spec: str | None
    confidence_threshold: float | None
    #: Where generated points may fall (CoralNet's stored form); None: the whole image.
    annotation_area: str | None = None


@dataclass(frozen=True)
class ClassifierInfo:
    """One trained classifier of a source (CoralNet's "robot"), without its model bytes."""

    id: int
    source_id: int
    extractor_key: str
    kind: str
    accepted: bool
    accuracy: float | None
    n_images: int
    n_train: int
    n_val: int
    train_seconds: float
    created_at: datetime | None
    hyperparameters: dict[str, Any] = field(default_factory=dict, repr=False)
    metrics: dict[str, Any] = field(default_factory=dict, repr=False)


# ----------------------------------------------------------------------------- sources


def source_names(session: Session) -> list[str]:
    """Names of every source of the project, sorted."""
    return list(session.scalars(select(Source.name).order_by(Source.name)))


def _info(row: Source) -> SourceInfo:
    return SourceInfo(
        row.id, row.name, row.point_spec, row.confidence_threshold, row.annotation_area
    )


def find_source(session: Session, name: str) -> SourceInfo | None:
    """The source called ``name``, or None."""
    row = session.scalar(select(Source).where(Source.name == name))
    return None if row is None else _info(row)


def get_source(session: Session, name: str) -> SourceInfo:
    """The source called ``name``, or a NotFoundError listing the sources there are."""
    info = find_source(session, name)
    if info is None:
        names = source_names(session)
        known = ", ".join(names) if names else "none yet"
        raise NotFoundError(
            f"no source {name!r} in this project (sources: {known})", value=name, param="source"
        )
    return info


def source_by_id(session: Session, source_id: int) -> SourceInfo:
    """The source with this id (a handle whose source was deleted gets a NotFoundError)."""
    row = session.get(Source, source_id)
    if row is None:
        raise NotFoundError(f"source id {source_id} no longer exists", value=source_id)
    return _info(row)


# ----------------------------------------------------------------------------- labels


def labelset_table(session: Session, source_id: int) -> pd.DataFrame:
    """The labelset as CoralNet's columns: label_id, name, short_code, functional_group."""
    rows = session.execute(
        select(Label.coralnet_id, Label.name, Label.short_code, Label.functional_group)
        .where(Label.source_id == source_id)
        .order_by(Label.short_code)
    ).all()
    return pd.DataFrame(rows, columns=["label_id", "name", "short_code", "functional_group"])


def label_ids(session: Session, source_id: int) -> dict[str, int]:
    """Short code -> label row id."""
    rows = session.execute(
        select(Label.short_code, Label.id).where(Label.source_id == source_id)
    ).all()
    return {code: label_id for code, label_id in rows}


def label_codes(session: Session, source_id: int) -> dict[int, str]:
    """Label row id -> short code."""
    return {label_id: code for code, label_id in label_ids(session, source_id).items()}


# ----------------------------------------------------------------------------- images, points


def image_names(session: Session, source_id: int) -> set[str]:
    """Names of the source's images (imports refuse these)."""
    return set(session.scalars(select(Image.name).where(Image.source_id == source_id)))


def images_without_points(session: Session, source_id: int) -> list[tuple[int, str, int, int]]:
    """``(image id, name, height, width)`` of the source's images that have no points."""
    rows = session.execute(
        select(Image.id, Image.name, Image.height, Image.width)
        .where(Image.source_id == source_id)
        .where(~select(Point.id).where(Point.image_id == Image.id).exists())
        .order_by(Image.id)
    ).all()
    return [(int(i), str(n), int(h), int(w)) for i, n, h, w in rows]


def image_sizes(session: Session, source_id: int) -> dict[str, tuple[int, int, int]]:
    """Image name -> ``(image id, width, height)`` of every image of the source."""
    rows = session.execute(
        select(Image.name, Image.id, Image.width, Image.height).where(Image.source_id == source_id)
    ).all()
    return {str(n): (int(i), int(w), int(h)) for n, i, w, h in rows}


def point_counts(session: Session, source_id: int) -> dict[int, int]:
    """Image id -> number of points, for the source's images that have points."""
    rows = session.execute(
        select(Point.image_id, func.count(Point.id))
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id)
        .group_by(Point.image_id)
    ).all()
    return {int(i): int(n) for i, n in rows}


def stored_block_sizes(session: Session, source_id: int, extractor_key: str) -> dict[int, int]:
    """Image id -> points in its stored feature block for this extractor."""
    rows = session.execute(
        select(FeatureBlock.image_id, FeatureBlock.n_points)
        .join(Image, Image.id == FeatureBlock.image_id)
        .where(Image.source_id == source_id, FeatureBlock.extractor_key == extractor_key)
    ).all()
    return {int(i): int(n) for i, n in rows}


def image_files(session: Session, image_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """``(id, name, path)`` of these images, by id."""
    rows: list[tuple[int, str, str]] = []
    for chunk in chunked(list(image_ids)):
        rows.extend(
            (int(i), str(n), str(p))
            for i, n, p in session.execute(
                select(Image.id, Image.name, Image.path).where(Image.id.in_(chunk))
            )
        )
    return sorted(rows)


def points_of_images(session: Session, image_ids: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """``(image id, point id, row, column)`` of these images, by image then point number."""
    rows: list[tuple[int, int, int, int, int]] = []
    for chunk in chunked(list(image_ids)):
        rows.extend(
            (int(i), int(num), int(p), int(r), int(c))
            for i, num, p, r, c in session.execute(
                select(Point.image_id, Point.number, Point.id, Point.row, Point.column).where(
                    Point.image_id.in_(chunk)
                )
            )
        )
    rows.sort()
    return [(i, p, r, c) for i, _num, p, r, c in rows]


# ----------------------------------------------------------------------------- annotations


def confirmed_image_ids(session: Session, source_id: int) -> list[int]:
    """Images whose every point has a person's label (imported or confirmed)."""
    rows = session.execute(
        select(
            Point.image_id,
            func.count(Point.id),
            func.count(Annotation.id).filter(Annotation.status.in_(HUMAN_STATUSES)),
        )
        .join(Image, Image.id == Point.image_id)
        .outerjoin(Annotation, Annotation.point_id == Point.id)
        .where(Image.source_id == source_id)
        .group_by(Point.image_id)
    ).all()
    return sorted(int(image_id) for image_id, n, n_human in rows if n > 0 and n == n_human)


def human_labels(session: Session, source_id: int) -> pd.DataFrame:
    """Points with a person's label: columns point_id, label_id, image_id."""
    rows = session.execute(
        select(Point.id, Annotation.label_id, Point.image_id)
        .join(Annotation, Annotation.point_id == Point.id)
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id, Annotation.status.in_(HUMAN_STATUSES))
    ).all()
    return pd.DataFrame(rows, columns=["point_id", "label_id", "image_id"])


def counts(session: Session, source_id: int) -> dict[str, int]:
    """Images, points, confirmed images and annotations by status (plus ``unannotated``)."""
    n_images = session.scalar(select(func.count(Image.id)).where(Image.source_id == source_id))
    n_points = session.scalar(
        select(func.count(Point.id))
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id)
    )
    status_rows = session.execute(
        select(Annotation.status, func.count(Annotation.id))
        .join(Point, Point.id == Annotation.point_id)
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id)
        .group_by(Annotation.status)
    ).all()
    by_status = {status: 0 for status in STATUSES}
    by_status.update({str(AnnotationStatus(s).value): int(n) for s, n in status_rows})
    annotated = sum(by_status.values())
    return {
        "images": int(n_images or 0),
        "confirmed_images": len(confirmed_image_ids(session, source_id)),
        "points": int(n_points or 0),
        "annotations": annotated,
        **by_status,
        "unannotated": int(n_points or 0) - annotated,
    }


_ANNOTATION_COLUMNS = [
    "image_id",
    "image",
    "metadata",
    "point_id",
    "number",
    "row",
    "column",
    "label",
    "status",
    "annotator",
    "date_annotated",
    "label_name",
]


def annotation_table(session: Session, source_id: int) -> pd.DataFrame:
    """Every point of the source with its annotation and its latest top-5 scores.

    Columns: image_id, image, metadata, point_id, number, row, column, label (short code),
    status, annotator, date_annotated, label_name (the label's full name, from the
    labelset), then suggestion_k / confidence_k for k = 1..5 when
    any point was scored.
    """
    rows = session.execute(
        select(
            Image.id,
            Image.name,
            Image.metadata_,
            Point.id,
            Point.number,
            Point.row,
            Point.column,
            Label.short_code,
            Annotation.status,
            Annotation.annotator,
            Annotation.annotated_at,
            Label.name,
        )
        .join(Point, Point.image_id == Image.id)
        .outerjoin(Annotation, Annotation.point_id == Point.id)
        .outerjoin(Label, Label.id == Annotation.label_id)
        .where(Image.source_id == source_id)
        .order_by(Image.name, Point.number)
    ).all()
    table = pd.DataFrame(rows, columns=_ANNOTATION_COLUMNS)
    table["status"] = table["status"].map(lambda s: None if s is None else str(s))
    score_rows = session.execute(
        select(Score.point_id, Score.rank, Label.short_code, Score.score)
        .join(Label, Label.id == Score.label_id)
        .join(Point, Point.id == Score.point_id)
        .join(Image, Image.id == Point.image_id)
        .where(
            Image.source_id == source_id,
            Score.classifier_id
            == select(func.max(Score.classifier_id))
            .where(Score.point_id == Point.id)
            .correlate(Point)
            .scalar_subquery(),
        )
    ).all()
    if score_rows:
        scores = pd.DataFrame(score_rows, columns=["point_id", "rank", "label", "score"])
        wide = scores.pivot(index="point_id", columns="rank", values=["label", "score"])
        for rank in sorted(scores["rank"].unique()):
            table[f"suggestion_{rank + 1}"] = table["point_id"].map(wide[("label", rank)])
            table[f"confidence_{rank + 1}"] = table["point_id"].map(wide[("score", rank)])
    return table


def human_labelled_point_ids(session: Session, source_id: int) -> set[int]:
    """Points of the source that a person labelled (classification never touches them)."""
    return set(
        session.scalars(
            select(Annotation.point_id)
            .join(Point, Point.id == Annotation.point_id)
            .join(Image, Image.id == Point.image_id)
            .where(Image.source_id == source_id, Annotation.status.in_(HUMAN_STATUSES))
        )
    )


def training_data(
    session: Session, source_id: int, extractor_key: str, image_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, label ids and image ids of the human-labelled points of ``image_ids``."""
    # Stored precision (float16 as extracted): the classifier converts only its fit part.
    matrix = load_features(
        session, extractor_key, source_id=source_id, image_ids=image_ids, dtype="stored"
    )
    lookup = human_labels(session, source_id).set_index("point_id")
    lookup = lookup[lookup["image_id"].isin(set(image_ids))]
    missing = lookup.index.difference(pd.Index(matrix.point_ids))
    if len(missing):
        raise StateError(
            f"{len(missing)} labelled points have no features for {extractor_key!r}; "
            "extract features first"
        )
    order = pd.Index(matrix.point_ids).get_indexer(lookup.index)
    return (
        matrix.features[order],
        lookup["label_id"].to_numpy(np.int64),
        lookup["image_id"].to_numpy(np.int64),
    )


# ----------------------------------------------------------------------------- extractors


def stored_extractors(session: Session, source_id: int) -> list[tuple[str, str]]:
    """``(key, name)`` of every extractor with features stored for the source."""
    rows = session.execute(
        select(ExtractorRecord.key, ExtractorRecord.name)
        .join(FeatureBlock, FeatureBlock.extractor_key == ExtractorRecord.key)
        .join(Image, Image.id == FeatureBlock.image_id)
        .where(Image.source_id == source_id)
        .distinct()
        .order_by(ExtractorRecord.key)
    ).all()
    return [(str(k), str(n)) for k, n in rows]


# ----------------------------------------------------------------------------- classifiers


def _classifier_info(record: ClassifierRecord) -> ClassifierInfo:
    return ClassifierInfo(
        id=record.id,
        source_id=record.source_id,
        extractor_key=record.extractor_key,
        kind=record.kind,
        accepted=bool(record.accepted),
        accuracy=record.accuracy,
        n_images=record.n_images,
        n_train=record.n_train,
        n_val=record.n_val,
        train_seconds=float(record.train_seconds),
        created_at=record.created_at,
        hyperparameters=dict(record.hyperparameters or {}),
        metrics=dict(record.metrics or {}),
    )


def latest_classifier(
    session: Session,
    source_id: int,
    *,
    accepted_only: bool = True,
    extractor_key: str | None = None,
) -> ClassifierInfo | None:
    """The source's newest (accepted) classifier, optionally on one extractor's features."""
    query = select(ClassifierRecord).where(ClassifierRecord.source_id == source_id)
    if extractor_key is not None:
        query = query.where(ClassifierRecord.extractor_key == extractor_key)
    if accepted_only:
        query = query.where(ClassifierRecord.accepted.is_(True))
    record = session.scalar(query.order_by(ClassifierRecord.id.desc()).limit(1))
    return None if record is None else _classifier_info(record)


def classifier_history(session: Session, source_id: int) -> list[ClassifierInfo]:
    """Every classifier of the source, oldest first."""
    records = session.scalars(
        select(ClassifierRecord)
        .where(ClassifierRecord.source_id == source_id)
        .order_by(ClassifierRecord.id)
    )
    return [_classifier_info(r) for r in records]


def get_classifier(session: Session, source_id: int, classifier_id: int) -> ClassifierInfo:
    """Classifier ``classifier_id`` of this source, or a NotFoundError."""
    record = session.get(ClassifierRecord, classifier_id)
    if record is None or record.source_id != source_id:
        raise NotFoundError(
            f"no classifier {classifier_id} in this source",
            value=classifier_id,
            param="classifier_id",
        )
    return _classifier_info(record)


def classifier_model(session: Session, classifier_id: int) -> bytes:
    """The serialised estimator of a classifier (see quadrat.classifiers.serialize)."""
    model = session.scalar(
        select(ClassifierRecord.model).where(ClassifierRecord.id == classifier_id)
    )
    if model is None:
        raise NotFoundError(f"no classifier {classifier_id}", value=classifier_id)
    return bytes(model)


def machine_label_classifiers(session: Session, source_id: int) -> list[int | None]:
    """Distinct classifiers that set the source's machine labels (statuses other than a
    person's), sorted; None stands for a classifier since deleted."""
    ids = session.scalars(
        select(Annotation.classifier_id)
        .distinct()
        .join(Point, Point.id == Annotation.point_id)
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id, Annotation.status.not_in(HUMAN_STATUSES))
    ).all()
    return sorted(ids, key=lambda i: (i is None, i or 0))
