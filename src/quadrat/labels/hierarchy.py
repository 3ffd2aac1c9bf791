"""One label hierarchy: a tree as C-HMCNN's R matrix, targets with masks, the max-constraint.

Everything that turns a label tree into matrices lives here; :mod:`quadrat.probes.hierarchical`
imports it and keeps only the probe's loss and network.

- :func:`ancestor_matrix` turns parent links into ``R`` (``R[i, j]``: node i is an
  ancestor-or-self of node j, so row i lists i's descendants-or-self); :func:`node_depths`,
  :func:`imply_ancestors` and :class:`Hierarchy` (names, parents, heads) build on it.
- :func:`max_constraint` is C-HMCNN's max-constraint module, one torch implementation
  (training differentiates through it); numpy in gives numpy out. torch is imported only
  when it is called, so ``import quadrat.labels`` and the encoder need no torch.
- :class:`HierarchyEncoder` turns CATAMI label sets into (targets, mask) over the nodes
  of some heads, with ``ancestor_matrix_`` built by :func:`ancestor_matrix`.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from quadrat.errors import InputError, missing_dependency
from quadrat.labels.catami import CatamiTree
from quadrat.labels.catami_io import default_catami

if TYPE_CHECKING:
    import torch

#: Elements of the (samples, ancestor-descendant pairs) gather that :func:`max_constraint`
#: holds at once (64 MB in float64); more samples are done in chunks.
CHUNK_ELEMENTS = 8 << 20


# -- a tree as matrices ---------------------------------------------------------------
def ancestor_matrix(parents: Sequence[int] | npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """C-HMCNN's ``R``: ``R[i, j]`` is True when node i is node j or one of its ancestors.

    ``parents[i]`` is the column of node i's parent, or -1 for a root. The edges are
    directed parent -> child (BenthicNet's graph is built undirected, which would make
    every node of a tree its own descendant's descendant).
    """
    p = np.asarray(parents, dtype=np.int64)
    k = p.shape[0] if p.ndim == 1 else 0
    if p.ndim != 1 or ((p < -1) | (p >= k)).any():
        raise InputError("parents must be 1-d column indices, -1 for a root", value=p)
    R = np.eye(k, dtype=bool)
    for node in range(k):
        ancestor, steps = p[node], 0
        while ancestor >= 0:
            R[ancestor, node] = True
            ancestor, steps = p[ancestor], steps + 1
            if steps > k:
                raise InputError(f"the parent links of node {node} form a cycle", value=node)
    return R


def node_depths(parents: Sequence[int] | npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Depth of every node (roots are 0): the number of its strict ancestors."""
    return ancestor_matrix(parents).sum(axis=0).astype(np.int64) - 1


def imply_ancestors(targets: npt.ArrayLike, R: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Targets with every ancestor of a positive node set too (a label implies its ancestors)."""
    y = np.asarray(targets).astype(bool)
    r = np.asarray(R, dtype=bool)
    return ((y.astype(np.int64) @ r.T.astype(np.int64)) > 0).astype(np.int8)


@dataclass(frozen=True)
class Hierarchy:
    """What a probe needs of a label hierarchy: node names, parents (-1 = root), heads."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    heads: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.parents) == len(self.heads):
            raise InputError(
                "names, parents and heads must have one length, got "
                f"{len(self.names)}, {len(self.parents)}, {len(self.heads)}"
            )

    @property
    def ancestor_matrix(self) -> npt.NDArray[np.bool_]:
        """``R`` of :func:`ancestor_matrix` for these parents."""
        return ancestor_matrix(self.parents)

    @property
    def depths(self) -> npt.NDArray[np.int64]:
        return node_depths(self.parents)


# -- the max-constraint ---------------------------------------------------------------
@overload
def max_constraint(probs: torch.Tensor, R: torch.Tensor | npt.ArrayLike) -> torch.Tensor: ...
@overload
def max_constraint(
    probs: npt.ArrayLike, R: torch.Tensor | npt.ArrayLike
) -> npt.NDArray[np.float64]: ...
def max_constraint(
    probs: torch.Tensor | npt.ArrayLike, R: torch.Tensor | npt.ArrayLike
) -> torch.Tensor | npt.NDArray[np.float64]:
    """C-HMCNN's MCM: ``out[:, i] = max over j in descendants-or-self(i) of probs[:, j]``.

    Applied to probabilities (not logits, as BenthicNet did), so no node is clamped and a
    node is at least as probable as each of its descendants. One ``scatter_reduce(amax)``
    over the (ancestor, descendant) pairs of ``R``: about k * (mean depth + 1) pairs
    instead of C-HMCNN's dense (n, k, k) product, which made a training step on the
    269-node CATAMI probe ~50x slower and took 6 GB for 10,000 samples. Samples go
    through in chunks so that the gathered (samples, pairs) block stays under
    :data:`CHUNK_ELEMENTS`. Works for any DAG, not only trees.

    A tensor in gives a tensor out, differentiable (ties share the gradient, as with
    ``amax``); anything else is read as a numpy array and gives float64 numpy out.
    """
    try:
        import torch
    except ImportError:
        raise missing_dependency("torch", "cnn", purpose="max_constraint") from None
    if isinstance(probs, torch.Tensor):
        return _max_constraint(probs, _bool_tensor(R))
    p = np.ascontiguousarray(probs, dtype=np.float64)
    with torch.no_grad():
        return _max_constraint(torch.from_numpy(p), _bool_tensor(R)).numpy()


def _bool_tensor(R: torch.Tensor | npt.ArrayLike) -> torch.Tensor:
    import torch

    if isinstance(R, torch.Tensor):
        return R.to(torch.bool)
    return torch.from_numpy(np.ascontiguousarray(R, dtype=bool))


def _max_constraint(probs: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    import torch

    if probs.ndim != 2 or R.shape != (probs.shape[1], probs.shape[1]):
        raise InputError(
            f"probs (n, k) and R (k, k) do not fit: {tuple(probs.shape)}, {tuple(R.shape)}",
            value=tuple(R.shape),
        )
    if not bool(R.diagonal().all()):
        raise InputError("R must hold every node as its own descendant (a True diagonal)")
    ancestor, descendant = R.nonzero(as_tuple=True)
    ancestor = ancestor.to(probs.device)
    descendant = descendant.to(probs.device)

    def constrain(chunk: torch.Tensor) -> torch.Tensor:
        index = ancestor.expand(chunk.shape[0], -1)
        return torch.full_like(chunk, -torch.inf).scatter_reduce(
            1, index, chunk[:, descendant], reduce="amax", include_self=False
        )

    step = max(1, CHUNK_ELEMENTS // max(1, len(descendant)))
    if probs.shape[0] <= step:
        return constrain(probs)
    return torch.cat([constrain(probs[i : i + step]) for i in range(0, probs.shape[0], step)])


# -- CATAMI label sets -> targets and masks -------------------------------------------
class HierarchyEncoder(TransformerMixin, BaseEstimator):
    """Label sets -> (targets, mask) over the nodes of some heads, sklearn style.

    ``fit`` needs no data (the tree fixes the columns); it exists so the encoder sits in
    pipelines and stores its fitted columns in attributes ending in ``_``. ``parents_``
    gives each column's parent column (-1 for a head's top column), the form
    :func:`ancestor_matrix` and :class:`Hierarchy` take.
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
        self.parents_ = np.array([self._parent_column(code) for code in codes], dtype=np.int64)
        self.ancestor_matrix_ = ancestor_matrix(self.parents_)
        return self

    def _parent_column(self, code: str) -> int:
        """The nearest encoded ancestor's column; following these links from a column
        visits every encoded ancestor of it."""
        for ancestor in reversed(self.tree_.ancestors(code)):
            if ancestor in self.index_:
                return self.index_[ancestor]
        return -1

    # -- encoding -----------------------------------------------------------------------
    def encode(
        self, label_sets: Iterable[Iterable[str]]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """(targets, mask), both (samples x nodes); mask True where the target is known."""
        check_is_fitted(self, "classes_")
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
        check_is_fitted(self, "classes_")
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
        check_is_fitted(self, "classes_")
        groups: dict[str, dict[int, npt.NDArray[np.int64]]] = {}
        for head, columns in self.head_slices_.items():
            indices = np.arange(columns.start, columns.stop)
            depths = self.depth_[indices]
            groups[head] = {int(d): indices[depths == d] for d in np.unique(depths)}
        return groups

    def ancestor_matrix(self) -> npt.NDArray[np.bool_]:
        """R[i, j] = node i is an ancestor-or-self of node j (C-HMCNN's R matrix)."""
        check_is_fitted(self, "classes_")
        return self.ancestor_matrix_.copy()


__all__ = [
    "CHUNK_ELEMENTS",
    "Hierarchy",
    "HierarchyEncoder",
    "ancestor_matrix",
    "imply_ancestors",
    "max_constraint",
    "node_depths",
]
