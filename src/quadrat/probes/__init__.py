"""Probes: how much a representation knows about benthic labels.

``flat``: a linear probe on frozen features and fine-tuning, for a source's own labels.
``hierarchical``: the CATAMI probe with C-HMCNN's max-constraint on probabilities (the
hierarchy, its R matrix and the constraint are :mod:`quadrat.labels.hierarchy`'s).
``metrics``: accuracy/macro F1 and per-depth exact match, F1, AP, MCC over whole splits.
See docs/probes.md. The linear probe and the metrics need no torch; fine-tuning and the
hierarchical probe import it when they run (``quadrat[cnn]``).
"""

from quadrat.probes.flat import (
    FineTuneClassifier,
    LinearProbe,
    cross_validated_predictions,
    grouped_folds,
)
from quadrat.probes.hierarchical import HierarchicalProbe, max_constraint_loss
from quadrat.probes.metrics import SplitCollector, depth_groups, flat_metrics, hierarchical_metrics

__all__ = [
    "FineTuneClassifier",
    "HierarchicalProbe",
    "LinearProbe",
    "SplitCollector",
    "cross_validated_predictions",
    "depth_groups",
    "flat_metrics",
    "grouped_folds",
    "hierarchical_metrics",
    "max_constraint_loss",
]
