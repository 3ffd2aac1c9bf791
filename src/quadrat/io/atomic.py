"""Whole files or nothing: write beside the target, then rename over it.

The one atomic writer of quadrat (CoralNet CSVs, reports, plots, metadata tables, CATAMI
tables, SSL configs, exported backbones, downloaded images and manifests). A reader (or
a crash) never sees half a file: the data goes to a hidden temporary file in the
target's folder (same filesystem, so the rename is atomic), is flushed to disk, and
replaces the target only when the writer finished; on any error the temporary file is
removed and the old target, if any, is untouched.

The file gets the mode any file the user creates gets, ``0o666 & ~umask`` (usually
0644): ``tempfile.mkstemp`` makes 0600, which left every report readable by its owner
only.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: Names :func:`atomic_path` gives its temporary files (``.<name>.<random>.tmp``).
TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")

_UMASK_LOCK = threading.Lock()


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; give what open() would
    finally:
        os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    """Delete temporary files a killed writer left in ``directory`` (not recursive).

    Only for folders one process owns (a download's output): another writer's file in
    progress there would be deleted too.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and TEMPORARY_NAME.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


__all__ = [
    "TEMPORARY_NAME",
    "atomic_file",
    "atomic_path",
    "current_umask",
    "file_mode",
    "remove_stale_temporaries",
    "write_bytes",
    "write_text",
]
