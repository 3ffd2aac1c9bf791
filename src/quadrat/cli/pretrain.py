"""``quadrat pretrain``: self-supervised pretraining of a backbone for the extractors.

Lightning and lightly load only when the command runs, so other commands stay quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from quadrat.cli._common import console, user_errors

app = typer.Typer()


@app.command()
@user_errors
def pretrain(
    data: Annotated[
        Path, typer.Option(help="Image folder, WebDataset shard(s), or folder of survey photos.")
    ],
    out: Annotated[Path, typer.Option(help="Run folder: config, checkpoints, logs, backbone.")],
    kind: Annotated[
        str, typer.Option(help="auto (folder or shards), folder, shards or photos.")
    ] = "auto",
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
    devices: Annotated[int | None, typer.Option(help="Devices per node (DDP if > 1).")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Nodes (torchrun or SLURM).")] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu or gpu.")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding worker processes.")] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the backbone.")
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue from OUT/checkpoints/last.ckpt if it exists.")
    ] = False,
) -> None:
    """Pretrain a backbone without labels; writes OUT/backbone.safetensors for extraction."""
    from quadrat.errors import InputError
    from quadrat.ssl.config import SSLConfig, load_config
    from quadrat.ssl.train import pretrain as run_pretrain

    if kind not in ("auto", "folder", "shards", "photos"):
        raise InputError("--kind must be auto, folder, shards or photos", value=kind)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "backbone": backbone,
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "devices": devices,
            "num_nodes": num_nodes,
            "accelerator": accelerator,
        }.items()
        if value is not None
    }
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
    target = run_pretrain(settings, data, out, kind=kind, resume=resume)  # type: ignore[arg-type]
    console.print(
        f"backbone written to [bold]{target}[/]; extract with "
        f"[bold]quadrat extract --extractor {target}[/]",
        highlight=False,
    )
