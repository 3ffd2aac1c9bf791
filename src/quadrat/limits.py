"""Named, configurable limits on inputs: the one home of "how big is too big".

A file or request from someone else must not make quadrat allocate without bound
(``m_1000000000`` points, a decompression-bomb PNG, a multi-gigabyte CSV). Each limit has a
name, a documented default (CoralNet's where it has one) and an environment variable that
overrides it; functions that check a limit take ``limits: Limits | None`` (None: the
defaults with the environment applied, read at call time).

=====================  ==============================  ===========================  =========
field                  environment variable            default                      CoralNet
=====================  ==============================  ===========================  =========
points_per_image       QUADRAT_MAX_POINTS_PER_IMAGE    1,000                        yes
pixels_per_image       QUADRAT_MAX_PIXELS_PER_IMAGE    100,000,000                  yes
image_file_bytes       QUADRAT_MAX_IMAGE_FILE_BYTES    30 MiB                       yes
csv_bytes              QUADRAT_MAX_CSV_BYTES           512 MiB                      no [1]
csv_rows               QUADRAT_MAX_CSV_ROWS            5,000,000                    no [1]
download_bytes         QUADRAT_MAX_DOWNLOAD_BYTES      100 MiB                      no
download_seconds       QUADRAT_DOWNLOAD_DEADLINE_S     300 (total, per file)        no
zip_members            QUADRAT_MAX_ZIP_MEMBERS         10,000                       no
zip_bytes              QUADRAT_MAX_ZIP_BYTES           512 MiB (unpacked, in all)   no
zip_ratio              QUADRAT_MAX_ZIP_RATIO           100 (unpacked / packed)      no
label_tree_nodes       QUADRAT_MAX_LABEL_TREE_NODES    10,000                       no
label_tree_depth       QUADRAT_MAX_LABEL_TREE_DEPTH    64                           no
=====================  ==============================  ===========================  =========

[1] CoralNet's upload form takes CSVs of up to 30 MB; a CoralNet *export* of a large
source is bigger, and quadrat reads those locally, so the CSV limits are set to about
5 million annotation rows.

A :class:`~quadrat.errors.LimitError` says which limit, the value and how to raise it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from quadrat.errors import InputError, LimitError

#: Environment variable of each limit (see the module doc).
ENV_VARS: dict[str, str] = {
    "points_per_image": "QUADRAT_MAX_POINTS_PER_IMAGE",
    "pixels_per_image": "QUADRAT_MAX_PIXELS_PER_IMAGE",
    "image_file_bytes": "QUADRAT_MAX_IMAGE_FILE_BYTES",
    "csv_bytes": "QUADRAT_MAX_CSV_BYTES",
    "csv_rows": "QUADRAT_MAX_CSV_ROWS",
    "download_bytes": "QUADRAT_MAX_DOWNLOAD_BYTES",
    "download_seconds": "QUADRAT_DOWNLOAD_DEADLINE_S",
    "zip_members": "QUADRAT_MAX_ZIP_MEMBERS",
    "zip_bytes": "QUADRAT_MAX_ZIP_BYTES",
    "zip_ratio": "QUADRAT_MAX_ZIP_RATIO",
    "label_tree_nodes": "QUADRAT_MAX_LABEL_TREE_NODES",
    "label_tree_depth": "QUADRAT_MAX_LABEL_TREE_DEPTH",
}

_MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one input may ask for (see the module doc for the defaults)."""

    #: Points on one image, generated or imported (CoralNet: 1,000).
    points_per_image: int = 1_000
    #: Pixels (width x height) of one image we decode (CoralNet/pyspacer: 1e8).
    pixels_per_image: int = 100_000_000
    #: Bytes of one image file (CoralNet's upload limit: 30 MB).
    image_file_bytes: int = 30 * _MIB
    #: Bytes of one CSV file, checked before it is read.
    csv_bytes: int = 512 * _MIB
    #: Data rows of one CSV file.
    csv_rows: int = 5_000_000
    #: Bytes of one downloaded file.
    download_bytes: int = 100 * _MIB
    #: Seconds one download may take in total (not per read).
    download_seconds: float = 300.0
    #: Files in one ZIP archive we read (BIIGLE reports, CPCe archives).
    zip_members: int = 10_000
    #: Bytes all members of one ZIP archive unpack to.
    zip_bytes: int = 512 * _MIB
    #: Largest unpacked / packed size of one ZIP member (a zip bomb inflates far more).
    zip_ratio: int = 100
    #: Nodes of a label tree for hierarchical answers (a nodes x nodes matrix is built;
    #: CATAMI v1.4 has 289, a large BIIGLE tree a few thousand).
    label_tree_nodes: int = 10_000
    #: Levels of a label tree (CATAMI v1.4: 8).
    label_tree_depth: int = 64

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InputError(
                    f"limit {f.name} must be a positive number, got {value!r}",
                    value=value,
                    param="limits",
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each overridden by its environment variable when that is set."""
        env = os.environ if environ is None else environ
        changes: dict[str, int | float] = {}
        for f in fields(cls):
            text = env.get(ENV_VARS[f.name], "").strip()
            if not text:
                continue
            try:
                number = float(text.replace("_", ""))
            except ValueError as exc:
                raise InputError(
                    f"environment variable {ENV_VARS[f.name]} must be a number, got {text!r}",
                    value=text,
                ) from exc
            changes[f.name] = number if f.name == "download_seconds" else int(number)
        return replace(cls(), **changes)  # type: ignore[arg-type]

    def check(
        self,
        name: str,
        value: int | float,
        *,
        what: str,
        path: str | Path | None = None,
        line: int | None = None,
    ) -> None:
        """Raise :class:`LimitError` when ``value`` is over the limit ``name``.

        ``what`` describes the value in the message (e.g. ``"points per image"``).
        """
        limit = getattr(self, name)
        if value <= limit:
            return
        raise LimitError(
            f"{what}: {value:,} is over the limit {name} = {limit:,}; raise it with "
            f"Limits({name}=...) or the environment variable {ENV_VARS[name]}",
            path=path,
            line=line,
            value=value,
            param="limits",
        )


def current(limits: Limits | None = None) -> Limits:
    """``limits`` when given, else the defaults with the environment applied (read now)."""
    return limits if limits is not None else Limits.from_env()


__all__ = ["ENV_VARS", "Limits", "current"]
