"""quadrat's own analysis endpoints for API clients (scripts, R, notebooks): cover with
intervals, which points to label next, and "patches like this one".

CoralNet's deploy API under ``/api/`` stays exactly CoralNet's; these live under their own
prefix, :data:`PREFIX` (``/api/quadrat/v1/``), so no CoralNet client ever meets them. They
go through the same door as the deploy API (:meth:`quadrat.service.app._Api.route`):
``Authorization: Token ...`` (403 as DRF words it), the per-user request rate (429), 405
for another method, and ``{"errors": [...]}`` bodies of ``application/vnd.api+json``. An
error about a query parameter names it (``"source": {"parameter": "n"}``); one over a
server limit also names the limit (``"meta": {"limit": "max_suggest", "max": 100}``).

- ``GET sources/``: the sources the caller has a role on, with that role.
- ``GET sources/{id}/cover``: :meth:`Source.cover` with ``intervals=True`` (viewers).
- ``GET sources/{id}/suggest``: :meth:`Source.suggest` (annotators and admins, as in the
  browser UI: it is a work list for people who label).
- ``GET points/{id}/similar``: :meth:`Source.similar_points`, the audit's feature index
  (viewers of the point's source).

A source or point the caller has no role on answers the same 404 as one that does not
exist. The work is the library's; this module only parses, checks roles and limits
(``ServiceSettings.max_suggest``, ``max_bootstrap_replicates``, ``max_similar``, each
also a user's own limit) and
shapes JSON:API documents. Nothing here writes to the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from quadrat._util import jsonable
from quadrat.errors import InputError, NotFoundError, QuadratError, StateError
from quadrat.service import accounts
from quadrat.service.jsonapi import ApiResponse, api_error
from quadrat.store.schema import Role

if TYPE_CHECKING:
    from fastapi import FastAPI

    from quadrat.service.app import _Api
    from quadrat.service.settings import ServiceSettings
    from quadrat.store.accounts import UserInfo
    from quadrat.store.project import Store
    from quadrat.workflow.source import Source

#: Where quadrat's own endpoints live (CoralNet's are the rest of ``/api/``).
PREFIX = "/api/quadrat/v1"
#: Largest id a database row may have (SQLite's and PostgreSQL's 64-bit integers).
MAX_ID = 2**63 - 1

_NO_SOURCE = "This source doesn't exist or is not accessible"
_NO_POINT = "This point doesn't exist or is not accessible"


def install_analysis(app: FastAPI, api: _Api) -> None:
    """Add the endpoints to ``app`` behind ``api``'s authentication and rate limits."""
    endpoints = _Analysis(api.settings, api.store)
    routes: list[tuple[str, Callable[[Request, UserInfo | None], Any]]] = [
        (f"{PREFIX}/sources/", endpoints.sources),
        (f"{PREFIX}/sources/{{source_id:int}}/cover", endpoints.cover),
        (f"{PREFIX}/sources/{{source_id:int}}/suggest", endpoints.suggest),
        (f"{PREFIX}/points/{{point_id:int}}/similar", endpoints.similar),
    ]
    for path, handler in routes:
        api.route(app, path, ["GET", "HEAD"], handler)


# ----------------------------------------------------------------------------- parameters


def _bad_parameter(name: str, detail: str, meta: dict[str, Any] | None = None) -> Exception:
    item: dict[str, Any] = {"detail": detail, "source": {"parameter": name}}
    if meta:
        item["meta"] = meta
    return api_error(400, item=item)


def int_parameter(
    request: Request,
    name: str,
    default: int,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    limit: str | None = None,
) -> int:
    """Query parameter ``name`` as a whole number in ``[minimum, maximum]``.

    ``limit``: the server setting ``maximum`` comes from, named in the error.
    """
    text = request.query_params.get(name)
    if text is None or text.strip() == "":
        return default
    text = text.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise _bad_parameter(name, f"{name} must be a whole number, not {text!r}.")
    value = int(text)
    if value < minimum:
        raise _bad_parameter(name, f"{name} must be {minimum} or more, not {value}.")
    if maximum is not None and value > maximum:
        setting = f" ({limit})" if limit else ""
        raise _bad_parameter(
            name,
            f"{name} must be at most {maximum}{setting} on this server, not {value}.",
            {"limit": limit, "max": maximum} if limit else None,
        )
    return value


def fraction_parameter(request: Request, name: str, default: float) -> float:
    """Query parameter ``name`` as a number strictly between 0 and 1."""
    text = request.query_params.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise _bad_parameter(name, f"{name} must be a number between 0 and 1, not {text!r}.")
    return value


def bool_parameter(request: Request, name: str, default: bool) -> bool:
    text = request.query_params.get(name)
    if text is None or text.strip() == "":
        return default
    word = text.strip().lower()
    if word in ("true", "yes", "1", "on"):
        return True
    if word in ("false", "no", "0", "off"):
        return False
    raise _bad_parameter(name, f"{name} must be true or false, not {text!r}.")


def text_parameter(request: Request, name: str, default: str, *, max_length: int = 200) -> str:
    text = request.query_params.get(name)
    if text is None or text.strip() == "":
        return default
    if len(text) > max_length:
        raise _bad_parameter(name, f"{name} is longer than {max_length} characters.")
    return text.strip()


@contextmanager
def library_errors() -> Iterator[None]:
    """The library's refusals as JSON:API errors naming the parameter at fault.

    A StateError about the source (no classifier, no features yet: no file named) is a 409;
    one about the store (read-only, disk full: the project file named) keeps the app-wide
    503, as does anything else the app's handlers already map.
    """
    try:
        yield
    except QuadratError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        item: dict[str, Any] = {"detail": message}
        if exc.param:
            item["source"] = {"parameter": str(exc.param)}
        if isinstance(exc, StateError) and exc.path is None:
            raise api_error(409, item=item) from exc
        if isinstance(exc, InputError) and not isinstance(exc, FileNotFoundError):
            raise api_error(400, item=item) from exc
        raise


def _rows(kind: str, ids: list[Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON:API resource objects: ``{"type", "id", "attributes"}`` per row."""
    return [
        {"type": kind, "id": str(i), "attributes": row} for i, row in zip(ids, rows, strict=True)
    ]


# ----------------------------------------------------------------------------- endpoints


class _Analysis:
    """The endpoints over one store, with the server's limits."""

    def __init__(self, settings: ServiceSettings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def _source(self, user: UserInfo | None, source_id: int, needed: Role) -> Source:
        """The source when the user's role on it is at least ``needed``.

        No role (or no such source): 404, the same answer. A role too weak: 403 naming both.
        """
        from quadrat.store import queries
        from quadrat.workflow.project import Project
        from quadrat.workflow.source import Source

        assert user is not None
        if source_id > MAX_ID:
            raise api_error(404, _NO_SOURCE)
        try:
            with self.store.session() as session:
                info = queries.source_by_id(session, source_id)
        except NotFoundError:
            raise api_error(404, _NO_SOURCE) from None
        role = accounts.role_on_source(self.store, user.id, source_id)
        if role is None:
            raise api_error(404, _NO_SOURCE)
        if role.rank < needed.rank:
            raise api_error(
                403, f"Your role on this source is {role.value}; this needs {needed.value}."
            )
        return Source(Project(self.store), info.id, info.name)

    async def sources(self, request: Request, user: UserInfo | None) -> Response:
        """``{"data": [{"type": "source", "id", "attributes": {"name", "role"}}]}``."""

        def work() -> list[dict[str, Any]]:
            from quadrat.store import browse

            assert user is not None
            with self.store.session() as session:
                rows = browse.list_sources(session)
            out = []
            for row in rows:
                role = accounts.role_on_source(self.store, user.id, row.id)
                if role is not None:
                    out.append(
                        {
                            "type": "source",
                            "id": str(row.id),
                            "attributes": {"name": row.name, "role": role.value},
                        }
                    )
            return out

        return ApiResponse({"data": await run_in_threadpool(work)})

    async def cover(self, request: Request, user: UserInfo | None) -> Response:
        """Cover with its bootstrap interval (viewers and up).

        Query: ``level`` (``source``, ``image`` or ``site:COLUMN``; default source),
        ``corrected`` (``none``, ``acc``, ``pacc``), ``confidence`` (0-1, 0.95),
        ``replicates`` (1 to ``max_bootstrap_replicates``, 1000), ``seed`` (0). One
        resource per row of ``Source.cover(intervals=True, ...)``, its columns verbatim
        (``<label> estimate`` / ``lower`` / ``upper`` in percent); ``meta`` lists the
        columns, the labels and the labels the classifier cannot tell apart.
        """
        assert user is not None
        settings = self.settings.for_user(user.limits)
        source_id = int(request.path_params["source_id"])
        level = text_parameter(request, "level", "source")
        corrected = text_parameter(request, "corrected", "none")
        confidence = fraction_parameter(request, "confidence", 0.95)
        replicates = int_parameter(
            request,
            "replicates",
            min(1000, settings.max_bootstrap_replicates),
            maximum=settings.max_bootstrap_replicates,
            limit="max_bootstrap_replicates",
        )
        seed = int_parameter(request, "seed", 0, minimum=0, maximum=2**32 - 1)

        def work() -> dict[str, Any]:
            source = self._source(user, source_id, Role.VIEWER)
            with library_errors():
                table = source.cover(
                    intervals=True,
                    level=level,
                    corrected=corrected,
                    confidence=confidence,
                    replicates=replicates,
                    seed=seed,
                )
            columns = [str(c) for c in table.columns]
            labels = [c[: -len(" estimate")] for c in columns if c.endswith(" estimate")]
            rows = jsonable(table.to_dict(orient="records"))
            return {
                "data": _rows("cover", list(range(1, len(rows) + 1)), rows),
                "meta": {
                    "source": source.name,
                    "level": level,
                    "corrected": corrected,
                    "confidence": confidence,
                    "replicates": replicates,
                    "seed": seed,
                    "columns": columns,
                    "labels": labels,
                    "indistinguishable": jsonable(table.attrs.get("indistinguishable", [])),
                },
            }

        return ApiResponse(await run_in_threadpool(work))

    async def suggest(self, request: Request, user: UserInfo | None) -> Response:
        """The points (or images) to label next, most wanted first (annotators and up).

        Query: ``n`` (1 to ``max_suggest``, 20), ``strategy`` (``margin``, ``entropy``,
        ``random``), ``by`` (``points`` or ``images``), ``diversity`` (true), ``seed`` (0).
        One ``point`` (id: the point id, with its ``image_id``) or ``image`` resource per
        row of :meth:`Source.suggest`.
        """
        assert user is not None
        settings = self.settings.for_user(user.limits)
        source_id = int(request.path_params["source_id"])
        n = int_parameter(
            request,
            "n",
            min(20, settings.max_suggest),
            maximum=settings.max_suggest,
            limit="max_suggest",
        )
        strategy = text_parameter(request, "strategy", "margin")
        by = text_parameter(request, "by", "points")
        diversity = bool_parameter(request, "diversity", True)
        seed = int_parameter(request, "seed", 0, minimum=0, maximum=2**32 - 1)
        if by not in ("points", "images"):
            raise _bad_parameter("by", f"by must be points or images, not {by!r}.")

        def work() -> dict[str, Any]:
            from quadrat.store import annotate

            source = self._source(user, source_id, Role.ANNOTATOR)
            with library_errors():
                table = source.suggest(
                    n,
                    strategy=strategy,
                    by="points" if by == "points" else "images",
                    diversity=diversity,
                    seed=seed,
                )
            rows = jsonable(table.to_dict(orient="records"))
            if by == "points":
                ids = [int(p) for p in table["point_id"]]
                with self.store.session() as session:
                    images = [annotate.point_source(session, p)[1] for p in ids]
                for row, image_id in zip(rows, images, strict=True):
                    row.pop("point_id", None)
                    row["image_id"] = image_id
                data = _rows("point", ids, rows)
            else:
                ids = [int(i) for i in table["image_id"]]
                for row in rows:
                    row.pop("image_id", None)
                data = _rows("image", ids, rows)
            meta = {"source": source.name, "strategy": strategy, "by": by, "n": n}
            return {"data": data, "meta": {**meta, "diversity": diversity, "seed": seed}}

        return ApiResponse(await run_in_threadpool(work))

    async def similar(self, request: Request, user: UserInfo | None) -> Response:
        """The ``k`` points nearest to this one on the stored features (viewers and up).

        Query: ``k`` (1 to ``max_similar``, 12). One ``point`` resource per neighbour,
        nearest first, with its ``distance``; any point of the source with features is a
        candidate, labelled or not. 409 when the point has no stored features.
        """
        assert user is not None
        settings = self.settings.for_user(user.limits)
        point_id = int(request.path_params["point_id"])
        k = int_parameter(
            request,
            "k",
            min(12, settings.max_similar),
            maximum=settings.max_similar,
            limit="max_similar",
        )

        def work() -> dict[str, Any]:
            from quadrat.store import annotate

            if point_id > MAX_ID:
                raise api_error(404, _NO_POINT)
            try:
                with self.store.session() as session:
                    source_id = annotate.point_source(session, point_id)[0]
            except NotFoundError:
                raise api_error(404, _NO_POINT) from None
            try:
                source = self._source(user, source_id, Role.VIEWER)
            except Exception as exc:  # no role: the point is as good as absent
                if getattr(exc, "status_code", None) == 404:
                    raise api_error(404, _NO_POINT) from None
                raise
            try:
                with library_errors():
                    table = source.similar_points(point_id, k=k)
            except NotFoundError as exc:  # the point has no stored features
                raise api_error(
                    409, item={"detail": str(exc).splitlines()[0], "meta": {"point": point_id}}
                ) from exc
            ids = [int(p) for p in table["point_id"]]
            rows = jsonable(table.drop(columns=["point_id"]).to_dict(orient="records"))
            return {
                "data": _rows("point", ids, rows),
                "meta": {"source": source.name, "point": point_id, "k": k},
            }

        return ApiResponse(await run_in_threadpool(work))


__all__ = ["PREFIX", "install_analysis"]
