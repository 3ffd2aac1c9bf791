"""The OpenVINO path of create_extractor: cached converted networks, precisions, no torch.

Uses timm's tiny ``test_efficientnet`` with seeded random weights (a second to convert)
and a pyspacer-layout weights file for the weights-keyed entries.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from quadrat.errors import InputError, LimitError, MissingDependencyError
from quadrat.extractors import create_extractor, model_cache, openvino_model
from quadrat.extractors.torch_extractor import synthetic_patches

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino not installed"
)
EXACT_TOLERANCE = 1e-4
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    return synthetic_patches(n=5, seed=7).numpy()


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts conversions from PyTorch (cache misses)."""
    from quadrat.extractors import runtimes

    calls: list[int] = []
    convert = runtimes.convert_to_openvino

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return convert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runtimes, "convert_to_openvino", counted)
    return calls


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding test_efficientnet (seed 0), converted once for the module."""
    root = tmp_path_factory.mktemp("pristine")
    _openvino(root)
    return root


@pytest.fixture
def warm(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine cache for one test to use or damage."""
    root = tmp_path / "cache"
    shutil.copytree(pristine, root)
    return root


def _openvino(cache: Path | bool, **kwargs: object):  # type: ignore[no-untyped-def]
    return create_extractor(
        "timm:test_efficientnet",
        random_weights=True,
        batch_size=4,
        runtime="openvino",
        model_cache=cache,
        **kwargs,
    )


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


def test_miss_then_hit_gives_the_same_features_and_key(
    warm: Path, patches: np.ndarray, conversions: list[int]
) -> None:
    entry = _entries(warm)[0]
    assert {p.name for p in entry.iterdir()} == {"model.xml", "model.bin", "meta.json"}
    eager = create_extractor(
        "timm:test_efficientnet", random_weights=True, batch_size=4, runtime="eager"
    )
    uncached = _openvino(False)  # converted here (a miss without any cache)
    cached = _openvino(warm)
    assert len(conversions) == 1  # the cached one was read, not converted
    assert type(cached).__name__ == "OpenVinoExtractor"
    assert uncached.key == cached.key == eager.key
    ours = eager.extract(patches)
    assert np.abs(ours).max() > 0.1  # not degenerate
    np.testing.assert_array_equal(uncached.extract(patches), cached.extract(patches))
    assert np.abs(cached.extract(patches) - ours).max() <= EXACT_TOLERANCE
    assert _entries(warm) == [entry]


def _plan(name: str, weights: Path | None = None, **options: object):  # type: ignore[no-untyped-def]
    from quadrat.extractors import openvino_build

    return openvino_build.plan(
        name,
        weights,
        random_weights=weights is None,
        device="cpu",
        options={"runtime": "openvino", **options},
    )


def test_new_weights_or_versions_are_a_miss(
    warm: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = model_cache.ModelCache(warm)
    assert cache.load(_plan("timm:test_efficientnet").recipe) is not None
    assert cache.load(_plan("timm:test_efficientnet", seed=1).recipe) is None
    versions = model_cache.versions()
    monkeypatch.setattr(model_cache, "versions", lambda: {**versions, "openvino": "9999.0"})
    assert cache.load(_plan("timm:test_efficientnet").recipe) is None
    # A weights file keys its entry by content, not by path.
    weights = tmp_path / "b0.pt"
    weights.write_bytes(b"one")
    first = _plan("efficientnet_b0", weights).recipe
    assert first.weights == f"sha256:{model_cache.file_sha256(weights)}"
    weights.write_bytes(b"two")
    assert _plan("efficientnet_b0", weights).recipe.digest != first.digest


def _corrupt_bin(entry: Path) -> None:
    data = (entry / "model.bin").read_bytes()
    (entry / "model.bin").write_bytes(data[: len(data) // 2])


def _garbage_meta(entry: Path) -> None:
    (entry / "meta.json").write_text("{not json")


def _wrong_recipe(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["recipe"]["weights"] = "random:99"
    (entry / "meta.json").write_text(json.dumps(meta))


def _missing_bin(entry: Path) -> None:
    (entry / "model.bin").unlink()


@pytest.mark.parametrize("damage", [_corrupt_bin, _garbage_meta, _wrong_recipe, _missing_bin])
def test_damaged_entry_is_discarded_with_a_warning(warm: Path, damage: object) -> None:
    recipe = _plan("timm:test_efficientnet").recipe
    [entry] = _entries(warm)
    damage(entry)  # type: ignore[operator]
    with pytest.warns(RuntimeWarning, match="model cache entry .* not usable"):
        assert model_cache.ModelCache(warm).load(recipe) is None
    assert not entry.exists()


def test_entry_openvino_refuses_is_rebuilt(
    warm: Path, patches: np.ndarray, conversions: list[int]
) -> None:
    """Hashes match but the IR is broken: rebuilt with a warning, never a crash."""
    expected = _openvino(warm).extract(patches)
    [entry] = _entries(warm)
    (entry / "model.xml").write_text("<net><layers><layer id='0'")
    meta = json.loads((entry / "meta.json").read_text())
    meta["files"]["model.xml"] = model_cache.file_sha256(entry / "model.xml")
    (entry / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="model cache entry .* not usable"):
        rebuilt = _openvino(warm)
    assert len(conversions) == 1
    np.testing.assert_array_equal(rebuilt.extract(patches), expected)
    _openvino(warm)  # and the rebuilt entry is good again
    assert len(conversions) == 1


def test_unwritable_cache_warns_and_extracts(tmp_path: Path, patches: np.ndarray) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    with pytest.warns(RuntimeWarning, match="cannot write the OpenVINO model cache"):
        extractor = _openvino(blocker / "cache")
    assert extractor.extract(patches).shape == (5, extractor.feature_dim)


def test_stale_temporaries_are_removed_and_a_lost_race_is_harmless(warm: Path) -> None:
    stale = warm / ".tmp-killed"
    stale.mkdir()
    (stale / "model.bin").write_bytes(b"half")
    old = time.time() - 2 * model_cache.STALE_TEMPORARY_S
    os.utime(stale, (old, old))
    (warm / ".tmp-live").mkdir()
    recipe = _plan("timm:test_efficientnet").recipe
    cache = model_cache.ModelCache(warm)
    entry = cache.load(recipe)
    assert entry is not None
    import openvino as ov

    model = ov.Core().read_model(str(entry.xml), str(entry.bin))
    # Another process wrote the same entry meanwhile: storing again keeps theirs.
    assert cache.store(recipe, model, entry.config, entry.weights_tag) is not None
    assert cache.load(recipe) is not None
    assert [p.name for p in warm.iterdir() if p.name.startswith(".tmp-")] == [".tmp-live"]


@pytest.mark.slow
def test_a_miss_converts_in_a_child_process(
    tmp_path: Path,
    warm: Path,
    patches: np.ndarray,
    conversions: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without torch loaded here, a miss converts in a child (torch never enters this
    process); if the child fails, the conversion happens here instead."""
    from quadrat.extractors import openvino_build

    monkeypatch.setattr(openvino_build, "torch_loaded", lambda: False)
    child = _openvino(tmp_path / "a")
    assert len(conversions) == 0 and len(_entries(tmp_path / "a")) == 1
    here = _openvino(warm)  # converted in this process by the module fixture
    assert child.key == here.key
    np.testing.assert_array_equal(child.extract(patches), here.extract(patches))

    def failing(*args: object, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(args, 1, b"", b"boom")

    monkeypatch.setattr(openvino_build.subprocess, "run", failing)
    again = _openvino(tmp_path / "b")
    assert len(conversions) == 1 and again.key == child.key
    assert len(_entries(tmp_path / "b")) == 1


def test_cache_root_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "c"))
    assert model_cache.resolve_root(None) == tmp_path / "c"
    assert model_cache.resolve_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv(model_cache.CACHE_ENV, "off")
    assert model_cache.resolve_root(None) is None
    assert model_cache.resolve_root(False) is None


def test_a_cache_hit_imports_no_torch(warm: Path) -> None:
    script = (
        "import sys\n"
        "from quadrat.extractors import create_extractor\n"
        "e = create_extractor('timm:test_efficientnet', random_weights=True, batch_size=4,\n"
        f"    runtime='openvino', model_cache={str(warm)!r})\n"
        "import numpy as np\n"
        "assert e.extract(np.zeros((3, 224, 224, 3), np.uint8)).shape[0] == 3\n"
        "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_pickled_extractor_gives_the_same_features(warm: Path, patches: np.ndarray) -> None:
    extractor = _openvino(warm)
    copy = pickle.loads(pickle.dumps(extractor))
    assert copy.key == extractor.key
    np.testing.assert_array_equal(copy.extract(patches), extractor.extract(patches))


def test_remainders_and_request_batches_agree(warm: Path, patches: np.ndarray) -> None:
    """Padding the last request and the number of patches per request change nothing."""
    extractor = _openvino(warm)
    whole = extractor.extract(patches)
    one = np.concatenate([extractor.extract(patches[i : i + 1]) for i in range(len(patches))])
    assert np.abs(whole - one).max() <= EXACT_TOLERANCE
    assert extractor.extract(patches[:0]).shape == (0, extractor.feature_dim)


# --- precisions ----------------------------------------------------------------------------


def test_bf16_is_refused_on_a_cpu_without_it(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    with pytest.raises(InputError, match="bf16 on the CPU needs bf16 instructions"):
        openvino_model.check_precision("bf16", cpuinfo)
    assert openvino_model.check_precision("f32", cpuinfo) == "f32"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16\n")
    assert openvino_model.check_precision("bf16", cpuinfo) == "bf16"
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        openvino_model.check_precision("fp8", cpuinfo)


def test_bf16_through_create_extractor(
    warm: Path, patches: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = _openvino(warm)
    if openvino_model.check_cpu_bf16():
        fast = _openvino(warm, precision="bf16")
        assert fast.key == exact.key + "+openvino-bf16"
        diff = np.abs(fast.extract(patches) - exact.extract(patches))
        assert 0 < diff.max() < 1.0  # rounded, but the same network
    monkeypatch.setattr(openvino_model, "cpu_flags", lambda *_: {"sse2", "avx2"})
    with pytest.raises(InputError, match="bf16 instructions"):
        _openvino(warm, precision="bf16")
    with pytest.raises(InputError, match="bf16 instructions"):
        _openvino(warm, autocast_bf16=True)


def test_int8_is_refused_clearly(
    warm: Path, patches: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="int8 needs calibration patches"):
        _openvino(warm, precision="int8")
    with pytest.raises(InputError, match=r"calibration must be \(N, 224, 224, 3\) uint8"):
        _openvino(warm, precision="int8", calibration=patches.astype(np.float32))
    with pytest.raises(LimitError, match="calibration needs 16 to 1000 patches, got 5"):
        _openvino(warm, precision="int8", calibration=patches)
    with pytest.raises(InputError, match="for precision='int8' only"):
        _openvino(warm, calibration=patches)
    with pytest.raises(InputError, match="int8 runs on the openvino runtime"):
        create_extractor(
            "timm:test_efficientnet", random_weights=True, runtime="eager", precision="int8"
        )
    monkeypatch.setitem(sys.modules, "nncf", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match="nncf"):
        _openvino(warm, precision="int8", calibration=np.repeat(patches, 4, axis=0))


@pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="nncf not installed")
def test_int8_is_close_to_exact_keyed_by_its_calibration_and_cached(
    warm: Path, conversions: list[int]
) -> None:
    calibration = synthetic_patches(n=32, seed=11).numpy()
    held_out = synthetic_patches(n=8, seed=12).numpy()
    exact = _openvino(warm)
    int8 = _openvino(warm, precision="int8", calibration=calibration)
    assert int8.key.startswith(exact.key + "+openvino-int8-")
    assert len(conversions) == 0  # quantised from the cached fp32 network
    a, b = exact.extract(held_out), int8.extract(held_out)
    cosine = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.9 and not np.array_equal(a, b)
    again = _openvino(warm, precision="int8", calibration=calibration)
    np.testing.assert_array_equal(again.extract(held_out), b)
    other = _openvino(warm, precision="int8", calibration=calibration[::-1].copy())
    assert other.key != int8.key


def test_the_conversion_child_exits_with_its_code_after_flushing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child ends with os._exit (skipping a shutdown that raised its peak memory):
    its return code still reaches the parent, after its output is flushed."""
    from quadrat.extractors import openvino_build

    seen: dict[str, object] = {}

    class ExitedError(Exception):
        pass

    def fake_exit(code: int) -> None:
        seen["code"] = code
        raise ExitedError

    monkeypatch.setattr(openvino_build, "_convert_child", lambda spec: 3 if spec["x"] else 0)
    monkeypatch.setattr(openvino_build.os, "_exit", fake_exit)
    with pytest.raises(ExitedError):
        openvino_build._child_main(["prog", '{"x": 1}'])
    assert seen["code"] == 3
    with pytest.raises(ExitedError):
        openvino_build._child_main(["prog", '{"x": 0}'])
    assert seen["code"] == 0
