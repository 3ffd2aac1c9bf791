"""Whole files or nothing: write beside the target, then rename over it.

The one atomic writer of quadrat (CoralNet CSVs, reports, plots, metadata tables, CATAMI
tables, SSL configs, exported backbones, downloaded images and manifests). A reader (or
a crash) never sees half a file: the data goes to a hidden temporary file in the
target's folder (same filesystem, so the rename is atomic), is flushed to disk, and
replaces the target only when the writer finished; on any error the temporary file is
removed and the old target, if any, is untouched.

A write that fails for a reason the user can act on (disk full, a read-only folder or
mount, no permission) is a :class:`~quadrat.errors.StateError` naming the target, not an
``OSError`` traceback. A writer killed before its rename leaves its temporary file; the
next write of the same target removes it (a temporary file is stale when no live writer
holds its lock: each writer holds an ``flock`` on its own until it is done).

The file gets the mode any file the user creates gets, ``0o666 & ~umask`` (usually
0644): ``tempfile.mkstemp`` makes 0600, which left every report readable by its owner
only.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from quadrat.errors import StateError

try:  # POSIX: a live writer's temporary file is locked, a killed writer's is not
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Names :func:`atomic_path` gives its temporary files (``.<name>.<random>.tmp``).
TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")

_UMASK_LOCK = threading.Lock()

#: ``errno`` values a user can act on, and what to tell them.
_WRITE_FAULTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    # A file size limit (``ulimit -f``, RLIMIT_FSIZE) or the file system's largest file:
    # as good as a full disk to the user.
    errno.EFBIG: "the file is over the file size limit (ulimit -f) or the file system's",
    errno.EACCES: "permission denied (the folder or file is not writable)",
    errno.EPERM: "permission denied (the folder or file is not writable)",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EISDIR: "a folder has this name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a part of the path is a file, not a folder",
    errno.ENOENT: "its folder cannot be created or written here",
    errno.EBUSY: "the path is in use (a mount point?)",
}


#: Faults only a write raises (a permission error in a writer's body may be its input's).
_WRITE_ONLY_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def write_error(exc: OSError, target: Path, *, own: bool = True) -> StateError | OSError:
    """The error to raise for ``exc`` while writing ``target``: a StateError naming the
    target for faults the user can fix (disk full, read-only, no permission), else ``exc``.

    ``own``: raised by the writer's own folder, temporary file or rename (not by code
    in its body, whose permission errors may concern a file it reads).
    """
    reason = _WRITE_FAULTS.get(exc.errno or 0)
    if reason is None or (not own and exc.errno not in _WRITE_ONLY_FAULTS):
        return exc
    return StateError(f"cannot write this file: {reason}; nothing was written", path=target)


def lock_writer(fd: int) -> bool:
    """Take the writer's lock on ``fd``; False when another live process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_unlocked(candidates: list[Path]) -> list[Path]:
    """Delete the temporaries in ``candidates`` that no live writer holds."""
    removed = []
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if lock_writer(fd):
                path.unlink(missing_ok=True)
                removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def remove_stale_temporaries_of(path: str | Path) -> list[Path]:
    """Delete temporary files that killed writers of ``path`` left beside it."""
    target = Path(path)
    try:
        names = [
            p
            for p in target.parent.glob(f".{_glob_escape(target.name)}.*.tmp")
            if TEMPORARY_NAME.match(p.name) and p.name[len(target.name) + 2 :].count(".") == 1
        ]
    except OSError:
        return []
    return remove_unlocked(names)


def _glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (``glob.escape`` for one path part)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc).

    Elsewhere it is set and restored under a lock: ``os.umask`` is the only portable
    way to read it, and it is process-wide.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a newly created file gets: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that take a file name; renamed on success."""
    target = Path(path)
    if target.is_dir():  # checked first: '' and '.' are folders too
        raise StateError(
            f"cannot write this file: {_WRITE_FAULTS[errno.EISDIR]}; nothing was written",
            path=target,
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries_of(target)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise write_error(exc, target) from exc
    tmp = Path(name)
    try:
        lock_writer(fd)  # held until the rename: a stale temporary is one nobody holds
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; give what open() would
        try:
            yield tmp
        except OSError as exc:
            raise write_error(exc, target, own=False) from exc
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise write_error(exc, target) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextmanager
def atomic_file(
    path: str | Path,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    fsync: bool = True,
) -> Iterator[IO[Any]]:
    """An open temporary file beside ``path``; flushed, synced and renamed on success."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as handle:
        yield handle
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete temporary files killed writers left in ``directory`` (not recursive).

    A live writer's file (locked, see :func:`atomic_path`) is kept.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and TEMPORARY_NAME.match(p.name)]
    return remove_unlocked(stale)


__all__ = [
    "TEMPORARY_NAME",
    "atomic_file",
    "atomic_path",
    "current_umask",
    "file_mode",
    "lock_writer",
    "remove_stale_temporaries",
    "remove_stale_temporaries_of",
    "remove_unlocked",
    "write_bytes",
    "write_error",
    "write_text",
]
