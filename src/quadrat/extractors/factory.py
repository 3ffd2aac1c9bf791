"""``create_extractor``: a name (see :mod:`.registry` for what names are) to an extractor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quadrat.errors import InputError
from quadrat.extractors import networks, openvino_build
from quadrat.extractors.base import Extractor
from quadrat.extractors.registry import BACKBONE_SUFFIXES, EXTRACTORS, TIMM_PREFIX


def create_extractor(
    name: str,
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    device: str = "cpu",
    batch_size: int = 32,
    **kwargs: Any,
) -> Extractor:
    """Build the extractor ``name`` with ``weights`` (a local weights file).

    ``name``: a registered name, ``timm:<model>``, or the path of a ``quadrat pretrain``
    output (``backbone.safetensors`` or a ``.ckpt``), which names its own network and
    normalisation. A CNN needs weights; ``random_weights=True`` asks for seeded random
    ones on purpose (benchmarks, tests); weight-free extractors (``texture``) ignore it.
    ``kwargs`` go to the factory: for CNNs ``channels_last`` (default True),
    ``autocast_bf16`` (default False, exact), ``runtime`` (``eager``, ``compile`` or
    ``openvino``; see :mod:`quadrat.extractors.runtimes`) and ``seed`` (random weights).

    On the CPU with the ``openvino`` runtime (what ``auto`` picks when OpenVINO is
    installed) the result is an :class:`~quadrat.extractors.openvino_model.OpenVinoExtractor`
    read from the on-disk model cache when it holds this network, so torch is not even
    imported (:mod:`quadrat.extractors.openvino_build`); two more options then apply:
    ``model_cache`` (a folder, or False for none; default ``$QUADRAT_MODEL_CACHE`` or
    ``~/.cache/quadrat/openvino``) and ``precision`` (``f32``, exact, the default, or
    ``bf16`` on CPUs with bf16 instructions, the same as ``autocast_bf16=True``).

    >>> create_extractor("texture").key
    'texture@v1'
    """
    if batch_size < 1:
        raise InputError("batch_size must be at least 1", value=batch_size, param="batch_size")
    options: dict[str, Any] = {
        "random_weights": random_weights,
        "device": device,
        "batch_size": batch_size,
        **kwargs,
    }
    if name != "texture":
        fast = openvino_build.plan(
            name, weights, random_weights=random_weights, device=device, options=options
        )
        if fast is not None:
            eager = {**options, "runtime": "eager"}
            fast.child = openvino_build.child_spec(name, weights, options)
            return fast.build(batch_size, lambda: build_torch(name, weights, eager))
    return build_torch(name, weights, options)


def build_torch(name: str, weights: str | Path | None, options: dict[str, Any]) -> Extractor:
    """The network by name as a TorchExtractor (or the texture extractor), no OpenVINO path."""
    if name in EXTRACTORS:
        return EXTRACTORS.get(name)(weights, **options)
    if name.startswith(TIMM_PREFIX):
        return networks.any_timm(name[len(TIMM_PREFIX) :], weights, **options)
    if Path(name).suffix in BACKBONE_SUFFIXES:
        return networks.from_backbone_file(Path(name), weights, **options)
    raise InputError(
        f"{EXTRACTORS.unknown_message(name)}; or {TIMM_PREFIX}<model> for a timm network, "
        f"or the path of a backbone file ({', '.join(BACKBONE_SUFFIXES)})",
        value=name,
        param="extractor",
    )


__all__ = ["create_extractor"]
