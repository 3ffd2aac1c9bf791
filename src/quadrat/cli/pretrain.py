"""``quadrat pretrain``: self-supervised pretraining of a backbone for the extractors.

Lightning and lightly load only when the command runs, so other commands stay quick.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from quadrat.cli._common import console, user_errors

app = typer.Typer()


class DataFormat(StrEnum):
    """What DATA is."""

    auto = "auto"
    folder = "folder"
    shards = "shards"
    photos = "photos"


class Device(StrEnum):
    """Where to train (Lightning's accelerator)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
@user_errors
def pretrain(
    data: Annotated[
        Path,
        typer.Argument(help="Image folder, WebDataset shard(s), or folder of survey photos."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: config, checkpoints, logs, backbone.")
    ],
    format_: Annotated[
        DataFormat,
        typer.Option("--format", "-f", help="What DATA is (auto: a folder or shards)."),
    ] = DataFormat.auto,
    method: Annotated[
        str | None, typer.Option(help="barlow_twins (default), simsiam, byol or moco.")
    ] = None,
    backbone: Annotated[str | None, typer.Option(help="timm model name (resnet50).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config; the options here override it.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per device per step.")] = None,
    device: Annotated[
        Device | None, typer.Option(help="auto, cpu or cuda (default: the config's, auto).")
    ] = None,
    num_devices: Annotated[int | None, typer.Option(help="Devices per node (DDP if > 1).")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Nodes (torchrun or SLURM).")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding worker processes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the config's).")] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the backbone.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUT/checkpoints/last.ckpt if it exists.")
    ] = False,
) -> None:
    """Pretrain a backbone without labels; writes OUT/backbone.safetensors for extraction."""
    try:
        from quadrat.ssl.config import SSLConfig, load_config
        from quadrat.ssl.train import pretrain as run_pretrain
    except ModuleNotFoundError as exc:  # a core install: the ssl extra names what to add
        if not exc.name or exc.name.split(".")[0] == "quadrat":
            raise
        from quadrat.errors import missing_dependency

        raise missing_dependency(exc.name, "ssl", purpose="quadrat pretrain") from exc

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "backbone": backbone,
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "devices": num_devices,
            "num_nodes": num_nodes,
            "seed": seed,
        }.items()
        if value is not None
    }
    if device is not None:
        overrides["accelerator"] = "gpu" if device is Device.cuda else device.value
    if compile_:
        overrides["compile"] = True
    if workers is not None:
        overrides["data"] = {"num_workers": workers}
    if config is not None:
        if method is not None:
            overrides["method"] = method
        settings = load_config(config, **overrides)
    else:
        settings = SSLConfig.for_method(method or "barlow_twins", **overrides)
    target = run_pretrain(settings, data, out, kind=format_.value, resume=resume)
    console.print(
        f"backbone written to [bold]{target}[/]; extract with "
        f"[bold]quadrat extract --extractor {target}[/]",
        highlight=False,
    )
