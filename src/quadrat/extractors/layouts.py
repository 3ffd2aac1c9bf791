"""Published checkpoint layouts and their converters to timm/torchvision names.

One function per layout, plus :func:`detect_layout`. A converter renames what it knows
and passes every other key through unchanged, so keys it does not understand surface as
"unexpected" when the result is matched against the model (see ``torch_extractor.py``).

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

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch

from quadrat.extractors.checkpoints import StateDict

Layout = Literal["timm", "pyspacer_efficientnet", "solo_learn", "caffe_vgg16"]
#: A layout's converter: a state dict in that layout -> the same tensors in timm names.
Converter = Callable[[StateDict], StateDict]

#: Blocks per stage of EfficientNet-B0 (pyspacer numbers its 16 blocks flat, timm per stage).
B0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)


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


def keep_prefixed(prefix: str) -> Callable[[Mapping[str, torch.Tensor]], StateDict]:
    """A converter keeping only keys under ``prefix``, with the prefix removed."""

    def convert(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
        if not prefix:
            return dict(state_dict)
        return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}

    return convert


__all__ = [
    "B0_STAGE_DEPTHS",
    "Converter",
    "Layout",
    "detect_layout",
    "from_caffe_vgg16",
    "from_pyspacer_efficientnet",
    "from_solo_learn",
    "keep_prefixed",
    "to_pyspacer_efficientnet",
]
