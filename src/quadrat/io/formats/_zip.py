"""ZIP archives of annotation files (BIIGLE's report download, CoralNet's
``annotations_cpc.zip``), read without trusting the archive and written atomically.

A ZIP from someone else may hold a member named ``../../.bashrc`` or ``/etc/passwd``, a
symbolic link, thousands of members, or a few kilobytes that inflate to gigabytes (a zip
bomb). Reading here:

- checks every member's name, also of members that are skipped: no absolute path, drive
  or ``..`` part, no control character, no link, no encryption (:func:`check_member_name`);
- counts members against ``zip_members``, each member's size against ``csv_bytes`` (they
  are text files), all of them together against ``zip_bytes``, and each member's
  inflation ratio against ``zip_ratio`` (members over :data:`RATIO_FLOOR` bytes only: a
  tiny file of blanks legitimately shrinks a hundredfold);
- unpacks wanted members under generated names in a private temporary folder (never
  under their own names), counting the bytes actually inflated, so a member whose
  header lies about its size is stopped at the limit too.

``zip_members``, ``zip_bytes`` and ``zip_ratio`` are :class:`~quadrat.limits.Limits`
fields (each with its environment variable). Errors name the archive and the member
(``archive.zip/member``).
"""

from __future__ import annotations

import stat
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from quadrat.errors import InputError
from quadrat.io.atomic import atomic_file
from quadrat.limits import Limits, current

_MIB = 1 << 20

#: Members smaller than this are not held to ``zip_ratio``.
RATIO_FLOOR = 1 * _MIB
#: Bytes read from a member at a time while unpacking.
_CHUNK = 1 * _MIB
#: Folders and files that archivers add and nobody means as data (macOS Finder).
_JUNK_PREFIXES = ("__MACOSX/",)


def is_zip(path: str | Path) -> bool:
    """Whether ``path`` is a ZIP archive (by its content, not its name)."""
    return zipfile.is_zipfile(path)


def check_member_name(name: str, *, archive: str | Path) -> PurePosixPath:
    """A member's name as a relative path, or an InputError when it could leave a folder.

    Backslashes count as separators (Windows archivers write them).
    """
    where = f"{archive}/{name}"
    if not name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InputError(
            f"member name {name!r} is empty or holds control characters", path=archive, value=name
        )
    text = name.replace("\\", "/")
    first = text.split("/", 1)[0]
    if text.startswith("/") or ":" in first:
        raise InputError(
            f"member name {name!r} is an absolute path; a ZIP member must be relative",
            path=where,
            value=name,
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(
            f"member name {name!r} climbs out of the archive ('..')", path=where, value=name
        )
    if not parts:
        raise InputError(f"member name {name!r} names no file", path=where, value=name)
    return PurePosixPath(*parts)


@dataclass(frozen=True)
class Member:
    """One unpacked member: its name in the archive and the private file holding it."""

    name: str
    file: Path
    #: ``archive/member``, for error messages.
    where: str


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


@contextmanager
def unpack(
    path: str | Path,
    *,
    suffixes: tuple[str, ...],
    limits: Limits | None = None,
    what: str = "archive",
) -> Iterator[list[Member]]:
    """The members whose name ends in one of ``suffixes`` (any case), unpacked safely.

    Every member is checked (see the module doc); the files exist until the block ends.
    An archive with no wanted member is an InputError naming ``what`` it should hold.
    """
    path = Path(path)
    limits = current(limits)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable ZIP archive ({exc})", path=path) from exc
    with archive, tempfile.TemporaryDirectory(prefix="quadrat-zip-") as tmp:
        infos = archive.infolist()
        limits.check("zip_members", len(infos), what="ZIP has too many members", path=str(path))
        wanted: list[zipfile.ZipInfo] = []
        total = 0
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            relative = check_member_name(name, archive=path)
            where = f"{path}/{name}"
            if info.is_dir():
                continue
            if _is_link(info):
                raise InputError(f"member {name!r} is a symbolic link", path=where, value=name)
            if info.flag_bits & 0x1:
                raise InputError(f"member {name!r} is encrypted", path=where, value=name)
            key = str(relative)
            if key in seen:
                raise InputError(f"two members are named {name!r}", path=where, value=name)
            seen.add(key)
            limits.check("csv_bytes", info.file_size, what="ZIP member is too large", path=where)
            total += info.file_size
            limits.check("zip_bytes", total, what="ZIP unpacks too large", path=str(path))
            if info.file_size > RATIO_FLOOR:
                ratio = info.file_size // max(1, info.compress_size)
                limits.check(
                    "zip_ratio",
                    ratio,
                    what="ZIP member inflates too much (unpacked/packed size)",
                    path=where,
                )
            junk = name.startswith(_JUNK_PREFIXES) or relative.name.startswith("._")
            if not junk and relative.name.lower().endswith(suffixes):
                wanted.append(info)
        if not wanted:
            raise InputError(f"no {' or '.join(suffixes)} file in this ZIP ({what})", path=path)
        members = []
        inflated = 0
        for k, info in enumerate(sorted(wanted, key=lambda i: i.filename)):
            where = f"{path}/{info.filename}"
            target = Path(tmp) / f"{k}{PurePosixPath(info.filename).suffix.lower()}"
            try:
                with archive.open(info) as source, target.open("wb") as out:
                    size = 0
                    while chunk := source.read(_CHUNK):
                        size += len(chunk)
                        inflated += len(chunk)
                        limits.check("csv_bytes", size, what="ZIP member is too large", path=where)
                        limits.check(
                            "zip_bytes", inflated, what="ZIP unpacks too large", path=where
                        )
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
                raise InputError(f"cannot unpack this member ({exc})", path=where) from exc
            members.append(Member(info.filename, target, where))
        yield members


def write_zip(path: str | Path, members: Iterable[tuple[str, bytes]]) -> int:
    """Write ``(name, bytes)`` members (deflated) to ``path`` atomically; returns how many.

    Names are checked as on reading, so an archive quadrat writes never holds a name that
    leaves the folder it is unpacked in.
    """
    stamp = time.localtime()[:6]
    count = 0
    seen: set[str] = set()
    with atomic_file(path, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for name, data in members:
            relative = str(check_member_name(name, archive=path))
            if relative.lower() in seen:
                raise InputError(f"two members would be named {relative!r}", path=path)
            seen.add(relative.lower())
            info = zipfile.ZipInfo(relative, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
            count += 1
    return count


__all__ = [
    "RATIO_FLOOR",
    "Member",
    "check_member_name",
    "is_zip",
    "unpack",
    "write_zip",
]
