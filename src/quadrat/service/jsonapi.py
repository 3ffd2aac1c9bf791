"""CoralNet's wire format: the JSON:API media type, ``{"errors": [...]}`` bodies, size limits.

Every response is ``application/vnd.api+json``; every error body is ``{"errors": [item]}``
with one item (``{"detail": ...}``, plus ``source`` for a payload error). Requests with a
body must say ``application/vnd.api+json`` (the deploy endpoint also takes
``multipart/form-data`` uploads); a body larger than the server's limit is refused with 413
before it is read (:class:`BodyLimit`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quadrat.errors import ConflictError, InputError, NotFoundError, QuadratError, StateError
from quadrat.store.jobs import JobImage
from quadrat.store.schema import DeployImageStatus

MEDIA_TYPE = "application/vnd.api+json"
MULTIPART = "multipart/form-data"

log = logging.getLogger(__name__)


class ApiResponse(JSONResponse):
    """A JSON:API response (compact JSON, UTF-8, CoralNet's media type)."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


def empty(status_code: int, headers: dict[str, str] | None = None) -> Response:
    """A response with no body (202 Accepted, 303 See Other) and CoralNet's media type."""
    return Response(status_code=status_code, headers=headers, media_type=MEDIA_TYPE)


def api_error(
    status: int,
    detail: str | None = None,
    *,
    item: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HTTPException:
    """An error to raise: ``status`` and one ``errors`` item (``{"detail": ...}`` or ``item``).

    FastAPI's :class:`~fastapi.HTTPException` carries it (its ``detail`` may be any JSON);
    :func:`install_handlers` writes it as ``{"errors": [item]}``.
    """
    return HTTPException(status, detail=item if item is not None else detail, headers=headers)


def error_response(
    status: int, item: dict[str, Any], headers: Mapping[str, str] | None = None
) -> ApiResponse:
    return ApiResponse({"errors": [item]}, status_code=status, headers=headers)


def method_not_allowed(method: str, allowed: list[str]) -> HTTPException:
    return api_error(405, f'Method "{method}" not allowed.', headers={"Allow": ", ".join(allowed)})


def content_type_error(content_type: str) -> HTTPException:
    return api_error(415, f"Content type should be {MEDIA_TYPE}, not {content_type or '(none)'}")


def media_type_of(content_type: str) -> str:
    """``application/vnd.api+json; charset=utf-8`` -> ``application/vnd.api+json``."""
    return content_type.split(";", 1)[0].strip().lower()


def too_large(limit_name: str, limit: int) -> dict[str, Any]:
    """The 413 error item naming the limit a body went over."""
    detail = f"Request body is too large: this server takes at most {limit} bytes ({limit_name})."
    return {"detail": detail, "meta": {"limit": limit_name, "max_bytes": limit}}


class BodyLimit:
    """ASGI middleware: a request body over its limit gets 413 before anything parses it.

    ``multipart/form-data`` bodies (image uploads) have their own, larger limit. A declared
    ``Content-Length`` over the limit is answered at once, unread; a body without one is
    counted as it arrives, and the read stops with the same 413 once it is over.
    """

    def __init__(self, app: ASGIApp, *, request_bytes: int, upload_request_bytes: int) -> None:
        self.app = app
        self.request_bytes = request_bytes
        self.upload_request_bytes = upload_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if media_type_of(headers.get("content-type", "")) == MULTIPART:
            name, limit = "upload_request_bytes", self.upload_request_bytes
        else:
            name, limit = "request_bytes", self.request_bytes
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            await error_response(413, too_large(name, limit))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise api_error(413, item=too_large(name, limit))
            return message

        await self.app(scope, counted, send)


def _quadrat_status(exc: QuadratError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, StateError):
        return 503  # the database busy or read-only: try again later
    return 500


def install_handlers(app: Any) -> None:
    """Every error leaves as ``{"errors": [...]}`` with the media type, none as HTML."""

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail: Any = exc.detail
        if isinstance(detail, dict):
            return error_response(exc.status_code, detail, exc.headers)
        if exc.status_code == 404 and detail == "Not Found":  # no such route
            detail = "Not found."
        return error_response(exc.status_code, {"detail": str(detail)}, exc.headers)

    async def quadrat_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QuadratError)
        status = _quadrat_status(exc)
        if status >= 500:
            log.error("request failed: %s", exc, exc_info=exc)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return error_response(status, {"detail": message})

    async def server_error(_request: Request, exc: Exception) -> Response:
        log.error("request failed", exc_info=exc)
        return error_response(500, {"detail": "A server error occurred."})

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(QuadratError, quadrat_error)
    app.add_exception_handler(Exception, server_error)


#: Classifications per point in a result (CoralNet's NBR_SCORES_PER_ANNOTATION).
TOP_CLASSIFICATIONS = 5


def image_result(image: JobImage) -> dict[str, Any]:
    """One image of a finished job, as CoralNet's result lists it."""
    if image.status == DeployImageStatus.DONE and image.result is not None:
        points = []
        for (row, column), scored in zip(image.points, image.result, strict=False):
            answer = None
            if isinstance(scored, dict):  # a worker that stored whole point objects
                answer = scored.get("answer")
                scored = scored.get("classifications", [])
            point: dict[str, Any] = {
                "row": row,
                "column": column,
                "classifications": list(scored)[:TOP_CLASSIFICATIONS],
            }
            if answer is not None:  # only servers set up for hierarchical answers store it
                point["answer"] = answer
            points.append(point)
        attributes: dict[str, Any] = {"url": image.url, "points": points}
    else:
        error = image.error or "The image could not be classified."
        attributes = {"url": image.url, "errors": [error]}
    return {"type": "image", "id": image.url, "attributes": attributes}


async def json_body(request: Request) -> Any:
    """The parsed JSON:API body; ``{}`` when there is none (DRF's rule), 415 or 400 else.

    A body of another media type is refused before it is read.
    """
    content_type = request.headers.get("content-type", "")
    if media_type_of(content_type) != MEDIA_TYPE:
        if has_body(request):
            raise content_type_error(content_type)
        return {}
    body = await request.body()
    return parse_json(body) if body else {}


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN or Infinity), failing as DRF's parser words it."""

    def refuse(name: str) -> Any:
        raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")

    try:
        return json.loads(body, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise api_error(400, f"JSON parse error - {exc}") from None
