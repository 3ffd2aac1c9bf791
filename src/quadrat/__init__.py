"""quadrat: seafloor photographs to ecological data.

The public API, in the spirit of scikit-learn and timm: a small surface, everything else
is internal. A whole workflow::

    import quadrat

    with quadrat.Project.create("survey.db") as project:
        reef = project.create_source("reef", labelset="labelset.csv", point_spec="m_30")
        reef.import_annotations("annotations.csv", "images/")
        reef.extract("texture")
        outcome = reef.train()
        reef.classify(threshold=0.9)
        reef.export_cover("cover.csv")

=========================  ==================================================
:class:`Project`           a project file (or database URL) and its sources
:class:`Source`            one survey: import, points, extract, train, classify,
                           covers, exports, reports, the classifier history
:func:`create_extractor`   build a feature extractor by name (``texture``, CNNs)
:func:`list_extractors`    the registered extractor names
summaries                  :class:`ImportSummary`, :class:`ExtractSummary`,
                           :class:`TrainOutcome`, :class:`ClassifySummary`,
                           :class:`ClassifierInfo`, :class:`SourceReport`
datasets                   :func:`read_metadata`, :func:`subsample_sites`,
                           :func:`spatial_partition`
errors                     :class:`QuadratError` and its families
                           (:mod:`quadrat.errors`)
=========================  ==================================================

Names are imported on first use (a module ``__getattr__``), so ``import quadrat`` loads
neither torch, scikit-learn, pandas nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from quadrat.errors import (
    ConflictError,
    InputError,
    LimitError,
    MissingDependencyError,
    NotFoundError,
    QuadratError,
    StateError,
)

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported when the name is first used).
_LAZY: dict[str, str] = {
    "Project": "quadrat.workflow.project",
    "Source": "quadrat.workflow.source",
    "ImportSummary": "quadrat.workflow.importing",
    "ExtractSummary": "quadrat.workflow.extract",
    "TrainOutcome": "quadrat.workflow.train",
    "ClassifySummary": "quadrat.workflow.classify",
    "ClassifierInfo": "quadrat.store.queries",
    "SourceReport": "quadrat.reports.summary",
    "create_extractor": "quadrat.extractors",
    "list_extractors": "quadrat.extractors",
    "subsample_sites": "quadrat.datasets.subsample",
    "spatial_partition": "quadrat.datasets.partition",
    "read_metadata": "quadrat.datasets.readers",
}

__all__ = [
    "ClassifierInfo",
    "ClassifySummary",
    "ConflictError",
    "ExtractSummary",
    "ImportSummary",
    "InputError",
    "LimitError",
    "MissingDependencyError",
    "NotFoundError",
    "Project",
    "QuadratError",
    "Source",
    "SourceReport",
    "StateError",
    "TrainOutcome",
    "__version__",
    "create_extractor",
    "list_extractors",
    "read_metadata",
    "spatial_partition",
    "subsample_sites",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'quadrat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time these come from __getattr__
    from quadrat.datasets.partition import spatial_partition
    from quadrat.datasets.readers import read_metadata
    from quadrat.datasets.subsample import subsample_sites
    from quadrat.extractors import create_extractor, list_extractors
    from quadrat.reports.summary import SourceReport
    from quadrat.store.queries import ClassifierInfo
    from quadrat.workflow.classify import ClassifySummary
    from quadrat.workflow.extract import ExtractSummary
    from quadrat.workflow.importing import ImportSummary
    from quadrat.workflow.project import Project
    from quadrat.workflow.source import Source
    from quadrat.workflow.train import TrainOutcome
