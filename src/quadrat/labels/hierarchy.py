"""Hierarchical multi-label targets over CATAMI heads, with masks for unknown levels.

BenthicNet's probes predict, per head (biota, substrate, relief, bedforms), one sigmoid per
node. A label is a set of nodes and implies all their ancestors; a node below a label
that stops early ('Macroalgae', not which kind) is unknown, not absent, so it is masked
out of the loss and the metrics; a head with no label at all is masked entirely.

The head's own root (``Biota``) is left out by default: it is 1 whenever the head has a
label and masked otherwise, so it carries nothing to learn (and leaving it out gives
BenthicNet's node counts on its own path list: 272 / 23 / 8 / 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, TransformerMixin

from quadrat.errors import InputError
from quadrat.labels.catami import CatamiTree, default_catami


class HierarchyEncoder(TransformerMixin, BaseEstimator):
    """Label sets -> (targets, mask) over the nodes of some heads, sklearn style.

    ``fit`` needs no data (the tree fixes the columns); it exists so the encoder sits in
    pipelines and stores its fitted columns in attributes ending in ``_``.
    """

    def __init__(
        self,
        tree: CatamiTree | None = None,
        heads: Sequence[str] | None = None,
        *,
        include_head_root: bool = False,
    ) -> None:
        self.tree = tree
        self.heads = heads
        self.include_head_root = include_head_root

    def fit(self, X: object = None, y: object = None) -> HierarchyEncoder:
        tree = self.tree or default_catami()
        available = tree.heads()
        heads = list(self.heads) if self.heads is not None else list(available)
        for head in heads:
            if head not in available:
                raise InputError(
                    f"the tree has no head {head!r} (it has {', '.join(available)})", value=head
                )
        self.tree_ = tree
        self.heads_ = heads
        self.head_roots_ = {head: available[head] for head in heads}
        codes: list[str] = []
        self.head_slices_: dict[str, slice] = {}
        for head in heads:
            nodes = tree.head_nodes(head, include_root=self.include_head_root)
            self.head_slices_[head] = slice(len(codes), len(codes) + len(nodes))
            codes.extend(nodes)
        self.classes_ = np.array(codes, dtype=object)
        self.index_ = {code: i for i, code in enumerate(codes)}
        self.depth_ = np.array([tree.depth(code) for code in codes], dtype=np.int64)
        self.head_of_ = np.array([tree.head(code) for code in codes], dtype=object)
        self.ancestor_matrix_ = self._ancestor_matrix()
        return self

    def _ancestor_matrix(self) -> npt.NDArray[np.bool_]:
        size = len(self.classes_)
        matrix = np.eye(size, dtype=bool)
        for j, code in enumerate(self.classes_):
            for ancestor in self.tree_.ancestors(code):
                i = self.index_.get(ancestor)
                if i is not None:
                    matrix[i, j] = True
        return matrix

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise InputError("HierarchyEncoder is not fitted; call fit() first")

    # -- encoding -----------------------------------------------------------------------
    def encode(
        self, label_sets: Iterable[Iterable[str]]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """(targets, mask), both (samples x nodes); mask True where the target is known."""
        self._check_fitted()
        rows = [list(labels) for labels in label_sets]
        targets = np.zeros((len(rows), len(self.classes_)), dtype=np.float32)
        mask = np.zeros_like(targets, dtype=bool)
        descendants = self.ancestor_matrix_  # row i: node i's descendants-or-self
        for sample, labels in enumerate(rows):
            columns_by_head: dict[str, set[int]] = {}
            for raw in labels:
                code = self._check_code(sample, str(raw))
                head = str(self.tree_.head(code))
                known = columns_by_head.setdefault(head, set())
                for node in [*self.tree_.ancestors(code), code]:
                    if node in self.index_:
                        known.add(self.index_[node])
            for head, positive in columns_by_head.items():
                columns = self.head_slices_[head]
                if not positive:  # only the head root: the head is labelled, nothing known
                    continue
                mask[sample, columns] = True
                cols = sorted(positive)
                targets[sample, cols] = 1.0
                for column in cols:
                    below = descendants[column].copy()
                    below[column] = False
                    if not (below & targets[sample].astype(bool)).any():
                        mask[sample, below] = False  # a leaf of the label: below is unknown
        return targets, mask

    def _check_code(self, sample: int, code: str) -> str:
        if code not in self.tree_:
            raise InputError(
                f"sample {sample}: {code!r} is not a node of the CATAMI tree", value=code
            )
        if self.tree_.head(code) not in self.head_slices_:
            raise InputError(
                f"sample {sample}: {code!r} is in no encoded head ({', '.join(self.heads_)})",
                value=code,
            )
        return code

    def transform(self, label_sets: Iterable[Iterable[str]]) -> npt.NDArray[np.float32]:
        """Targets only (see :meth:`encode` for the mask)."""
        return self.encode(label_sets)[0]

    def mask(self, label_sets: Iterable[Iterable[str]]) -> npt.NDArray[np.bool_]:
        return self.encode(label_sets)[1]

    def inverse_transform(self, scores: npt.ArrayLike, threshold: float = 0.5) -> list[list[str]]:
        """Most specific nodes at or over ``threshold`` per sample (their ancestors implied)."""
        self._check_fitted()
        positive = np.asarray(scores) >= threshold
        strict = self.ancestor_matrix_ & ~np.eye(len(self.classes_), dtype=bool)
        out = []
        for row in positive:
            has_positive_child = (strict & row[None, :]).any(axis=1)
            keep = row & ~has_positive_child
            out.append([str(code) for code in self.classes_[keep]])
        return out

    # -- helpers for probes -------------------------------------------------------------
    def depth_groups(self) -> dict[str, dict[int, npt.NDArray[np.int64]]]:
        """Column indices per head and depth, for per-level metrics."""
        self._check_fitted()
        groups: dict[str, dict[int, npt.NDArray[np.int64]]] = {}
        for head, columns in self.head_slices_.items():
            indices = np.arange(columns.start, columns.stop)
            depths = self.depth_[indices]
            groups[head] = {int(d): indices[depths == d] for d in np.unique(depths)}
        return groups

    def ancestor_matrix(self) -> npt.NDArray[np.bool_]:
        """R[i, j] = node i is an ancestor-or-self of node j (C-HMCNN's R matrix)."""
        self._check_fitted()
        return self.ancestor_matrix_.copy()


def max_constraint(
    probabilities: npt.ArrayLike, ancestor_matrix: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """C-HMCNN's max constraint on probabilities: a node >= each of its descendants.

    Applied to probabilities (not logits, as BenthicNet did), so no node is clamped.
    Computed a few samples at a time: the (samples, nodes, nodes) intermediate would take
    6 GB for 10,000 samples on the 284-node tree; chunks keep it near 64 MB.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    n_nodes = ancestor_matrix.shape[0]
    out = np.empty((probs.shape[0], n_nodes), dtype=np.float64)
    step = max(1, (8 << 20) // max(1, n_nodes * n_nodes))
    for start in range(0, probs.shape[0], step):
        chunk = probs[start : start + step]
        out[start : start + step] = np.where(
            ancestor_matrix[None, :, :], chunk[:, None, :], 0.0
        ).max(axis=2, initial=0.0)
    return out
