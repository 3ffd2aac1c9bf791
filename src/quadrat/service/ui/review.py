"""The review grid (all patches of one label, least confident first or nearest first to a
chosen patch; relabel many at once)
and alleviation (the accuracy-vs-threshold curve of the active classifier, and applying a
threshold), as JSON endpoints and the review page.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from quadrat.service.ui.labelling import confirmed_by, undo_token
from quadrat.service.ui.routes import (
    PAGE_SIZE,
    State,
    User,
    http_errors,
    page_or_sign_in,
    require_role,
    role_of,
)
from quadrat.store import annotate
from quadrat.store import queries as store_queries
from quadrat.store.schema import Role

router = APIRouter(prefix="/ui")
#: Points one relabel request may change.
MAX_RELABEL = 500
#: Most points of one label the similarity order sorts (a label's points, in memory).
MAX_SIMILAR = 100_000


@router.get("/review", include_in_schema=False)
def review_page(request: Request) -> Response:
    return page_or_sign_in(request, "review.html")


@router.get("/api/sources/{source_id}/review")
def review(
    source_id: int,
    user: User,
    state: State,
    label_id: Annotated[int, Query()],
    status: Annotated[str, Query()] = "all",
    sort: Annotated[str, Query()] = "confidence",
    page: Annotated[int, Query(ge=1)] = 1,
    order: Annotated[str | None, Query()] = None,
    point: Annotated[int | None, Query()] = None,
) -> dict[str, Any]:
    """A page of the points labelled ``label_id``: least confident first by default.

    ``order=similar&point=ID``: the chosen patch first, then the others by distance to it
    on the stored features (``Source.similar_points``, the audit's index), points without
    features last; each row then carries its ``distance``."""
    role_of(state, user, source_id)
    if order is not None and order != "similar":
        raise HTTPException(400, detail=f"order must be similar, not {order!r}.")
    if order == "similar" and point is None:
        raise HTTPException(400, detail="order=similar needs point=<point id>.")
    distances: dict[int, float] | None = None
    with http_errors():
        if order == "similar" and point is not None:
            distances = _distances(state, source_id, point)
        with state.store.session() as session:
            total, rows = annotate.review_points(
                session,
                source_id,
                label_id,
                status=status,
                sort="image" if distances is not None else sort,
                offset=0 if distances is not None else (page - 1) * PAGE_SIZE,
                limit=MAX_SIMILAR if distances is not None else PAGE_SIZE,
            )
    if distances is not None:
        far = math.inf
        rows = sorted(rows, key=lambda r: distances.get(r.point_id, far))
        rows = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return {
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "order": order,
        "point": point,
        "points": [
            {
                "id": r.point_id,
                "image_id": r.image_id,
                "image_name": r.image_name,
                "number": r.number,
                "status": r.status,
                "annotator": r.annotator,
                "score": r.score,
                **(
                    {"distance": _finite([distances.get(r.point_id)])[0]}
                    if distances is not None
                    else {}
                ),
            }
            for r in rows
        ],
    }


def _distances(state: Any, source_id: int, point_id: int) -> dict[int, float]:
    """Every point of the source with features, by its distance to ``point_id``'s (0 for
    the point itself). 404 for a point of another source or one without features."""
    from quadrat.service.ui.insight import source_of

    with state.store.session() as session:
        if annotate.point_source(session, point_id)[0] != source_id:
            raise HTTPException(404, detail=f"No point {point_id} in this source.")
    # Every indexed point (the index answers at most as many as it holds).
    near = source_of(state, source_id).similar_points(point_id, k=MAX_SIMILAR)
    distances = {int(point_id): 0.0}
    ids = near["point_id"].astype(int).tolist()
    distances.update(zip(ids, near["distance"].astype(float).tolist(), strict=True))
    return distances


class Relabel(BaseModel):
    point_ids: list[int] = Field(min_length=1, max_length=MAX_RELABEL)
    label_id: int


@router.post("/api/sources/{source_id}/relabel")
def relabel(source_id: int, body: Relabel, user: User, state: State) -> dict[str, Any]:
    """Confirm one label on many points of the source at once (one transaction; undoable)."""
    require_role(state, user, source_id, Role.ANNOTATOR)
    after = confirmed_by(user, body.label_id)
    changes = []
    with http_errors(), state.store.session() as session:
        for point_id in dict.fromkeys(body.point_ids):
            if annotate.point_source(session, point_id)[0] != source_id:
                raise HTTPException(404, detail=f"No point {point_id} in this source.")
            before = annotate.annotation_state(session, point_id)
            annotate.write_annotation(session, point_id, after)
            changes.append((point_id, before, after))
    if state.trainer is not None:  # CoralNet's policy, checked in the background
        state.trainer.nudge(source_id)
    return {"changed": len(changes), "undo": undo_token(state, user, changes)}


def _finite(values: list[Any]) -> list[float | None]:
    return [float(v) if v is not None and math.isfinite(float(v)) else None for v in values]


@router.get("/api/sources/{source_id}/alleviate")
def alleviate_curve(source_id: int, user: User, state: State) -> dict[str, Any]:
    """The active classifier's validation curve: share auto-accepted and accuracy per
    threshold, and the source's threshold now."""
    role = role_of(state, user, source_id)
    with http_errors(), state.store.session() as session:
        source = store_queries.source_by_id(session, source_id)
        active = store_queries.latest_classifier(session, source_id)
    curve = (active.metrics.get("alleviate_curve") if active is not None else None) or {}
    return {
        "threshold": source.confidence_threshold,
        "classifier_id": None if active is None else active.id,
        "can_apply": role.rank >= Role.ADMIN.rank,
        "curve": {
            key: _finite(list(curve.get(key, [])))
            for key in ("threshold", "fraction_accepted", "accuracy_accepted", "overall_accuracy")
        },
    }


class Threshold(BaseModel):
    threshold: float | None = Field(ge=0.0, le=1.0)


@router.post("/api/sources/{source_id}/alleviate")
def apply_alleviate(source_id: int, body: Threshold, user: User, state: State) -> dict[str, Any]:
    """Store the source's threshold and classify again: points scored at or above it are
    accepted (``alleviate``); a person's labels are never touched. Admins only."""
    from quadrat.workflow.project import Project

    require_role(state, user, source_id, Role.ADMIN)
    with http_errors():
        with state.store.session() as session:
            name = store_queries.source_by_id(session, source_id).name
        source = Project(state.store).source(name)
        source.set_confidence_threshold(body.threshold)
        summary = source.classify(threshold=body.threshold)
        with state.store.session() as session:
            counts = store_queries.counts(session, source_id)
    return {
        "threshold": body.threshold,
        "points": summary.points,
        "alleviated": summary.alleviated,
        "counts": counts,
    }


#: What a source exports, as the CLI writes it (CoralNet's CSV formats).
EXPORTS = ("annotations", "cover", "labelset")
#: Content types of the other tools' formats, by the suffix their writer gives the file.
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".zip": "application/zip",
}


def _download_name(source_name: str, what: str, suffix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_name)
    return f"{safe}_{what}{suffix}"


@router.get("/api/export-formats")
def export_formats(user: User) -> dict[str, Any]:
    """Other tools' formats a source exports to (``quadrat formats``), for the page's list."""
    from quadrat.io.formats import list_formats

    return {
        "formats": [
            {"name": f.name, "description": f.description, "suffix": f.suffix}
            for f in list_formats()
            if f.exports
        ]
    }


@router.get("/api/sources/{source_id}/export/format/{name}")
def export_format(source_id: int, name: str, user: User, state: State) -> Response:
    """The source in another tool's format, as ``quadrat export annotations --format`` writes
    it (a download: CPCe and BIIGLE as a ZIP, COCO and GeoJSON as JSON, the rest CSV)."""
    import tempfile
    from pathlib import Path

    from quadrat.io.formats import get_format
    from quadrat.workflow.project import Project

    role_of(state, user, source_id)
    with http_errors():
        info = get_format(name)
        if info.write is None:
            raise HTTPException(404, detail=f"{name} cannot be exported (see quadrat formats).")
        with state.store.session() as session:
            source_name = store_queries.source_by_id(session, source_id).name
        source = Project(state.store).source(source_name)
        with tempfile.TemporaryDirectory(prefix="quadrat-export-") as folder:
            path = Path(folder) / f"export{info.suffix}"
            source.export(name, path)
            data = path.read_bytes()
    filename = _download_name(source_name, name, info.suffix)
    return Response(
        data,
        media_type=MEDIA_TYPES.get(info.suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/sources/{source_id}/export/{kind}.csv")
def export(source_id: int, kind: str, user: User, state: State) -> Response:
    """The source's annotations, cover or labelset as the CLI exports them (a download)."""
    import tempfile
    from pathlib import Path

    from quadrat.workflow.project import Project

    if kind not in EXPORTS:
        raise HTTPException(404, detail=f"Exports are {', '.join(EXPORTS)}.")
    role_of(state, user, source_id)
    with http_errors():
        with state.store.session() as session:
            name = store_queries.source_by_id(session, source_id).name
        source = Project(state.store).source(name)
        with tempfile.TemporaryDirectory(prefix="quadrat-export-") as folder:
            path = Path(folder) / f"{kind}.csv"
            getattr(source, f"export_{kind}")(path, escape_formulas=True)
            data = path.read_bytes()
    return Response(
        data,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{_download_name(name, kind, ".csv")}"'
        },
    )
