"""Probes: how much a representation knows about benthic labels.

``flat``: a linear probe on frozen features and fine-tuning, for a source's own labels.
``hierarchical``: the CATAMI probe with C-HMCNN's max-constraint on probabilities.
``metrics``: accuracy/macro F1 and per-depth exact match, F1, AP, MCC over whole splits.
See docs/probes.md.
"""

from quadrat.probes.flat import (
    FineTuneClassifier,
    LinearProbe,
    cross_validated_predictions,
    grouped_folds,
)
from quadrat.probes.hierarchical import (
    HierarchicalProbe,
    Hierarchy,
    descendant_matrix,
    imply_ancestors,
    max_constraint,
    max_constraint_loss,
    node_depths,
)
from quadrat.probes.metrics import SplitCollector, depth_groups, flat_metrics, hierarchical_metrics

__all__ = [
    "FineTuneClassifier",
    "HierarchicalProbe",
    "Hierarchy",
    "LinearProbe",
    "SplitCollector",
    "cross_validated_predictions",
    "depth_groups",
    "descendant_matrix",
    "flat_metrics",
    "grouped_folds",
    "hierarchical_metrics",
    "imply_ancestors",
    "max_constraint",
    "max_constraint_loss",
    "node_depths",
]
