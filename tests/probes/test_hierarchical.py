"""The CATAMI probe: C-HMCNN's max-constraint on probabilities, its loss, masks, the probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from quadrat.errors import InputError
from quadrat.labels.hierarchy import ancestor_matrix, imply_ancestors, node_depths
from quadrat.probes.hierarchical import HierarchicalProbe, max_constraint_loss
from quadrat.probes.metrics import depth_groups, hierarchical_metrics

# 0 Biota -> 1 Macroalgae -> 2 Brown, 3 Red; 0 -> 4 Sponges; 5 Substrate -> 6 Sand
PARENTS = [-1, 0, 1, 1, 0, -1, 5]
HEADS = ["biota"] * 5 + ["substrate"] * 2


def _benthicnet_logit_loss(logits: torch.Tensor, y: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """The spec's defect, for contrast: MCM applied to target-multiplied logits."""
    constrained = max_constraint_logits(logits, R)
    train = y * max_constraint_logits(logits * y, R) + (1 - y) * constrained
    return torch.nn.functional.binary_cross_entropy_with_logits(train, y)


def max_constraint_logits(logits: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    return (logits.unsqueeze(1) * R.to(logits.dtype).unsqueeze(0)).amax(dim=2)


def test_loss_reaches_a_positive_node_with_a_negative_logit() -> None:
    R = torch.from_numpy(ancestor_matrix(PARENTS))
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])  # Macroalgae, not Brown/Red
    logits = torch.full((1, 7), -2.0, requires_grad=True)
    max_constraint_loss(logits, y, R).backward()
    assert logits.grad is not None
    assert logits.grad[0, 1] < 0  # pushed up: the loss wants Macroalgae more likely

    logits_bn = torch.full((1, 7), -2.0, requires_grad=True)
    _benthicnet_logit_loss(logits_bn, y, R).backward()
    assert logits_bn.grad is not None
    assert logits_bn.grad[0, 1] == 0  # clamped at logit 0 by the zeroed children: no signal


def test_masked_nodes_leave_the_loss() -> None:
    R = torch.from_numpy(ancestor_matrix(PARENTS))
    logits = torch.randn(8, 7, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = imply_ancestors(np.eye(7, dtype=np.int8)[[2, 3, 4, 6, 2, 3, 4, 6]], R.numpy())
    mask = torch.ones(8, 7, dtype=torch.bool)
    mask[:, 5] = False  # the Substrate root: its logit feeds only its own output
    y_flipped = y.copy()
    y_flipped[:, 5] = 1 - y_flipped[:, 5]
    a = max_constraint_loss(logits, torch.from_numpy(y).float(), R, mask)
    b = max_constraint_loss(logits, torch.from_numpy(y_flipped).float(), R, mask)
    assert torch.allclose(a, b)
    a.backward()
    assert logits.grad is not None
    assert (logits.grad[:, 5] == 0).all()
    assert (logits.grad[:, 6] != 0).all()


def test_hp_defaults_are_benthicnet_settings() -> None:
    probe = HierarchicalProbe(ancestor_matrix(PARENTS))
    assert (probe.hidden, probe.dropout, probe.lr, probe.weight_decay, probe.epochs) == (
        2048,
        0.7,
        3e-5,
        1e-5,
        100,
    )


def _toy_features(n_per_leaf: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leaf sets (biota leaf + substrate leaf) with features that encode them."""
    rng = np.random.default_rng(0)
    biota_leaves = np.array([2, 3, 4])
    rows, feats = [], []
    for i, leaf in enumerate(biota_leaves):
        for j in range(n_per_leaf):
            y = np.zeros(7, dtype=np.int8)
            y[leaf] = 1
            has_sand = j % 2 == 0
            if has_sand:
                y[6] = 1
            rows.append(y)
            centre = np.zeros(8)
            centre[i] = 3.0
            centre[5] = 3.0 if has_sand else -3.0
            feats.append(centre + rng.normal(size=8))
    Y = imply_ancestors(np.array(rows), ancestor_matrix(PARENTS))
    mask = np.ones_like(Y, dtype=bool)
    mask[::5, 5:] = False  # some samples say nothing about substrate
    return np.array(feats, dtype=np.float32), Y, mask


def test_probe_learns_a_toy_hierarchy_and_predicts_coherently() -> None:
    X, Y, mask = _toy_features()
    probe = HierarchicalProbe(
        ancestor_matrix(PARENTS), hidden=32, dropout=0.1, lr=1e-2, epochs=40, batch_size=32
    ).fit(X, Y, mask)
    assert probe.loss_curve_[-1] < 0.5 * probe.loss_curve_[0]
    proba = probe.predict_proba(X)
    for child, parent in enumerate(PARENTS):
        if parent >= 0:
            assert (proba[:, parent] >= proba[:, child]).all()
    scores = hierarchical_metrics(
        Y, proba, mask, groups=depth_groups(node_depths(PARENTS), np.array(HEADS))
    )
    assert scores["subset_accuracy"] > 0.9
    assert scores["groups"]["biota/depth_2"]["mcc"] > 0.8
    pred = probe.predict(X)
    assert ((pred[:, 2] <= pred[:, 1]) & (pred[:, 1] <= pred[:, 0])).all()


def test_probe_rejects_bad_shapes() -> None:
    probe = HierarchicalProbe(ancestor_matrix(PARENTS), epochs=1)
    with pytest.raises(InputError, match="do not fit"):
        probe.fit(np.zeros((4, 3)), np.zeros((4, 5)))
    with pytest.raises(NotFittedError, match="not fitted"):
        probe.predict_proba(np.zeros((1, 3)))


def test_fit_does_not_depend_on_the_global_rng() -> None:
    X, Y, mask = _toy_features(n_per_leaf=6)
    settings = {"hidden": 8, "dropout": 0.5, "lr": 1e-2, "epochs": 3, "batch_size": 8}
    torch.manual_seed(1)
    first = HierarchicalProbe(ancestor_matrix(PARENTS), **settings).fit(X, Y, mask)
    torch.manual_seed(2)
    torch.rand(10)
    second = HierarchicalProbe(ancestor_matrix(PARENTS), **settings).fit(X, Y, mask)
    assert first.loss_curve_ == second.loss_curve_
    assert np.array_equal(first.predict_proba(X), second.predict_proba(X))
