"""GpuRunner on the CPU (the same code path as on CUDA) against the CPU runner.

Most tests use a "patch echo" network (``Flatten``): its features are the preprocessed
pixels, so equal features mean pixel-identical patches, and any crop or decode difference
shows up exactly. torchvision's CPU JPEG decoder and Pillow both use libjpeg-turbo with
the same settings and give identical pixels (checked below); nvJPEG does not, which only
the CUDA-marked tests measure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.io import ImageReadMode, decode_jpeg
from typer.testing import CliRunner

from quadrat import Project, Source
from quadrat._util import resolve_device
from quadrat.cli import app
from quadrat.errors import DeviceError, ImageError, InputError, PointOutsideImageError
from quadrat.extraction import CpuRunner, GpuRunner, ImageJob, default_runner, job_patches
from quadrat.extraction.gpu import takes_jpeg_decoder
from quadrat.extractors import ExtractorConfig, TorchExtractor, create_extractor
from quadrat.io.images import load_rgb, read_bytes
from quadrat.store.features import load_features
from tests.data.images.data import make_image_fixtures

SIZE = 224
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _Recorder(nn.Module):
    """Wraps a network and records the batch sizes it is called with."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return self.inner(x)


def echo_extractor(batch_size: int = 4, device: str = "cpu") -> TorchExtractor:
    """Features = the network input, flattened (x / 255, NCHW): equal features, equal pixels."""
    config = ExtractorConfig(name="echo", feature_dim=3 * SIZE * SIZE)
    model = _Recorder(nn.Flatten())
    return TorchExtractor(
        model, config, weights_tag="echo", batch_size=batch_size, channels_last=False, device=device
    )


def tiny_cnn(batch_size: int = 4, device: str = "cpu") -> TorchExtractor:
    """A small seeded conv net: real float arithmetic, fast on two cores."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 7, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    config = ExtractorConfig(name="tiny", feature_dim=8)
    return TorchExtractor(model, config, weights_tag="t", batch_size=batch_size, device=device)


def photo(seed: int, height: int, width: int) -> np.ndarray:
    """Smooth colour field plus noise: compresses like a photograph."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(1, height // 40), max(1, width // 40), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def make_jobs(root: Path, shapes: list[tuple[int, int]], points: int, seed: int = 0) -> list:
    """One JPEG per shape with ``points`` random points, always including its four corners."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    jobs = []
    for i, (height, width) in enumerate(shapes):
        path = root / f"img_{i:03d}.jpg"
        Image.fromarray(photo(seed + i, height, width)).save(path, quality=90)
        rows = rng.integers(0, height, points)
        cols = rng.integers(0, width, points)
        corners = min(points, 4)
        rows[:corners] = [0, 0, height - 1, height - 1][:corners]
        cols[:corners] = [0, width - 1, 0, width - 1][:corners]
        jobs.append(job_for(i, path, rows, cols))
    return jobs


def job_for(image_id: int, path: Path, rows: np.ndarray, cols: np.ndarray) -> ImageJob:
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    return ImageJob(image_id, path.name, str(path), np.arange(len(rows)), rows, cols)


def as_pixels(features: np.ndarray) -> np.ndarray:
    """Echo features back to (n, S, S, 3) uint8 pixels."""
    chw = features.reshape(-1, 3, SIZE, SIZE) * 255.0
    return np.rint(chw).astype(np.uint8).transpose(0, 2, 3, 1)


def run(runner: object, jobs: list[ImageJob], extractor: TorchExtractor) -> list:
    return list(runner(jobs, extractor))  # type: ignore[operator]


# --- decoding -----------------------------------------------------------------------------


def test_torchvision_cpu_decode_equals_pillow(tmp_path: Path) -> None:
    """The premise of exact CPU parity: libjpeg via torchvision == Pillow (all chroma
    subsamplings, progressive greyscale)."""
    paths = []
    for subsampling in (0, 1, 2):
        path = tmp_path / f"s{subsampling}.jpg"
        Image.fromarray(photo(subsampling, 150, 230)).save(
            path, quality=90, subsampling=subsampling
        )
        paths.append(path)
    grey = tmp_path / "grey.jpg"
    Image.fromarray(photo(5, 150, 230)).convert("L").save(grey, quality=90, progressive=True)
    for path in [*paths, grey]:
        assert takes_jpeg_decoder(read_bytes(path), path)
        decoded = decode_jpeg(
            torch.frombuffer(read_bytes(path), dtype=torch.uint8), mode=ImageReadMode.RGB
        )
        assert np.array_equal(decoded.permute(1, 2, 0).numpy(), load_rgb(path))


def test_takes_jpeg_decoder_only_for_files_it_decodes_like_pillow(tmp_path: Path) -> None:
    files = make_image_fixtures(tmp_path)
    taken = {
        name: takes_jpeg_decoder(read_bytes(path), path)
        for name, path in files.items()
        if name not in ("rotated", "flipped")
    }
    assert taken["rgb"] is True
    for name in ("grey", "grey16", "palette", "rgba", "la", "cmyk", "truncated", "not_image"):
        assert taken[name] is False, name


def test_read_bytes_names_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.jpg"):
        read_bytes(tmp_path / "nope.jpg")


# --- same features as the CPU runner --------------------------------------------------------

SHAPES = [(600, 800), (100, 150), (1, 1), (224, 300), (225, 223), (2, 500), (500, 3)]


def test_same_pixels_as_cpu_runner_at_borders_and_small_images(tmp_path: Path) -> None:
    """Corners, 1x1, thinner than a patch: patch for patch equal to pyspacer's crops."""
    jobs = make_jobs(tmp_path, SHAPES, points=6)
    extractor = echo_extractor(batch_size=5)
    gpu = run(GpuRunner(), jobs, extractor)
    cpu = run(CpuRunner(), jobs, extractor)
    assert [job.image_id for job, _ in gpu] == [job.image_id for job in jobs]
    for (job, got), (_, expected) in zip(gpu, cpu, strict=True):
        assert got.dtype == np.float32 and got.shape == (6, 3 * SIZE * SIZE)
        assert np.array_equal(got, expected), job.name
        assert np.array_equal(as_pixels(got), job_patches(job)), job.name


def test_same_features_as_cpu_runner_with_a_cnn(tmp_path: Path) -> None:
    """Batches are cut differently across images; per-patch results agree to float rounding."""
    jobs = make_jobs(tmp_path, SHAPES, points=5, seed=3)
    extractor = tiny_cnn(batch_size=4)
    gpu = run(GpuRunner(batch_size=8), jobs, extractor)
    cpu = run(CpuRunner(), jobs, extractor)
    for (job, got), (_, expected) in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=job.name)


def test_png_cmyk_and_rotated_files_go_through_pillow(tmp_path: Path) -> None:
    files = make_image_fixtures(tmp_path / "fixtures")
    names = ["grey", "grey16", "palette", "rgba", "la", "cmyk", "rgb", "flipped"]
    rng = np.random.default_rng(1)
    jobs = [
        job_for(i, files[name], rng.integers(0, 240, 3), rng.integers(0, 320, 3))
        for i, name in enumerate(names)
    ]
    extractor = echo_extractor()
    with pytest.warns(UserWarning, match="EXIF orientation is 3"):
        gpu = run(GpuRunner(), jobs, extractor)
    for job, got in gpu:
        assert np.array_equal(as_pixels(got), job_patches(job)), job.name


# --- order, batching, memory ---------------------------------------------------------------


def test_order_kept_with_empty_jobs_and_batches_cut_across_images(tmp_path: Path) -> None:
    jobs = make_jobs(tmp_path, [(300, 300)] * 5, points=3)
    empty = ImageJob(99, "empty.jpg", str(tmp_path / "absent.jpg"), *(np.empty(0, np.int64),) * 3)
    jobs = [empty, jobs[0], jobs[1], empty, jobs[2], jobs[3], jobs[4], empty]
    extractor = tiny_cnn(batch_size=2)
    model = _Recorder(extractor.model)
    extractor.model = model
    out = run(GpuRunner(batch_size=4, max_group_images=2), jobs, extractor)
    assert [job.image_id for job, _ in out] == [job.image_id for job in jobs]
    assert [len(features) for _, features in out] == [len(job) for job in jobs]
    assert out[0][1].shape == (0, 8)
    assert model.sizes == [4, 4, 4, 3]  # full batches across images; the rest at the end


def test_empty_job_list() -> None:
    assert run(GpuRunner(), [], tiny_cnn()) == []


def test_prefetch_bounds_jobs_read_ahead(tmp_path: Path) -> None:
    """A slow consumer: the producer stops at the queue bound instead of reading every job."""
    base = make_jobs(tmp_path, [(240, 240)], points=1)[0]
    pulled = 0

    def jobs() -> Iterator[ImageJob]:
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield ImageJob(i, base.name, base.path, base.point_ids, base.rows, base.cols)

    runner = GpuRunner(batch_size=2, prefetch=2, max_group_images=2)
    results = runner(jobs(), tiny_cnn())
    next(results)
    time.sleep(0.5)  # let the producer run as far ahead as it can
    # queue (2 groups) + one group blocked in put + one group being consumed + the batch
    # remainder: a few groups of 2 images, nowhere near 200.
    assert pulled <= 2 * (2 + 1 + 1) + 2
    remaining = list(results)
    assert len(remaining) == 199 and pulled == 200


def test_closing_early_stops_the_producer(tmp_path: Path) -> None:
    base = make_jobs(tmp_path, [(240, 240)], points=1)[0]
    jobs = (
        ImageJob(i, base.name, base.path, base.point_ids, base.rows, base.cols) for i in range(50)
    )
    results = GpuRunner(batch_size=1, prefetch=1)(jobs, tiny_cnn())
    next(results)
    results.close()
    deadline = time.monotonic() + 30  # ends promptly; a loaded machine may take a while
    while [t for t in threading.enumerate() if t.name == "quadrat-gpu-prefetch"]:
        assert time.monotonic() < deadline, "the prefetch thread outlived close() by 30 s"
        time.sleep(0.02)


# --- errors ----------------------------------------------------------------------------------


def test_truncated_file_raises_after_the_images_before_it(tmp_path: Path) -> None:
    files = make_image_fixtures(tmp_path / "fixtures")
    good = make_jobs(tmp_path / "good", [(240, 320)] * 2, points=2)
    bad = job_for(7, files["truncated"], np.array([5]), np.array([5]))
    done = []
    with pytest.raises(ImageError, match="truncated"):
        for job, _ in GpuRunner(batch_size=64)([*good, bad], tiny_cnn()):
            done.append(job.image_id)
    assert done == [0, 1]  # stored before the error, so a rerun resumes after them


def test_not_an_image_names_the_file(tmp_path: Path) -> None:
    files = make_image_fixtures(tmp_path)
    job = job_for(0, files["not_image"], np.array([1]), np.array([1]))
    with pytest.raises(ImageError, match="not_image"):
        run(GpuRunner(), [job], tiny_cnn())


def test_point_outside_names_image_and_point(tmp_path: Path) -> None:
    job = make_jobs(tmp_path, [(100, 120)], points=1)[0]
    job = job_for(0, Path(job.path), np.array([3, 100]), np.array([4, 5]))
    with pytest.raises(PointOutsideImageError, match=r"img_000.jpg.*row 100, column 5.*120x100"):
        run(GpuRunner(), [job], tiny_cnn())


# --- choosing the runner and the device ------------------------------------------------------


def test_non_network_extractor_uses_the_cpu_runner(tmp_path: Path) -> None:
    jobs = make_jobs(tmp_path, [(240, 240), (300, 260)], points=2)
    texture = create_extractor("texture")
    gpu = run(GpuRunner(), jobs, texture)  # type: ignore[arg-type]
    cpu = run(CpuRunner(), jobs, texture)  # type: ignore[arg-type]
    for (_, got), (_, expected) in zip(gpu, cpu, strict=True):
        assert np.array_equal(got, expected)


def test_default_runner_by_device() -> None:
    extractor = tiny_cnn()
    assert isinstance(default_runner(extractor), CpuRunner)
    assert isinstance(default_runner(create_extractor("texture")), CpuRunner)
    extractor.device = torch.device("cuda")  # only read, never used, by default_runner
    assert isinstance(default_runner(extractor, workers=3), GpuRunner)


def test_resolve_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("auto", cpu_only=True) == "cpu"  # the texture extractor
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(InputError, match="unknown device 'gpu'") as caught:
        resolve_device("gpu")
    assert caught.value.param == "device" and "--" not in str(caught.value)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU is usable"):
            resolve_device("cuda:0")


def test_compile_pads_the_last_batch_to_one_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.compile itself is exercised by the GPU benchmark; here: compiled once, one shape."""
    compiled: list[nn.Module] = []

    def fake_compile(model: nn.Module, **_options: object) -> nn.Module:
        recorder = _Recorder(model)
        compiled.append(recorder)
        return recorder

    monkeypatch.setattr(torch, "compile", fake_compile)
    jobs = make_jobs(tmp_path, [(240, 240)] * 3, points=3)
    extractor = tiny_cnn()
    runner = GpuRunner(batch_size=4, compile=True)
    plain = run(GpuRunner(batch_size=4), jobs, extractor)
    out = run(runner, jobs, extractor)
    run(runner, jobs, extractor)
    assert len(compiled) == 1 and compiled[0].sizes == [4, 4, 4] * 2  # 9 patches, padded
    for (_, got), (_, expected) in zip(out, plain, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    # An extractor built with the "compile" runtime keeps it, and still sees one shape.
    extractor = tiny_cnn()
    extractor.runtime = "compile"
    out = run(GpuRunner(batch_size=4), jobs, extractor)
    assert len(compiled) == 2 and compiled[1].sizes == [4, 4, 4]
    for (_, got), (_, expected) in zip(out, plain, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# --- through the workflow and the CLI ------------------------------------------------------


def _source(tmp_path: Path, name: str, images: Path) -> Source:
    src = Project.create(str(tmp_path / f"{name}.db")).create_source("reef")
    src.import_images([images])
    src.generate_points("m_5", seed=0)
    return src


def test_workflow_stores_the_cpu_runners_features_and_resumes(tmp_path: Path) -> None:
    make_jobs(tmp_path / "images", [(300, 400), (250, 250), (400, 230)], points=1)
    extractor = tiny_cnn()
    stored = {}
    for name, runner in (("cpu", CpuRunner()), ("gpu", GpuRunner(batch_size=4))):
        src = _source(tmp_path, name, tmp_path / "images")
        summary = src.extract(extractor, runner=runner, dtype="float32")
        assert (summary.images_done, summary.points) == (3, 15)
        with src.project.store.session() as session:
            stored[name] = load_features(session, extractor.key)
        again = src.extract(extractor, runner=runner)
        assert (again.images_done, again.images_skipped) == (0, 3)
        src.project.close()
    assert np.array_equal(stored["gpu"].point_ids, stored["cpu"].point_ids)
    np.testing.assert_allclose(stored["gpu"].features, stored["cpu"].features, rtol=1e-5)


def test_cli_bad_device_is_one_red_line(tmp_path: Path) -> None:
    make_jobs(tmp_path / "images", [(240, 240)], points=1)
    _source(tmp_path, "cli", tmp_path / "images").project.close()
    result = CliRunner().invoke(
        app, ["extract", "-e", "resnet50", "--device", "gpu", "-p", str(tmp_path / "cli.db")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error:") and "unknown device 'gpu'" in result.output
    assert "Traceback" not in result.output


def test_cli_auto_device_and_compile_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device auto`` resolves before the extractor is built; ``--compile`` reaches the
    runner (torch.compile replaced by a recorder: inductor itself is the benchmark's job)."""
    import quadrat
    import quadrat.extractors as extractors  # the CLI imports create_extractor from one of these

    make_jobs(tmp_path / "images", [(240, 240), (260, 300)], points=1)
    _source(tmp_path, "cli", tmp_path / "images").project.close()
    asked: dict[str, object] = {}
    compiled: list[nn.Module] = []

    def fake_create(name: str, **options: object) -> TorchExtractor:
        asked.update(options, name=name)
        return tiny_cnn()

    def fake_compile(model: nn.Module, **_options: object) -> nn.Module:
        compiled.append(model)
        return model

    monkeypatch.setattr(extractors, "create_extractor", fake_create)
    monkeypatch.setattr(quadrat, "create_extractor", fake_create, raising=False)
    monkeypatch.setattr(torch, "compile", fake_compile)
    db = str(tmp_path / "cli.db")
    result = CliRunner().invoke(
        app, ["extract", "-e", "resnet50", "--random-weights", "--compile", "-p", db]
    )
    assert result.exit_code == 0, result.output
    assert asked["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert asked["random_weights"] is True
    assert len(compiled) == 1
    assert "10 points from 2 images" in result.output


# --- real data -------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_moorea_photos_pixel_identical_to_cpu_runner(shared_data: Path) -> None:
    """Real CoralNet JPEGs (about 1900x1950, EXIF) and their annotated points."""
    import pandas as pd

    root = shared_data / "moorea-lter-2008"
    table = pd.read_csv(root / "annotations.csv")
    jobs = []
    for i, (name, rows) in enumerate(list(table.groupby("Name"))[:2]):
        rows = rows.iloc[:8]
        path = root / "images" / name
        jobs.append(job_for(i, path, rows["Row"].to_numpy(), rows["Column"].to_numpy()))
    for job, got in run(GpuRunner(), jobs, echo_extractor(batch_size=8)):
        assert np.array_equal(as_pixels(got), job_patches(job)), job.name


# --- CUDA (skipped without a GPU) --------------------------------------------------------


@CUDA
def test_cuda_patches_close_to_pillow(tmp_path: Path) -> None:
    """nvJPEG's IDCT and chroma upsampling differ from libjpeg-turbo's by a few levels;
    a wrong crop, flip or channel order would differ by tens of levels on average."""
    jobs = make_jobs(tmp_path, [(1500, 2000), (100, 150)], points=6)
    out = run(GpuRunner(), jobs, echo_extractor(device="cuda"))
    for job, got in out:
        diff = np.abs(as_pixels(got).astype(np.int16) - job_patches(job).astype(np.int16))
        p99 = np.percentile(diff, 99)
        assert diff.mean() < 2.0 and p99 <= 24, (job.name, diff.mean(), p99, diff.max())


@CUDA
def test_cuda_bf16_features_close_to_cpu_fp32(tmp_path: Path) -> None:
    jobs = make_jobs(tmp_path, [(1500, 2000)] * 3, points=20)
    cuda = create_extractor(
        "efficientnet_b0", random_weights=True, device="cuda", autocast_bf16=True
    )
    cpu = create_extractor("efficientnet_b0", random_weights=True, batch_size=16)
    got = np.concatenate([f for _, f in run(GpuRunner(), jobs, cuda)])
    expected = np.concatenate([f for _, f in run(CpuRunner(), jobs, cpu)])
    cosine = (
        (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() > 0.99, cosine.min()
