"""SSL pretraining throughput: end to end from JPEG shards vs the model alone, in pairs/s.

Prints one JSON object. Three figures from one run, on the same module and settings:

- ``loader_pairs_per_s``: the input pipeline alone (shard read, JPEG decode, two random
  resized crops in ``--workers`` processes), no model;
- ``end_to_end_pairs_per_s``: ``quadrat pretrain``'s Lightning loop on the shards (device
  batch augmentation, forward, loss, backward, optimizer step);
- ``model_pairs_per_s``: forward + loss + backward + step on two random views already on
  the device (the ceiling the input pipeline has to feed).

On CUDA the defaults are the issue's target (ResNet-50 Barlow Twins, batch 256, bf16,
channels-last); on CPU pass tiny settings, e.g.::

    python benchmarks/ssl_throughput.py --backbone resnet18 --batch-size 16 \\
        --image-size 64 --projector-dim 512 --images 256 --steps 5 --workers 1

Without ``--shards`` it writes synthetic JPEG shards (``--images`` of ``--source-size``)
to a temporary folder first.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from PIL import Image

from quadrat.ssl.config import SSLConfig
from quadrat.ssl.data import make_dataset, make_loader
from quadrat.ssl.train import SSLModule, make_trainer


def write_shards(root: Path, images: int, size: tuple[int, int], per_shard: int = 500) -> Path:
    """Synthetic smooth-noise JPEGs (q90) in WebDataset shards, like a real survey's."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    width, height = size
    for shard, start in enumerate(range(0, images, per_shard)):
        with tarfile.open(root / f"bench-{shard:06d}.tar", "w") as tar:
            for i in range(start, min(start + per_shard, images)):
                small = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), np.uint8)
                image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=90)
                data = buffer.getvalue()
                info = tarfile.TarInfo(f"img{i:07d}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return root


class StepTimer(lightning.Callback):
    """Wall time between the end of step ``warmup`` and the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end: float | None = None
        self.steps = 0

    def on_train_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.global_step > self.warmup:
            self.end = time.perf_counter()
            self.steps = trainer.global_step - self.warmup


def loader_rate(loader: Any, batches: int) -> float:
    """Pairs/s the DataLoader delivers, after its first batch (worker start-up)."""
    iterator = iter(loader)
    next(iterator)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        view0, _, _ = next(iterator)
        count += len(view0)
    return count / (time.perf_counter() - start)


def model_rate(
    module: SSLModule, config: SSLConfig, device: torch.device, steps: int, warmup: int
) -> float:
    """Pairs/s of forward + loss + backward + SGD step on random device-resident views."""
    module.to(device)
    module.configure_model()
    module.train()
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    size = config.augment.image_size
    views = [
        torch.randn(config.batch_size, 3, size, size, device=device).contiguous(
            memory_format=module.memory_format
        )
        for _ in range(2)
    ]
    bf16 = device.type == "cuda"
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            if bf16:
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss, _ = module.method.training_loss(*views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if bf16:
        torch.cuda.synchronize()
    return config.batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=Path, help="Folder of .tar shards (default: synthetic).")
    parser.add_argument("--method", default="barlow_twins")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=256 if cuda else 16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--projector-dim", type=int, default=8192)
    parser.add_argument("--images", type=int, default=12800 if cuda else 256)
    parser.add_argument("--source-size", default="512x384", help="Synthetic JPEG WxH.")
    parser.add_argument("--steps", type=int, default=30 if cuda else 5)
    parser.add_argument("--warmup", type=int, default=5 if cuda else 2)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone.")
    parser.add_argument(
        "--full-decode",
        action="store_true",
        help="Decode JPEGs at full size (no reduced-scale DCT decoding).",
    )
    parser.add_argument("--loader-only", action="store_true", help="Skip the model figures.")
    args = parser.parse_args()

    config = SSLConfig.for_method(
        args.method,
        backbone=args.backbone,
        batch_size=args.batch_size,
        max_steps=args.warmup + args.steps,
        compile=args.compile,
        log_every_n_steps=10_000,
        augment={"image_size": args.image_size},
        head={
            "projector_hidden_dim": args.projector_dim,
            "projector_output_dim": args.projector_dim,
        },
        data={"num_workers": args.workers, "shuffle_buffer": 4 * args.batch_size, "labels": False},
    )
    device = torch.device("cuda" if cuda else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        width, height = (int(v) for v in args.source_size.split("x"))
        shards = args.shards or write_shards(Path(tmp) / "shards", args.images, (width, height))
        dataset = make_dataset(shards, config, kind="shards")
        if args.full_decode:
            dataset.min_side = 0  # type: ignore[union-attr]
        loader = make_loader(dataset, config)
        loader_pairs = loader_rate(loader, args.steps)
        if args.loader_only:
            print(
                json.dumps(
                    {
                        "source_size": args.source_size,
                        "workers": args.workers,
                        "full_decode": args.full_decode,
                        "loader_pairs_per_s": round(loader_pairs, 1),
                    }
                )
            )
            return

        os.environ.setdefault("QUADRAT_NO_PROGRESS", "1")
        trainer = make_trainer(config, Path(tmp) / "run")
        timer = StepTimer(args.warmup)
        trainer.callbacks.append(timer)  # type: ignore[attr-defined]
        module = SSLModule(config.to_dict())
        trainer.fit(module, loader)
        if timer.start is None or timer.end is None:
            raise SystemExit("too few batches in the shards for --warmup + --steps")
        end_to_end = config.batch_size * timer.steps / (timer.end - timer.start)

        model_only = model_rate(
            SSLModule(config.to_dict()), config, device, args.steps, args.warmup
        )
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
                "method": args.method,
                "backbone": args.backbone,
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "precision": "bf16-mixed" if cuda else "32-true",
                "channels_last": True,
                "compile": args.compile,
                "workers": args.workers,
                "steps_timed": args.steps,
                "loader_pairs_per_s": round(loader_pairs, 1),
                "end_to_end_pairs_per_s": round(end_to_end, 1),
                "model_pairs_per_s": round(model_only, 1),
                "end_to_end_over_model": round(end_to_end / model_only, 3),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
