"""Parity with pyspacer 0.14.0 (CoralNet's engine): same weights file, same photos and
points -> the same EfficientNet-B0 features, max abs difference <= 1e-4.

pyspacer runs in a subprocess from its own install (bash tests/data/pyspacer/install.sh;
directory from QUADRAT_PYSPACER_PATH, default ../pyspacer-env beside the repository).
Skipped, with that instruction, when it is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quadrat.extractors import create_extractor
from quadrat.io.images import load_rgb
from quadrat.patches import crop_patches
from tests.data.pyspacer.data import make_photos, make_pyspacer_checkpoint

REPO = Path(__file__).resolve().parents[2]
PYSPACER_PATH = Path(os.environ.get("QUADRAT_PYSPACER_PATH", REPO.parent / "pyspacer-env"))
RUNNER = REPO / "tests" / "data" / "pyspacer" / "run_pyspacer.py"
TOLERANCE = 1e-4
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PYSPACER_PATH / "spacer" / "__init__.py").is_file(),
        reason=f"pyspacer 0.14.0 not installed in {PYSPACER_PATH}: run "
        "'bash tests/data/pyspacer/install.sh' (or set QUADRAT_PYSPACER_PATH)",
    ),
]


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """quadrat's features and pyspacer's (image level and patch level), all photos stacked."""
    root = tmp_path_factory.mktemp("parity")
    photos = make_photos(root / "photos")
    crops = []
    for path, points in photos:
        rows, cols = zip(*points, strict=True)
        crops.append(crop_patches(load_rgb(path), list(rows), list(cols)))
    weights = root / "efficientnet_b0_coralnet_layout.pt"
    make_pyspacer_checkpoint(weights, calibration=np.concatenate(crops))
    extractor = create_extractor("efficientnet_b0", weights)
    openvino = (
        create_extractor("efficientnet_b0", weights, runtime="openvino") if HAS_OPENVINO else None
    )

    ours, ours_openvino, job_images = [], [], []
    for i, ((path, points), patches) in enumerate(zip(photos, crops, strict=True)):
        np.save(root / f"patches_{i}.npy", patches)
        ours.append(extractor.extract(patches))
        if openvino is not None:
            ours_openvino.append(openvino.extract(patches))
        job_images.append(
            {"path": str(path), "rowcols": points, "patches": str(root / f"patches_{i}.npy")}
        )
    job = root / "job.json"
    job.write_text(json.dumps({"weights": str(weights), "images": job_images}))

    out = root / "pyspacer.npz"
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(job), str(out)],
        env={**os.environ, "PYTHONPATH": str(PYSPACER_PATH)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"pyspacer run failed:\n{done.stderr[-3000:]}"
    theirs = np.load(out)
    n = len(job_images)
    return {
        "quadrat": np.concatenate(ours),
        "quadrat_openvino": np.concatenate(ours_openvino) if ours_openvino else np.zeros(0),
        "pyspacer_image": np.concatenate([theirs[f"image_{i}"] for i in range(n)]),
        "pyspacer_patches": np.concatenate([theirs[f"patches_{i}"] for i in range(n)]),
    }


def _compare(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape == theirs.shape == (21, 1280)
    max_abs = float(np.abs(ours - theirs).max())
    cosine = (
        np.sum(ours * theirs, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    )
    print(
        f"\n{what}: {len(ours)} patches, max abs diff {max_abs:.3g}, "
        f"min cosine {cosine.min():.9f}, feature std {theirs.std():.3g}"
    )
    assert max_abs <= TOLERANCE
    assert cosine.min() > 1 - 1e-6


def test_features_are_not_degenerate(features: dict[str, np.ndarray]) -> None:
    """Random weights with default BatchNorm statistics give ~1e-13 features, which would
    make any comparison pass; the fixture's re-estimated statistics must prevent that."""
    theirs = features["pyspacer_image"]
    assert theirs.std() > 1e-2
    assert np.abs(theirs).max() > 0.1


def test_image_level_parity(features: dict[str, np.ndarray]) -> None:
    """JPEG -> pyspacer's extract_features task vs quadrat's load_rgb, crop_patches, extract."""
    _compare(features["quadrat"], features["pyspacer_image"], "image level")


def test_patch_level_parity(features: dict[str, np.ndarray]) -> None:
    """The same patches through pyspacer's network and quadrat's."""
    _compare(features["quadrat"], features["pyspacer_patches"], "patch level")


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed (quadrat[cnn])")
def test_openvino_runtime_parity(features: dict[str, np.ndarray]) -> None:
    """The OpenVINO fp32 runtime against pyspacer's own extraction, same tolerance."""
    _compare(features["quadrat_openvino"], features["pyspacer_image"], "openvino, image level")
