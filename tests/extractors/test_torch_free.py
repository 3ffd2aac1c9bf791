"""The core runs without the ``cnn`` extra: texture extraction, the CPU runner and the
scikit-learn classifiers import no torch, timm or OpenVINO, and asking for a CNN there
says which extra to install.

Checked in a subprocess whose import system refuses those packages (a meta-path finder
raising ModuleNotFoundError, as a missing install would), since this environment has
them installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKER = """
import importlib.abc, sys

BLOCKED = {"torch", "torchvision", "timm", "openvino", "lightning", "lightly"}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""

CORE = """
import numpy as np
from PIL import Image

import quadrat.extractors as extractors
from quadrat.errors import MissingDependencyError
from quadrat.extraction import CpuRunner, ImageJob, default_runner
from quadrat.classifiers.estimators import make_classifier

assert "efficientnet_b0" in extractors.list_extractors()
texture = extractors.create_extractor("texture", batch_size=2)
patches = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
features = texture.extract(patches)
assert features.shape == (3, texture.feature_dim), features.shape

image = Path(sys.argv[1]) / "reef.png"
Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), np.uint8)).save(image)
job = ImageJob(1, "reef.png", str(image), np.arange(2), np.array([50, 150]), np.array([60, 300]))
runner = default_runner(texture)
assert isinstance(runner, CpuRunner), runner
[(done, vectors)] = list(runner([job], texture))
assert vectors.shape == (2, texture.feature_dim)

X = np.random.default_rng(2).normal(size=(60, 4)).astype(np.float32)
y = np.repeat(["a", "b", "c"], 20)
X[y == "b"] += 3
model = make_classifier("lr", len(X)).fit(X, y)
assert (model.predict(X) == y).mean() > 0.6

for name, kwargs in [("efficientnet_b0", {}), ("timm:resnet18", {"random_weights": True})]:
    try:
        extractors.create_extractor(name, **kwargs)
    except MissingDependencyError as error:
        assert "quadrat[cnn]" in str(error), error
    else:
        raise AssertionError(f"{name} built without torch")

heavy = sorted(m for m in ("torch", "timm", "torchvision", "openvino") if m in sys.modules)
assert not heavy, heavy
print("ok")
"""


def test_core_workflow_needs_no_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(BLOCKER) + "from pathlib import Path\n" + textwrap.dedent(CORE)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_the_blocker_blocks(tmp_path: Path) -> None:
    """The check above can fail: with the blocker, importing torch is an ImportError."""
    script = textwrap.dedent(BLOCKER) + "import torch\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "blocked" in done.stderr
