"""The CPU runner: same features as decoding then extracting in turn, in job order, with
decoding ahead of the network bounded by ``prefetch`` (never by the number of images)."""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quadrat.extraction import CpuRunner, ImageJob, cpu
from quadrat.extractors import Extractor, ExtractorConfig, create_extractor
from quadrat.io.images import load_rgb
from quadrat.patches import crop_patches


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> list[ImageJob]:
    """Seven small photos with 1 to 7 points each (edges included)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    out = []
    for i in range(7):
        h, w = 260 + 10 * i, 300
        small = rng.integers(0, 255, (h // 20, w // 20, 3), dtype=np.uint8)
        pixels = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))
        path = root / f"p{i}.png"
        Image.fromarray(pixels).save(path)
        n = i + 1
        rows = rng.integers(0, h, n)
        cols = rng.integers(0, w, n)
        rows[0], cols[0] = 0, w - 1  # a corner: reflect padding
        out.append(ImageJob(i, path.name, str(path), np.arange(n) + 10 * i, rows, cols))
    return out


def _direct(extractor: Extractor, jobs: list[ImageJob]) -> list[np.ndarray]:
    return [extractor.extract(crop_patches(load_rgb(j.path), j.rows, j.cols)) for j in jobs]


@pytest.mark.parametrize(
    ("workers", "prefetch", "flush"), [(1, 1, 1), (2, None, 8), (3, 2, 1), (2, 6, 2)]
)
def test_same_features_in_job_order(
    jobs: list[ImageJob], workers: int, prefetch: int | None, flush: int
) -> None:
    texture = create_extractor("texture", batch_size=3)
    runner = CpuRunner(workers=workers, prefetch=prefetch, batches_per_flush=flush)
    results = list(runner(iter(jobs), texture))
    assert [job.image_id for job, _ in results] == [job.image_id for job in jobs]
    for (_, ours), theirs in zip(results, _direct(texture, jobs), strict=True):
        np.testing.assert_array_equal(ours, theirs)


class _Constant(Extractor):
    """A 1-d extractor that takes a little time per batch, like a network."""

    def __init__(self, batch_size: int) -> None:
        self.config = ExtractorConfig(name="constant", feature_dim=1)
        self.batch_size = batch_size
        self.device = "cpu"

    def _extract_batch(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(0.002)
        return np.zeros((len(batch), 1), np.float32)


@pytest.mark.parametrize(("workers", "prefetch"), [(1, 1), (2, None), (2, 3), (4, 2)])
def test_decoding_ahead_is_bounded(
    monkeypatch: pytest.MonkeyPatch, workers: int, prefetch: int | None
) -> None:
    points, batch, flush, images = 3, 2, 2, 40
    lock = threading.Lock()
    state = {"decoding": 0, "most_decoding": 0, "pulled": 0}

    def fake_patches(job: ImageJob) -> np.ndarray:
        with lock:
            state["decoding"] += 1
            state["most_decoding"] = max(state["most_decoding"], state["decoding"])
        time.sleep(0.001)
        with lock:
            state["decoding"] -= 1
        return np.zeros((len(job), 224, 224, 3), np.uint8)

    monkeypatch.setattr(cpu, "job_patches", fake_patches)

    def source() -> Iterator[ImageJob]:
        for i in range(images):
            state["pulled"] += 1
            zeros = np.zeros(points, np.int64)
            yield ImageJob(i, f"{i}.jpg", f"{i}.jpg", np.arange(points), zeros, zeros)

    runner = CpuRunner(workers=workers, prefetch=prefetch, batches_per_flush=flush)
    ahead = prefetch if prefetch is not None else 2 * workers
    # Waiting: the images decoding or decoded ahead, plus one flush of whole images.
    bound = ahead + math.ceil(batch * flush / points)
    most_ahead = 0
    for done, (job, _) in enumerate(runner(source(), _Constant(batch))):
        assert job.image_id == done
        most_ahead = max(most_ahead, state["pulled"] - done)
    assert done == images - 1
    assert most_ahead <= bound
    assert state["most_decoding"] <= workers


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_openvino_through_the_runner_equals_direct(jobs: list[ImageJob], tmp_path: Path) -> None:
    """Overlapped decoding and parallel infer requests change no feature."""
    network = create_extractor(
        "timm:test_efficientnet",
        random_weights=True,
        batch_size=4,
        runtime="openvino",
        model_cache=tmp_path,
    )
    results = list(CpuRunner(workers=2, batches_per_flush=1)(iter(jobs), network))
    for (_, ours), theirs in zip(results, _direct(network, jobs), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
