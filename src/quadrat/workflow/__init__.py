"""One source's workflow: import, points, extract, train, classify, covers, exports.

:class:`Project` and :class:`Source` are the public objects (also ``quadrat.Project``
and ``quadrat.Source``); each step lives in its own module and is called through a
``Source`` method. Steps read and write the store only through
:mod:`quadrat.store.queries`, :mod:`quadrat.store.writes` and
:mod:`quadrat.store.features`; no SQL is written here.
"""

from quadrat.workflow._common import Progress
from quadrat.workflow.classify import ClassifySummary
from quadrat.workflow.extract import ExtractSummary
from quadrat.workflow.importing import ImportSummary
from quadrat.workflow.project import Project
from quadrat.workflow.source import Source
from quadrat.workflow.train import TrainOutcome

__all__ = [
    "ClassifySummary",
    "ExtractSummary",
    "ImportSummary",
    "Progress",
    "Project",
    "Source",
    "TrainOutcome",
]
