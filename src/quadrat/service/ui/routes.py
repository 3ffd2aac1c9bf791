"""The browser UI's pages and the JSON endpoints its scripts call (``/ui/...``).

Pages are static files shipped in ``static/`` (no build step); they fetch everything from
``/ui/api/``. Every endpoint except sign-in needs a session or an API token, and checks the
user's role on the source of what it touches: a viewer reads, an annotator also labels
points. A source the user has no role on answers 404, as if it did not exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from quadrat.errors import ConflictError, InputError, NotFoundError, QuadratError, StateError
from quadrat.service import accounts
from quadrat.service.ui import images as pictures
from quadrat.service.ui import tiles
from quadrat.service.ui.session import (
    UiUser,
    csrf_token,
    current_user,
    sign_in,
    sign_out,
    ui_state,
)
from quadrat.service.ui.state import UiState
from quadrat.store import annotate, browse, portable
from quadrat.store import queries as store_queries
from quadrat.store.schema import Role

STATIC = Path(__file__).resolve().parent / "static"
#: Images a page of the image browser holds.
PAGE_SIZE = 100
#: Keys that pick a label from the legend (1-5 pick a suggestion).
LABEL_HOTKEYS = "qwertyuiopasdfghjklzxcvbnm"
#: Seconds an undo token stays valid.
UNDO_SECONDS = 24 * 3600

router = APIRouter(prefix="/ui")
User = Annotated[UiUser, Depends(current_user)]
State = Annotated[UiState, Depends(ui_state)]


@contextmanager
def http_errors() -> Iterator[None]:
    """quadrat's error families as HTTP statuses with the message as ``detail``."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except InputError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    except ConflictError as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except StateError as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except QuadratError as exc:
        raise HTTPException(500, detail=str(exc)) from exc


def role_of(state: UiState, user: UiUser, source_id: int) -> Role:
    """The user's role on the source; 404 when none (the source is not theirs to see)."""
    role = accounts.role_on_source(state.store, user.id, source_id)
    if role is None:
        raise HTTPException(404, detail="No such source, or not yours to see.")
    return role


def require_role(state: UiState, user: UiUser, source_id: int, needed: Role) -> Role:
    return check_role(accounts.role_on_source(state.store, user.id, source_id), needed)


def check_role(role: Role | None, needed: Role) -> Role:
    """404 without a role on the source, 403 with one too weak."""
    if role is None:
        raise HTTPException(404, detail="No such source, or not yours to see.")
    if role.rank < needed.rank:
        raise HTTPException(
            403, detail=f"Your role on this source is {role.value}; this needs {needed.value}."
        )
    return role


# ----------------------------------------------------------------------------- pages


def _signed_in(request: Request) -> bool:
    return isinstance(request.session.get("uid"), int)


def page_or_sign_in(request: Request, name: str) -> Response:
    if not _signed_in(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={_quote(target)}", status_code=303)
    return FileResponse(STATIC / name, media_type="text/html")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


@router.get("/", include_in_schema=False)
def sources_page(request: Request) -> Response:
    return page_or_sign_in(request, "index.html")


@router.get("/annotate", include_in_schema=False)
def annotate_page(request: Request) -> Response:
    return page_or_sign_in(request, "annotate.html")


@router.get("/login", include_in_schema=False)
def login_page() -> Response:
    return FileResponse(STATIC / "login.html", media_type="text/html")


# ----------------------------------------------------------------------------- session


class Credentials(BaseModel):
    username: str = Field(max_length=150)
    password: str = Field(max_length=accounts.MAX_PASSWORD_LENGTH)


@router.get("/api/session")
def session_info(request: Request, state: State) -> dict[str, Any]:
    """Who is signed in (None) and the CSRF token the page sends with every change."""
    user: dict[str, Any] | None = None
    if _signed_in(request):
        try:
            who = current_user(request)
            user = {"id": who.id, "username": who.username}
        except HTTPException:
            user = None
    return {"user": user, "csrf": csrf_token(request)}


@router.post("/api/login")
def login(request: Request, body: Credentials, state: State) -> dict[str, Any]:
    """Sign in with a username and password (needs the anonymous session's CSRF token)."""
    expected = request.session.get("csrf")
    given = request.headers.get("X-CSRF-Token", "")
    if not isinstance(expected, str) or not secrets.compare_digest(expected, given):
        raise HTTPException(403, detail="CSRF token missing or wrong; reload the page.")
    address = request.client.host if request.client else "unknown"
    keys = (f"addr:{address}", f"name:{body.username}")
    wait = max(state.failures.wait(key) for key in keys)
    if wait:
        raise HTTPException(429, detail=f"Too many failed sign-ins; try again in {wait} seconds.")
    user_id = accounts.authenticate(state.store, body.username, body.password)
    if user_id is None:
        for key in keys:
            state.failures.fail(key)
        raise HTTPException(400, detail="Wrong username or password.")
    token = sign_in(request, user_id)
    return {"user": {"id": user_id, "username": body.username}, "csrf": token}


@router.post("/api/logout")
def logout(request: Request, user: User) -> dict[str, Any]:
    sign_out(request)
    return {"user": None}


# ----------------------------------------------------------------------------- sources


def _classifier(info: Any) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "id": info.id,
        "kind": info.kind,
        "extractor": info.extractor_key,
        "accuracy": info.accuracy,
        "accepted": info.accepted,
        "n_images": info.n_images,
        "created_at": None if info.created_at is None else info.created_at.isoformat(),
    }


def _policy(state: UiState, source_id: int) -> dict[str, Any] | None:
    """Where the source stands in CoralNet's retraining policy (None if it cannot say:
    no features yet, say)."""
    from quadrat.service.ui.training import policy_progress

    try:
        progress = policy_progress(state.store, source_id)
    except QuadratError:
        return None
    return asdict(progress)


@router.get("/api/sources")
def sources(user: User, state: State) -> dict[str, Any]:
    """The sources the user may see, with counts of images and points by status."""
    out = []
    with http_errors(), state.store.session() as session:
        rows = browse.list_sources(session)
    from quadrat.service.ui.training import verdicts

    for row in rows:
        role = accounts.role_on_source(state.store, user.id, row.id)
        if role is None:
            continue
        with http_errors(), state.store.session() as session:
            history = store_queries.classifier_history(session, row.id)
            why = verdicts(history)
            out.append(
                {
                    "id": row.id,
                    "name": row.name,
                    "role": role.value,
                    "confidence_threshold": row.confidence_threshold,
                    "point_spec": row.point_spec,
                    "annotation_area": row.annotation_area,
                    "images": browse.image_status_counts(session, row.id),
                    "points": store_queries.counts(session, row.id),
                    "active_classifier": _classifier(
                        store_queries.latest_classifier(session, row.id)
                    ),
                    "classifiers": [
                        {**(_classifier(c) or {}), "verdict": why.get(c.id)} for c in history
                    ],
                    "training": None
                    if state.trainer is None
                    else state.trainer.status(row.id).as_dict(),
                    "policy": _policy(state, row.id),
                }
            )
    return {"sources": out}


@router.get("/api/sources/{source_id}/labels")
def labelset(source_id: int, user: User, state: State) -> dict[str, Any]:
    """The labelset, each label with its hotkey (letters; 1-5 are the suggestions) and
    its points (``confirmed``: a person's label; ``machine``: a suggestion)."""
    role_of(state, user, source_id)
    with http_errors(), state.store.session() as session:
        rows = portable.label_rows(session, source_id, by_code=True)
        counts = browse.label_point_counts(session, source_id)
    return {
        "labels": [
            {
                "id": r.id,
                "code": r.short_code,
                "name": r.name,
                "group": r.functional_group,
                "hotkey": LABEL_HOTKEYS[i] if i < len(LABEL_HOTKEYS) else None,
                "confirmed": counts.get(r.id, (0, 0))[0],
                "machine": counts.get(r.id, (0, 0))[1],
            }
            for i, r in enumerate(rows)
        ]
    }


@router.get("/api/sources/{source_id}/images")
def image_list(
    source_id: int,
    user: User,
    state: State,
    status: Annotated[str | None, Query()] = None,
    sort: Annotated[str, Query()] = "name",
    page: Annotated[int, Query(ge=1)] = 1,
    label_id: Annotated[int | None, Query()] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
    site: Annotated[str | None, Query(max_length=256)] = None,
    max_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
) -> dict[str, Any]:
    """One page (100) of the source's images, by name or uncertainty, filtered by status,
    label, date, site and machine confidence below a value (see browse.ImageFilter)."""
    role_of(state, user, source_id)
    with http_errors(), state.store.session() as session:
        where = browse.ImageFilter(
            label_id=label_id,
            date_from=date_from or None,
            date_to=date_to or None,
            site=site or None,
            max_confidence=max_confidence,
        )
        total, rows = browse.image_page(
            session,
            source_id,
            status=status or None,
            sort=sort,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            where=where,
        )
    return {
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "page_size": PAGE_SIZE,
        "images": [
            {
                "id": r.id,
                "name": r.name,
                "width": r.width,
                "height": r.height,
                "points": r.points,
                "confirmed": r.confirmed,
                "machine": r.machine,
                "status": r.status,
                "uncertainty": r.uncertainty,
                "date": r.date,
            }
            for r in rows
        ],
    }


# ----------------------------------------------------------------------------- images, points


def point_json(point: annotate.PointRow) -> dict[str, Any]:
    return {
        "id": point.id,
        "number": point.number,
        "row": point.row,
        "column": point.column,
        "label_id": point.label_id,
        "status": point.status,
        "annotator": point.annotator,
        "annotated_at": None if point.annotated_at is None else point.annotated_at.isoformat(),
        "suggestions": [{"label_id": s.label_id, "score": s.score} for s in point.suggestions],
    }


def image_or_404(state: UiState, image_id: int) -> browse.ImageFile:
    with http_errors(), state.store.session() as session:
        return browse.image_file(session, image_id)


@router.get("/api/images/{image_id}")
def image_detail(image_id: int, user: User, state: State) -> dict[str, Any]:
    """An image with its points, their annotations and top-5 suggestions, and neighbours."""
    image = image_or_404(state, image_id)
    role = role_of(state, user, image.source_id)
    with http_errors(), state.store.session() as session:
        points = annotate.image_points(session, image_id)
        before, after = browse.neighbour_images(session, image.source_id, image.name)
        position, total = browse.image_position(session, image.source_id, image.name)
        source = store_queries.source_by_id(session, image.source_id)
    return {
        "id": image.id,
        "name": image.name,
        "source": {"id": source.id, "name": source.name},
        "role": role.value,
        "width": image.width,
        "height": image.height,
        "orientation": image.exif_orientation,
        "position": position,
        "total": total,
        "previous_id": before,
        "next_id": after,
        "points": [point_json(p) for p in points],
    }


_IMAGE_HEADERS = {"Cache-Control": "private, max-age=3600"}


def _image_jpeg(
    state: UiState,
    user: UiUser,
    image_id: int,
    render: Callable[[UiState, browse.ImageFile], bytes],
) -> Response:
    """``render``'s JPEG of an image the user may see (404 otherwise), cacheable."""
    image = image_or_404(state, image_id)
    role_of(state, user, image.source_id)
    with http_errors():
        data = render(state, image)
    return Response(data, media_type="image/jpeg", headers=_IMAGE_HEADERS)


@router.get("/api/images/{image_id}/file")
def image_file(image_id: int, user: User, state: State) -> Response:
    """The image's stored pixels as a JPEG without EXIF (see :mod:`.images`)."""
    return _image_jpeg(state, user, image_id, pictures.display_jpeg)


@router.get("/api/images/{image_id}/thumbnail")
def image_thumbnail(image_id: int, user: User, state: State) -> Response:
    """A small upright JPEG of the image for the image browser."""
    return _image_jpeg(state, user, image_id, pictures.thumbnail_jpeg)


@router.get("/api/points/{point_id}/patch")
def point_patch(point_id: int, user: User, state: State) -> Response:
    """The point's 224 px patch as a JPEG."""
    with http_errors(), state.store.session() as session:
        source_id, image_id = annotate.point_source(session, point_id)
        point = annotate.point_row(session, point_id)
    role_of(state, user, source_id)
    image = image_or_404(state, image_id)
    with http_errors():
        data = pictures.patch_jpeg(state, image, point.row, point.column)
    return Response(data, media_type="image/jpeg", headers=_IMAGE_HEADERS)


# Deep Zoom descriptor and tiles (the annotation page's viewer): see tiles.py.
router.include_router(tiles.router)
