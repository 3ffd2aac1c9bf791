"""The HTTP API of ``quadrat serve``: CoralNet's deploy API, detail for detail, over a project.

Endpoints (base ``/api/``; every response ``application/vnd.api+json``):

- ``POST token_auth/``: ``{"username", "password"}`` -> ``{"token": "<40 hex>"}``.
- ``POST classifier/{id}/deploy/``: queue a job classifying up to 100 images' points;
  202 with ``Location: /api/deploy_job/{job}/status/``.
- ``GET deploy_job/{id}/status/``: 200 with the counts while it runs, then 303 to the result.
- ``GET deploy_job/{id}/result/``: 409 until the job is done, then every image's
  classifications (or its one-line error) in request order.
- ``GET user/{username}/``: your active and recently completed jobs.

Checks run in CoralNet's (Django REST framework's) order: the body-size limit (413, before
anything is read), then authentication (403), the request rate (429), the method (405),
and then each endpoint's own checks; for a deploy: active jobs (429), the body's content
type and JSON (415, 400), the classifier (404), the payload (400 with a JSON pointer).

Beyond CoralNet, an image's ``url`` may also be:

- a relative path such as ``"site3/IMG_0001.JPG"`` (no scheme), read from the server's
  image folder (``ServiceSettings.image_folder``); a path that leaves the folder (``..``,
  absolute, a symlink out) is refused with 400 at the url's pointer. The job stores the path
  as sent; the worker resolves it again under the folder.
- ``"upload:<file name>"`` in a ``multipart/form-data`` deploy request (see
  :func:`deploy` for its parts); the job stores ``upload:<sha256 of the bytes>``
  (:func:`quadrat.service.uploads.save_upload`), which is also the image's ``id`` and
  ``url`` in the result.

Users may deploy a classifier when their role on its source is viewer or stronger
(:func:`quadrat.service.accounts.may`); anyone else gets the same 404 as for a classifier
that does not exist. Limits (images, points, active jobs, request rates) are the server's
settings with the user's own overrides applied (:meth:`ServiceSettings.for_user`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from quadrat.errors import PayloadError
from quadrat.service import accounts, multipart
from quadrat.service.jsonapi import (
    MEDIA_TYPE,
    MULTIPART,
    ApiResponse,
    BodyLimit,
    api_error,
    empty,
    image_result,
    install_handlers,
    json_body,
    media_type_of,
    method_not_allowed,
)
from quadrat.service.settings import ServiceSettings
from quadrat.service.throttle import HOUR, MINUTE, RateLimiter, throttled_message
from quadrat.service.validation import (
    char_field,
    error_item,
    python_type_name,
    validate_deploy,
)
from quadrat.store import accounts as account_rows
from quadrat.store import jobs as job_rows
from quadrat.store.project import Store
from quadrat.store.schema import JobStatus

if TYPE_CHECKING:
    from quadrat.store.accounts import UserInfo

log = logging.getLogger(__name__)

#: Methods a route answers (the others get 405 once the caller is known, as in DRF).
_EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: Largest id a database row may have (SQLite's and PostgreSQL's 64-bit integers).
MAX_ID = 2**63 - 1

_NOT_FOUND_CLASSIFIER = "This classifier doesn't exist or is not accessible"
_NOT_FOUND_JOB = "This deploy job doesn't exist or is not accessible"


class JobQueue(Protocol):
    """What the app needs of :class:`quadrat.service.queue.JobQueue`."""

    def enqueue(self, job_id: int) -> None: ...


Handler = Callable[[Request, "UserInfo | None"], Awaitable[Response]]


def create_app(
    settings: ServiceSettings, queue: JobQueue | None = None, *, store: Store | None = None
) -> FastAPI:
    """The API over ``settings.database``; ``queue`` None: a :class:`JobQueue` of the settings.

    ``store``: the project, already open in this process (the caller closes it); None: the
    app opens it and closes it on shutdown. Pass the process's store when there is one: a
    second ``Store.open`` of a SQLite file in one process reads the file's header, and
    closing that file drops the process's POSIX locks on it (SQLite's known hazard), after
    which another process may remove the ``-wal`` file under this one.
    """
    owned = store is None
    project: Store = Store.open(settings.database) if store is None else store
    if queue is None:
        from quadrat.service.queue import JobQueue as _Queue

        queue = _Queue(settings)
    limiter = RateLimiter()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        trainer = getattr(getattr(_app.state, "quadrat_ui", None), "trainer", None)
        if trainer is not None:
            # A training queued, or left running by a server that stopped, runs now.
            await asyncio.to_thread(trainer.resume)
        try:
            yield
        finally:
            if trainer is not None:
                await asyncio.to_thread(trainer.close)  # after the run in progress, if any
            if owned:
                project.close()

    app = FastAPI(
        title="quadrat serve",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = project
    app.state.queue = queue
    app.state.limiter = limiter
    install_handlers(app)
    app.add_middleware(
        BodyLimit,
        request_bytes=settings.request_bytes,
        upload_request_bytes=settings.upload_request_bytes,
    )
    api = _Api(settings, project, queue, limiter)
    api.route(app, "/api/token_auth/", ["POST"], api.token_auth, sign_in=False)
    api.route(app, "/api/classifier/{classifier_id:int}/deploy/", ["POST"], api.deploy)
    api.route(app, "/api/deploy_job/{job_id:int}/status/", ["GET", "HEAD"], api.status)
    api.route(app, "/api/deploy_job/{job_id:int}/result/", ["GET", "HEAD"], api.result)
    api.route(app, "/api/user/{username}/", ["GET", "HEAD"], api.user)
    # quadrat's own endpoints (cover, suggest, similar) under /api/quadrat/v1/ (issue 15).
    from quadrat.service.analysis import install_analysis

    install_analysis(app, api)
    # The browser UI (issue 14): session cookie, /ui pages and JSON, / redirects there.
    from quadrat.service.ui import install_ui

    install_ui(app, settings, project)
    return app


class _Api:
    """The endpoints, over one store, queue and rate limiter."""

    def __init__(
        self, settings: ServiceSettings, store: Store, queue: JobQueue, limiter: RateLimiter
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.limiter = limiter

    # ------------------------------------------------------------------ dispatch

    def route(
        self,
        app: FastAPI,
        path: str,
        methods: list[str],
        handler: Handler,
        *,
        sign_in: bool = True,
    ) -> None:
        allowed = [*methods, "OPTIONS"]

        async def endpoint(request: Request) -> Response:
            user = await self.authenticate(request) if sign_in else None
            self.throttle(request, user)
            if request.method not in allowed:
                raise method_not_allowed(request.method, allowed)
            if request.method == "OPTIONS":
                return ApiResponse(
                    {"renders": [MEDIA_TYPE], "parses": [MEDIA_TYPE]},
                    headers={"Allow": ", ".join(allowed)},
                )
            return await handler(request, user)

        app.add_route(path, endpoint, methods=_EVERY_METHOD, include_in_schema=False)

    async def authenticate(self, request: Request) -> UserInfo:
        """The user of the request's ``Authorization: Token ...``, or a 403 as DRF words it."""
        words = request.headers.get("authorization", "").split()
        if not words or words[0].lower() != "token":
            raise api_error(403, "Authentication credentials were not provided.")
        if len(words) == 1:
            raise api_error(403, "Invalid token header. No credentials provided.")
        if len(words) > 2:
            raise api_error(403, "Invalid token header. Token string should not contain spaces.")
        user = await run_in_threadpool(accounts.user_for_token, self.store, words[1])
        if user is None:
            raise api_error(403, "Invalid token.")
        return user

    def throttle(self, request: Request, user: UserInfo | None) -> None:
        if user is not None:
            key, limits = f"user:{user.id}", self.settings.for_user(user.limits)
        else:
            host = request.client.host if request.client else "unknown"
            key, limits = f"addr:{host}", self.settings
        wait = self.limiter.hit(
            key, [(limits.requests_per_minute, MINUTE), (limits.requests_per_hour, HOUR)]
        )
        if wait is not None:
            raise api_error(429, throttled_message(wait), headers={"Retry-After": str(wait)})

    # ------------------------------------------------------------------ token_auth

    async def token_auth(self, request: Request, _user: UserInfo | None) -> Response:
        """DRF's ObtainAuthToken: a new token for a right username and password."""
        body = await json_body(request)
        if not isinstance(body, dict):
            kind = python_type_name(body)
            raise api_error(
                400,
                item={
                    "non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]
                },
            )
        fields: dict[str, str] = {}
        problems: dict[str, list[str]] = {}
        for name in ("username", "password"):
            value, problem = char_field(body, name, trim=name == "username")
            if problem is not None:
                problems[name] = [problem]
            else:
                fields[name] = value
        if problems:
            raise api_error(400, item=problems)
        user_id = await run_in_threadpool(
            accounts.authenticate, self.store, fields["username"], fields["password"]
        )
        if user_id is None:
            raise api_error(
                400, item={"non_field_errors": ["Unable to log in with provided credentials."]}
            )
        token = await run_in_threadpool(accounts.issue_token, self.store, user_id)
        return ApiResponse({"token": token})

    # ------------------------------------------------------------------ deploy

    async def deploy(self, request: Request, user: UserInfo | None) -> Response:
        """Queue a deploy job; 202 with the status URL in ``Location``.

        Body: ``application/vnd.api+json``, CoralNet's document
        ``{"data": [{"type": "image", "attributes": {"url": ..., "points":
        [{"row": r, "column": c}, ...]}}, ...]}``.

        Or ``multipart/form-data`` (quadrat's extension, to send the images themselves):
        a part named ``data`` holding that same document (a plain field, or a file part),
        and one file part per image (any field name, e.g. ``images``) whose file name the
        document refers to as ``"url": "upload:<file name>"``. Same limits and messages as
        the JSON body, plus: the whole request within ``upload_request_bytes`` and each
        file within ``limits.image_file_bytes`` (413 naming the limit); a url naming no
        uploaded file is a 400 at its pointer. File parts nobody refers to are ignored.
        """
        assert user is not None
        classifier_id = int(request.path_params["classifier_id"])
        limits = self.settings.for_user(user.limits)

        active = await self._db(job_rows.active_job_ids, user.id)
        if len(active) >= limits.max_active_jobs:
            shown = ", ".join(str(i) for i in active[: limits.max_active_jobs])
            raise api_error(
                429,
                f"You already have {limits.max_active_jobs} jobs active (IDs: {shown}). "
                "You must wait until one of them finishes before requesting another job.",
            )

        files: dict[str, UploadFile] = {}
        form: Any = None
        try:
            if media_type_of(request.headers.get("content-type", "")) == MULTIPART:
                form, document, files = await multipart.read_form(request, self.settings, limits)
            else:
                document = await json_body(request)

            source_id = (
                None  # no such row, and more than the database's integers hold
                if classifier_id > MAX_ID
                else await self._db(account_rows.classifier_source, classifier_id)
            )
            if source_id is None or not await run_in_threadpool(
                accounts.may, self.store, user.id, source_id, "viewer"
            ):
                raise api_error(404, _NOT_FOUND_CLASSIFIER)

            try:
                images = validate_deploy(
                    document,
                    images_per_job=limits.images_per_job,
                    points_per_image=limits.points_per_image,
                )
                for i, image in enumerate(images):
                    multipart.check_url(self.settings, i, image.url, files)
                await multipart.check_upload_quota(self._db, user.id, limits, images, files)
                urls = [
                    await multipart.stored_url(self.settings, image.url, files) for image in images
                ]
            except PayloadError as exc:
                raise api_error(400, item=error_item(exc)) from None
        finally:
            if form is not None:
                await form.close()

        job_id = await self._db(
            job_rows.create_job,
            user.id,
            classifier_id,
            [(url, image.points) for url, image in zip(urls, images, strict=True)],
        )
        try:
            await run_in_threadpool(self.queue.enqueue, job_id)
        except Exception:
            # The job is stored; a restarted server queues every unfinished job again.
            log.exception("deploy job %d is stored but could not be queued", job_id)
        return empty(202, {"Location": f"/api/deploy_job/{job_id}/status/"})

    # ------------------------------------------------------------------ jobs

    async def _own_job(self, request: Request, user: UserInfo | None) -> job_rows.JobInfo:
        assert user is not None
        job_id = int(request.path_params["job_id"])
        job = None if job_id > MAX_ID else await self._db(job_rows.find_job, job_id)
        if job is None or job.user_id != user.id:
            raise api_error(404, _NOT_FOUND_JOB)
        return job

    async def status(self, request: Request, user: UserInfo | None) -> Response:
        job = await self._own_job(request, user)
        if job.finished:
            return empty(303, {"Location": f"/api/deploy_job/{job.id}/result/"})
        status = "Pending" if job.status == JobStatus.PENDING else "In Progress"
        attributes = {
            "status": status,
            "successes": job.successes,
            "failures": job.failures,
            "total": job.total,
        }
        return ApiResponse({"data": [{"type": "job", "id": str(job.id), "attributes": attributes}]})

    async def result(self, request: Request, user: UserInfo | None) -> Response:
        job = await self._own_job(request, user)
        if not job.finished:
            raise api_error(409, "This job isn't finished yet")
        images = await self._db(job_rows.job_images, job.id)
        return ApiResponse({"data": [image_result(image) for image in images]})

    # ------------------------------------------------------------------ user

    async def user(self, request: Request, user: UserInfo | None) -> Response:
        assert user is not None
        if request.path_params["username"] != user.username:
            raise api_error(404, "You can only see details for the user you're logged in as")
        limits = self.settings.for_user(user.limits)
        active = await self._db(job_rows.active_job_ids, user.id)
        recent = await self._db(
            job_rows.recently_completed_job_ids, user.id, 2 * limits.max_active_jobs
        )
        return ApiResponse(
            {
                "data": {
                    "active_jobs": [{"type": "jobs", "id": str(i)} for i in active],
                    "recently_completed_jobs": [{"type": "jobs", "id": str(i)} for i in recent],
                },
                "meta": {"max_active_jobs": limits.max_active_jobs},
            }
        )

    # ------------------------------------------------------------------ helpers

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(session, *args)`` in one transaction, off the event loop."""

        def run() -> Any:
            with self.store.session() as session:
                return fn(session, *args)

        return await run_in_threadpool(run)
