"""The sources page's and annotation page's actions: train now, the background training's
status (:mod:`.training`: one run per source at a time across server processes), and
generating an image's points by the source's point spec.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from quadrat.service.ui.routes import (
    State,
    User,
    http_errors,
    image_or_404,
    point_json,
    require_role,
    role_of,
)
from quadrat.service.ui.state import UiState
from quadrat.service.ui.training import Trainer
from quadrat.store import annotate
from quadrat.store import queries as store_queries
from quadrat.store.schema import Role

router = APIRouter(prefix="/ui")


def trainer(state: UiState) -> Trainer:
    if state.trainer is None:  # an application built without install_ui's trainer
        state.trainer = Trainer(state.store)
    found: Trainer = state.trainer
    return found


@router.get("/api/sources/{source_id}/training")
def training_status(source_id: int, user: User, state: State) -> dict[str, Any]:
    """The latest background training of the source (state, message, verdict)."""
    role = role_of(state, user, source_id)
    return {
        "training": trainer(state).status(source_id).as_dict(),
        "can_train": role.rank >= Role.ADMIN.rank,
    }


@router.post("/api/sources/{source_id}/train")
def train_now(source_id: int, user: User, state: State) -> JSONResponse:
    """Train a classifier now, whatever the policy says (admins); queued in the project for
    whichever server process is free, so this answers 202 at once (poll ``training``).
    409 when a training of the source is queued or running already (the detail says
    since when and for whom): one training per source at a time."""
    require_role(state, user, source_id, Role.ADMIN)
    with http_errors(), state.store.session() as session:
        store_queries.source_by_id(session, source_id)
    with http_errors():
        asked = trainer(state).request(source_id, forced=True, requested_by=user.username)
    if not asked.queued:
        raise HTTPException(409, detail=asked.reason or "A training of this source is queued.")
    return JSONResponse({"queued": True, "training": asked.status.as_dict()}, status_code=202)


@router.post("/api/images/{image_id}/generate-points")
def generate_points(image_id: int, user: User, state: State) -> dict[str, Any]:
    """Give an image without points the source's point set (CoralNet's point spec inside the
    source's annotation area: the points ``quadrat points`` would give it), then extract and
    classify them in the background. Annotators; 409 if it has points already."""
    from quadrat.points import PointSpec
    from quadrat.workflow.points import image_points

    image = image_or_404(state, image_id)
    require_role(state, user, image.source_id, Role.ANNOTATOR)
    with http_errors(), state.store.session() as session:
        info = store_queries.source_by_id(session, image.source_id)
        spec_text = info.point_spec
        if spec_text is None:
            raise HTTPException(
                409,
                detail="This source has no point spec yet; generate points once with "
                "quadrat points (e.g. m_30) to set one.",
            )
        spec = PointSpec.parse(spec_text)
        coords = image_points(
            spec, info.annotation_area, image.name, image.height, image.width, seed=0
        )
        if not annotate.add_points_if_none(session, image_id, coords, str(spec)):
            raise HTTPException(409, detail="This image has points already.")
        points = annotate.image_points(session, image_id)
    # Their features and suggestions come in the background (poll ``training``).
    with http_errors():
        trainer(state).request(image.source_id, forced=False, suggest=True)
    return {"spec": str(spec), "points": [point_json(p) for p in points], "suggesting": True}
