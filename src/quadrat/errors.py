"""Every exception quadrat raises, in one place (as scikit-learn's ``exceptions.py``).

Each message names the file, line, point or value at fault, so that ``str(error)`` alone
tells a user what to fix. Classes subclass the builtin a caller would expect as well as
:class:`QuadratError` (as torchgeo's ``DatasetNotFoundError(FileNotFoundError)``):
``except ValueError`` catches bad input, ``except FileNotFoundError`` a missing file.

The library never speaks of command-line flags. An error that concerns one parameter says
so with ``param=`` (the Python name, e.g. ``"threshold"``); the CLI turns it into its flag
(``--threshold``) and picks the exit status from :attr:`QuadratError.exit_code`.

The families:

=====================  =====================  ==========================================
class                  also a                 for
=====================  =====================  ==========================================
InputError             ValueError             bad values in files, rows, arguments
LimitError             ValueError             an input over a named, configurable limit
NotFoundError          FileNotFoundError      a missing file, source, classifier, job
ConflictError          -                      already exists, already imported, locked
StateError             -                      the project is not in a state to do that
MissingDependencyError ImportError            an optional extra is not installed
=====================  =====================  ==========================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class QuadratError(Exception):
    """Base class for errors a user can act on (bad input, missing files, wrong state).

    ``path``, ``line`` and ``value`` say where and what; ``param`` names the argument at
    fault (a Python parameter name, never a CLI flag).
    """

    #: Exit status of the command line for this family (documented in docs/cli.md).
    exit_code: int = 1

    def __init__(
        self,
        message: str = "",
        *,
        path: str | Path | None = None,
        line: int | None = None,
        value: object = None,
        param: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.value = value
        self.param = param
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(f"{where}{message}")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Ray workers, multiprocessing): keep the fields.
        return (
            _rebuild,
            (type(self), self.message, self.path, self.line, self.value, self.param),
        )


def _rebuild(
    cls: type[QuadratError],
    message: str,
    path: Path | None,
    line: int | None,
    value: object,
    param: str | None,
) -> QuadratError:
    return cls(message, path=path, line=line, value=value, param=param)


# --------------------------------------------------------------------------- families


class InputError(QuadratError, ValueError):
    """Bad user input; the message says where (file, line) and what (value)."""


class LimitError(InputError):
    """An input exceeds a named, configurable limit (points per image, rows, bytes...)."""

    exit_code = 6


class NotFoundError(QuadratError, FileNotFoundError):
    """A file, source, classifier, label or job that does not exist."""

    exit_code = 4


class ConflictError(QuadratError):
    """The thing already exists, was already imported, or another process holds it."""

    exit_code = 5


class StateError(QuadratError):
    """The project is not in a state that allows the step (e.g. nothing extracted yet)."""


class MissingDependencyError(QuadratError, ImportError):  # type: ignore[misc]  # path: see below
    """An optional dependency (a ``quadrat[extra]``) is not installed.

    ``ImportError`` types ``path`` as ``str | None``; here it is the quadrat ``Path | None``
    (None in practice: a missing package has no file), hence the ignore above.
    """

    exit_code = 7


def missing_dependency(module: str, extra: str, *, purpose: str = "") -> MissingDependencyError:
    """The error to raise when ``import module`` fails: says which extra installs it.

    >>> print(missing_dependency("ray", "cluster", purpose="Ray extraction"))
    Ray extraction needs 'ray', which is not installed: pip install 'quadrat[cluster]'
    """
    what = f"{purpose} needs {module!r}" if purpose else f"{module!r} is needed"
    return MissingDependencyError(
        f"{what}, which is not installed: pip install 'quadrat[{extra}]'", value=module
    )


# --------------------------------------------------------------------------- input


class CsvFormatError(InputError):
    """A CSV file lacks a required column or holds an unparseable value."""


class ImageError(InputError):
    """An image file is missing, truncated, or cannot be decoded."""


class UnknownLabelError(InputError):
    """An annotation uses a label that is not in the source's labelset."""


class UnknownNodeError(InputError):
    """A code, name or path that names no node (or several) of the CATAMI tree."""


class PointOutsideImageError(InputError):
    """A point's row or column lies outside its image."""


class WeightsError(InputError):
    """A weights file is missing, does not match the extractor's layout, or was not given."""


class CacheEntryError(WeightsError):
    """An on-disk model cache entry exists but cannot be trusted (damaged, or another
    network's); the cache rebuilds it with a warning instead of raising this further."""


class TrainingDataError(InputError):
    """The labelled points cannot train a classifier (too few points, labels or images)."""


class ClassifierFormatError(InputError):
    """Stored classifier bytes are not a quadrat classifier, are corrupt, or too new."""


class PayloadError(InputError):
    """A request document breaks an API rule; ``value`` is the JSON pointer to the element.

    The message is CoralNet's (``Ensure this element is a hash.``); the pointer is RFC 6901
    as CoralNet writes it (``/data/0/attributes/points/1``, ``/`` for the whole document).
    """

    @property
    def pointer(self) -> str:
        return str(self.value)


# --------------------------------------------------------------------------- conflict / state


class DuplicateImportError(ConflictError):
    """The same image (or annotation) is already stored in the source."""


class ProjectError(StateError):
    """The project store is missing, of an unknown schema version, or in the wrong state."""


class DeviceError(StateError):
    """The requested device (e.g. ``cuda``) is not available on this machine."""


# --------------------------------------------------------------------------- runtime


class RayClusterError(QuadratError):
    """Ray is missing, the cluster cannot be reached, or a worker failed."""


class ExtractorMismatchError(RayClusterError):
    """A worker's copy of the extractor has another key than the driver's."""


class FetchError(QuadratError):
    """One failed download attempt; ``retryable`` says whether another may succeed."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool = False,
        http_status: int | None = None,
        retry_after: float | None = None,
        value: object = None,
    ) -> None:
        super().__init__(reason, value=value)
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_fetch,
            (self.message, self.retryable, self.http_status, self.retry_after, self.value),
        )


def _rebuild_fetch(
    reason: str,
    retryable: bool,
    http_status: int | None,
    retry_after: float | None,
    value: object,
) -> FetchError:
    return FetchError(
        reason,
        retryable=retryable,
        http_status=http_status,
        retry_after=retry_after,
        value=value,
    )


__all__ = [
    "CacheEntryError",
    "ClassifierFormatError",
    "ConflictError",
    "CsvFormatError",
    "DeviceError",
    "DuplicateImportError",
    "ExtractorMismatchError",
    "FetchError",
    "ImageError",
    "InputError",
    "LimitError",
    "MissingDependencyError",
    "NotFoundError",
    "PointOutsideImageError",
    "ProjectError",
    "QuadratError",
    "RayClusterError",
    "StateError",
    "TrainingDataError",
    "UnknownLabelError",
    "UnknownNodeError",
    "WeightsError",
    "missing_dependency",
]
