"""Hierarchical CATAMI probe: one multi-label head over all nodes, made coherent by C-HMCNN.

Labels are node sets in which a label implies its ancestors. C-HMCNN (Giunchiglia and
Lukasiewicz 2020) keeps predictions coherent with a max-constraint module (MCM): a node's
probability is the maximum of its own and all its descendants' probabilities, so a parent
is never less likely than any child. Its training loss (MCLoss) uses the constrained
output, and for a positive node the maximum is taken only over positive descendants, so
the gradient reaches the node that should explain the label.

BenthicNet applies the constraint to logits after multiplying them by the targets, which
floors every constrained logit at 0 (probability 0.5) and cuts the gradient of a positive
node whose logit is negative. Here the constraint acts on probabilities, as in C-HMCNN.

The four CATAMI heads (biota, substrate, bedforms, relief) are disjoint parts of one node
vector; their nodes share the hidden layer but not the constraint (no edge crosses heads),
and metrics are reported per head and depth (:func:`quadrat.probes.metrics.depth_groups`).
Masks mark nodes a label says nothing about; they are left out of loss and metrics.

The hierarchy itself (R from parent links, implied ancestors, the max-constraint) lives in
:mod:`quadrat.labels.hierarchy`; this module holds the loss, the network and the probe.
torch is imported inside the calls that need it.
"""

from __future__ import annotations

import importlib.util
import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from quadrat.errors import InputError, missing_dependency
from quadrat.labels.hierarchy import imply_ancestors, max_constraint

if TYPE_CHECKING:
    import torch


def max_constraint_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    R: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """C-HMCNN's MCLoss: binary cross-entropy of the constrained output, masked entries left out.

    For a positive node the maximum runs over its positive descendants only
    (``MCM(p * y)``); for a negative node over all of them (``MCM(p)``), so a confident
    wrong child is penalised at every ancestor labelled negative.
    """
    import torch

    y = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    constrained = max_constraint(p, R)
    positive_path = max_constraint(p * y, R)
    train_output = y * positive_path + (1.0 - y) * constrained
    # BCE on probabilities; clamp so that log never sees exactly 0 or 1.
    eps = torch.finfo(train_output.dtype).eps
    bce = torch.nn.functional.binary_cross_entropy(
        train_output.clamp(eps, 1.0 - eps), y, reduction="none"
    )
    if mask is None:
        return bce.mean()
    keep = mask.to(bce.dtype)
    return (bce * keep).sum() / keep.sum().clamp_min(1.0)


def probe_network(
    in_features: int, n_outputs: int, hidden: int, dropout: float
) -> torch.nn.Sequential:
    """BenthicNet's "hp" probe: one hidden layer (2048, ReLU, dropout 0.7), one logit a node.

    A function rather than an ``nn.Module`` subclass, so that importing this module does
    not import torch.
    """
    from torch import nn

    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_outputs),
    )


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to 0, stepped once per optimiser step.

    BenthicNet's scheduler stayed at its warm-up value for the whole run; this one decays.
    """
    from torch.optim.lr_scheduler import LambdaLR

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return LambdaLR(optimizer, factor)


def require_torch(purpose: str) -> None:
    """Raise the error that names the extra installing torch when torch is missing.

    The probes import torch only inside the calls that train or score, so that
    ``import quadrat.probes`` (and the linear probe) work without it.
    """
    if importlib.util.find_spec("torch") is None:
        raise missing_dependency("torch", "cnn", purpose=purpose)


class HierarchicalProbe(BaseEstimator):
    """A frozen-feature hierarchical probe with BenthicNet's "hp" settings as defaults.

    ``ancestor_matrix`` is C-HMCNN's R (``R[i, j]``: node i is an ancestor-or-self of node
    j), as :func:`quadrat.labels.hierarchy.ancestor_matrix` or
    :meth:`HierarchyEncoder.ancestor_matrix <quadrat.labels.hierarchy.HierarchyEncoder>`
    give it. ``fit(X, Y, mask)``: features (n, d), 0/1 node targets (n, k; ancestors
    implied here too), optional bool mask (False = ignore that node for that sample).
    Features are standardised on the training split (backbones differ in scale by orders
    of magnitude). ``predict_proba`` returns constrained probabilities: parent >= child
    for every edge. Needs torch (``quadrat[cnn]``).
    """

    def __init__(
        self,
        ancestor_matrix: npt.ArrayLike,
        *,
        hidden: int = 2048,
        dropout: float = 0.7,
        lr: float = 3e-5,
        weight_decay: float = 1e-5,
        epochs: int = 100,
        batch_size: int = 128,
        warmup_fraction: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.ancestor_matrix = ancestor_matrix
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.warmup_fraction = warmup_fraction
        self.random_state = random_state

    def _r_tensor(self) -> torch.Tensor:
        import torch

        R = np.asarray(self.ancestor_matrix, dtype=bool)
        if R.ndim != 2 or R.shape[0] != R.shape[1] or not R.diagonal().all():
            raise InputError(
                "ancestor_matrix must be a square bool matrix with a True diagonal",
                value=R.shape,
                param="ancestor_matrix",
            )
        return torch.from_numpy(np.ascontiguousarray(R))

    def fit(
        self, X: npt.ArrayLike, Y: npt.ArrayLike, mask: npt.ArrayLike | None = None
    ) -> HierarchicalProbe:
        require_torch("HierarchicalProbe")
        import torch

        R = self._r_tensor()
        x = np.asarray(X, dtype=np.float32)
        y = np.asarray(Y)
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or y.shape[1] != R.shape[0]:
            raise InputError(
                f"X (n, d) and Y (n, {R.shape[0]}) do not fit: {x.shape}, {y.shape}",
                value=(x.shape, y.shape),
            )
        if not np.isin(y, (0, 1)).all():
            raise InputError("Y must hold 0 or 1", value=y[~np.isin(y, (0, 1))].flat[0])
        m = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if m.shape != y.shape:
            raise InputError(f"mask must have Y's shape {y.shape}, got {m.shape}", value=m.shape)
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch_size must be at least 1")
        y = imply_ancestors(y, R.numpy())
        self.scaler_ = StandardScaler().fit(x)
        xt = torch.from_numpy(self.scaler_.transform(x).astype(np.float32))
        yt = torch.from_numpy(y.astype(np.float32))
        mt = torch.from_numpy(m)
        generator = torch.Generator().manual_seed(self.random_state)
        # Initial weights and dropout masks from random_state, not from the global RNG,
        # so a fit gives the same probe whatever ran before it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            network = probe_network(x.shape[1], R.shape[0], self.hidden, self.dropout)
            optimizer = torch.optim.AdamW(
                network.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            steps_per_epoch = math.ceil(len(xt) / self.batch_size)
            total = steps_per_epoch * self.epochs
            scheduler = warmup_cosine(optimizer, total, max(1, int(self.warmup_fraction * total)))
            self.loss_curve_: list[float] = []
            network.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(xt), generator=generator)
                epoch_loss = 0.0
                for start in range(0, len(xt), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    loss = max_constraint_loss(network(xt[idx]), yt[idx], R, mt[idx])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    epoch_loss += float(loss.detach()) * len(idx)
                self.loss_curve_.append(epoch_loss / len(xt))
        self.network_ = network.eval()
        self.n_features_in_ = x.shape[1]
        return self

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Constrained node probabilities (n, k), scored 256 samples at a time."""
        check_is_fitted(self, "network_")
        import torch

        x = np.asarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise InputError(f"X must be (n, {self.n_features_in_}), got {x.shape}", value=x.shape)
        R = self._r_tensor()
        xt = torch.from_numpy(self.scaler_.transform(x).astype(np.float32))
        with torch.inference_mode():
            out = [
                max_constraint(torch.sigmoid(self.network_(xt[i : i + 256])), R)
                for i in range(0, len(xt), 256)
            ]
            k = R.shape[0]
            return torch.cat(out).numpy() if out else np.zeros((0, k), dtype=np.float32)

    def predict(self, X: npt.ArrayLike, threshold: float = 0.5) -> npt.NDArray[np.int8]:
        """0/1 node sets; coherent (a predicted node's ancestors are predicted) by the MCM."""
        return (self.predict_proba(X) >= threshold).astype(np.int8)
