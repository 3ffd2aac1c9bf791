"""Images a client uploaded with its deploy request: kept by content, freed by retention.

An upload is stored once under the SHA-256 of its bytes (``upload:<sha256>`` is its name
in a job and its ``id`` in the results), beside a SQLite project or under the image folder
of a database server. The server's janitor (:func:`quadrat.service.server.clean_up`)
deletes those no unfinished job names once ``upload_retention_hours`` have passed since
their last upload; ``upload_bytes_per_user`` bounds what one user's jobs may hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from quadrat.errors import InputError, LimitError, NotFoundError

if TYPE_CHECKING:
    from quadrat.service.settings import ServiceSettings

#: Prefix of an uploaded image's name in a job (``upload:<sha256 of its bytes>``).
UPLOAD_PREFIX = "upload:"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXPIRED = re.compile(r"^\.[0-9a-f]{64}\.expired$")


def upload_folder(settings: ServiceSettings) -> Path:
    """Where uploaded images are kept: beside a SQLite project (``<project>.uploads``),
    else ``<image_folder>/.uploads`` (shared storage when workers run on other machines).
    """
    database = str(settings.database)
    if database.startswith("sqlite:///"):
        database = database.removeprefix("sqlite:///")
    if "://" not in database:
        return Path(database + ".uploads")
    if settings.image_folder is None:
        raise InputError(
            "uploaded images need a folder on a database server; set image_folder",
            param="image_folder",
        )
    return Path(settings.image_folder) / ".uploads"


def save_upload(settings: ServiceSettings, data: bytes) -> str:
    """Keep an uploaded image's bytes; returns the name a job refers to it by."""
    from quadrat.io.atomic import write_bytes

    settings.limits.check("image_file_bytes", len(data), what="uploaded image (bytes)")
    digest = hashlib.sha256(data).hexdigest()
    folder = upload_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / digest
    try:  # kept already: uploaded again now, so its retention starts again
        os.utime(target)
    except FileNotFoundError:  # new, or being deleted by delete_unused_uploads: write it
        write_bytes(target, data)
    return UPLOAD_PREFIX + digest


def upload_path(settings: ServiceSettings, name: str) -> Path:
    """The file of ``upload:<sha256>`` (NotFoundError when it is not kept here)."""
    digest = name.removeprefix(UPLOAD_PREFIX).lower()
    if not _SHA256.match(digest):
        raise InputError(f"not an uploaded image's name: {name!r}", value=name, param="url")
    path = upload_folder(settings) / digest
    if not path.is_file():
        raise NotFoundError("the uploaded image is no longer kept", value=name, param="url")
    return path


def upload_bytes(settings: ServiceSettings, names: Iterable[str]) -> int:
    """Bytes the kept files of these ``upload:<sha256>`` names hold (gone ones: 0)."""
    total = 0
    for name in set(names):
        with contextlib.suppress(InputError, FileNotFoundError):  # NotFoundError is one
            total += upload_path(settings, name).stat().st_size
    return total


def check_upload_quota(
    settings: ServiceSettings, held: Iterable[str], new: Sequence[bytes]
) -> None:
    """LimitError when a user's kept uploads (``held``: names their jobs use, see
    :func:`quadrat.store.jobs.user_image_names`) plus ``new`` images (an image held counts
    once) are over ``upload_bytes_per_user`` (give the user's settings: a per-user limit)."""
    held = set(held)
    fresh = {hashlib.sha256(data).hexdigest(): len(data) for data in new}
    fresh = {d: n for d, n in fresh.items() if UPLOAD_PREFIX + d not in held}
    total = upload_bytes(settings, held) + sum(fresh.values())
    limit = settings.upload_bytes_per_user
    if total > limit:
        raise LimitError(
            f"uploaded images would hold {total:,} bytes for this user, over the limit "
            f"upload_bytes_per_user = {limit:,} (server setting, or the user's own limits); "
            "they are freed as the user's jobs expire (job_retention_days)",
            value=total,
            param="upload_bytes_per_user",
        )


def delete_unused_uploads(
    settings: ServiceSettings, in_use: Collection[str], *, now: float | None = None
) -> list[str]:
    """Delete kept uploads that no unfinished job names (``in_use``: their
    ``upload:<sha256>`` names) and that were last uploaded more than
    ``settings.upload_retention_hours`` ago; returns the names deleted.

    Safe beside a request saving the same image: :func:`save_upload` refreshes the file's
    time before its job is stored, and a file is moved aside before it is deleted and put
    back if it was uploaded again meanwhile. Leftovers of killed writers go too.
    """
    try:
        folder = upload_folder(settings)
    except InputError:  # a database server without an image folder keeps no uploads
        return []
    if not folder.is_dir():
        return []
    from quadrat.io.atomic import remove_stale_temporaries

    remove_stale_temporaries(folder)
    clock = time.time() if now is None else now
    cutoff = clock - 3600.0 * settings.upload_retention_hours
    deleted = []
    for path in sorted(folder.iterdir()):
        try:
            if _EXPIRED.match(path.name):  # a deletion killed half-way (not one under way)
                if path.stat().st_ctime < clock - 3600:
                    path.unlink()
            elif (
                _SHA256.match(path.name)
                and UPLOAD_PREFIX + path.name not in in_use
                and path.stat().st_mtime < cutoff
                and _delete_aside(path, cutoff)
            ):
                deleted.append(UPLOAD_PREFIX + path.name)
        except FileNotFoundError:  # another server's cleanup took it first
            continue
    return deleted


def _delete_aside(path: Path, cutoff: float) -> bool:
    """Move the file aside, then delete it unless it was uploaded again meanwhile."""
    aside = path.with_name(f".{path.name}.expired")
    path.rename(aside)
    if aside.stat().st_mtime >= cutoff:
        aside.rename(path)
        return False
    aside.unlink()
    return True


__all__ = [
    "UPLOAD_PREFIX",
    "check_upload_quota",
    "delete_unused_uploads",
    "save_upload",
    "upload_bytes",
    "upload_folder",
    "upload_path",
]
