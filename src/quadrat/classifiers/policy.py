"""When a source trains a new classifier, and when it keeps it (CoralNet's rules).

CoralNet trains a source's first classifier once 20 images are confirmed, retrains when the
confirmed images grow by 10 % since the last training, and keeps a new classifier only when
its accuracy is at least 1 % (relative) better than the current one. The factors are
configurable (users asked for that: CoralNet issue #535).

Arithmetic is exact (decimal fractions of the factors as written): with floats,
``ceil(1.1 * 50)`` is 56, not 55, because ``1.1 * 50 == 55.00000000000001`` (112 of the
counts below 2,000 hit this).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

from quadrat.errors import InputError


def _exact(value: float) -> Fraction:
    """The decimal a person wrote (``1.1`` -> 11/10), not the binary float's exact value.

    ``repr`` of a float is the shortest decimal that reads back as the same float.
    """
    return Fraction(repr(float(value)))


@dataclass(frozen=True)
class TrainingPolicy:
    """A source's training rules: first at ``min_images``, retrain at x ``retrain_factor``,
    accept at x ``accept_factor`` of the previous accuracy."""

    min_images: int = 20
    retrain_factor: float = 1.1
    accept_factor: float = 1.01

    def __post_init__(self) -> None:
        if isinstance(self.min_images, bool) or int(self.min_images) != self.min_images:
            raise InputError("min_images must be an integer", value=self.min_images)
        if self.min_images < 1:
            raise InputError("min_images must be at least 1", value=self.min_images)
        if not math.isfinite(self.retrain_factor) or self.retrain_factor < 1:
            raise InputError(
                "retrain_factor must be a finite number >= 1", value=self.retrain_factor
            )
        if not math.isfinite(self.accept_factor) or self.accept_factor <= 0:
            raise InputError("accept_factor must be a finite number > 0", value=self.accept_factor)

    def next_count(self, last_trained_images: int | None) -> int:
        """The confirmed-image count at which the next training is due."""
        if last_trained_images is None:
            return self.min_images
        _check_count("last_trained_images", last_trained_images)
        due = math.ceil(_exact(self.retrain_factor) * last_trained_images)
        return max(self.min_images, due)

    def should_train(self, n_confirmed_images: int, last_trained_images: int | None) -> bool:
        """True when a (re)training is due for this many confirmed images."""
        _check_count("n_confirmed_images", n_confirmed_images)
        return n_confirmed_images >= self.next_count(last_trained_images)

    def should_accept(self, new_accuracy: float, previous_accuracy: float | None) -> bool:
        """True when the new classifier replaces the current one (or there is none)."""
        _check_accuracy("new_accuracy", new_accuracy)
        if previous_accuracy is None:
            return True
        _check_accuracy("previous_accuracy", previous_accuracy)
        return _exact(new_accuracy) >= _exact(self.accept_factor) * _exact(previous_accuracy)


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise InputError(f"{name} must be a non-negative integer", value=value)


def _check_accuracy(name: str, value: float) -> None:
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and 0.0 <= value <= 1.0):
        raise InputError(f"{name} must be a number within [0, 1]", value=value)
