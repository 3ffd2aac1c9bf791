"""quadrat's multipart deploy (beyond CoralNet): the images themselves in the request.

A ``multipart/form-data`` deploy has a part named ``data`` holding CoralNet's JSON document
and one file part per image, which the document names as ``"url": "upload:<file name>"``.
Here: reading the form within its limits, checking each url (an upload that was sent; a
path under the image folder), the user's upload quota, and keeping the bytes
(:mod:`quadrat.service.uploads`). :meth:`quadrat.service.app.App.deploy` calls these in
CoralNet's order of checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from quadrat.service.jsonapi import api_error, parse_json
from quadrat.service.settings import ServiceSettings
from quadrat.service.uploads import UPLOAD_PREFIX
from quadrat.service.validation import payload_error
from quadrat.store import jobs as job_rows


async def read_form(
    request: Request, settings: ServiceSettings, limits: ServiceSettings
) -> tuple[Any, Any, dict[str, UploadFile]]:
    """The form, its ``data`` document (``{}`` when absent) and its files by file name
    (``limits``: the settings with the user's own limits applied)."""
    try:
        form = await request.form(
            max_files=limits.images_per_job,
            max_fields=limits.images_per_job + 10,
            max_part_size=settings.request_bytes,
        )
    except StarletteHTTPException as exc:
        raise api_error(400, f"Multipart form parse error - {exc.detail}") from None
    try:
        files: dict[str, UploadFile] = {}
        document: Any = {}
        for name, value in form.multi_items():
            if name == "data":
                raw = await value.read() if isinstance(value, UploadFile) else value
                document = parse_json(raw.encode() if isinstance(raw, str) else raw)
            elif isinstance(value, UploadFile):
                if not value.filename:
                    continue
                if value.filename in files:
                    raise api_error(
                        400,
                        item={
                            "detail": f"Two uploaded files are named '{value.filename}'.",
                            "source": {"parameter": name},
                        },
                    )
                limit = settings.limits.image_file_bytes
                if value.size is not None and value.size > limit:
                    raise api_error(
                        413,
                        item={
                            "detail": (
                                f"Uploaded file '{value.filename}' is too large: this "
                                f"server takes at most {limit} bytes an image "
                                "(image_file_bytes)."
                            ),
                            "source": {"parameter": name},
                            "meta": {"limit": "image_file_bytes", "max_bytes": limit},
                        },
                    )
                files[value.filename] = value
    except BaseException:
        await form.close()
        raise
    return form, document, files


def check_url(
    settings: ServiceSettings, index: int, url: str, files: dict[str, UploadFile]
) -> None:
    """Refuse a url naming no uploaded file, or a path leaving the image folder."""
    where = ("data", index, "attributes", "url")
    if url.startswith(UPLOAD_PREFIX):
        name = url.removeprefix(UPLOAD_PREFIX)
        if name not in files:
            raise payload_error(f"No file named '{name}' was uploaded with this request.", where)
        return
    if settings.image_folder is None:
        return  # any other string: the worker fetches it or fails that image, as CoralNet
    from quadrat.errors import InputError
    from quadrat.io.paths import resolve_under
    from quadrat.service.fetch import has_scheme

    if not has_scheme(url):
        try:
            resolve_under(settings.image_folder, url, param="url")
        except InputError:
            raise payload_error(
                "Ensure this path is a relative path inside the server's image folder.",
                where,
            ) from None


async def check_upload_quota(
    db: Callable[..., Awaitable[Any]],
    user_id: int,
    limits: ServiceSettings,
    images: Sequence[Any],
    files: dict[str, UploadFile],
) -> None:
    """413 when this request's uploads would take the user over upload_bytes_per_user
    (one user must not fill the disk before retention frees anything)."""
    names = {
        image.url.removeprefix(UPLOAD_PREFIX)
        for image in images
        if image.url.startswith(UPLOAD_PREFIX)
    }
    if not names:
        return
    from quadrat.errors import LimitError
    from quadrat.service import uploads

    datas = []
    for name in sorted(names):
        await files[name].seek(0)
        datas.append(await files[name].read())
    held = await db(job_rows.user_image_names, user_id, uploads.UPLOAD_PREFIX)
    try:
        await run_in_threadpool(uploads.check_upload_quota, limits, held, datas)
    except LimitError as exc:
        limit = limits.upload_bytes_per_user
        raise api_error(
            413,
            item={
                "detail": str(exc),
                "meta": {"limit": "upload_bytes_per_user", "max_bytes": limit},
            },
        ) from None


async def stored_url(settings: ServiceSettings, url: str, files: dict[str, UploadFile]) -> str:
    """What the job stores for a checked url: an upload's bytes are kept first."""
    if not url.startswith(UPLOAD_PREFIX):
        return url
    from quadrat.errors import InputError
    from quadrat.service import uploads

    upload = files[url.removeprefix(UPLOAD_PREFIX)]
    await upload.seek(0)
    data = await upload.read()
    try:
        return str(await run_in_threadpool(uploads.save_upload, settings, data))
    except InputError:
        raise api_error(400, "This server does not keep uploaded images.") from None
