"""Containment: a name read from a file is resolved under its root folder, or refused.

A CSV's ``Name`` column, a manifest's image name, a request's file name: each is joined
to a folder the user chose. ``../../etc/passwd``, ``/etc/passwd``, ``C:\\x`` or a symlink
pointing out of the folder would otherwise read (or write) a file the user never meant
to share. :func:`resolve_under` is the one check; :func:`resolve_all_under` checks every
row of a table first, so the error lists all the offending rows, not just the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from quadrat.errors import InputError

#: How many offending rows an error lists before it says "and N more".
SHOWN_ROWS = 10

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def _problem(root: Path, relative: str) -> str | None:
    """Why ``relative`` may not be joined to ``root`` (None when it may)."""
    if not relative or not relative.strip():
        return "is empty"
    if "\x00" in relative:
        return "holds a NUL character"
    if relative.startswith(("/", "\\")) or _DRIVE_RE.match(relative):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", relative):
        return "climbs out of the folder with '..'"
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        return "is a symlink that points out of the folder"
    return None


def resolve_under(
    root: str | Path,
    relative: str,
    *,
    path: str | Path | None = None,
    line: int | None = None,
    param: str | None = None,
) -> Path:
    """``root / relative`` once it stays inside ``root`` (no ``..``, absolute path or symlink out).

    The returned path is the joined one (not resolved), so a message shows what the user
    wrote. ``path``/``line`` name the file and row the name came from in the error.
    """
    root = Path(root)
    reason = _problem(root, relative)
    if reason is not None:
        raise InputError(
            f"file name {relative!r} {reason}; names must be relative paths inside {root}",
            path=path,
            line=line,
            value=relative,
            param=param,
        )
    return root / relative


def resolve_all_under(
    root: str | Path,
    names: Iterable[tuple[str, int | None]],
    *,
    path: str | Path | None = None,
    param: str | None = None,
) -> dict[str, Path]:
    """Resolve every ``(name, line)`` under ``root``; one error listing all offending rows.

    Each distinct name is checked once (its first line is reported). The error's ``line``
    is the first offending row, ``value`` the list of offending names.
    """
    root = Path(root)
    resolved: dict[str, Path] = {}
    bad: list[tuple[str, int | None, str]] = []
    seen: set[str] = set()
    for name, line in names:
        if name in seen:
            continue
        seen.add(name)
        reason = _problem(root, name)
        if reason is None:
            resolved[name] = root / name
        else:
            bad.append((name, line, reason))
    if bad:
        shown = "; ".join(
            f"{'line ' + str(line) + ': ' if line is not None else ''}{name!r} {reason}"
            for name, line, reason in bad[:SHOWN_ROWS]
        )
        more = f"; and {len(bad) - SHOWN_ROWS} more" if len(bad) > SHOWN_ROWS else ""
        raise InputError(
            f"{len(bad)} file name(s) point outside {root} (names must be relative paths "
            f"inside it): {shown}{more}",
            path=path,
            line=bad[0][1],
            value=[name for name, _, _ in bad],
            param=param,
        )
    return resolved


__all__ = ["SHOWN_ROWS", "resolve_all_under", "resolve_under"]
