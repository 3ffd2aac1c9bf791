"""Barlow Twins: make the cross-correlation of the two views' projections the identity.

BenthicNet's recipe: projector 8192-8192-8192 (BN + ReLU), lambda 5e-3, and the loss
multiplied by 0.024 (solo-learn's ``scale_loss``), which together with lr 2e-3 sets the
step size they trained with.
"""

from __future__ import annotations

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from torch import nn

from quadrat.ssl.config import MethodConfig, OptimConfig
from quadrat.ssl.methods.base import SSLMethod, register_method


@register_method("barlow_twins")
class BarlowTwins(SSLMethod):
    """Backbone + Barlow Twins projector; the loss gathers correlations across DDP ranks."""

    #: What BenthicNet actually ran: plain SGD at 2e-3 (their LARS and momentum settings
    #: were ignored by their library version).
    head_defaults = MethodConfig(projector_hidden_dim=8192, projector_output_dim=8192)
    optim_defaults = OptimConfig(name="sgd", lr=2e-3, momentum=0.0, weight_decay=1.5e-6)

    def __init__(self, backbone: nn.Module, feature_dim: int, config: MethodConfig) -> None:
        super().__init__(backbone, feature_dim, config)
        self.projector = BarlowTwinsProjectionHead(
            feature_dim, config.projector_hidden_dim, config.projector_output_dim
        )
        self.criterion = BarlowTwinsLoss(config.lambda_param, gather_distributed=True)

    def training_loss(
        self, view0: torch.Tensor, view1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features0 = self.backbone(view0)
        # The correlation of 8192-d projections needs float32 even under bf16 autocast.
        z0 = self.projector(features0).float()
        z1 = self.projector(self.backbone(view1)).float()
        return self.config.loss_scale * self.criterion(z0, z1), features0
