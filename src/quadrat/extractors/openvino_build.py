"""``create_extractor``'s OpenVINO path: a cached converted network, else convert and cache.

Why here and not in the TorchExtractor: with a cache hit nothing of torch or timm is
imported (about 650 MB and several seconds saved on each fresh process); on a miss the
PyTorch network is built as usual, converted once, written to the cache
(:mod:`.model_cache`) and dropped, so only OpenVINO's copy of the weights stays in memory.

Chosen when the runtime resolves to ``openvino`` on the CPU (``auto`` does when OpenVINO
is installed; ``$QUADRAT_RUNTIME`` overrides ``auto``). Everything else (eager, compile,
CUDA) keeps the :class:`~quadrat.extractors.torch_extractor.TorchExtractor`. Importing this
module imports neither torch nor OpenVINO.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from quadrat.errors import InputError
from quadrat.extractors.base import Extractor, ExtractorConfig
from quadrat.extractors.model_cache import ModelCache, Recipe, file_sha256, resolve_root
from quadrat.extractors.openvino_model import OpenVinoExtractor, Precision, check_precision
from quadrat.extractors.registry import BACKBONE_SUFFIXES, EXTRACTORS, TIMM_PREFIX

RUNTIMES: tuple[str, ...] = ("auto", "eager", "compile", "openvino")
#: On a cache miss in a process that has not imported torch, convert in a child process:
#: torch and timm (about 650 MB) then never enter this one, so a cold call's peak memory
#: is the larger of the two processes', not their sum. False: always convert here.
CONVERT_IN_CHILD = True
#: Longest a conversion child may run (seconds) before this process converts itself.
CONVERT_TIMEOUT_S = 1800.0
#: Key suffix of each reduced precision on OpenVINO (f32 shares the eager key).
MODE_TAGS = {"f32": "", "bf16": "+openvino-bf16", "int8": "+openvino-int8"}


def check_runtime(name: str) -> str:
    if name not in RUNTIMES:
        raise InputError(
            f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)}",
            value=name,
            param="runtime",
        )
    return name


def resolve_runtime_name(name: str, device_type: str) -> str:
    """``auto`` -> ``$QUADRAT_RUNTIME`` if set, else ``openvino`` on a CPU with it installed."""
    runtime = check_runtime(name)
    if runtime != "auto":
        return runtime
    forced = check_runtime(os.environ.get("QUADRAT_RUNTIME", "auto"))
    if forced != "auto":
        return forced
    if device_type == "cpu" and importlib.util.find_spec("openvino") is not None:
        return "openvino"
    return "eager"


@dataclass
class Plan:
    """How one ``create_extractor`` call builds its OpenVINO extractor."""

    recipe: Recipe
    precision: Precision
    fallback: bool  # runtime came from ``auto``: a failed conversion falls back to eager
    root: Path | None
    threads: int | None
    mode_tag: str = ""
    calibration: np.ndarray | None = None  # int8 only
    weights_path: str | None = None  # as given now (a cached config names the first path)
    child: dict[str, Any] | None = None  # JSON arguments for a conversion child process

    def build(self, batch_size: int, make_torch: Callable[[], Extractor]) -> Extractor:
        """From the cache, else ``make_torch()`` converted (and cached); int8 quantised."""
        cache = ModelCache(self.root) if self.root is not None else None
        hit = self._cached(cache, self.recipe)
        if hit is not None:
            return self._extractor(*hit, batch_size)
        if self.calibration is None:
            made = self._convert(cache, self.recipe, make_torch)
            return made if isinstance(made, Extractor) else self._extractor(*made, batch_size)
        # int8: quantise the fp32 network (itself cached: no torch when only it is there).
        base = replace(self.recipe, ir_mode="f32")
        found = self._cached(cache, base)
        made = found if found is not None else self._convert(cache, base, make_torch)
        if isinstance(made, Extractor):  # not convertible: int8 has no eager fallback
            raise InputError("int8 needs the network in OpenVINO, which could not convert it")
        model, config, tag = made
        from quadrat.extractors.quantize import quantize_int8

        quantized = quantize_int8(model, config, self.calibration)
        if cache is not None:
            cache.store(self.recipe, quantized, config_dict(config), tag)
        return self._extractor(quantized, config, tag, batch_size)

    def _cached(
        self, cache: ModelCache | None, recipe: Recipe
    ) -> tuple[Any, ExtractorConfig, str] | None:
        entry = cache.load(recipe) if cache is not None else None
        if entry is None or cache is None:
            return None
        try:
            import openvino as ov

            model = ov.Core().read_model(str(entry.xml), str(entry.bin))
            config = config_from_dict(entry.config)
            if self.weights_path is not None:
                config = replace(config, weights=self.weights_path)
            return model, config, entry.weights_tag
        except RuntimeError as exc:  # OpenVINO refused the IR: rebuild it
            cache.discard(entry.folder, f"OpenVINO cannot read it: {exc}")
            return None

    def _convert(
        self, cache: ModelCache | None, recipe: Recipe, make_torch: Callable[[], Extractor]
    ) -> tuple[Any, ExtractorConfig, str] | Extractor:
        if cache is not None and self._convert_in_child(cache.root):
            found = self._cached(cache, recipe)
            if found is not None:
                return found
        return self._convert_here(cache, recipe, make_torch)

    def _convert_in_child(self, root: Path) -> bool:
        """Convert (and cache) in a fresh interpreter; False if that did not work."""
        if not CONVERT_IN_CHILD or self.child is None or torch_loaded():
            return False
        spec = json.dumps({**self.child, "root": str(root)})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "quadrat.extractors.openvino_build", spec],
                capture_output=True,
                timeout=CONVERT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        # Any failure (a bad weights file, say) is raised again, with its own message,
        # by the conversion here.
        return done.returncode == 0

    def _convert_here(
        self, cache: ModelCache | None, recipe: Recipe, make_torch: Callable[[], Extractor]
    ) -> tuple[Any, ExtractorConfig, str] | Extractor:
        torch_extractor = make_torch()
        if not hasattr(torch_extractor, "model"):  # a registered extractor that is no network
            return torch_extractor
        from quadrat.extractors.runtimes import convert_to_openvino

        try:
            model = convert_to_openvino(
                torch_extractor.model,
                input_size=torch_extractor.config.input_size,
            )
        except Exception as error:  # an op OpenVINO cannot convert: eager still works
            if not self.fallback or self.calibration is not None:
                raise
            warnings.warn(
                f"OpenVINO could not convert the network ({type(error).__name__}: {error}); "
                "running it in eager PyTorch",
                RuntimeWarning,
                stacklevel=4,
            )
            return torch_extractor
        config = torch_extractor.config
        tag: str = torch_extractor.weights_tag  # type: ignore[attr-defined]
        del torch_extractor  # only OpenVINO's copy of the weights stays
        gc.collect()
        if cache is not None:
            cache.store(recipe, model, config_dict(config), tag)
        return model, config, tag

    def _extractor(
        self, model: Any, config: ExtractorConfig, tag: str, batch_size: int
    ) -> OpenVinoExtractor:
        return OpenVinoExtractor(
            model,
            config,
            weights_tag=tag,
            precision=self.precision,
            batch_size=batch_size,
            threads=self.threads,
            mode_tag=self.mode_tag,
        )


def config_dict(config: ExtractorConfig) -> dict[str, Any]:
    return asdict(config)


def config_from_dict(values: dict[str, Any]) -> ExtractorConfig:
    """An ExtractorConfig from its JSON form (lists back to tuples)."""
    fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ExtractorConfig(**fixed)


def plan(
    name: str,
    weights: str | Path | None,
    *,
    random_weights: bool,
    device: str,
    options: dict[str, Any],
) -> Plan | None:
    """The OpenVINO plan for these ``create_extractor`` arguments, or None for the torch path.

    Pops the options only this path reads (``model_cache``, ``precision``) from ``options``;
    the torch path gets the rest. None also when the arguments are wrong (missing weights
    file, no weights): the torch path raises the usual error for them.
    """
    model_cache = options.pop("model_cache", None)
    precision = options.pop("precision", None)
    calibration = options.pop("calibration", None)
    bf16 = bool(options.get("autocast_bf16", False))
    if precision is None:
        precision = "bf16" if bf16 else "f32"
    elif bf16 and precision != "bf16":
        raise InputError(
            f"autocast_bf16 and precision={precision!r} disagree",
            value=precision,
            param="precision",
        )
    if precision == "bf16":
        options["autocast_bf16"] = True  # the same request, for the torch path
    runtime = resolve_runtime_name(str(options.get("runtime", "auto")), device.split(":")[0])
    if runtime != "openvino" or device != "cpu":
        if precision == "int8":
            raise InputError(
                "int8 runs on the openvino runtime on the CPU only",
                value=precision,
                param="precision",
            )
        return None
    checked = check_precision(precision)
    ir_mode, mode_tag = "f32", MODE_TAGS[checked]
    if checked == "int8":
        from quadrat.extractors.quantize import calibration_digest, check_calibration

        calibration = check_calibration(calibration)
        digest = calibration_digest(calibration)
        ir_mode, mode_tag = f"int8-mixed:{digest[:16]}", f"{mode_tag}-{digest[:8]}"
    elif calibration is not None:
        raise InputError("calibration patches are for precision='int8' only", param="calibration")
    known = name in EXTRACTORS or name.startswith(TIMM_PREFIX)
    if not known and Path(name).suffix not in BACKBONE_SUFFIXES:
        return None  # the torch path names the valid choices
    recipe_name = name
    if Path(name).suffix in BACKBONE_SUFFIXES:
        if weights is not None or random_weights or not Path(name).is_file():
            return None
        recipe_name = f"file:{file_sha256(name)}"
    if weights is not None:
        if random_weights or not Path(weights).is_file():
            return None
        source = f"sha256:{file_sha256(weights)}"
    elif random_weights:
        source = f"random:{int(options.get('seed', 0))}"
    elif Path(name).suffix in BACKBONE_SUFFIXES:
        source = "file"
    else:
        return None
    return Plan(
        recipe=Recipe(name=recipe_name, weights=source, input_size=224, ir_mode=ir_mode),
        precision=checked,
        mode_tag=mode_tag,
        calibration=calibration if checked == "int8" else None,
        weights_path=str(weights) if weights is not None else (name if source == "file" else None),
        fallback=options.get("runtime", "auto") == "auto",
        root=resolve_root(model_cache),
        threads=options.get("threads"),
    )


def torch_loaded() -> bool:
    """Whether this process has torch already (then converting here costs no new imports)."""
    return "torch" in sys.modules


def child_spec(
    name: str, weights: str | Path | None, options: dict[str, Any]
) -> dict[str, Any] | None:
    """``create_extractor``'s arguments for a conversion child, or None if not JSON."""
    spec = {"name": name, "weights": None if weights is None else str(weights), "options": options}
    try:
        json.dumps(spec)
    except (TypeError, ValueError):
        return None
    return spec


def _convert_child(spec: dict[str, Any]) -> int:
    """In the child: build the PyTorch network, convert it, write the cache entry."""
    from quadrat.extractors.factory import build_torch

    name, weights, options = spec["name"], spec["weights"], dict(spec["options"])
    found = plan(
        name,
        weights,
        random_weights=bool(options.get("random_weights")),
        device="cpu",
        options={**options, "runtime": "openvino", "model_cache": spec["root"]},
    )
    if found is None or found.root is None:
        return 2
    found.fallback = False
    recipe = replace(found.recipe, ir_mode="f32")
    eager = {**options, "runtime": "eager"}
    made = found._convert_here(
        ModelCache(found.root), recipe, lambda: build_torch(name, weights, eager)
    )
    return 0 if not isinstance(made, Extractor) else 3


__all__ = ["MODE_TAGS", "Plan", "check_runtime", "plan", "resolve_runtime_name"]


def _child_main(argv: list[str]) -> None:
    """The conversion child's entry point. It ends with ``os._exit`` once the cache entry
    is written (fsynced, renamed into place): interpreter shutdown with torch, timm and
    OpenVINO loaded raised the child's peak RSS by about 130 MB (1,023 MB against
    894 MB measured by ``/usr/bin/time``), for nothing this process still needs."""
    warnings.simplefilter("ignore")
    code = _convert_child(json.loads(argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # the conversion child: python -m quadrat.extractors.openvino_build
    _child_main(sys.argv)
