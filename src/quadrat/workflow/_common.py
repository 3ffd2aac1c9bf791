"""What the workflow steps share: the progress callback type and argument checks."""

from __future__ import annotations

from collections.abc import Callable

from quadrat.errors import InputError

#: ``progress(description, done, total)``; the CLI draws it as a rich progress bar.
Progress = Callable[[str, int, int], None]


def no_progress(_description: str, _done: int, _total: int) -> None:
    """The default ``progress``: report nothing."""
    return None


def check_threshold(threshold: float | None, param: str = "threshold") -> None:
    """A confidence threshold must lie in [0, 1] (None switches alleviation off).

    >>> check_threshold(0.9)
    >>> check_threshold(1.5)
    Traceback (most recent call last):
    ...
    quadrat.errors.InputError: confidence threshold must lie in [0, 1], not 1.5
    """
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(
            f"confidence threshold must lie in [0, 1], not {threshold}",
            value=threshold,
            param=param,
        )
