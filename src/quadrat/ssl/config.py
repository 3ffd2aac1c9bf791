"""Pretraining configuration: one dataclass tree, defaults from BenthicNet, YAML in and out.

``SSLConfig.for_method(name)`` fills in each method's own hyperparameters (projector sizes,
optimizer, learning rate); a YAML file then overrides any field, so a file holding only
``method: byol`` and ``epochs: 5`` is a complete configuration. Unknown keys are errors
(a typo must not silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml

from quadrat.errors import InputError
from quadrat.extractors.networks import BENTHICNET_MEAN, BENTHICNET_STD
from quadrat.io.atomic import write_text

Optimizer = Literal["sgd", "lars", "adamw"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "lars", "adamw")


@dataclass
class AugmentConfig:
    """BenthicNet's augmentation, the same for both views."""

    image_size: int = 224
    crop_scale: tuple[float, float] = (0.1, 1.0)
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    hflip_p: float = 0.5
    mean: tuple[float, float, float] = BENTHICNET_MEAN
    std: tuple[float, float, float] = BENTHICNET_STD


@dataclass
class MethodConfig:
    """Head sizes and loss settings; which fields matter depends on the method."""

    projector_hidden_dim: int = 8192
    projector_output_dim: int = 8192
    predictor_hidden_dim: int = 0
    lambda_param: float = 5e-3
    loss_scale: float = 0.024
    temperature: float = 0.1
    queue_size: int = 65536
    momentum_start: float = 0.99
    momentum_end: float = 1.0


@dataclass
class OptimConfig:
    """Optimizer and schedule: linear warm-up for ``warmup_epochs``, then cosine to 0."""

    name: Optimizer = "sgd"
    lr: float = 2e-3
    momentum: float = 0.0
    weight_decay: float = 1.5e-6
    warmup_epochs: float = 10.0
    scale_lr_by_batch: bool = False


@dataclass
class DataConfig:
    """Where images come from and how they are loaded."""

    num_workers: int = 4
    patches_per_photo: int = 16
    patch_size: int = 448
    shuffle_buffer: int = 1000
    labels: bool = True


@dataclass
class SSLConfig:
    """Everything ``pretrain`` needs; the defaults reproduce BenthicNet's Barlow Twins run."""

    method: str = "barlow_twins"
    backbone: str = "resnet50"
    epochs: int = 100
    max_steps: int = -1
    batch_size: int = 256
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    checkpoint_every_n_steps: int = 0
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    seed: int = 0
    log_every_n_steps: int = 50
    tensorboard: bool = False
    probe_lr: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    head: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)

    @classmethod
    def for_method(cls, method: str, **overrides: Any) -> SSLConfig:
        """The defaults of ``method`` (its class's ``head_defaults``, ``optim_defaults``),
        then ``overrides``."""
        # Imported here: the method classes import torch and lightly, and this module is
        # read where they are not needed (YAML round trips, checkpoint configs).
        from quadrat.ssl.methods import METHODS

        method_class = METHODS.get(method)
        base = cls(
            method=method,
            head=replace(method_class.head_defaults),
            optim=replace(method_class.optim_defaults),
        )
        return _merge(base, overrides, where="overrides")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples become lists), for YAML and Lightning checkpoints."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "config") -> SSLConfig:
        """Method defaults for ``values['method']``, then every other value over them."""
        if not isinstance(values, dict):
            raise InputError(f"{where}: expected a mapping, got {type(values).__name__}")
        values = dict(values)
        method = values.pop("method", "barlow_twins")
        return _merge(cls.for_method(str(method)), values, where=where)


def load_config(path: str | Path, **overrides: Any) -> SSLConfig:
    """Read a YAML config (partial is fine), then apply ``overrides`` (e.g. from the CLI)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path=path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})", path=path, line=line
        ) from exc
    if not isinstance(values, dict):
        raise InputError(f"expected a mapping at the top, got {type(values).__name__}", path=path)
    if "method" in overrides:
        values["method"] = overrides.pop("method")
    config = SSLConfig.from_dict(values, where=str(path))
    return _merge(config, overrides, where="overrides")


def save_config(config: SSLConfig, path: str | Path) -> None:
    """Write ``config`` as YAML atomically (temp file + rename)."""
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def _merge(obj: Any, values: dict[str, Any], *, where: str, prefix: str = "") -> Any:
    """A copy of dataclass ``obj`` with ``values`` (nested dicts for nested dataclasses)."""
    hints = get_type_hints(type(obj))
    known = {f.name for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise InputError(
                f"{where}: unknown setting {name!r} (known: {', '.join(sorted(known))})",
                value=name,
            )
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(f"{where}: {name} must be a mapping", value=value)
            changes[key] = _merge(current, value, where=where, prefix=f"{name}.")
        else:
            changes[key] = _coerce(value, hints[key], current, f"{where}: {name}")
    merged = replace(obj, **changes)
    _validate(merged, where, prefix)
    return merged


def _coerce(value: Any, hint: Any, current: Any, where: str) -> Any:
    if isinstance(current, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(current):
            raise InputError(f"{where} must be a list of {len(current)} numbers", value=value)
        return tuple(float(v) for v in value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false", value=value)
        return value
    if isinstance(current, int | float) and not isinstance(value, bool):
        try:
            number = type(current)(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where} must be a number", value=value) from exc
        if isinstance(current, int) and number != value:
            raise InputError(f"{where} must be a whole number", value=value)
        return number
    if isinstance(current, str) and isinstance(value, str):
        return value
    raise InputError(f"{where} has the wrong type ({type(value).__name__})", value=value)


def _validate(obj: Any, where: str, prefix: str) -> None:
    if isinstance(obj, OptimConfig) and obj.name not in OPTIMIZERS:
        raise InputError(
            f"{where}: {prefix}name must be one of {', '.join(OPTIMIZERS)}", value=obj.name
        )
    if isinstance(obj, SSLConfig):
        for name in ("epochs", "batch_size", "devices", "num_nodes"):
            if getattr(obj, name) < 1:
                raise InputError(f"{where}: {name} must be at least 1", value=getattr(obj, name))
        if obj.precision not in ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true"):
            raise InputError(f"{where}: unknown precision", value=obj.precision)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "AugmentConfig",
    "DataConfig",
    "MethodConfig",
    "OptimConfig",
    "SSLConfig",
    "load_config",
    "save_config",
]
