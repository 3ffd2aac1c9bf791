"""What the browser UI lists: sources, labelsets, and pages of images with their progress.

Read-only queries for ``quadrat.service.ui``; the annotation writes are in
:mod:`quadrat.store.annotate`. An image's status comes from its points: ``unannotated``
(no label of any kind), ``machine`` (machine labels only), ``partial`` (some of a person's
labels) and ``confirmed`` (a person's label on every point).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, null, select, true
from sqlalchemy.orm import Session

from quadrat.errors import InputError, NotFoundError
from quadrat.store.queries import HUMAN_STATUSES
from quadrat.store.schema import Annotation, AnnotationStatus, Image, Point, Score, Source

#: Machine statuses (a suggestion, and one auto-accepted).
MACHINE_STATUSES = (AnnotationStatus.MACHINE.value, AnnotationStatus.ALLEVIATE.value)

#: Image statuses the browser filters by (``todo``: anything not fully confirmed).
IMAGE_STATUSES = ("unannotated", "machine", "partial", "confirmed", "todo")
#: Orders of an image page.
IMAGE_SORTS = ("name", "date", "uncertainty")

# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceRow:
    id: int
    name: str
    confidence_threshold: float | None
    point_spec: str | None
    annotation_area: str | None = None


def list_sources(session: Session) -> list[SourceRow]:
    rows = session.execute(
        select(
            Source.id,
            Source.name,
            Source.confidence_threshold,
            Source.point_spec,
            Source.annotation_area,
        ).order_by(Source.name)
    ).all()
    return [SourceRow(int(i), str(n), t, s, a) for i, n, t, s, a in rows]


def image_status_counts(session: Session, source_id: int) -> dict[str, int]:
    """Images by status (unannotated, machine, partial, confirmed)."""
    summary = _image_summary(source_id).subquery()
    rows = session.execute(select(summary.c.status, func.count()).group_by(summary.c.status)).all()
    out = {s: 0 for s in IMAGE_STATUSES if s != "todo"}
    out.update({str(s): int(n) for s, n in rows})
    return out


def label_point_counts(session: Session, source_id: int) -> dict[int, tuple[int, int]]:
    """Per label id: (points a person labelled with it, points the machine did)."""
    human = case((Annotation.status.in_(HUMAN_STATUSES), 1), else_=0)
    rows = session.execute(
        select(Annotation.label_id, func.sum(human), func.count())
        .join(Point, Point.id == Annotation.point_id)
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source_id)
        .group_by(Annotation.label_id)
    ).all()
    return {int(label): (int(people), int(n) - int(people)) for label, people, n in rows}


# ----------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageRow:
    """An image with its annotation progress (one row of the browser's pages)."""

    id: int
    source_id: int
    name: str
    width: int
    height: int
    points: int
    confirmed: int
    machine: int
    status: str
    #: 1 - mean top score of its machine-labelled points; None without any.
    uncertainty: float | None
    #: The image's ``Date`` metadata (``YYYY-MM-DD``), if any.
    date: str | None = None


def _image_date() -> Any:
    """The image's CoralNet ``Date`` as ``YYYY-MM-DD`` text (NULL without one)."""
    return func.substr(Image.metadata_[DATE_KEY].as_string(), 1, 10)


def _order(columns: Any, sort: str) -> list[Any]:
    """ORDER BY of a page by name, or by date (images without one last), then name."""
    if sort == "date":
        return [columns.date.is_(None), columns.date, columns.name]
    return [columns.name]


def _image_summary(source_id: int, image_ids: Any = None, *, with_uncertainty: bool = True) -> Any:
    """One row per image of the source (or of ``image_ids``, a list or a SELECT of ids):
    counts, status and uncertainty (a SELECT). Without ``with_uncertainty`` the scores
    are not joined (uncertainty is NULL): the status alone costs half as much."""
    top = select(Score.point_id, Score.classifier_id, Score.score).where(Score.rank == 0).subquery()
    n_points = func.count(Point.id)
    n_human = func.count(Annotation.id).filter(Annotation.status.in_(HUMAN_STATUSES))
    n_machine = func.count(Annotation.id).filter(Annotation.status.in_(MACHINE_STATUSES))
    status = case(
        (and_(n_points > 0, n_human == n_points), "confirmed"),
        (n_human > 0, "partial"),
        (n_machine > 0, "machine"),
        else_="unannotated",
    )
    uncertainty = 1.0 - func.avg(cast(top.c.score, Float))
    if not with_uncertainty:
        uncertainty = null()
    query = (
        select(
            Image.id.label("id"),
            Image.name.label("name"),
            Image.width.label("width"),
            Image.height.label("height"),
            n_points.label("points"),
            n_human.label("confirmed"),
            n_machine.label("machine"),
            status.label("status"),
            uncertainty.label("uncertainty"),
        )
        .outerjoin(Point, Point.image_id == Image.id)
        .outerjoin(Annotation, Annotation.point_id == Point.id)
    )
    if with_uncertainty:
        query = query.outerjoin(
            top,
            and_(
                top.c.point_id == Point.id,
                top.c.classifier_id == Annotation.classifier_id,
                Annotation.status.in_(MACHINE_STATUSES),
            ),
        )
    return (
        query.where(Image.source_id == source_id)
        .where(Image.id.in_(image_ids) if image_ids is not None else true())
        .group_by(Image.id, Image.name, Image.width, Image.height)
    )


#: Image metadata keys the browser filters by: CoralNet's ``Date`` (``YYYY-MM-DD``), and
#: the site: a ``Site`` column, else CoralNet's ``Aux1`` (the usual place for the site).
DATE_KEY = "Date"
SITE_KEYS = ("Site", "Aux1")


@dataclass(frozen=True)
class ImageFilter:
    """What the image browser narrows a page to, besides the status (each None: any).

    ``label_id``: images with a point holding that label (a person's or the machine's);
    ``date_from``/``date_to``: the ``Date`` metadata within these ISO dates, inclusive;
    ``site``: the site metadata equal to this; ``max_confidence``: images with a
    machine-labelled point whose top score is below this (something to check)."""

    label_id: int | None = None
    date_from: str | None = None
    date_to: str | None = None
    site: str | None = None
    max_confidence: float | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None and not _ISO_DATE.fullmatch(value):
                raise InputError(
                    f"{name} must be a date as YYYY-MM-DD, not {value!r}", value=value, param=name
                )
        if self.max_confidence is not None and not 0.0 <= self.max_confidence <= 1.0:
            raise InputError(
                f"max_confidence must be between 0 and 1, not {self.max_confidence}",
                value=self.max_confidence,
                param="max_confidence",
            )

    @property
    def active(self) -> bool:
        return any(v is not None for v in self.__dict__.values())


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _filtered_ids(source_id: int, wanted: ImageFilter) -> Any:
    """A SELECT of the ids of the source's images that pass ``wanted``. Each filter is an
    indexed semi-join or a test on the image's own row, so none sums up the points."""
    query = select(Image.id).where(Image.source_id == source_id)
    if wanted.label_id is not None:
        query = query.where(
            Image.id.in_(
                select(Point.image_id)
                .join(Annotation, Annotation.point_id == Point.id)
                .where(Annotation.label_id == wanted.label_id)
            )
        )
    date = Image.metadata_[DATE_KEY].as_string()
    if wanted.date_from is not None:
        query = query.where(func.substr(date, 1, 10) >= wanted.date_from)
    if wanted.date_to is not None:
        query = query.where(func.substr(date, 1, 10) <= wanted.date_to)
    if wanted.site is not None:
        site = func.coalesce(*(Image.metadata_[key].as_string() for key in SITE_KEYS))
        query = query.where(site == wanted.site)
    if wanted.max_confidence is not None:
        query = query.where(
            Image.id.in_(
                select(Point.image_id)
                .join(Annotation, Annotation.point_id == Point.id)
                .join(
                    Score,
                    and_(
                        Score.point_id == Point.id,
                        Score.classifier_id == Annotation.classifier_id,
                        Score.rank == 0,
                    ),
                )
                .where(Annotation.status.in_(MACHINE_STATUSES))
                .where(Score.score < wanted.max_confidence)
            )
        )
    return query


def image_page(
    session: Session,
    source_id: int,
    *,
    status: str | None = None,
    sort: str = "name",
    offset: int = 0,
    limit: int = 100,
    where: ImageFilter | None = None,
) -> tuple[int, list[ImageRow]]:
    """``(matching images, this page of them)``; ``status`` one of :data:`IMAGE_STATUSES`,
    ``where`` the other filters (:class:`ImageFilter`).

    Filters on labels, metadata and confidence narrow the images first; only a status
    filter or the uncertainty order sums up points, and then only those images' points
    (without the scores unless sorting by uncertainty); the page's own rows are summed
    up in full at the end."""
    if status is not None and status not in IMAGE_STATUSES:
        raise InputError(
            f"status must be one of {', '.join(IMAGE_STATUSES)}, not {status!r}",
            value=status,
            param="status",
        )
    if sort not in IMAGE_SORTS:
        raise InputError(
            f"sort must be one of {', '.join(IMAGE_SORTS)}, not {sort!r}", value=sort, param="sort"
        )
    wanted = where if where is not None and where.active else None
    candidates = None if wanted is None else _filtered_ids(source_id, wanted)
    if status is None and sort != "uncertainty":
        # Page the (filtered) images first and sum up only that page's points.
        base = (
            candidates
            if candidates is not None
            else select(Image.id).where(Image.source_id == source_id)
        )
        listed = base.add_columns(Image.name, _image_date().label("date")).subquery()
        total = int(session.scalar(select(func.count()).select_from(listed)) or 0)
        page_ids = list(
            session.scalars(
                select(listed.c.id).order_by(*_order(listed.c, sort)).offset(offset).limit(limit)
            )
        )
        summary = _image_summary(source_id, page_ids).subquery()
        rows = _in_order(session.execute(select(summary)).all(), page_ids)
    elif sort != "uncertainty":
        # A status filter: statuses without the scores, then the page in full.
        summary = _image_summary(source_id, candidates, with_uncertainty=False).subquery()
        query = select(
            summary.c.id,
            summary.c.name,
            _image_date().label("date"),
            func.count().over().label("total"),
        ).join(Image, Image.id == summary.c.id)
        if status == "todo":
            query = query.where(summary.c.status != "confirmed")
        else:
            query = query.where(summary.c.status == status)
        hits = session.execute(
            query.order_by(*_order(query.selected_columns, sort)).offset(offset).limit(limit)
        ).all()
        if hits:
            total = int(hits[0].total)
        else:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        hit_ids = [int(h.id) for h in hits]
        page = _image_summary(source_id, hit_ids).subquery()
        rows = _in_order(session.execute(select(page)).all(), hit_ids)
    else:
        # The uncertainty order: one pass over the (filtered) images' points and scores;
        # the window count gives the total.
        summary = _image_summary(source_id, candidates).subquery()
        query = select(summary, func.count().over().label("total"))
        if status == "todo":
            query = query.where(summary.c.status != "confirmed")
        elif status is not None:
            query = query.where(summary.c.status == status)
        if sort == "uncertainty":
            # Most uncertain first; images without machine labels last.
            query = query.order_by(
                summary.c.uncertainty.is_(None), summary.c.uncertainty.desc(), summary.c.name
            )
        else:
            query = query.order_by(summary.c.name)
        rows = list(session.execute(query.offset(offset).limit(limit)).all())
        if rows:
            total = int(rows[0].total)
        else:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    dates: dict[int, str | None] = dict(
        session.execute(
            select(Image.id, _image_date()).where(Image.id.in_([int(r.id) for r in rows]))
        ).all()
    )
    return total, [
        ImageRow(
            id=int(r.id),
            source_id=source_id,
            name=str(r.name),
            width=int(r.width),
            height=int(r.height),
            points=int(r.points),
            confirmed=int(r.confirmed),
            machine=int(r.machine),
            status=str(r.status),
            uncertainty=None if r.uncertainty is None else float(r.uncertainty),
            date=None if dates.get(int(r.id)) is None else str(dates[int(r.id)]),
        )
        for r in rows
    ]


def _in_order(rows: Any, ids: list[int]) -> list[Any]:
    """``rows`` (with an ``id``) in the order of ``ids``."""
    by_id = {int(r.id): r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


@dataclass(frozen=True)
class ImageFile:
    """Where an image's pixels are and how to show them."""

    id: int
    source_id: int
    name: str
    path: str
    sha256: str
    width: int
    height: int
    exif_orientation: int


def image_file(session: Session, image_id: int) -> ImageFile:
    row = session.get(Image, image_id)
    if row is None:
        raise NotFoundError(f"no image {image_id}", value=image_id, param="image_id")
    return ImageFile(
        row.id,
        row.source_id,
        row.name,
        row.path,
        row.sha256,
        row.width,
        row.height,
        row.exif_orientation,
    )


def neighbour_images(session: Session, source_id: int, name: str) -> tuple[int | None, int | None]:
    """Ids of the images just before and after ``name`` (by name) in the source."""
    before = session.scalar(
        select(Image.id)
        .where(Image.source_id == source_id, Image.name < name)
        .order_by(Image.name.desc())
        .limit(1)
    )
    after = session.scalar(
        select(Image.id)
        .where(Image.source_id == source_id, Image.name > name)
        .order_by(Image.name)
        .limit(1)
    )
    return before, after


def image_position(session: Session, source_id: int, name: str) -> tuple[int, int]:
    """``(1-based position by name, images in the source)``."""
    position = session.scalar(
        select(func.count(Image.id)).where(Image.source_id == source_id, Image.name <= name)
    )
    total = session.scalar(select(func.count(Image.id)).where(Image.source_id == source_id))
    return int(position or 0), int(total or 0)
