"""The pretraining loop on Lightning: one module for every method, and ``pretrain(config)``.

Lightning supplies what must not be home-made: mixed precision, DDP over devices and nodes
(its own launcher, torchrun or SLURM), checkpointing and exact resume, logging. This module
adds the SSL parts: batched augmentation on the device, channels-last, optional
``torch.compile``, the optimizer each method calls for with warm-up + cosine, the momentum
schedule, and an online linear probe on detached features when labels exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning
import torch
from lightly.models.utils import get_weight_decay_parameters
from lightly.utils.lars import LARS
from lightly.utils.scheduler import CosineWarmupScheduler
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from quadrat.errors import ConflictError, missing_dependency
from quadrat.extractors.timm_utils import headless
from quadrat.io.atomic import atomic_path
from quadrat.ssl.augment import BatchAugment
from quadrat.ssl.config import SSLConfig, save_config
from quadrat.ssl.data import DataKind, make_dataset, make_loader, num_classes
from quadrat.ssl.export import export_backbone
from quadrat.ssl.methods import build_method

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
BACKBONE_FILE = "backbone.safetensors"


class SSLModule(lightning.LightningModule):
    """A method (backbone + heads), the device-side augmentation and the online probe."""

    def __init__(self, config: dict[str, Any], num_classes: int = 0) -> None:
        super().__init__()
        # Plain types only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters({"config": config, "num_classes": num_classes})
        self.config = SSLConfig.from_dict(config)
        backbone, feature_dim = headless(self.config.backbone)
        self.method = build_method(self.config.method, backbone, feature_dim, self.config.head)
        self.augment = BatchAugment(self.config.augment)
        self.probe = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self.memory_format = (
            torch.channels_last if self.config.channels_last else torch.contiguous_format
        )

    @property
    def backbone(self) -> nn.Module:
        return self.method.backbone

    def configure_model(self) -> None:
        self.to(memory_format=self.memory_format)
        if self.config.compile:
            self.method.backbone.compile()  # in place: state dict keys stay unprefixed

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment whole batches where they now live (the GPU in training)."""
        view0, view1, labels = batch
        views = [
            self.augment(v).contiguous(memory_format=self.memory_format) for v in (view0, view1)
        ]
        return views[0], views[1], labels

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        view0, view1, labels = batch
        loss, features = self.method.training_loss(view0, view1)
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        if self.probe is None:
            return loss
        return loss + self._probe_loss(features.detach().float(), labels)

    def _probe_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the linear probe on labelled samples; accuracy is logged."""
        assert self.probe is not None
        logits = self.probe(features)
        known = labels >= 0
        if not bool(known.any()):
            return logits.sum() * 0.0  # keeps every parameter in the graph for DDP
        loss = nn.functional.cross_entropy(logits[known], labels[known])
        accuracy = (logits[known].argmax(1) == labels[known]).float().mean()
        self.log("train/probe_loss", loss, sync_dist=True)
        self.log("train/probe_acc", accuracy, prog_bar=True, sync_dist=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.method.step_end(self.global_step, int(self.trainer.estimated_stepping_batches))

    def configure_optimizers(self) -> Any:
        optim = self.config.optim
        lr = optim.lr
        if optim.scale_lr_by_batch:
            lr *= self.config.batch_size * self.trainer.world_size / 256
        trainable = [m for m in self._student_modules()]
        decay, no_decay = get_weight_decay_parameters(trainable)
        groups: list[dict[str, Any]] = [
            {"params": [p for p in decay if p.requires_grad], "weight_decay": optim.weight_decay},
            # No decay (and, for LARS, no trust ratio) on biases and norm layers.
            {"params": [p for p in no_decay if p.requires_grad], "weight_decay": 0.0},
        ]
        if self.probe is not None:
            groups.append(
                {
                    "params": list(self.probe.parameters()),
                    "weight_decay": 0.0,
                    "lr": self.config.probe_lr,
                }
            )
        optimizer: torch.optim.Optimizer
        if optim.name == "lars":
            optimizer = LARS(groups, lr=lr, momentum=optim.momentum)
        elif optim.name == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=lr)
        else:
            optimizer = torch.optim.SGD(groups, lr=lr, momentum=optim.momentum)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = int(total * min(optim.warmup_epochs / self.config.epochs, 1.0))
        scheduler = CosineWarmupScheduler(
            optimizer, warmup_epochs=warmup, max_epochs=total, end_value=0.0
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _student_modules(self) -> list[nn.Module]:
        """Trained parts of the method: everything except frozen momentum teachers."""
        return [
            module
            for name, module in self.method.named_children()
            if not name.startswith("teacher") and any(True for _ in module.parameters())
        ]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file and rename (:func:`quadrat.io.atomic.atomic_path`,
    the one atomic writer): a crash never leaves half a file."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def resolve_precision(config: SSLConfig) -> str:
    """``auto``: bf16 mixed precision on a GPU that has it, float32 elsewhere."""
    if config.precision != "auto":
        return config.precision
    use_gpu = config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if use_gpu and torch.cuda.is_bf16_supported() else "32-true"


def make_trainer(config: SSLConfig, out: Path) -> lightning.Trainer:
    """A Trainer with checkpoints in ``out/checkpoints`` and CSV (+TensorBoard) logs."""
    every_steps = config.checkpoint_every_n_steps
    checkpoint = ModelCheckpoint(
        dirpath=out / CHECKPOINT_DIR,
        filename="step{step:08d}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=1,
        every_n_train_steps=every_steps if every_steps > 0 else None,
        every_n_epochs=None if every_steps > 0 else 1,
    )
    callbacks: list[Any] = [checkpoint, LearningRateMonitor(logging_interval="step")]
    show_progress = os.environ.get("QUADRAT_NO_PROGRESS") != "1"
    if show_progress:
        callbacks.append(RichProgressBar())
    # A new version folder per (resumed) run: earlier logs are never overwritten.
    loggers: list[Logger] = [CSVLogger(out, name="logs")]
    if config.tensorboard:
        try:
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(out, name="tensorboard"))
        except ModuleNotFoundError as exc:  # tensorboard is an optional extra
            raise missing_dependency(
                "tensorboard", "tensorboard", purpose="tensorboard logging"
            ) from exc
    world = config.devices * config.num_nodes
    return lightning.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if world > 1 else "auto",
        precision=resolve_precision(config),  # type: ignore[arg-type]
        max_epochs=config.epochs,
        max_steps=config.max_steps,
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=config.log_every_n_steps,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        default_root_dir=out,
        use_distributed_sampler=True,
    )


def pretrain(
    config: SSLConfig,
    data: str | Path,
    out: str | Path,
    *,
    kind: DataKind = "auto",
    resume: bool = False,
) -> Path:
    """Pretrain ``config.backbone`` on ``data``; return the exported backbone file.

    ``out`` receives ``config.yaml``, ``checkpoints/`` (``last.ckpt`` for resuming),
    ``logs/`` (metrics.csv) and ``backbone.safetensors`` for ``create_extractor``.
    ``resume=True`` continues from ``checkpoints/last.ckpt`` when it exists (so a requeued
    job can always pass it); without it, an ``out`` that holds checkpoints is refused.
    """
    out = Path(out)
    last = out / CHECKPOINT_DIR / LAST_CHECKPOINT
    if last.exists() and not resume:
        raise ConflictError(
            "already holds a pretraining run: resume it (resume=True) or choose another out",
            path=out,
            param="resume",
        )
    lightning.seed_everything(config.seed, workers=True, verbose=False)
    dataset = make_dataset(data, config, kind)
    loader = make_loader(dataset, config)
    module = SSLModule(config.to_dict(), num_classes(dataset))
    trainer = make_trainer(config, out)
    if trainer.is_global_zero:
        save_config(config, out / "config.yaml")
    trainer.fit(module, loader, ckpt_path=last if resume and last.exists() else None)
    target = out / BACKBONE_FILE
    if trainer.is_global_zero:
        export_backbone(module.backbone, module.config, module.method.feature_dim, target)
    trainer.strategy.barrier()
    return target
