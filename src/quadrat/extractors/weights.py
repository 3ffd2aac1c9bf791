"""Reading weights files and converting published checkpoint layouts to timm/torchvision names.

One function per layout, plus :func:`detect_layout`. A converter renames what it knows
and passes every other key through unchanged, so keys it does not understand surface as
"unexpected" when the result is matched against the model (see ``backbones.py``).

Layouts:

- ``timm``: a plain state dict in timm's (or torchvision's, for ResNet/VGG) names.
- ``pyspacer_efficientnet``: CoralNet 1.0 / pyspacer, lukemelas' EfficientNet-PyTorch
  names (``_conv_stem``, ``_blocks.N._expand_conv`` ...), flat block numbering.
- ``solo_learn``: BenthicNet's released Lightning checkpoints; the network lives under
  ``backbone.``, next to projector, classifier and momentum copies that features ignore.
- ``caffe_vgg16``: CoralNet Beta's VGG16 layer names (``conv1_1`` ... ``fc7``), as written
  by common Caffe-to-PyTorch converters.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import safetensors.torch
import torch

from quadrat.errors import WeightsError

Layout = Literal["timm", "pyspacer_efficientnet", "solo_learn", "caffe_vgg16"]
StateDict = dict[str, torch.Tensor]

#: Blocks per stage of EfficientNet-B0 (pyspacer numbers its 16 blocks flat, timm per stage).
B0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)

# Keys under which checkpoints nest their state dict: pyspacer ('net'), Lightning and
# solo-learn ('state_dict'), timm/DeiT training scripts ('model').
_CONTAINER_KEYS = ("net", "state_dict", "model")

# Numpy objects that real training checkpoints carry next to their tensors (pyspacer
# allowlists the same kinds); files saved under numpy 1 name the scalar type numpy.core.
_NP_SCALAR = importlib.import_module(
    "numpy.core.multiarray" if np.__version__.startswith("1.") else "numpy._core.multiarray"
).scalar
_NUMPY_SAFE_GLOBALS: list = [
    np.dtype,
    _NP_SCALAR,
    (_NP_SCALAR, "numpy.core.multiarray.scalar"),
    *(getattr(np.dtypes, n) for n in np.dtypes.__all__ if n.endswith("DType")),
]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes: the weights part of an extractor's key."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> StateDict:
    """Read a torch (``torch.save``) or safetensors file as one flat state dict.

    Unwraps ``{'net': ...}``, ``{'state_dict': ...}`` and ``{'model': ...}`` containers and
    strips the ``module.`` prefix DataParallel adds. Only tensors are loaded
    (``weights_only=True``): a file needing arbitrary pickled code is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    obj = _load_any(path)
    while isinstance(obj, Mapping):
        nested = [k for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)]
        if not nested:
            break
        obj = obj[nested[0]]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsError(
            f"{path}: not a state dict; non-tensor entries {first_keys(not_tensors)}"
        )
    return {_strip_prefix(k, "module."): v for k, v in obj.items()}


def _load_any(path: Path) -> object:
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as unsafe:
        # Lightning checkpoints (solo-learn's, BenthicNet's) pickle their training config
        # (omegaconf objects, ...) beside the tensors: keep the tensors, inert the rest.
        try:
            return torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_tensors_only
            )
        except Exception:
            torch_error: Exception = unsafe
    except Exception as error:  # any failure: try safetensors
        torch_error = error
    try:
        return _load_safetensors(path)
    except WeightsError:
        first_line = str(torch_error).strip().splitlines()[0][:200]
        raise WeightsError(
            f"{path}: cannot be read as a torch or safetensors weights file "
            f"({type(torch_error).__name__}: {first_line})"
        ) from torch_error


class _Inert:
    """Stands in for every pickled object that is not a tensor: built from anything, does
    nothing, so a checkpoint's pickled code can never run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, value: object) -> None:
        pass

    def extend(self, values: object) -> None:
        pass


# What a tensor needs to be unpickled (torch resolves storage classes itself).
_TENSOR_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Tensor"),
    ("torch", "Size"),
}


class _TensorsOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals tensors need; any other class or function is :class:`_Inert`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _TENSOR_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _Inert


def _tensors_only_load(file: Any, **kwargs: Any) -> Any:
    return _TensorsOnlyUnpickler(file, **kwargs).load()


# torch.load's ``pickle_module``: it subclasses ``Unpickler`` and calls ``load`` (old format).
_tensors_only = SimpleNamespace(
    __name__="tensors_only", Unpickler=_TensorsOnlyUnpickler, load=_tensors_only_load
)


def _load_safetensors(path: Path) -> StateDict:
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as error:  # the library raises several types
        raise WeightsError(f"{path}: not a valid safetensors file ({error})") from error


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> Layout:
    """Name the published layout a (container-unwrapped) state dict follows."""
    keys = list(state_dict)
    if any(k.startswith(("_conv_stem.", "_blocks.")) for k in keys):
        return "pyspacer_efficientnet"
    if any(k.startswith("backbone.") for k in keys):
        return "solo_learn"
    if any(k.startswith("conv1_1.") for k in keys) and any(k.startswith("fc7.") for k in keys):
        return "caffe_vgg16"
    return "timm"


# --- pyspacer / lukemelas EfficientNet -----------------------------------------------

_EFFNET_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# timm's first B0 block is a DepthwiseSeparableConv (no expansion), so its batch norms are
# bn1/bn2 and its projection is conv_pw; every other block is an InvertedResidual whose
# expansion takes conv_pw/bn1 and shifts the rest by one.
_EFFNET_BLOCK_NO_EXPAND = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_EFFNET_BLOCK_EXPAND = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LUKEMELAS_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(.+)")
_TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.(\w+(?:\.conv_\w+)?)\.(\w+)")


def from_pyspacer_efficientnet(
    state_dict: Mapping[str, torch.Tensor],
    stage_depths: Sequence[int] = B0_STAGE_DEPTHS,
) -> StateDict:
    """lukemelas/pyspacer EfficientNet names -> timm ``tf_efficientnet_*`` names."""
    positions = [(s, i) for s, depth in enumerate(stage_depths) for i in range(depth)]
    expanding = {
        int(m.group(1))
        for k in state_dict
        if (m := _LUKEMELAS_BLOCK.fullmatch(k)) and m.group(2) == "_expand_conv"
    }
    out: StateDict = {}
    for key, value in state_dict.items():
        out[_lukemelas_to_timm(key, positions, expanding)] = value
    return out


def _lukemelas_to_timm(key: str, positions: list[tuple[int, int]], expanding: set[int]) -> str:
    match = _LUKEMELAS_BLOCK.fullmatch(key)
    if match:
        n, part, param = int(match.group(1)), match.group(2), match.group(3)
        names = _EFFNET_BLOCK_EXPAND if n in expanding else _EFFNET_BLOCK_NO_EXPAND
        if n < len(positions) and part in names:
            stage, index = positions[n]
            return f"blocks.{stage}.{index}.{names[part]}.{param}"
        return key
    top, _, param = key.partition(".")
    return f"{_EFFNET_TOP[top]}.{param}" if top in _EFFNET_TOP else key


def to_pyspacer_efficientnet(
    state_dict: Mapping[str, torch.Tensor],
    stage_depths: Sequence[int] = B0_STAGE_DEPTHS,
) -> StateDict:
    """timm ``tf_efficientnet_*`` names -> lukemelas/pyspacer names (inverse of the above).

    For exporting a timm-trained network to CoralNet/pyspacer; note pyspacer also expects
    a ``_fc`` classifier (1275 outputs for CoralNet 1.0), which a num_classes=0 model lacks.
    """
    starts = np.cumsum([0, *stage_depths]).tolist()
    expanding = {
        (int(m.group(1)), int(m.group(2)))
        for k in state_dict
        if (m := _TIMM_BLOCK.fullmatch(k)) and m.group(3) == "conv_pwl"
    }
    top = {v: k for k, v in _EFFNET_TOP.items()}
    inverse = {
        True: {v: k for k, v in _EFFNET_BLOCK_EXPAND.items()},
        False: {v: k for k, v in _EFFNET_BLOCK_NO_EXPAND.items()},
    }
    out: StateDict = {}
    for key, value in state_dict.items():
        match = _TIMM_BLOCK.fullmatch(key)
        if match:
            stage, index, part, param = match.groups()
            names = inverse[(int(stage), int(index)) in expanding]
            n = starts[int(stage)] + int(index)
            out[f"_blocks.{n}.{names[part]}.{param}" if part in names else key] = value
            continue
        head, _, param = key.partition(".")
        out[f"{top[head]}.{param}" if head in top else key] = value
    return out


# --- BenthicNet / solo-learn --------------------------------------------------------------


def from_solo_learn(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Keep the ``backbone.`` network, drop projector, classifier and momentum copies."""
    return {k[len("backbone.") :]: v for k, v in state_dict.items() if k.startswith("backbone.")}


# --- CoralNet Beta VGG16 (Caffe layer names) ------------------------------------------

# Caffe names its 13 convolutions by block and position: conv1_1, conv1_2, conv2_1 ...
_VGG16_CONVS = [f"conv{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)]
# torchvision's vgg16.features interleaves ReLUs and pools, so conv k sits at these indices.
_VGG16_FEATURE_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
_CAFFE_VGG16 = {
    **{c: f"features.{i}" for c, i in zip(_VGG16_CONVS, _VGG16_FEATURE_INDEX, strict=True)},
    "fc6": "classifier.0",
    "fc7": "classifier.3",
    "fc8": "classifier.6",
}


def from_caffe_vgg16(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Caffe VGG16 layer names -> torchvision ``vgg16`` names (weights are used as is:
    the Caffe network reads BGR, and so does our preprocessing for it)."""
    out: StateDict = {}
    for key, value in state_dict.items():
        layer, _, param = key.partition(".")
        out[f"{_CAFFE_VGG16[layer]}.{param}" if layer in _CAFFE_VGG16 else key] = value
    return out


# --- self-describing backbones (quadrat pretrain) -------------------------------------

#: ``format`` metadata of a backbone file written by ``quadrat.ssl.export``.
BACKBONE_FORMAT = "quadrat-backbone/1"
# Where a ``quadrat pretrain`` Lightning checkpoint keeps its backbone.
_PRETRAIN_PREFIX = "method.backbone."


@dataclass(frozen=True)
class BackboneConfig:
    """What a self-describing weights file says about the network it holds."""

    model: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    method: str
    key_prefix: str = ""


def read_backbone_config(path: str | Path) -> BackboneConfig:
    """The network a ``quadrat pretrain`` file holds: an exported ``.safetensors`` (its
    metadata) or a Lightning checkpoint (its saved config); WeightsError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        try:
            with safetensors.safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
        except Exception as error:  # the library raises several types
            raise WeightsError(f"{path}: not a valid safetensors file ({error})") from error
        if meta.get("format") != BACKBONE_FORMAT:
            raise WeightsError(
                f"{path}: no quadrat backbone metadata; name its network instead, "
                "e.g. create_extractor('resnet50', weights=path)"
            )
        try:
            return BackboneConfig(
                model=meta["timm_model"],
                mean=tuple(json.loads(meta["mean"])),
                std=tuple(json.loads(meta["std"])),
                method=meta.get("method", ""),
            )
        except (KeyError, ValueError) as error:
            raise WeightsError(f"{path}: damaged backbone metadata ({error})") from error
    checkpoint = _load_any(path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
    config = hparams.get("config") if isinstance(hparams, Mapping) else None
    if not isinstance(config, Mapping) or "backbone" not in config:
        raise WeightsError(
            f"{path}: not a quadrat pretraining checkpoint; name its network instead, "
            "e.g. create_extractor('benthicnet_resnet50', weights=path) for BenthicNet's"
        )
    augment = config.get("augment", {})
    return BackboneConfig(
        model=str(config["backbone"]),
        mean=tuple(augment.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(augment.get("std", (0.229, 0.224, 0.225))),
        method=str(config.get("method", "")),
        key_prefix=_PRETRAIN_PREFIX,
    )


def keep_prefixed(prefix: str) -> Callable[[Mapping[str, torch.Tensor]], StateDict]:
    """A converter keeping only keys under ``prefix``, with the prefix removed."""

    def convert(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
        if not prefix:
            return dict(state_dict)
        return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}

    return convert


def _strip_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def first_keys(keys: Sequence[str], n: int = 5) -> str:
    """The first ``n`` keys for an error message, with how many more there are."""
    shown = ", ".join(repr(k) for k in list(keys)[:n])
    more = len(keys) - n
    return f"[{shown}{f', ... {more} more' if more > 0 else ''}]"
