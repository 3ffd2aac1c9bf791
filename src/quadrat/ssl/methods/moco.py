"""MoCo v2+: contrast queries against a momentum encoder's keys and a queue of old keys.

BenthicNet's comparison: projector 2048 -> 128, temperature 0.1, queue 65536. Both views
serve as queries (the "+": a symmetric loss); their keys enter the queue once per step.
"""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead
from torch import nn

from quadrat.ssl.config import MethodConfig, OptimConfig
from quadrat.ssl.methods.base import MomentumMethod, register_method


@register_method("moco")
class MoCo(MomentumMethod):
    """Backbone + MoCo v2 projector (2 layers, no BN), EMA key encoder, key queue."""

    #: MoCo v2's SGD: lr 0.03 per 256 images, momentum 0.9, weight decay 1e-4.
    head_defaults = MethodConfig(
        projector_hidden_dim=2048,
        projector_output_dim=128,
        temperature=0.1,
        queue_size=65536,
        momentum_start=0.99,
    )
    optim_defaults = OptimConfig(
        name="sgd", lr=0.03, momentum=0.9, weight_decay=1e-4, scale_lr_by_batch=True
    )

    def __init__(self, backbone: nn.Module, feature_dim: int, config: MethodConfig) -> None:
        super().__init__(backbone, feature_dim, config)
        out = config.projector_output_dim
        self.projector = MoCoProjectionHead(feature_dim, config.projector_hidden_dim, out)
        self.make_teacher()
        # With a memory bank, lightly's NT-Xent takes negatives from the queue only.
        self.criterion = NTXentLoss(
            temperature=config.temperature,
            memory_bank_size=(config.queue_size, out),
            gather_distributed=True,
        )

    def training_loss(
        self, view0: torch.Tensor, view1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features0 = self.backbone(view0)
        q0 = self.projector(features0).float()
        q1 = self.projector(self.backbone(view1)).float()
        k0, k1 = self.teacher(view0), self.teacher(view1)
        # One call, so each key enters the queue once and no view is its own negative.
        loss = self.criterion(torch.cat([q0, q1]), torch.cat([k1, k0]))
        return loss, features0
