"""Actionable exceptions: every message names the file, line, point or value at fault.

The CLI prints ``str(error)`` as one line and exits non-zero; nothing else is needed
to tell a user what to fix.
"""

from __future__ import annotations

from pathlib import Path


class QuadratError(Exception):
    """Base class for errors a user can act on (bad input, missing files, wrong state)."""


class InputError(QuadratError):
    """Bad user input; the message says where (file, line) and what (value)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        value: object = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.value = value
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(f"{where}{message}")


class CsvFormatError(InputError):
    """A CSV file lacks a required column or holds an unparseable value."""


class ImageError(InputError):
    """An image file is missing, truncated, or cannot be decoded."""


class UnknownLabelError(InputError):
    """An annotation uses a label that is not in the source's labelset."""


class PointOutsideImageError(InputError):
    """A point's row or column lies outside its image."""


class DuplicateImportError(QuadratError):
    """The same image (or annotation) is already stored in the source."""


class WeightsError(QuadratError):
    """A weights file is missing or does not match the extractor's layout."""


class ProjectError(QuadratError):
    """The project store is missing, of an unknown schema version, or in the wrong state."""
