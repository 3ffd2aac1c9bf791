"""BYOL: an online network predicts a momentum teacher's projection of the other view.

BenthicNet's comparison: projector 4096 -> 256, lr 0.05; the teacher's momentum follows
BYOL's cosine from 0.99 to 1.
"""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from torch import nn

from quadrat.ssl.config import MethodConfig, OptimConfig
from quadrat.ssl.methods.base import MomentumMethod, register_method


@register_method("byol")
class BYOL(MomentumMethod):
    """Online backbone + projector + predictor, EMA teacher; symmetric cosine loss."""

    #: LARS as in the paper, at the spec's lr 0.05.
    head_defaults = MethodConfig(
        projector_hidden_dim=4096,
        projector_output_dim=256,
        predictor_hidden_dim=4096,
        momentum_start=0.99,
    )
    optim_defaults = OptimConfig(name="lars", lr=0.05, momentum=0.9, weight_decay=1.5e-6)

    def __init__(self, backbone: nn.Module, feature_dim: int, config: MethodConfig) -> None:
        super().__init__(backbone, feature_dim, config)
        out = config.projector_output_dim
        self.projector = BYOLProjectionHead(feature_dim, config.projector_hidden_dim, out)
        self.predictor = BYOLPredictionHead(out, config.predictor_hidden_dim, out)
        self.make_teacher()
        self.criterion = NegativeCosineSimilarity()

    def training_loss(
        self, view0: torch.Tensor, view1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features0 = self.backbone(view0)
        p0 = self.predictor(self.projector(features0)).float()
        p1 = self.predictor(self.projector(self.backbone(view1))).float()
        t0, t1 = self.teacher(view0), self.teacher(view1)
        loss = 0.5 * (self.criterion(p0, t1) + self.criterion(p1, t0))
        return loss, features0
