"""The registry of annotation formats and what each one supports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quadrat._registry import Registry


@dataclass(frozen=True)
class FormatInfo:
    """One format: its name, what it is, and its reader and writer (None: not supported).

    ``read(path, limits=None)`` returns a point table (or, for ``kind="labelset"``, a
    labelset table); ``write(table, path, **options)`` writes one and returns the number
    of records written.
    """

    name: str
    description: str
    #: "points" (points on images), "labelset" (a label vocabulary) or "map" (GeoJSON).
    kind: str
    #: What the format holds, in words ("positions, labels, notes").
    carries: str
    #: File suffix written by default (".csv", ".json", "" for a folder).
    suffix: str
    read: Callable[..., Any] | None = None
    write: Callable[..., int] | None = None

    @property
    def imports(self) -> bool:
        return self.read is not None

    @property
    def exports(self) -> bool:
        return self.write is not None


FORMATS: Registry[FormatInfo] = Registry("format")


def register(info: FormatInfo) -> FormatInfo:
    """Add ``info`` to :data:`FORMATS` under its name."""
    return FORMATS.register(info.name)(info)


__all__ = ["FORMATS", "FormatInfo", "register"]
