"""Hierarchical multi-label targets: ancestors implied, masks for unknown levels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import quadrat.labels.hierarchy as hierarchy_module
from quadrat.errors import InputError
from quadrat.labels.catami import CatamiTree
from quadrat.labels.catami_io import load_paths
from quadrat.labels.hierarchy import (
    Hierarchy,
    HierarchyEncoder,
    ancestor_matrix,
    imply_ancestors,
    max_constraint,
    node_depths,
)

RED = "80300929"  # Biota > Macroalgae > Encrusting > Red
MACROALGAE = "80300000"
BOULDERS = "82001003"
WALL = "82003007"

# 0 Biota -> 1 Macroalgae -> 2 Brown, 3 Red; 0 -> 4 Sponges; 5 Substrate -> 6 Sand
PARENTS = [-1, 0, 1, 1, 0, -1, 5]
HEADS = ["biota"] * 5 + ["substrate"] * 2


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
    with pytest.raises(NotFittedError, match="not fitted"):
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


def test_max_constraint_in_chunks_equals_the_dense_formula(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many samples on a wide tree go through in chunks; same result as one dense max."""
    rng = np.random.default_rng(0)
    n_nodes = 300
    parents = [-1] + [int(rng.integers(0, i)) for i in range(1, n_nodes)]
    R = np.eye(n_nodes, dtype=bool)
    for node in range(n_nodes):  # R[i, j]: i is an ancestor-or-self of j
        parent = parents[node]
        while parent >= 0:
            R[parent, node] = True
            parent = parents[parent]
    probs = rng.random((250, n_nodes))
    dense = np.where(R[None, :, :], probs[:, None, :], 0.0).max(axis=2)
    assert hierarchy_module.CHUNK_ELEMENTS // int(R.sum()) >= 250  # one chunk by default
    np.testing.assert_array_equal(max_constraint(probs, R), dense)
    monkeypatch.setattr(hierarchy_module, "CHUNK_ELEMENTS", 40 * int(R.sum()))  # 40 a chunk
    got = max_constraint(probs, R)
    assert got.dtype == np.float64 and got.shape == probs.shape
    np.testing.assert_array_equal(got, dense)
    assert (got[:, 0] >= got.max(axis=1) - 1e-12).all()  # the root bounds every node
    tensor = torch.from_numpy(probs).requires_grad_(True)
    chunked = max_constraint(tensor, torch.from_numpy(R))  # the tensor path chunks too
    np.testing.assert_array_equal(chunked.detach().numpy(), dense)
    chunked.sum().backward()  # and stays differentiable across chunks
    assert tensor.grad is not None
    # every node's output comes from exactly one input: gradients count how often each
    # probability is the maximum, and sum to the number of outputs
    assert tensor.grad.sum().item() == probs.size


def test_encoder_matrix_is_the_one_built_from_parent_links(encoder: HierarchyEncoder) -> None:
    """The encoder builds R with :func:`ancestor_matrix` from its parent columns."""
    assert np.array_equal(encoder.ancestor_matrix_, ancestor_matrix(encoder.parents_))
    assert encoder.parents_[column(encoder, RED)] == column(encoder, "80300926")
    assert encoder.parents_[column(encoder, MACROALGAE)] == -1  # the head root is no column
    hierarchy = Hierarchy(tuple(encoder.classes_), tuple(encoder.parents_), tuple(encoder.head_of_))
    assert np.array_equal(hierarchy.ancestor_matrix, encoder.ancestor_matrix())
    assert np.array_equal(hierarchy.depths + 1, encoder.depth_)  # depth counts the root


def test_max_constraint_refuses_a_matrix_that_does_not_fit() -> None:
    R = ancestor_matrix(PARENTS)
    with pytest.raises(InputError, match="do not fit"):
        max_constraint(np.zeros((2, 6)), R)
    with pytest.raises(InputError, match="diagonal"):
        max_constraint(np.zeros((2, 7)), R & ~np.eye(7, dtype=bool))
    assert max_constraint(np.zeros((0, 7)), R).shape == (0, 7)


def test_importing_the_labels_package_does_not_import_torch() -> None:
    code = (
        "import sys, quadrat.labels, quadrat.labels.catami, quadrat.labels.catami_io, "
        "quadrat.labels.translate, quadrat.labels.hierarchy; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ancestor_matrix_and_depths() -> None:
    R = ancestor_matrix(PARENTS)
    assert R[0].tolist() == [True, True, True, True, True, False, False]
    assert R[1].tolist() == [False, True, True, True, False, False, False]
    assert R[2].tolist() == [False, False, True, False, False, False, False]
    assert not R[:5, 5:].any() and not R[5:, :5].any()  # heads share no edge
    assert node_depths(PARENTS).tolist() == [0, 1, 2, 2, 1, 0, 1]
    hierarchy = Hierarchy(("b", "m", "br", "r", "s", "sub", "sand"), tuple(PARENTS), tuple(HEADS))
    assert (hierarchy.ancestor_matrix == R).all()


def test_cycle_and_bad_parent_are_input_errors() -> None:
    with pytest.raises(InputError, match="cycle"):
        ancestor_matrix([1, 0])
    with pytest.raises(InputError, match="parents"):
        ancestor_matrix([-1, 7])


def test_imply_ancestors() -> None:
    R = ancestor_matrix(PARENTS)
    y = np.zeros((2, 7), dtype=np.int8)
    y[0, 2] = 1  # Brown
    y[1, 6] = 1  # Sand
    assert imply_ancestors(y, R).tolist() == [[1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1]]


def test_max_constraint_respects_the_hierarchy() -> None:
    R = torch.from_numpy(ancestor_matrix(PARENTS))
    probs = torch.rand(50, 7, generator=torch.Generator().manual_seed(0))
    out = max_constraint(probs, R)
    for child, parent in enumerate(PARENTS):
        if parent >= 0:
            assert (out[:, parent] >= out[:, child]).all()
    assert (out >= probs).all()
    assert torch.equal(out[:, 2], probs[:, 2])  # a leaf keeps its own probability
    expected_root = probs[:, :5].amax(dim=1)
    assert torch.equal(out[:, 0], expected_root)
    assert torch.equal(max_constraint(out, R), out)  # idempotent
