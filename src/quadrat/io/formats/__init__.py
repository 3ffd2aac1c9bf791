"""Annotation formats of other tools: one module per format, each with pure read/write
functions on a *point table* (see :mod:`quadrat.io.formats._common`), listed in a registry.

``get_format(name)`` and ``list_formats()`` load the format modules on first use, so
``import quadrat.io.formats`` stays light. What each format carries (labels, scores,
positions, cover) is in its :class:`FormatInfo`; ``quadrat formats`` prints the table.
"""

from __future__ import annotations

import importlib

from quadrat.io.formats.registry import FORMATS, FormatInfo

#: The format modules; importing one registers its formats.
MODULES = (
    "quadrat.io.formats.points_csv",
    "quadrat.io.formats.cpce",
    "quadrat.io.formats.viame",
    "quadrat.io.formats.coco",
    "quadrat.io.formats.geojson",
    "quadrat.io.formats.biigle",
    "quadrat.io.formats.squidle",
)


def _load() -> None:
    for module in MODULES:
        importlib.import_module(module)


def get_format(name: str) -> FormatInfo:
    """The format registered as ``name`` (InputError with a did-you-mean otherwise)."""
    _load()
    return FORMATS.get(name)


def list_formats(pattern: str | None = None) -> list[FormatInfo]:
    """Every registered format (fnmatch ``pattern`` on the name), sorted by name."""
    _load()
    return [FORMATS.get(name) for name in FORMATS.list(pattern)]


__all__ = ["FORMATS", "FormatInfo", "get_format", "list_formats"]
