"""Hierarchical answers: the tree rule, its edges, and where trees come from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quadrat.errors import InputError, LimitError, NotFoundError, UnknownLabelError
from quadrat.labels.answers import (
    LabelTree,
    answer,
    answer_top_k,
    load_label_tree,
    tree_from_groups,
    tree_from_links,
)

#: A CoralNet-style labelset: two corals, three algae, sand (no group: a root of its own).
LABELSET = pd.DataFrame(
    {
        "label_id": [1, 2, 3, 4, 5, 6],
        "name": ["Porites", "Montipora", "CCA (crustose)", "Turf algae", "Macroalgae", "Sand"],
        "short_code": ["Porit", "Monti", "CCA", "Turf", "Macro", "Sand"],
        "functional_group": ["Hard coral", "Hard coral", "Algae", "Algae", "Algae", None],
    }
)
CLASSES = ["Porit", "Monti", "CCA", "Turf", "Macro", "Sand"]


@pytest.fixture(scope="module")
def groups() -> LabelTree:
    return tree_from_groups(LABELSET)


def test_groups_tree_shape(groups: LabelTree) -> None:
    assert groups.levels[groups.node_of("Porit")] == "label"
    coral = groups.parents[groups.node_of("Porit")]
    assert groups.names[coral] == "Hard coral" and groups.levels[coral] == "group"
    assert groups.parents[groups.node_of("Monti")] == coral
    assert groups.parents[groups.node_of("Sand")] == -1  # no group: its own root
    assert groups.depths[groups.node_of("Sand")] == 0


def test_leaf_when_confident_parent_when_children_split(groups: LabelTree) -> None:
    scores = np.array(
        [
            [0.92, 0.03, 0.02, 0.01, 0.01, 0.01],  # sure of the genus
            [0.45, 0.45, 0.04, 0.03, 0.02, 0.01],  # coral, genus split
            [0.02, 0.02, 0.40, 0.35, 0.20, 0.01],  # algae, kind split
            [0.30, 0.10, 0.20, 0.10, 0.05, 0.25],  # nothing sure
        ]
    )
    found = answer(scores, CLASSES, groups, 0.8)
    assert found.name.tolist() == ["Porit", "Hard coral", "Algae", ""]
    assert found.level.tolist() == ["label", "group", "group", "none"]
    assert found.depth.tolist() == [1, 0, 0, -1]
    assert found.score == pytest.approx([0.92, 0.90, 0.95, 0.40])
    assert found.level_counts() == {"label": 1, "group": 2, "none": 1}
    assert list(found.columns()) == ["answer", "answer_level", "answer_score"]


def test_threshold_edges(groups: LabelTree) -> None:
    scores = np.array([[0.3, 0.2, 0.1, 0.1, 0.0, 0.3], [0.7, 0.1, 0.1, 0.1, 0.0, 0.0]])
    # 0: every node passes and the deepest wins: Sand (0.3, a root) loses to Porit (0.3,
    # a label under a group), the top label here.
    zero = answer(scores, CLASSES, groups, 0.0)
    assert zero.name.tolist() == ["Porit", "Porit"]
    # 1: only what holds all the probability (none here; a sum of 1 counts despite floats).
    assert answer(scores, CLASSES, groups, 1.0).level.tolist() == ["none", "none"]
    sure = np.array([[0.0, 0.0, 0.7, 0.2, 0.1, 0.0]])  # 0.7 + 0.2 + 0.1 < 1 in floats
    assert float(sure[0, 2] + sure[0, 3] + sure[0, 4]) < 1.0
    one = answer(sure, CLASSES, groups, 1.0)
    assert one.name.tolist() == ["Algae"] and one.score[0] == pytest.approx(1.0)
    with pytest.raises(InputError) as info:
        answer(scores, CLASSES, groups, 1.5)
    assert info.value.param == "hierarchical_threshold"


def test_ties_are_deterministic(groups: LabelTree) -> None:
    # Two labels of equal score and depth: the first in tree order (labelset order).
    tie = np.array([[0.0, 0.0, 0.5, 0.5, 0.0, 0.0]])
    assert answer(tie, CLASSES, groups, 0.4).name.tolist() == ["CCA"]
    assert answer(tie[:, ::-1], CLASSES[::-1], groups, 0.4).name.tolist() == ["CCA"]


def test_a_tiny_deep_label_never_beats_a_sure_branch() -> None:
    # Sand is a root; the corals sit three levels down. At 0.3 both branches pass, and
    # "the deepest passing node anywhere" would answer a coral of score 0.35; the walk
    # keeps to the sure branch.
    links = [
        (1, "Benthos", None),
        (2, "Coral", 1),
        (3, "Stony", 2),
        (4, "Porites", 3),
        (5, "Montipora", 3),
        (6, "Sand", None),
    ]
    labels = LABELSET[LABELSET["short_code"].isin(["Porit", "Monti", "Sand"])]
    tree = tree_from_links(labels, links, "links")
    scores = np.array([[0.35, 0.0, 0.65], [0.5, 0.3, 0.2]])
    found = answer(scores, ["Porit", "Monti", "Sand"], tree, 0.3)
    assert found.name.tolist() == ["Sand", "Porit"]
    assert found.depth.tolist() == [1, 4]  # Sand's label under the BIIGLE Sand node
    # Above 0.5 the answer is the deepest passing node of the whole tree.
    assert answer(scores, ["Porit", "Monti", "Sand"], tree, 0.6).name.tolist() == [
        "Sand",
        "Stony",
    ]


def test_unknown_label_is_named(groups: LabelTree) -> None:
    with pytest.raises(UnknownLabelError, match="'Acrop'") as info:
        answer(np.ones((1, 1)), ["Acrop"], groups, 0.5)
    assert info.value.param == "hierarchy"


def test_top_k_scores_are_lower_bounds(groups: LabelTree) -> None:
    labels = [["Porit", "Monti", None], ["CCA", "Turf", "Sand"]]
    scores = [[0.5, 0.35, np.nan], [0.5, 0.3, 0.1]]
    found = answer_top_k(labels, scores, groups, 0.8)
    assert found.name.tolist() == ["Hard coral", "Algae"]
    assert found.score == pytest.approx([0.85, 0.8])
    # The missing mass is not guessed: 0.85 of Hard coral is not enough for 0.9.
    assert answer_top_k(labels, scores, groups, 0.9).level.tolist() == ["none", "none"]


def test_catami_mapping_tree(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(
        "source_label,caab_code\n"
        "Porit,11290906\n"  # Stony corals > Massive
        "Montipora,11290908\n"  # by name: Stony corals > Encrusting
        "CCA,80300000\n"  # Macroalgae
        "Turf,80300000\n"
        "Macro,80300000\n"
        "Sand,82001005\n",  # Unconsolidated (soft)
        encoding="utf-8",
    )
    tree = load_label_tree(mapping, LABELSET)
    scores = np.array([[0.5, 0.45, 0.02, 0.01, 0.01, 0.01], [0.0, 0.0, 0.3, 0.3, 0.3, 0.1]])
    found = answer(scores, CLASSES, tree, 0.8)
    assert found.name.tolist() == [
        "Biota > Cnidaria > Corals > Stony corals",
        "Biota > Macroalgae",
    ]
    assert found.level.tolist() == ["CATAMI level 3", "CATAMI level 1"]
    # Listed with no code (reviewed: nothing in CATAMI): a root of its own. Not listed at
    # all: named when it is scored.
    partial = tmp_path / "partial.csv"
    partial.write_text("source_label,caab_code\nPorit,11290906\nSand,\n", encoding="utf-8")
    tree = load_label_tree(partial, LABELSET)
    alone = answer(np.eye(2), ["Porit", "Sand"], tree, 0.5)
    assert alone.name.tolist() == ["Porit", "Sand"] and alone.depth.tolist() == [5, 0]
    with pytest.raises(UnknownLabelError, match="'Turf'"):
        answer(np.eye(2), ["Porit", "Turf"], tree, 0.5)


def test_biigle_label_tree(tmp_path: Path) -> None:
    document = {
        "name": "reef",
        "labels": [
            {"id": 1, "name": "Benthos", "parent_id": None},
            {"id": 2, "name": "Coral", "parent_id": 1},
            {"id": 3, "name": "Porites", "parent_id": 2},
            {"id": 4, "name": "Montipora", "parent_id": 2},
            {"id": 5, "name": "Algae", "parent_id": 1},
            {"id": 6, "name": "CCA", "parent_id": 5},
            {"id": 7, "name": "Turf", "parent_id": 5},
            {"id": 8, "name": "Macro", "parent_id": 5},
            {"id": 9, "name": "Sand", "parent_id": None},
        ],
    }
    path = tmp_path / "tree.json"
    path.write_text(json.dumps([document]), encoding="utf-8")
    tree = load_label_tree(path, LABELSET)
    scores = np.array(
        [[0.5, 0.45, 0.02, 0.01, 0.01, 0.01], [0.3, 0.0, 0.3, 0.3, 0.0, 0.1]],
    )
    found = answer(scores, CLASSES, tree, 0.85)
    assert found.name.tolist() == ["Coral", "Benthos"]
    assert found.level.tolist() == ["level 1", "level 0"]
    document["labels"] = document["labels"][:-1]  # no Sand
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UnknownLabelError, match="'Sand'"):
        answer(scores, CLASSES, load_label_tree(path, LABELSET), 0.85)


def test_tree_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_label_tree(tmp_path / "absent.json", LABELSET)
    other = tmp_path / "tree.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="CATAMI mapping") as info:
        load_label_tree(other, LABELSET)
    assert info.value.param == "hierarchy"
    bad = tmp_path / "bad.json"
    bad.write_text('{"labels": [{"name": "no id"}]}', encoding="utf-8")
    with pytest.raises(InputError, match=r"labels\[0\]"):
        load_label_tree(bad, LABELSET)


def test_tree_limits_and_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = LABELSET.iloc[:1]
    chain = [(i, f"n{i}", i - 1 if i else None) for i in range(64 + 2)]
    with pytest.raises(LimitError, match="label_tree_depth = 64"):
        tree_from_links(labels, chain, "deep.json")
    wide = [(i, f"n{i}", None) for i in range(10_000 + 1)]
    with pytest.raises(LimitError, match="label_tree_nodes = 10,000"):
        tree_from_links(labels, wide, "wide.json")
    # Both are named limits, set from the environment (QUADRAT_MAX_LABEL_TREE_*).
    monkeypatch.setenv("QUADRAT_MAX_LABEL_TREE_DEPTH", "3")
    with pytest.raises(LimitError, match="QUADRAT_MAX_LABEL_TREE_DEPTH"):
        tree_from_links(labels, chain[:5], "deep.json")
    monkeypatch.setenv("QUADRAT_MAX_LABEL_TREE_NODES", "4")
    with pytest.raises(LimitError, match="label_tree_nodes = 4"):
        tree_from_links(labels, wide[:5], "wide.json")
    loop = tmp_path / "loop.json"
    loop.write_text(
        json.dumps(
            {
                "labels": [
                    {"id": 1, "name": "a", "parent_id": 2},
                    {"id": 2, "name": "b", "parent_id": 1},
                ]
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="cycle"):
        load_label_tree(loop, LABELSET)


def test_a_hierarchy_needs_a_threshold() -> None:
    from quadrat.labels.answers import check_pair

    check_pair(None, None)
    check_pair(0.8, "tree.json")
    with pytest.raises(InputError, match="hierarchical_threshold") as info:
        check_pair(None, "tree.json")
    assert info.value.param == "hierarchical_threshold"
