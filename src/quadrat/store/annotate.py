"""Reads and writes of the browser annotation tool (``quadrat.service.ui``): points with
their suggestions, a person's labels and their undo, the review grid, points added by hand.
The lists the UI browses (sources, labelsets, pages of images) are in
:mod:`quadrat.store.browse`.

A person's label on a point is one :class:`~quadrat.store.schema.Annotation` row with
status ``confirmed``, the annotator's name and the time; the machine's suggestions stay in
``scores``. Undo restores the row a change replaced (:class:`AnnotationState`), and only
while the row is still the one that change wrote, so an undo never erases someone else's
later work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quadrat.errors import ConflictError, InputError, NotFoundError
from quadrat.store.browse import MACHINE_STATUSES as _MACHINE
from quadrat.store.browse import image_file
from quadrat.store.queries import HUMAN_STATUSES
from quadrat.store.schema import (
    Annotation,
    AnnotationStatus,
    FeatureBlock,
    Image,
    Label,
    Meta,
    Point,
    Score,
)

# ----------------------------------------------------------------------------- meta


def meta_value(session: Session, key: str) -> str | None:
    return session.scalar(select(Meta.value).where(Meta.key == key))


def add_meta_value(session: Session, key: str, value: str) -> str:
    """Store ``value`` under ``key`` unless one is there; returns the stored value."""
    existing = meta_value(session, key)
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            session.execute(insert(Meta).values(key=key, value=value))
    except IntegrityError:  # another process stored one first
        stored = meta_value(session, key)
        if stored is None:
            raise
        return stored
    return value


#: Longest value the ``meta`` table holds (its column's size).
META_VALUE_CHARS = 1024


def meta_items(session: Session, prefix: str) -> dict[str, str]:
    """Every ``meta`` key starting with ``prefix`` (no LIKE wildcards in it), with its value."""
    rows = session.execute(
        select(Meta.key, Meta.value).where(Meta.key.startswith(prefix, autoescape=True))
    ).all()
    return {str(key): str(value) for key, value in rows}


def swap_meta_value(session: Session, key: str, expected: str | None, value: str | None) -> bool:
    """Compare-and-set: ``key`` holds ``value`` (None: no row) only if it held ``expected``
    (None: no row); else False. For a lease or record that processes sharing the project
    update without a lock: each case is one statement (INSERT, or UPDATE/DELETE ``WHERE
    value = expected``), atomic on SQLite and PostgreSQL, so exactly one of two wins."""
    if value is not None and len(value) > META_VALUE_CHARS:
        raise InputError(
            f"meta value for {key!r} has {len(value)} characters, more than {META_VALUE_CHARS}",
            value=len(value),
            param="value",
        )
    if expected is None and value is None:
        return meta_value(session, key) is None
    if expected is None:
        try:
            with session.begin_nested():
                session.execute(insert(Meta).values(key=key, value=value))
        except IntegrityError:  # the key exists (maybe just stored by another process)
            return False
        return True
    match = (Meta.key == key, Meta.value == expected)
    change = delete(Meta) if value is None else update(Meta).values(value=value)
    return int(session.connection().execute(change.where(*match)).rowcount or 0) == 1


# ----------------------------------------------------------------------------- points


@dataclass(frozen=True)
class Suggestion:
    label_id: int
    score: float


@dataclass(frozen=True)
class PointRow:
    """A point with its annotation and its latest classifier's top-5."""

    id: int
    image_id: int
    number: int
    row: int
    column: int
    label_id: int | None
    status: str | None
    annotator: str | None
    annotated_at: datetime | None
    suggestions: list[Suggestion] = field(default_factory=list)


# The save path (a keypress: a point's source, its annotation, the write, the point again)
# runs these statements. They are built once, with bound parameters, and run on the
# session's connection (SQLAlchemy Core): building a select and going through the ORM's
# execution cost ~0.4 ms per statement, ten times the query itself on SQLite.
_LABEL_COLUMNS = (Annotation.label_id, Annotation.status, Annotation.annotator)
_POINT_COLUMNS = (
    select(Point.id, Point.image_id, Point.number, Point.row, Point.column, *_LABEL_COLUMNS)
    .add_columns(Annotation.annotated_at)
    .outerjoin(Annotation, Annotation.point_id == Point.id)
    .order_by(Point.number)
)
_SCORE_COLUMNS = select(
    Score.point_id, Score.classifier_id, Score.rank, Score.label_id, Score.score
).join(Point, Point.id == Score.point_id)
_IMAGE_POINTS = _POINT_COLUMNS.where(Point.image_id == bindparam("image_id"))
_IMAGE_SCORES = _SCORE_COLUMNS.where(Point.image_id == bindparam("image_id"))
_ONE_POINT = _POINT_COLUMNS.where(Point.id == bindparam("point_id"))
_ONE_POINT_SCORES = _SCORE_COLUMNS.where(Score.point_id == bindparam("point_id"))
_POINT_SOURCE = (
    select(Image.source_id, Image.id)
    .join(Point, Point.image_id == Image.id)
    .where(Point.id == bindparam("point_id"))
)
_ANNOTATION = select(*_LABEL_COLUMNS, Annotation.annotated_at, Annotation.classifier_id).where(
    Annotation.point_id == bindparam("point_id")
)
_LABEL_SOURCE = select(Label.source_id).where(Label.id == bindparam("label_id"))
_UPDATE_ANNOTATION = update(Annotation).where(Annotation.point_id == bindparam("b_point_id"))
_INSERT_ANNOTATION = insert(Annotation)
_DELETE_ANNOTATION = delete(Annotation).where(Annotation.point_id == bindparam("point_id"))


def image_points(session: Session, image_id: int) -> list[PointRow]:
    connection = session.connection()
    params = {"image_id": image_id}
    return _point_rows(
        connection.execute(_IMAGE_POINTS, params).all(),
        connection.execute(_IMAGE_SCORES, params).all(),
    )


def point_row(session: Session, point_id: int) -> PointRow:
    connection = session.connection()
    params = {"point_id": point_id}
    rows = _point_rows(
        connection.execute(_ONE_POINT, params).all(),
        connection.execute(_ONE_POINT_SCORES, params).all(),
    )
    if not rows:
        raise NotFoundError(f"no point {point_id}", value=point_id, param="point_id")
    return rows[0]


def _point_rows(rows: Sequence[Any], scores: Sequence[Any]) -> list[PointRow]:
    """Points (by number) with their annotation and their latest classifier's top-5."""
    latest: dict[int, int] = {}
    for pid, cid, *_ in scores:
        latest[pid] = max(latest.get(pid, cid), cid)
    by_point: dict[int, list[tuple[int, Suggestion]]] = {}
    for pid, cid, rank, label_id, score in scores:
        if cid == latest[pid]:
            by_point.setdefault(pid, []).append((rank, Suggestion(int(label_id), float(score))))
    return [
        PointRow(
            id=int(pid),
            image_id=int(image_id),
            number=int(number),
            row=int(r),
            column=int(c),
            label_id=None if label_id is None else int(label_id),
            status=None if status is None else str(AnnotationStatus(status).value),
            annotator=annotator,
            annotated_at=_aware(when),
            suggestions=[s for _rank, s in sorted(by_point.get(pid, []), key=lambda t: t[0])],
        )
        for pid, image_id, number, r, c, label_id, status, annotator, when in rows
    ]


def point_source(session: Session, point_id: int) -> tuple[int, int]:
    """``(source id, image id)`` of a point, or a NotFoundError."""
    row = session.connection().execute(_POINT_SOURCE, {"point_id": point_id}).first()
    if row is None:
        raise NotFoundError(f"no point {point_id}", value=point_id, param="point_id")
    return int(row[0]), int(row[1])


# ----------------------------------------------------------------------------- annotations


@dataclass(frozen=True)
class AnnotationState:
    """A point's annotation as stored (what an undo puts back); JSON-safe via as_dict."""

    label_id: int
    status: str
    annotator: str | None
    annotated_at: str | None  # ISO 8601, UTC
    classifier_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "label_id": self.label_id,
            "status": self.status,
            "annotator": self.annotator,
            "annotated_at": self.annotated_at,
            "classifier_id": self.classifier_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnotationState:
        return cls(
            label_id=int(data["label_id"]),
            status=str(AnnotationStatus(data["status"]).value),
            annotator=data.get("annotator"),
            annotated_at=data.get("annotated_at"),
            classifier_id=data.get("classifier_id"),
        )


def _aware(when: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def _iso(when: datetime | None) -> str | None:
    when = _aware(when)
    return None if when is None else when.isoformat()


def annotation_state(session: Session, point_id: int) -> AnnotationState | None:
    row = session.connection().execute(_ANNOTATION, {"point_id": point_id}).first()
    if row is None:
        return None
    label_id, status, annotator, when, classifier_id = row
    return AnnotationState(
        label_id=int(label_id),
        status=str(AnnotationStatus(status).value),
        annotator=annotator,
        annotated_at=_iso(when),
        classifier_id=None if classifier_id is None else int(classifier_id),
    )


def write_annotation(session: Session, point_id: int, state: AnnotationState | None) -> None:
    """Make the point's annotation exactly ``state`` (None: no annotation): an UPDATE of its
    row (usually there: the machine's), else an INSERT in a savepoint (a row inserted
    meanwhile by another request is updated instead)."""
    connection = session.connection()
    source_id, _image_id = point_source(session, point_id)
    if state is None:
        connection.execute(_DELETE_ANNOTATION, {"point_id": point_id})
        return
    label_source = connection.execute(_LABEL_SOURCE, {"label_id": state.label_id}).scalar()
    if label_source != source_id:
        raise InputError(
            f"label {state.label_id} is not in this point's labelset",
            value=state.label_id,
            param="label_id",
        )
    when = None if state.annotated_at is None else datetime.fromisoformat(state.annotated_at)
    changes = {
        "label_id": state.label_id,
        "status": AnnotationStatus(state.status),
        "annotator": state.annotator,
        "annotated_at": when,
        "classifier_id": state.classifier_id,
        "b_point_id": point_id,
    }
    values = {**changes, "point_id": point_id}
    del values["b_point_id"]
    if connection.execute(_UPDATE_ANNOTATION, changes).rowcount:
        return
    try:
        with session.begin_nested():
            session.connection().execute(_INSERT_ANNOTATION, values)
    except IntegrityError:  # inserted meanwhile by another request: ours wins, as before
        if not session.connection().execute(_UPDATE_ANNOTATION, changes).rowcount:
            raise


def replace_if_current(
    session: Session,
    point_id: int,
    expected: AnnotationState | None,
    state: AnnotationState | None,
) -> None:
    """Write ``state`` only if the point still holds ``expected`` (else a ConflictError)."""
    current = annotation_state(session, point_id)
    if current != expected:
        raise ConflictError(
            "this point was changed since (by another person or tab); nothing was undone",
            value=point_id,
            param="point_id",
        )
    write_annotation(session, point_id, state)


# ----------------------------------------------------------------------------- review grid


@dataclass(frozen=True)
class ReviewRow:
    """A point holding one label, with the latest classifier's score for that label."""

    point_id: int
    image_id: int
    image_name: str
    number: int
    status: str
    annotator: str | None
    #: The score the point's latest classifier gave this label (0 when not in its top-5;
    #: None when no classifier scored the point).
    score: float | None


#: Which annotations the review grid shows.
REVIEW_STATUSES = ("all", "human", "machine")
#: Orders of the review grid (least confident first finds mistakes first).
REVIEW_SORTS = ("confidence", "-confidence", "image")


def review_points(
    session: Session,
    source_id: int,
    label_id: int,
    *,
    status: str = "all",
    sort: str = "confidence",
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[ReviewRow]]:
    """``(points labelled label_id, this page of them)`` for the review grid."""
    if status not in REVIEW_STATUSES:
        raise InputError(
            f"status must be one of {', '.join(REVIEW_STATUSES)}, not {status!r}",
            value=status,
            param="status",
        )
    if sort not in REVIEW_SORTS:
        raise InputError(
            f"sort must be one of {', '.join(REVIEW_SORTS)}, not {sort!r}", value=sort, param="sort"
        )
    latest = (
        select(func.max(Score.classifier_id))
        .where(Score.point_id == Point.id)
        .correlate(Point)
        .scalar_subquery()
    )
    scored = (
        select(func.count(Score.point_id))
        .where(Score.point_id == Point.id)
        .correlate(Point)
        .scalar_subquery()
    )
    score = (
        select(Score.score)
        .where(
            Score.point_id == Point.id,
            Score.label_id == Annotation.label_id,
            Score.classifier_id == latest,
        )
        .correlate(Point, Annotation)
        .scalar_subquery()
    )
    confidence = case((scored > 0, func.coalesce(score, 0.0)), else_=None).label("score")
    query = (
        select(
            Point.id,
            Image.id,
            Image.name,
            Point.number,
            Annotation.status,
            Annotation.annotator,
            confidence,
        )
        .join(Annotation, Annotation.point_id == Point.id)
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id, Annotation.label_id == label_id)
    )
    if status == "human":
        query = query.where(Annotation.status.in_(HUMAN_STATUSES))
    elif status == "machine":
        query = query.where(Annotation.status.in_(_MACHINE))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    if sort == "image":
        query = query.order_by(Image.name, Point.number)
    else:
        column = confidence.desc() if sort == "-confidence" else confidence.asc()
        query = query.order_by(column.nulls_last(), Image.name, Point.number)
    rows = session.execute(query.offset(offset).limit(limit)).all()
    return total, [
        ReviewRow(
            point_id=int(pid),
            image_id=int(iid),
            image_name=str(name),
            number=int(number),
            status=str(AnnotationStatus(st).value),
            annotator=annotator,
            score=None if sc is None else float(sc),
        )
        for pid, iid, name, number, st, annotator, sc in rows
    ]


# ----------------------------------------------------------------------------- points by hand


def _forget_features(session: Session, image_id: int) -> None:
    """Drop the image's feature blocks: their point lists no longer match its points, and
    the next extraction computes the image again (training and classifying need that)."""
    session.execute(delete(FeatureBlock).where(FeatureBlock.image_id == image_id))


def add_point(session: Session, image_id: int, row: int, column: int, *, limit: int) -> int:
    """A new point (numbered after the image's last) at ``(row, column)``; its id."""
    image = image_file(session, image_id)
    if not (0 <= row < image.height and 0 <= column < image.width):
        raise InputError(
            f"point (row {row}, column {column}) lies outside the {image.width}x{image.height} "
            "image",
            value=(row, column),
            param="row",
        )
    count, last = session.execute(
        select(func.count(Point.id), func.max(Point.number)).where(Point.image_id == image_id)
    ).one()
    if int(count) >= limit:
        raise InputError(
            f"the image has {count} points, the most allowed (limit points_per_image)",
            value=count,
            param="points_per_image",
        )
    point_id = session.scalar(
        insert(Point)
        .values(
            image_id=image_id,
            number=int(last or 0) + 1,
            row=row,
            column=column,
            generated_by="manual",
        )
        .returning(Point.id)
    )
    _forget_features(session, image_id)
    return int(point_id or 0)


def remove_point(session: Session, point_id: int) -> None:
    """Delete a point with its annotation and scores (the others keep their numbers)."""
    _source_id, image_id = point_source(session, point_id)
    session.execute(delete(Score).where(Score.point_id == point_id))
    session.execute(delete(Annotation).where(Annotation.point_id == point_id))
    session.execute(delete(Point).where(Point.id == point_id))
    _forget_features(session, image_id)


def add_points_if_none(session: Session, image_id: int, coords: Any, generated_by: str) -> bool:
    """The image's first point set (``coords``: (row, column) pairs, numbered 1.. in
    order); False, writing nothing, when the image has points already (also when another
    request's points arrived first)."""
    from quadrat.store.writes import add_points

    if session.scalar(select(func.count(Point.id)).where(Point.image_id == image_id)):
        return False
    try:
        with session.begin_nested():
            add_points(session, image_id, coords, generated_by)
    except IntegrityError:
        return False
    return True
