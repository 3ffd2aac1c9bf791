"""Runtimes: the exact ones agree with eager PyTorch to float rounding and keep the key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from quadrat.errors import InputError
from quadrat.extractors import create_extractor
from quadrat.extractors.torch_extractor import synthetic_patches

# Features of order 1-10: fp32 rounding across runtimes stays far below this.
EXACT_TOLERANCE = 1e-4
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed")


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted networks go to a per-test cache, not the user's."""
    monkeypatch.setenv("QUADRAT_MODEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    return synthetic_patches(n=5, seed=7).numpy()


def _extractor(runtime: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return create_extractor(
        "timm:test_efficientnet", random_weights=True, batch_size=4, runtime=runtime, **kwargs
    )


def test_unknown_runtime_names_the_choices() -> None:
    with pytest.raises(InputError, match=r"unknown runtime 'tensorrt'.*auto, eager, compile"):
        _extractor("tensorrt")


@needs_openvino
def test_openvino_fp32_matches_eager_and_keeps_the_key(patches: np.ndarray) -> None:
    eager, fast = _extractor("eager"), _extractor("openvino")
    ours, theirs = eager.extract(patches), fast.extract(patches)  # 5 patches: a remainder batch
    assert np.abs(ours).max() > 0.1  # not degenerate
    assert np.abs(ours - theirs).max() <= EXACT_TOLERANCE
    assert fast.key == eager.key


@needs_openvino
def test_openvino_bf16_changes_features_and_key(patches: np.ndarray) -> None:
    eager, bf16 = _extractor("eager"), _extractor("openvino", autocast_bf16=True)
    assert bf16.key == eager.key + "+openvino-bf16"
    diff = np.abs(eager.extract(patches) - bf16.extract(patches))
    assert 0 < diff.max() < 1.0  # rounded, but the same network


@pytest.mark.slow
def test_compiled_matches_eager_and_keeps_the_key(patches: np.ndarray) -> None:
    eager, compiled = _extractor("eager"), _extractor("compile")
    ours, theirs = eager.extract(patches), compiled.extract(patches)
    assert theirs.shape == ours.shape
    assert np.abs(ours - theirs).max() <= EXACT_TOLERANCE
    assert compiled.key == eager.key


@needs_openvino
def test_auto_is_openvino_on_cpu_and_falls_back_to_eager(
    patches: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quadrat.extractors import runtimes

    monkeypatch.delenv("QUADRAT_RUNTIME", raising=False)  # the suite forces eager
    auto = _extractor("auto", autocast_bf16=True)
    assert auto.key.endswith("+openvino-bf16")  # auto runs OpenVINO here
    eager = _extractor("eager")
    np.testing.assert_allclose(
        _extractor("auto").extract(patches), eager.extract(patches), atol=EXACT_TOLERANCE
    )

    def cannot_convert(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unsupported operation Foo")

    monkeypatch.setattr(runtimes, "convert_to_openvino", cannot_convert)
    with pytest.warns(RuntimeWarning, match="could not convert.*Foo.*eager PyTorch"):
        fallback = _extractor("auto", model_cache=False)
    np.testing.assert_array_equal(fallback.extract(patches), eager.extract(patches))
    with pytest.raises(RuntimeError, match="Foo"):  # asked for by name: no fallback
        _extractor("openvino", model_cache=False)


def test_quadrat_runtime_overrides_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUADRAT_RUNTIME", "eager")
    assert _extractor("auto").runtime == "eager"
    assert _extractor("openvino").runtime == "openvino"  # only auto is overridden
    monkeypatch.setenv("QUADRAT_RUNTIME", "tensorrt")
    with pytest.raises(InputError, match="unknown runtime 'tensorrt'"):
        _extractor("auto")
