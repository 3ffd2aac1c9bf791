"""Labelling endpoints: confirm a label for a point, undo a change, add and remove points.

Every change is one transaction and answers a signed undo token (no undo table: the token
carries what the change replaced, and undo puts it back only if the point still holds the
change). Split from ``routes.py``, which keeps the pages, sign-in and reading endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from itsdangerous import BadSignature
from pydantic import BaseModel, Field

from quadrat.service.ui.routes import (
    UNDO_SECONDS,
    State,
    User,
    check_role,
    http_errors,
    image_or_404,
    point_json,
    require_role,
)
from quadrat.service.ui.session import UiUser
from quadrat.service.ui.state import UiState
from quadrat.store import accounts as stored_accounts
from quadrat.store import annotate
from quadrat.store.schema import Role

router = APIRouter(prefix="/ui")


class LabelChoice(BaseModel):
    label_id: int


class UndoRequest(BaseModel):
    undo: str = Field(max_length=4096)


def undo_token(
    state: UiState,
    user: UiUser,
    changes: Sequence[tuple[int, annotate.AnnotationState | None, annotate.AnnotationState | None]],
) -> str:
    """A signed token that lets ``user`` undo these ``(point, before, after)`` changes."""
    return str(
        state.undo_serializer().dumps(
            {
                "user": user.id,
                "changes": [
                    {
                        "point": point_id,
                        "before": None if before is None else before.as_dict(),
                        "after": None if after is None else after.as_dict(),
                    }
                    for point_id, before, after in changes
                ],
            }
        )
    )


def confirmed_by(user: UiUser, label_id: int) -> annotate.AnnotationState:
    """A person's label: confirmed, by this user, now (UTC)."""
    return annotate.AnnotationState(
        label_id=label_id,
        status="confirmed",
        annotator=user.username,
        annotated_at=datetime.now(UTC).isoformat(),
        classifier_id=None,
    )


@router.put("/api/points/{point_id}/annotation")
def set_label(point_id: int, body: LabelChoice, user: User, state: State) -> dict[str, Any]:
    """Confirm ``label_id`` for the point, by this user, now; returns a token to undo it."""
    after = confirmed_by(user, body.label_id)
    with http_errors(), state.store.session() as session:  # one transaction: a keypress
        source_id, _image_id = annotate.point_source(session, point_id)
        check_role(stored_accounts.role_on_source(session, user.id, source_id), Role.ANNOTATOR)
        before = annotate.annotation_state(session, point_id)
        annotate.write_annotation(session, point_id, after)
        point = annotate.point_row(session, point_id)
    if state.trainer is not None:  # CoralNet's policy, checked in the background
        state.trainer.nudge(source_id)
    return {
        "point": point_json(point),
        "undo": undo_token(state, user, [(point_id, before, after)]),
    }


@router.post("/api/undo")
def undo(body: UndoRequest, user: User, state: State) -> dict[str, Any]:
    """Put back what a change replaced, if every point still holds that change (else 409)."""
    try:
        data = state.undo_serializer().loads(body.undo, max_age=UNDO_SECONDS)
    except BadSignature as exc:
        raise HTTPException(400, detail="Not an undo token of this server (or expired).") from exc
    if data.get("user") != user.id:
        raise HTTPException(403, detail="That change was made by someone else.")
    changes = [
        (
            int(change["point"]),
            None
            if change["before"] is None
            else annotate.AnnotationState.from_dict(change["before"]),
            None
            if change["after"] is None
            else annotate.AnnotationState.from_dict(change["after"]),
        )
        for change in data["changes"]
    ]
    with http_errors(), state.store.session() as session:
        sources = {annotate.point_source(session, point_id)[0] for point_id, _b, _a in changes}
    for source_id in sources:
        require_role(state, user, source_id, Role.ANNOTATOR)
    with http_errors(), state.store.session() as session:  # all or nothing
        for point_id, before, after in changes:
            annotate.replace_if_current(session, point_id, after, before)
        points = [annotate.point_row(session, point_id) for point_id, _b, _a in changes]
    return {"point": point_json(points[0]), "points": [point_json(p) for p in points]}


class NewPoint(BaseModel):
    row: int = Field(ge=0)
    column: int = Field(ge=0)


@router.post("/api/images/{image_id}/points")
def add_point(image_id: int, body: NewPoint, user: User, state: State) -> dict[str, Any]:
    """Add a point by hand (annotators); the image's features are computed again later."""
    image = image_or_404(state, image_id)
    require_role(state, user, image.source_id, Role.ANNOTATOR)
    limit = state.settings.limits.points_per_image
    with http_errors(), state.store.session() as session:
        point_id = annotate.add_point(session, image_id, body.row, body.column, limit=limit)
        point = annotate.point_row(session, point_id)
    return {"point": point_json(point)}


@router.delete("/api/points/{point_id}")
def remove_point(point_id: int, user: User, state: State) -> dict[str, Any]:
    """Remove a point with its label and suggestions (annotators)."""
    with http_errors(), state.store.session() as session:
        source_id, image_id = annotate.point_source(session, point_id)
    require_role(state, user, source_id, Role.ANNOTATOR)
    with http_errors(), state.store.session() as session:
        annotate.remove_point(session, point_id)
    return {"removed": point_id, "image_id": image_id}
