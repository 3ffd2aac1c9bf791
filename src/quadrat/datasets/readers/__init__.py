"""Readers that map survey metadata into the BenthicNet columns (see ``schema.py``).

Every reader returns one row per image with the schema's column names, free extra
columns, and provenance (``source_file``, ``source_line``) so that validation can name
the file and line of a bad row. Readers translate *formats* (EXIF rationals, CoralNet's
centimetres, a Squidle+ point export with one row per point) but leave *values* as
found: :func:`quadrat.datasets.schema.validate_metadata` is the one place that decides
what is a bad latitude or date, the same way for every format.

``dataset`` defaults to the name of the folder the input lies in (an image folder's own
name); ``site`` to the format's site field, else the ``site`` argument, else the dataset
name (a survey with no site field is one site).

:func:`read_metadata` reads any registered format by name (:data:`METADATA_READERS`):

=========== ======================================= ==========================
format      module                                  reader
=========== ======================================= ==========================
csv         :mod:`.generic_csv`                     :func:`read_csv_metadata`
coralnet    :mod:`.coralnet`                        :func:`read_coralnet_metadata`
squidle     :mod:`.squidle`                         :func:`read_squidle`
images      :mod:`.exif_folder`                     :func:`read_image_folder`
=========== ======================================= ==========================

GPX tracks (:mod:`.gpx`) and depth logs (:mod:`.depth_log`) are not per-image tables:
they position photos or set their depth by time (:func:`match_gpx`, :func:`match_depth`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pandas as pd

from quadrat.datasets.readers._common import (
    METADATA_READERS,
    MetadataReader,
    Progress,
    parse_clock_offset,
    read_csv_strings,
)
from quadrat.datasets.readers.coralnet import read_coralnet_metadata
from quadrat.datasets.readers.depth_log import match_depth, read_depth_log, read_depth_logs
from quadrat.datasets.readers.exif_folder import read_exif_metadata, read_image_folder
from quadrat.datasets.readers.generic_csv import CSV_ALIASES, read_csv_metadata, resolve_columns
from quadrat.datasets.readers.gpx import match_gpx, read_gpx, read_gpx_tracks
from quadrat.datasets.readers.squidle import read_squidle
from quadrat.errors import InputError
from quadrat.io.images import IMAGE_SUFFIXES

#: Image files read by :func:`read_image_folder` (the one set, :data:`IMAGE_SUFFIXES`).
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(sorted(IMAGE_SUFFIXES))


def default_format(path: str | Path) -> str:
    """The format assumed when none is named: "images" for a folder, else "csv"."""
    return "images" if Path(path).is_dir() else "csv"


def _is_set(value: object) -> bool:
    """Whether an option was given (None, False and empty mappings mean "not given")."""
    if value is None or value is False:
        return False
    return not (isinstance(value, dict | list | tuple) and len(value) == 0)


#: Options every format takes, used only by those readers that can (a progress callback).
_OPTIONAL = frozenset({"progress"})


def _accepts(reader: MetadataReader) -> set[str]:
    return set(inspect.signature(reader).parameters) - {"path", "root"}


def read_metadata(path: str | Path, format: str | None = None, **options: Any) -> pd.DataFrame:
    """Read survey metadata of a registered ``format`` into the schema's columns.

    ``format`` None means "images" for a folder and "csv" otherwise. ``options`` go to the
    format's reader (``dataset``, ``site``, ``platform``, ``progress``; ``columns`` and
    ``depth_positive_up`` for csv); an option the format has no use for is refused rather
    than silently ignored (``progress`` goes to the readers that report progress).

    >>> sorted(METADATA_READERS.list())
    ['coralnet', 'csv', 'images', 'squidle']
    """
    name = default_format(path) if format is None else str(format)
    if name not in METADATA_READERS:
        raise InputError(METADATA_READERS.unknown_message(name), value=name, param="format")
    reader = METADATA_READERS.get(name)
    accepted = _accepts(reader)
    for option, value in options.items():
        if option in accepted or option in _OPTIONAL or not _is_set(value):
            continue
        users = [f for f in METADATA_READERS.list() if option in _accepts(METADATA_READERS.get(f))]
        where = f"format {' or '.join(users)} only" if users else "no metadata format"
        raise InputError(
            f"option {option} applies to {where}, not to {name}", value=value, param=option
        )
    return reader(path, **{k: v for k, v in options.items() if k in accepted and _is_set(v)})


__all__ = [
    "CSV_ALIASES",
    "IMAGE_EXTENSIONS",
    "METADATA_READERS",
    "MetadataReader",
    "Progress",
    "default_format",
    "match_depth",
    "match_gpx",
    "parse_clock_offset",
    "read_coralnet_metadata",
    "read_csv_metadata",
    "read_csv_strings",
    "read_depth_log",
    "read_depth_logs",
    "read_exif_metadata",
    "read_gpx",
    "read_gpx_tracks",
    "read_image_folder",
    "read_metadata",
    "read_squidle",
    "resolve_columns",
]
