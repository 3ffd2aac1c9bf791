"""SimSiam: predict one view's projection from the other's, with a stop-gradient.

BenthicNet's comparison used projector 2048/2048 and predictor hidden size 512.
"""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead
from torch import nn

from quadrat.ssl.config import MethodConfig, OptimConfig
from quadrat.ssl.methods.base import SSLMethod, register_method


@register_method("simsiam")
class SimSiam(SSLMethod):
    """Backbone + projector + predictor; symmetric negative cosine loss."""

    #: The paper's SGD: lr 0.05 per 256 images, momentum 0.9, weight decay 1e-4.
    head_defaults = MethodConfig(
        projector_hidden_dim=2048, projector_output_dim=2048, predictor_hidden_dim=512
    )
    optim_defaults = OptimConfig(
        name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, scale_lr_by_batch=True
    )

    def __init__(self, backbone: nn.Module, feature_dim: int, config: MethodConfig) -> None:
        super().__init__(backbone, feature_dim, config)
        out = config.projector_output_dim
        self.projector = SimSiamProjectionHead(feature_dim, config.projector_hidden_dim, out)
        self.predictor = SimSiamPredictionHead(out, config.predictor_hidden_dim, out)
        self.criterion = NegativeCosineSimilarity()

    def training_loss(
        self, view0: torch.Tensor, view1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features0 = self.backbone(view0)
        z0 = self.projector(features0)
        z1 = self.projector(self.backbone(view1))
        p0, p1 = self.predictor(z0).float(), self.predictor(z1).float()
        loss = 0.5 * (
            self.criterion(p0, z1.detach().float()) + self.criterion(p1, z0.detach().float())
        )
        return loss, features0
