"""Hierarchical answers: the deepest node of a label tree that a point's scores make sure of.

A classifier scores the labels of a labelset; a wrong genus at 0.4 is worth less than a
right "Hard coral" at 0.9. Given a label tree (each label a leaf under parents) and each
point's scores, a node's *cumulative score* is the sum of the scores of the labels at or
below it, and the point's answer is the deepest node whose cumulative score reaches the
threshold, found by walking down from the top:

    start above the roots; while some child of the current node has a cumulative score
    at least the threshold, move to the child with the highest one (equal scores: the
    first in tree order, so ties are deterministic); the answer is where the walk stops,
    or no node at all (level ``none``) when no root reaches the threshold.

Above a threshold of 0.5 at most one node per depth can pass (their scores would sum to
more than 1), so the passing nodes form one path from a root and the answer is exactly
the deepest node of the whole tree whose cumulative score reaches the threshold. At 0.5 or
below several branches can pass; the walk keeps to the most probable one, so a deep label
with a tiny score never wins over a sure shallower branch (which "the deepest passing node
anywhere" would do in a tree whose labels sit at different depths, as CATAMI's). A
threshold of 0 walks to a label along the best branch (in the groups tree: the best label
of the best group, usually the top label); 1 answers only what holds all the
probability. Sums are compared with a tolerance of :data:`TOLERANCE` so that scores
summing to 1 in floating point reach a threshold of 1.

Where a tree comes from (:func:`load_label_tree`, the one home):

- ``None``: the labelset's own functional groups (CoralNet's ``Functional_Group``:
  label -> group; a label without a group is a root of its own);
- a ``.csv`` file: a reviewed CATAMI mapping (``source_label, caab_code``, as ``quadrat
  dataset translate`` writes it) placing each label under its CATAMI node, whose
  ancestors in the shipped CATAMI v1.4 tree are the parents; a label listed with an empty
  ``caab_code`` (reviewed: nothing in CATAMI, as 'Off') is a root of its own;
- a ``.json`` file: a BIIGLE label tree (``GET /api/v1/label-trees/{id}``, or a tree
  export's ``label_trees.json``), each label placed under the BIIGLE label of its name.

Labels are matched by short code, then by name (case and spacing ignored); a scored label
the tree does not place is an :class:`~quadrat.errors.UnknownLabelError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from quadrat.errors import InputError, NotFoundError, UnknownLabelError
from quadrat.labels.catami import normalise_name
from quadrat.labels.hierarchy import ancestor_matrix, node_depths
from quadrat.limits import current

if TYPE_CHECKING:
    import pandas as pd

    from quadrat.labels.catami import CatamiTree
    from quadrat.limits import Limits

#: Slack on ``cumulative >= threshold`` for floating-point sums.
TOLERANCE = 1e-9
#: Points scored at once (the cumulative block is points x nodes float64).
CHUNK_POINTS = 65536
#: ``level`` of a label's own node, and of a point with no confident node.
LABEL_LEVEL = "label"
NONE_LEVEL = "none"
#: Columns the answers add to a table of points (:meth:`Answers.columns`).
ANSWER_COLUMNS = ("answer", "answer_level", "answer_score")


@dataclass(frozen=True)
class LabelTree:
    """Nodes (names, parents with -1 for a root, level names) and each label's own node.

    A label's node is always a leaf named by the label's short code with level
    ``"label"``; the other nodes are its parents (``"group"``, ``"CATAMI level 2"``...).
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    levels: tuple[str, ...]
    labels: Mapping[str, int]
    #: Where the tree came from, for messages ("the labelset's functional groups", a file).
    source: str = ""

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.parents) == len(self.levels):
            raise InputError("a label tree needs one name, parent and level per node")
        limits = current()  # the label_tree_* limits, with the environment applied
        limits.check(
            "label_tree_nodes",
            len(self.names),
            what=f"nodes of the label tree {self.source}".rstrip(),
            path=self.source or None,
        )
        _check_depth(self.parents, self.source, limits)
        ancestor_matrix(self.parents)  # checks indices and cycles

    @property
    def depths(self) -> npt.NDArray[np.int64]:
        """Each node's depth (roots are 0)."""
        return node_depths(self.parents)

    def node_of(self, label: str) -> int:
        """The node of a label (its short code); an error naming the label if it has none."""
        try:
            return self.labels[str(label)]
        except KeyError:
            where = f" ({self.source})" if self.source else ""
            raise UnknownLabelError(
                f"label {label!r} has no place in the label tree{where}; add it to the tree",
                value=label,
                param="hierarchy",
            ) from None


def _check_depth(parents: Sequence[int], source: str, limits: Limits) -> None:
    """Every node within ``limits.label_tree_depth`` levels of a root, in O(nodes)."""
    depth: dict[int, int] = {}
    for start in range(len(parents)):
        chain: list[int] = []
        node = start
        while 0 <= node < len(parents) and node not in depth and len(chain) <= len(parents):
            chain.append(node)
            node = parents[node]
        if len(chain) > len(parents):
            raise InputError(f"the parent links of node {start} form a cycle", value=start)
        base = depth.get(node, -1)
        for offset, item in enumerate(reversed(chain), start=1):
            depth[item] = base + offset
            if base + offset > limits.label_tree_depth:
                limits.check(
                    "label_tree_depth",
                    base + offset,
                    what=f"depth of node {item} of the label tree {source}".rstrip(),
                    path=source or None,
                )


# -- where a tree comes from -----------------------------------------------------------
class _Builder:
    """Nodes added parents first; label leaves added under them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.names: list[str] = []
        self.parents: list[int] = []
        self.levels: list[str] = []
        self.labels: dict[str, int] = {}
        self.keys: dict[object, int] = {}

    def node(self, key: object, name: str, parent: int, level: str) -> int:
        if key not in self.keys:
            self.keys[key] = len(self.names)
            self.names.append(name)
            self.parents.append(parent)
            self.levels.append(level)
        return self.keys[key]

    def label(self, code: str, parent: int) -> None:
        self.labels[code] = self.node(("label", code), code, parent, LABEL_LEVEL)

    def tree(self) -> LabelTree:
        return LabelTree(
            tuple(self.names), tuple(self.parents), tuple(self.levels), self.labels, self.source
        )


def _labels(labelset: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(short code, name, functional group) per label of a labelset table."""
    import pandas as pd

    def text(value: object) -> str:
        return "" if value is None or bool(pd.isna(value)) else str(value).strip()

    return [
        (text(r["short_code"]), text(r.get("name")), text(r.get("functional_group")))
        for r in labelset.to_dict("records")
    ]


def tree_from_groups(labelset: pd.DataFrame) -> LabelTree:
    """Label -> functional group (a label without a group is a root of its own)."""
    build = _Builder("the labelset's functional groups")
    for code, _name, group in _labels(labelset):
        parent = build.node(("group", group), group, -1, "group") if group else -1
        build.label(code, parent)
    return build.tree()


def _match(
    code: str, name: str, places: Mapping[str, Sequence[Any]], what: str, source: str
) -> Any | None:
    """The one place of a label, by short code then name; None when neither is there."""
    for key in (normalise_name(code), normalise_name(name)):
        found = places.get(key, ())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InputError(
                f"label {code!r} matches {len(found)} {what} named {key!r} in {source}; "
                "name the node by its path",
                path=source,
                value=code,
                param="hierarchy",
            )
    return None


def tree_from_catami(
    labelset: pd.DataFrame,
    mapping: Mapping[str, str],
    catami: CatamiTree,
    source: str = "",
    *,
    outside: Iterable[str] = (),
) -> LabelTree:
    """Each mapped label under its CATAMI node; the node's CATAMI ancestors above it.

    ``mapping``: source label (short code or name) -> CAAB code. ``outside``: labels a
    reviewer listed with no CAAB code ('Off', 'Tape': nothing CATAMI names), each a root of
    its own. Other labels are left out (an error names them when they are scored).
    """
    build = _Builder(source or "the CATAMI mapping")
    places: dict[str, list[str]] = {}
    for label, caab in mapping.items():
        places.setdefault(normalise_name(label), []).append(caab)
    for label in outside:
        places.setdefault(normalise_name(label), []).append("")
    for code, name, _group in _labels(labelset):
        found = _match(code, name, places, "mapping rows", build.source)
        if found is None:
            continue
        if found == "":
            build.label(code, -1)
            continue
        parent = -1
        for node in [*catami.ancestors(str(found)), str(found)]:
            level = f"CATAMI level {catami.depth(node)}"
            parent = build.node(("catami", node), catami.path_str(node), parent, level)
        build.label(code, parent)
    return build.tree()


def tree_from_links(
    labelset: pd.DataFrame, links: Iterable[tuple[object, str, object | None]], source: str
) -> LabelTree:
    """Labels under the nodes of ``(id, name, parent id)`` links (a BIIGLE label tree).

    A node is matched by its name or its ``Parent > Name`` path; each label goes under
    the node of its short code or name.
    """
    nodes = {node_id: (str(name).strip(), parent) for node_id, name, parent in links}
    current().check(  # before any work on them
        "label_tree_nodes", len(nodes), what="labels of the label tree", path=source
    )
    build = _Builder(source)

    def add(node_id: object) -> None:
        """The node and its missing ancestors, top first (a loop: no recursion limit)."""
        chain, seen = [node_id], {node_id}
        while chain[-1] not in build.keys and nodes[chain[-1]][1] in nodes:
            chain.append(nodes[chain[-1]][1])
            if chain[-1] in seen:
                raise InputError(
                    f"the parents of label {node_id!r} form a cycle", path=source, value=node_id
                )
            seen.add(chain[-1])
        for item in reversed(chain):
            if item in build.keys:
                continue
            name, parent = nodes[item]
            above = build.keys[parent] if parent in nodes else -1
            depth = 0 if above < 0 else int(build.levels[above].removeprefix("level ")) + 1
            build.node(item, name, above, f"level {depth}")

    places: dict[str, list[object]] = {}
    for node_id, (name, parent) in nodes.items():
        add(node_id)
        places.setdefault(normalise_name(name), []).append(node_id)
        if parent in nodes:
            path = f"{nodes[parent][0]} > {name}"
            places.setdefault(normalise_name(path), []).append(node_id)
    for code, name, _group in _labels(labelset):
        node = _match(code, name, places, "labels", source)
        if node is not None:
            build.label(code, build.keys[node])
    return build.tree()


def biigle_links(path: Path, limits: Limits | None = None) -> list[tuple[object, str, object]]:
    """``(id, name, parent_id)`` of every label of a BIIGLE label tree JSON (or a list)."""
    from quadrat.io.formats.biigle import read_biigle_label_links

    return [
        (label["id"], str(label["name"]), label.get("parent_id"))
        for label in read_biigle_label_links(path, limits=limits)
    ]


def load_label_tree(
    hierarchy: str | Path | None, labelset: pd.DataFrame, *, limits: Limits | None = None
) -> LabelTree:
    """The tree ``hierarchy`` names for this labelset (see the module doc for the forms)."""
    if hierarchy is None or str(hierarchy) == "groups":
        return tree_from_groups(labelset)
    path = Path(hierarchy)
    if not path.is_file():
        raise NotFoundError("label tree file not found", path=path, param="hierarchy")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return tree_from_links(labelset, biigle_links(path, limits), str(path))
    if suffix == ".csv":
        from quadrat.io.csv import read_csv
        from quadrat.labels.catami_io import default_catami
        from quadrat.labels.translate_io import read_mapping

        catami = default_catami()
        mapping = read_mapping(path, catami)
        listed = read_csv(path, limits=limits).frame["source_label"].tolist()
        outside = [label for label in listed if label not in mapping]
        return tree_from_catami(labelset, mapping, catami, str(path), outside=outside)
    raise InputError(
        "a label tree is a CATAMI mapping (.csv: source_label, caab_code) or a BIIGLE "
        "label tree (.json); leave it out for the labelset's functional groups",
        path=path,
        param="hierarchy",
    )


# -- the rule --------------------------------------------------------------------------
@dataclass(frozen=True)
class Answers:
    """Per point: the answered node (-1: none), its name, level, depth and cumulative score."""

    node: npt.NDArray[np.int64]
    name: npt.NDArray[np.object_]
    level: npt.NDArray[np.object_]
    depth: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """:data:`ANSWER_COLUMNS` for a table of the same points."""
        return dict(zip(ANSWER_COLUMNS, (self.name, self.level, self.score), strict=True))

    def level_counts(self) -> dict[str, int]:
        """Points per level (:func:`order_levels`)."""
        names, counts = np.unique(self.level.astype(str), return_counts=True)
        return order_levels(dict(zip(names.tolist(), counts.tolist(), strict=True)))


def order_levels(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts per level, ``label`` first, ``none`` last, the others by name."""
    order = sorted(counts, key=lambda n: (n == NONE_LEVEL, n != LABEL_LEVEL, n))
    return {name: int(counts[name]) for name in order}


def check_threshold(threshold: float, param: str = "hierarchical_threshold") -> float:
    """A cumulative-score threshold is a number in [0, 1]."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"{param} must be a number, got {threshold!r}", param=param) from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{param} must be in [0, 1], got {value:g}", value=value, param=param)
    return value


def check_pair(threshold: float | None, hierarchy: object) -> None:
    """A ``hierarchy`` is only used with a ``hierarchical_threshold``: alone, it is a mistake."""
    if hierarchy is not None and threshold is None:
        raise InputError(
            "a hierarchy is used only with a hierarchical_threshold; give one",
            param="hierarchical_threshold",
        )


def answer(
    scores: npt.ArrayLike,
    classes: Sequence[str],
    tree: LabelTree,
    threshold: float,
) -> Answers:
    """Each point's answer under the rule of the module doc.

    ``scores``: (points, classes) calibrated scores (a row need not sum to 1: a point
    known only by its top 5 has zeros elsewhere, so its sums are lower bounds and an
    answer is never more confident than its score says). ``classes``: the short code of
    each column.
    """
    threshold = check_threshold(threshold)
    p = np.asarray(scores, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise InputError(
            f"scores must be (points, {len(classes)} classes), got {p.shape}", value=p.shape
        )
    columns = [tree.node_of(c) for c in classes]
    R = ancestor_matrix(tree.parents)  # R[v, u]: v is u or one of its ancestors
    up = R[:, columns].T.astype(np.float64)  # (classes, nodes): the nodes above each label
    parents = np.asarray(tree.parents, dtype=np.int64)
    steps = int(tree.depths.max(initial=-1)) + 1
    node = np.full(len(p), -1, dtype=np.int64)
    best_score = np.zeros(len(p), dtype=np.float64)
    for start in range(0, len(p), CHUNK_POINTS):
        cum = p[start : start + CHUNK_POINTS] @ up
        passing = cum >= threshold - TOLERANCE
        here = np.full(len(cum), -1, dtype=np.int64)  # -1: above the roots
        for _ in range(steps):
            below = passing & (parents[None, :] == here[:, None])
            moving = below.any(axis=1)
            if not moving.any():
                break
            pick = np.where(below, cum, -np.inf).argmax(axis=1)  # first of equal scores
            here = np.where(moving, pick, here)
        rows = np.arange(len(cum))
        node[start : start + len(cum)] = here
        top = cum.max(axis=1, initial=0.0)  # no answer: the best score there was
        best_score[start : start + len(cum)] = np.where(
            here >= 0, cum[rows, np.maximum(here, 0)] if cum.shape[1] else 0.0, top
        )
    depths = tree.depths
    names = np.array([*tree.names, ""], dtype=object)
    levels = np.array([*tree.levels, NONE_LEVEL], dtype=object)
    return Answers(
        node=node,
        name=names[node],
        level=levels[node],
        depth=np.where(node >= 0, depths[node] if len(depths) else -1, -1),
        score=best_score,
    )


def answer_top_k(
    labels: npt.ArrayLike, scores: npt.ArrayLike, tree: LabelTree, threshold: float
) -> Answers:
    """:func:`answer` from each point's top labels and scores (as stored and served).

    ``labels`` (points, k) short codes, None/NaN/'' where a point has fewer; ``scores``
    the same shape. Labels past the k-th count as 0.
    """
    codes = np.asarray(labels, dtype=object)
    values = np.asarray(scores, dtype=np.float64)
    if codes.ndim != 2 or codes.shape != values.shape:
        raise InputError(
            f"labels and scores must be one (points, k) shape, got {codes.shape}, {values.shape}",
            value=codes.shape,
        )
    present = np.array([isinstance(c, str) and c != "" for c in codes.ravel()], dtype=bool).reshape(
        codes.shape
    )
    classes = sorted({str(c) for c in codes[present]})
    index = {c: i for i, c in enumerate(classes)}
    dense = np.zeros((codes.shape[0], len(classes)), dtype=np.float64)
    rows, ks = np.nonzero(present)
    cols = np.fromiter((index[str(codes[r, k])] for r, k in zip(rows, ks, strict=True)), np.int64)
    np.add.at(dense, (rows, cols), np.nan_to_num(values[rows, ks]))
    return answer(dense, classes, tree, threshold)


__all__ = [
    "ANSWER_COLUMNS",
    "CHUNK_POINTS",
    "LABEL_LEVEL",
    "NONE_LEVEL",
    "TOLERANCE",
    "Answers",
    "LabelTree",
    "answer",
    "answer_top_k",
    "biigle_links",
    "check_pair",
    "check_threshold",
    "load_label_tree",
    "order_levels",
    "tree_from_catami",
    "tree_from_groups",
    "tree_from_links",
]
