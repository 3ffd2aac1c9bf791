"""Errors raised by the classifiers package.

They subclass ``quadrat.errors`` classes so the CLI prints them as one line; the training
error is also a ``ValueError`` so scikit-learn tooling (``check_estimator``, pipelines) sees
the exception type it expects from a bad ``fit`` call.
"""

from __future__ import annotations

from quadrat.errors import InputError, QuadratError


class TrainingDataError(InputError, ValueError):
    """The labelled points cannot train a classifier (too few points, labels or images)."""


class ClassifierFormatError(QuadratError):
    """Stored classifier bytes are not a quadrat classifier, are corrupt, or too new."""
