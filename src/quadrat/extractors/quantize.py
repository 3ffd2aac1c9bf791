"""int8 post-training quantisation of a converted network, calibrated on the user's patches.

Why NNCF: it is OpenVINO's own quantiser (same maintainers, a 0.8 MB wheel plus pydot,
tabulate and ninja; see docs/performance.md), and its default post-training algorithm
sets each activation's int8 range from real inputs. Calibration patches must look like
the patches extracted later (the same survey's photos): ranges set on other images clip
or waste the 256 levels. Features change (cosine similarity and accuracy on Moorea are
in docs/performance.md), so an int8 extractor's key names the calibration set.

Importing this module imports neither NNCF, OpenVINO nor torch.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from quadrat.errors import InputError, LimitError, missing_dependency
from quadrat.extractors.base import ExtractorConfig

#: Most calibration patches used (NNCF's default subset is 300; more costs time only).
MAX_CALIBRATION = 1000
#: Fewest calibration patches accepted: fewer give unstable activation ranges.
MIN_CALIBRATION = 16


def check_calibration(calibration: Any, size: int = 224) -> np.ndarray:
    """``calibration`` as (N, size, size, 3) uint8 patches, or InputError/LimitError."""
    if calibration is None:
        raise InputError(
            "int8 needs calibration patches (parameter calibration): a few hundred "
            "(N, 224, 224, 3) uint8 patches cropped from the photos to extract",
            param="calibration",
        )
    array = np.asarray(calibration)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (size, size, 3):
        raise InputError(
            f"calibration must be (N, {size}, {size}, 3) uint8 patches, got "
            f"{array.dtype} {array.shape}",
            value=array.shape,
            param="calibration",
        )
    if not MIN_CALIBRATION <= len(array) <= MAX_CALIBRATION:
        raise LimitError(
            f"calibration needs {MIN_CALIBRATION} to {MAX_CALIBRATION} patches, got {len(array)}",
            value=len(array),
            param="calibration",
        )
    return array


def calibration_digest(calibration: np.ndarray) -> str:
    digest = hashlib.sha256(str(calibration.shape).encode())
    digest.update(np.ascontiguousarray(calibration).tobytes())
    return digest.hexdigest()


def network_input(patches: np.ndarray, config: ExtractorConfig) -> np.ndarray:
    """uint8 NHWC patches -> the converted network's float NCHW input (numpy, as torch does)."""
    x = patches.transpose(0, 3, 1, 2).astype(np.float32)
    if config.input_range != 255.0:
        x = x / np.float32(255.0)
        if config.input_range != 1.0:
            x = x * np.float32(config.input_range)
    if config.channel_order == "BGR":
        x = x[:, ::-1]
    if config.mean is not None:
        x = x - np.asarray(config.mean, np.float32).reshape(1, 3, 1, 1)
    if config.std is not None:
        x = x / np.asarray(config.std, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(x)


def quantize_int8(model: Any, config: ExtractorConfig, calibration: np.ndarray) -> Any:
    """``model`` (an fp32 ``openvino.Model``) quantised to int8 on ``calibration`` patches."""
    try:
        import nncf
    except ImportError as exc:
        raise missing_dependency("nncf", "cnn", purpose="int8 extraction") from exc
    samples = [network_input(calibration[i : i + 1], config) for i in range(len(calibration))]
    return nncf.quantize(
        model.clone(),
        nncf.Dataset(samples),
        # Asymmetric activation ranges: swish outputs are mostly positive with a small
        # negative tail; on Moorea patches MIXED kept the median cosine to f32 at 0.995
        # where the symmetric PERFORMANCE preset gave 0.983.
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(samples),
    )


__all__ = [
    "MAX_CALIBRATION",
    "MIN_CALIBRATION",
    "calibration_digest",
    "check_calibration",
    "network_input",
    "quantize_int8",
]
