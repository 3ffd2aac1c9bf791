"""Every write of the project store except feature blocks (:mod:`quadrat.store.features`).

The workflow validates its whole input first, then calls these inside one
``Store.session()`` transaction, so a failed step leaves the project as it was. Bulk rows
go through Core ``insert`` (one statement for many rows), not the ORM's per-object flush.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from quadrat._util import chunked
from quadrat.errors import ConflictError, QuadratError, StateError
from quadrat.store.queries import find_source, label_ids
from quadrat.store.schema import (
    Annotation,
    AnnotationStatus,
    ClassifierRecord,
    ExtractorRecord,
    Image,
    Label,
    Point,
    Score,
    Source,
)


@contextmanager
def database_errors(
    where: str | Path | None, *, busy_timeout: float | None = None
) -> Iterator[None]:
    """Turn the database's faults into quadrat's error families (no SQLAlchemy traceback).

    Another process writing past the busy timeout, or a row another process added at the
    same moment, is a :class:`ConflictError`; a read-only or full database a
    :class:`StateError`. ``where`` names the project in the message.
    """
    try:
        yield
    except IntegrityError as exc:
        raise ConflictError(
            "another process changed the project at the same time (a row this step adds "
            f"already exists: {exc.orig}); nothing was written, run the step again",
            path=where,
        ) from exc
    except OperationalError as exc:
        raise _operational(exc, where, busy_timeout) from exc


def _operational(
    exc: DatabaseError, where: str | Path | None, busy_timeout: float | None
) -> QuadratError | DatabaseError:
    text = str(exc.orig).lower()
    if "locked" in text or "busy" in text:
        waited = f" (waited {busy_timeout:g} s)" if busy_timeout is not None else ""
        return ConflictError(
            f"the project is busy: another quadrat process is writing to it{waited}; "
            "run this again when it has finished",
            path=where,
        )
    if "readonly" in text or "read-only" in text:
        return StateError(
            "the project is read-only (the file, its folder or its mount is not writable): "
            "it can be read, exported and reported, not changed",
            path=where,
        )
    if "full" in text:
        return StateError("the disk holding the project is full; nothing was written", path=where)
    if getattr(exc.orig, "sqlite_errorname", None) in _WRITE_FAILURES:
        return StateError(
            "the project cannot be written: its disk is full or a file size limit "
            "(ulimit -f) was reached; nothing was written",
            path=where,
        )
    if "disk i/o" in text or "unable to open" in text:
        return StateError(f"the project cannot be written: {exc.orig}", path=where)
    return exc


#: SQLite's names for a write that the file system refused (ENOSPC is SQLITE_FULL; EFBIG,
#: a file over RLIMIT_FSIZE, and EDQUOT arrive as these "disk I/O errors").
_WRITE_FAILURES = frozenset({"SQLITE_IOERR_WRITE", "SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_TRUNCATE"})


def add_source(
    session: Session,
    name: str,
    *,
    point_spec: str | None = None,
    confidence_threshold: float | None = None,
    annotation_area: str | None = None,
) -> int:
    """A new source's id; a ConflictError when the name is taken."""
    if find_source(session, name) is not None:
        raise ConflictError(f"source {name!r} already exists", value=name, param="name")
    source = Source(
        name=name,
        point_spec=point_spec,
        confidence_threshold=confidence_threshold,
        annotation_area=annotation_area,
    )
    session.add(source)
    session.flush()
    return source.id


def update_source(session: Session, source_id: int, **values: Any) -> None:
    """Set columns of a source (``confidence_threshold``, ``point_spec``, ``annotation_area``)."""
    session.execute(update(Source).where(Source.id == source_id).values(**values))


def add_labels(
    session: Session, source_id: int, labels: Sequence[tuple[str, str, str | None, int | None]]
) -> int:
    """Add ``(name, short_code, functional_group, coralnet_id)`` labels whose short code is
    new to the source; returns how many were added."""
    known = set(label_ids(session, source_id))
    rows = []
    for name, code, group, coralnet_id in labels:
        if code in known:
            continue
        known.add(code)
        rows.append(
            {
                "source_id": source_id,
                "name": name,
                "short_code": code,
                "functional_group": group,
                "coralnet_id": coralnet_id,
            }
        )
    if rows:
        session.execute(insert(Label), rows)
    return len(rows)


def add_image(
    session: Session,
    source_id: int,
    *,
    name: str,
    path: str,
    sha256: str,
    width: int,
    height: int,
    exif_orientation: int = 1,
    metadata: dict[str, Any] | None = None,
) -> int:
    """A new image row's id."""
    image = Image(
        source_id=source_id,
        name=name,
        path=path,
        sha256=sha256,
        width=width,
        height=height,
        exif_orientation=exif_orientation,
        metadata_=metadata or {},
    )
    session.add(image)
    session.flush()
    return image.id


def add_points(
    session: Session,
    image_id: int,
    coords: Sequence[tuple[int, int]] | np.ndarray,
    generated_by: str,
) -> list[int]:
    """Points numbered 1.. in ``coords`` order; returns their ids in that order."""
    if not len(coords):
        return []
    return list(
        session.scalars(
            insert(Point).returning(Point.id, sort_by_parameter_order=True),
            [
                {
                    "image_id": image_id,
                    "number": number,
                    "row": int(r),
                    "column": int(c),
                    "generated_by": generated_by,
                }
                for number, (r, c) in enumerate(coords, start=1)
            ],
        ).all()
    )


def add_imported_annotations(
    session: Session,
    rows: Sequence[tuple[int, int, str | None, datetime | None]],
) -> int:
    """``(point_id, label_id, annotator, annotated_at)`` as imported (human) annotations."""
    if rows:
        session.execute(
            insert(Annotation),
            [
                {
                    "point_id": point_id,
                    "label_id": label_id,
                    "status": AnnotationStatus.IMPORTED,
                    "annotator": annotator,
                    "annotated_at": when,
                }
                for point_id, label_id, annotator, when in rows
            ],
        )
    return len(rows)


def add_classifier(session: Session, **fields: Any) -> int:
    """Record a trained classifier (columns of ``classifiers``); returns its id."""
    record = ClassifierRecord(**fields)
    session.add(record)
    session.flush()
    return record.id


def replace_machine_labels(
    session: Session,
    classifier_id: int,
    point_ids: Sequence[int] | np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    accept: np.ndarray,
    when: datetime,
) -> None:
    """Store top-k ``labels``/``scores`` (n, k) of ``point_ids`` under a classifier, and
    each point's machine annotation (``alleviate`` where ``accept``), replacing old ones.

    Callers pass only points no person has labelled.
    """
    ids = [int(i) for i in point_ids]
    for part in chunked(ids):
        session.execute(
            delete(Score).where(Score.classifier_id == classifier_id, Score.point_id.in_(part))
        )
        session.execute(delete(Annotation).where(Annotation.point_id.in_(part)))
    if not ids:
        return
    session.execute(
        insert(Score),
        [
            {
                "point_id": pid,
                "classifier_id": classifier_id,
                "rank": rank,
                "label_id": int(labels[i, rank]),
                "score": float(scores[i, rank]),
            }
            for i, pid in enumerate(ids)
            for rank in range(labels.shape[1])
        ],
    )
    session.execute(
        insert(Annotation),
        [
            {
                "point_id": pid,
                "label_id": int(labels[i, 0]),
                "status": AnnotationStatus.ALLEVIATE if accept[i] else AnnotationStatus.MACHINE,
                "annotator": f"classifier {classifier_id}",
                "annotated_at": when,
                "classifier_id": classifier_id,
            }
            for i, pid in enumerate(ids)
        ],
    )


def set_extractor_config(session: Session, key: str, config: dict[str, Any]) -> None:
    """Replace a stored extractor's configuration (e.g. where its weights file is here)."""
    session.execute(update(ExtractorRecord).where(ExtractorRecord.key == key).values(config=config))
