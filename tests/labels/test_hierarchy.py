"""Hierarchical multi-label targets: ancestors implied, masks for unknown levels."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from quadrat.errors import InputError
from quadrat.labels.catami import CatamiTree, load_caab_csv, load_paths
from quadrat.labels.hierarchy import HierarchyEncoder, max_constraint

RED = "80300929"  # Biota > Macroalgae > Encrusting > Red
MACROALGAE = "80300000"
BOULDERS = "82001003"
WALL = "82003007"


@pytest.fixture(scope="module")
def tree(catami_files: dict[str, Path]) -> CatamiTree:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_caab_csv(catami_files["caab_csv"])


@pytest.fixture(scope="module")
def encoder(tree: CatamiTree) -> HierarchyEncoder:
    return HierarchyEncoder(tree).fit()


def column(encoder: HierarchyEncoder, code: str) -> int:
    return encoder.index_[code]


def test_columns_per_head(encoder: HierarchyEncoder) -> None:
    sizes = {h: s.stop - s.start for h, s in encoder.head_slices_.items()}
    assert sizes == {"biota": 9, "substrate": 4, "relief": 2, "bedforms": 1}  # roots left out
    assert "80000000" not in encoder.index_
    assert len(encoder.classes_) == 16
    with_roots = HierarchyEncoder(encoder.tree_, ["relief"], include_head_root=True).fit()
    assert list(with_roots.classes_) == ["82003000", "82003005", WALL]


def test_a_label_implies_its_ancestors(encoder: HierarchyEncoder) -> None:
    targets, mask = encoder.encode([[RED, BOULDERS]])
    on = set(encoder.classes_[targets[0] == 1])
    assert on == {MACROALGAE, "80300926", RED, "82001001", BOULDERS}
    biota, substrate, relief = (encoder.head_slices_[h] for h in ("biota", "substrate", "relief"))
    assert mask[0, biota].all() and mask[0, substrate].all()  # leaves: everything known
    assert not mask[0, relief].any()  # no relief label: the whole head is unknown
    assert targets.dtype == np.float32 and mask.dtype == bool


def test_a_label_that_stops_early_masks_the_levels_below(encoder: HierarchyEncoder) -> None:
    targets, mask = encoder.encode([[MACROALGAE]])
    below = {"80300926", "80300927", RED, "80300901", "80300902"}
    for code in below:
        assert not mask[0, column(encoder, code)], code  # unknown, not absent
        assert targets[0, column(encoder, code)] == 0
    assert mask[0, column(encoder, MACROALGAE)] and targets[0, column(encoder, MACROALGAE)] == 1
    assert mask[0, column(encoder, "10000000")]  # sponges: known absent
    assert targets[0, column(encoder, "10000000")] == 0


def test_head_root_only_and_several_labels(encoder: HierarchyEncoder) -> None:
    targets, mask = encoder.encode([["80000000"], [MACROALGAE, RED], ["10000000", "80300902"]])
    biota = encoder.head_slices_["biota"]
    assert not mask[0, biota].any() and targets[0].sum() == 0  # 'Biota': nothing known
    assert mask[1, biota].all()  # the deeper label answers what Macroalgae left open
    assert targets[2, column(encoder, "10000000")] == 1
    assert targets[2, column(encoder, "80300902")] == 1 and mask[2, biota].all()


def test_inverse_transform_returns_the_most_specific_nodes(encoder: HierarchyEncoder) -> None:
    labels = [[RED, BOULDERS], [MACROALGAE], [WALL]]
    assert encoder.inverse_transform(encoder.transform(labels)) == labels
    scores = np.zeros((1, len(encoder.classes_)))
    scores[0, column(encoder, "80300926")] = 0.7
    scores[0, column(encoder, RED)] = 0.4
    assert encoder.inverse_transform(scores) == [["80300926"]]
    assert encoder.inverse_transform(scores, threshold=0.3) == [[RED]]


def test_depth_groups_and_ancestor_matrix(encoder: HierarchyEncoder) -> None:
    groups = encoder.depth_groups()
    biota = {d: set(encoder.classes_[i]) for d, i in groups["biota"].items()}
    assert biota[1] == {MACROALGAE, "10000000", "63600901"}
    assert biota[3] == {"80300927", RED, "80300902"}
    assert set(groups) == {"biota", "substrate", "relief", "bedforms"}
    matrix = encoder.ancestor_matrix()
    assert matrix[column(encoder, MACROALGAE), column(encoder, RED)]
    assert not matrix[column(encoder, RED), column(encoder, MACROALGAE)]
    assert matrix.diagonal().all()
    assert matrix.sum() == len(encoder.classes_) + sum(
        len([a for a in encoder.tree_.ancestors(c) if a in encoder.index_])
        for c in encoder.classes_
    )


def test_max_constraint_makes_scores_consistent(encoder: HierarchyEncoder) -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((5, len(encoder.classes_)))
    constrained = max_constraint(probs, encoder.ancestor_matrix())
    assert (constrained >= probs).all()
    matrix = encoder.ancestor_matrix()
    parents, children = np.nonzero(matrix & ~np.eye(len(matrix), dtype=bool))
    assert (constrained[:, parents] >= constrained[:, children]).all()
    leaves = ~(matrix & ~np.eye(len(matrix), dtype=bool)).any(axis=1)
    assert np.array_equal(constrained[:, leaves], probs[:, leaves])


def test_sklearn_contract(encoder: HierarchyEncoder) -> None:
    from sklearn.base import clone

    copy = clone(encoder)
    assert not hasattr(copy, "classes_") and copy.get_params()["include_head_root"] is False
    targets = copy.fit_transform([[RED]])
    assert np.array_equal(targets, encoder.transform([[RED]]))


def test_bad_labels_name_the_sample(encoder: HierarchyEncoder, tree: CatamiTree) -> None:
    with pytest.raises(InputError, match="sample 1: '99999999' is not a node"):
        encoder.encode([[RED], ["99999999"]])
    with pytest.raises(InputError, match="sample 0: '82000000' is in no encoded head"):
        encoder.encode([["82000000"]])  # 'Physical' belongs to no head
    only_biota = HierarchyEncoder(tree, ["biota"]).fit()
    with pytest.raises(InputError, match="in no encoded head"):
        only_biota.encode([[BOULDERS]])
    with pytest.raises(InputError, match="no head 'colour'"):
        HierarchyEncoder(tree, ["colour"]).fit()
    with pytest.raises(InputError, match="not fitted"):
        HierarchyEncoder(tree).transform([[RED]])


def test_benthicnet_path_list(catami_files: dict[str, Path]) -> None:
    paths = load_paths(catami_files["paths"])
    encoder = HierarchyEncoder(paths).fit()
    sizes = {h: s.stop - s.start for h, s in encoder.head_slices_.items()}
    assert sizes == {"biota": 11, "substrate": 5, "relief": 2, "bedforms": 2}
    targets, mask = encoder.encode([["[RELIEF] > High > Wall"]])
    relief = encoder.head_slices_["relief"]
    assert targets[0, relief].tolist() == [1.0, 1.0] and mask[0, relief].all()


@pytest.mark.shared_data
def test_benthicnet_heads_on_the_real_path_list(shared_data: Path) -> None:
    encoder = HierarchyEncoder(load_paths(shared_data / "catami" / "catami_ex.csv")).fit()
    sizes = {h: s.stop - s.start for h, s in encoder.head_slices_.items()}
    assert sizes == {"biota": 272, "substrate": 23, "bedforms": 8, "relief": 7}
    assert encoder.ancestor_matrix().shape == (310, 310)


def test_max_constraint_in_chunks_equals_the_dense_formula() -> None:
    """Many samples on a wide tree go through in chunks; same result as one dense max."""
    rng = np.random.default_rng(0)
    n_nodes = 300  # chunks of 93 samples
    parents = [-1] + [int(rng.integers(0, i)) for i in range(1, n_nodes)]
    R = np.eye(n_nodes, dtype=bool)
    for node in range(n_nodes):  # R[i, j]: i is an ancestor-or-self of j
        parent = parents[node]
        while parent >= 0:
            R[parent, node] = True
            parent = parents[parent]
    probs = rng.random((250, n_nodes))
    dense = np.where(R[None, :, :], probs[:, None, :], 0.0).max(axis=2)
    got = max_constraint(probs, R)
    np.testing.assert_array_equal(got, dense)
    assert (got[:, 0] >= got.max(axis=1) - 1e-12).all()  # the root bounds every node
