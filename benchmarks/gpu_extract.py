"""GPU extraction: JPEG files -> stored features through GpuRunner, beside model-only speed.

Generates ``--images`` JPEGs (2000x1500, quality 90, photo-like), imports them into a
SQLite project with ``--points`` random points each, and for every model and mode
(eager / ``torch.compile``) measures, in one child process per run (so a crash or a
compile failure costs one run, and peak memory is that run's own):

- end to end: ``Source.extract`` with ``GpuRunner`` (read, nvJPEG decode, crops
  on the device, network, features back, one SQLite transaction per image), after a
  warm-up extraction of a few images into another source (cuDNN autotuning, compiling);
- model only: the same runner's per-batch network call on random uint8 patches already
  on the device, same batch, same bf16 and channels-last settings;
- parity: the run's features on ``--parity-images`` images against the CPU path in fp32
  (Pillow decode, ``CpuRunner``): cosine per patch;

plus batched ``decode_jpeg`` images/s on the same files (and its pixels against
Pillow's), and the store's own ceiling
(``extract_features`` fed ready-made 1280-d features: float16 blocks, one SQLite
transaction per image). Random weights (speed does not depend on them). Prints one JSON
object.

On a GPU machine (about 4-6 minutes; compiling takes about a minute per model):

    python benchmarks/gpu_extract.py                   # cuda, eager and compiled
    python benchmarks/gpu_extract.py --modes eager --images 128

CPU smoke test (tiny batches; the figures say nothing about a GPU):

    python benchmarks/gpu_extract.py --device cpu --images 4 --points 8

Targets (issue 3, one H100, bf16): end to end 15,000 patches/s for EfficientNet-B0 and
10,000 for ResNet-50; model-only references 19,500 / 27,900 (eager / compiled) and
13,200 / 21,900 patches/s, nvJPEG 3,470 images/s (../shared/specs/measurements.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

TARGETS = {"efficientnet_b0": 15_000, "resnet50": 10_000}  # end-to-end patches/s, one H100
WARMUP_SOURCE = "warmup"
SOURCE = "bench"


def make_jpeg(path: Path, height: int, width: int, seed: int) -> None:
    """Smooth colour fields plus noise: compresses (and decodes) like a photograph."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 50, width // 50, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))
    noise = rng.normal(0, 12, base.shape)
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path, quality=90)


def prepare(root: Path, args: argparse.Namespace) -> Path:
    """JPEGs and a project template (both sources imported, points generated)."""
    from quadrat import Project

    images = root / "images"
    images.mkdir()
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:  # Pillow encodes without the GIL
        list(
            pool.map(
                lambda i: make_jpeg(images / f"img_{i:05d}.jpg", args.height, args.width, i),
                range(args.images),
            )
        )
    files = sorted(images.iterdir())
    warmup_images = max(1, min(len(files), -(-2 * batch_size(args) // args.points)))
    db = root / "template.db"
    project = Project.create(str(db))
    for source, chosen in ((SOURCE, files), (WARMUP_SOURCE, files[:warmup_images])):
        project.create_source(source)
        project.source(source).import_images(chosen)
        project.source(source).generate_points(f"m_{args.points}", seed=0)
    project.close()
    return db


def batch_size(args: argparse.Namespace) -> int:
    return args.batch_size or (512 if args.device.startswith("cuda") else 8)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_one(db: Path, model_name: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One model and mode on its own copy of the project (child process)."""
    from quadrat import Project
    from quadrat.extraction import GpuRunner
    from quadrat.extractors import create_extractor

    cuda = args.device.startswith("cuda")
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    batch = batch_size(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights are a floor; deprecations
        extractor = create_extractor(
            model_name,
            random_weights=True,
            device=args.device,
            batch_size=batch,
            autocast_bf16=not args.fp32,
        )
    runner = GpuRunner(
        workers=args.workers,
        batch_size=batch,
        prefetch=args.prefetch,
        compile=mode == "compiled",
    )
    project = Project.open(str(db))

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize()

    start = time.perf_counter()
    project.source(WARMUP_SOURCE).extract(extractor, runner=runner)
    warmup_seconds = time.perf_counter() - start
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    summary = project.source(SOURCE).extract(extractor, runner=runner)
    seconds = time.perf_counter() - start
    project.close()

    patches = torch.randint(0, 256, (batch, 224, 224, 3), dtype=torch.uint8)
    patches = patches.to(args.device)
    for _ in range(3):  # warm (already compiled by the warm-up extraction)
        runner.features(extractor, patches)
    synchronize()
    start = time.perf_counter()
    for _ in range(args.model_batches):
        features = runner.features(extractor, patches)
    synchronize()
    model_seconds = time.perf_counter() - start
    assert features.shape == (batch, extractor.feature_dim)

    result_parity = parity(extractor, model_name, runner, db.parent / "images", args)
    end_to_end = summary.points / seconds
    model_only = args.model_batches * batch / model_seconds
    return {
        "model": model_name,
        "mode": mode,
        "key": extractor.key,
        "points": summary.points,
        "images": summary.images_done,
        "seconds": round(seconds, 3),
        "end_to_end_patches_per_s": round(end_to_end, 1),
        "model_only_patches_per_s": round(model_only, 1),
        "end_to_end_over_model_only": round(end_to_end / model_only, 3),
        "warmup_seconds": round(warmup_seconds, 2),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "peak_rss_mb": peak_rss_mb(),
        "parity_vs_cpu_fp32": result_parity,
    }


def parity(
    extractor: Any, model_name: str, runner: Any, images: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """This run's features (device decode, its dtype) against the CPU path in fp32
    (Pillow decode, CpuRunner) on the same patches: how close "the same features" are."""
    from quadrat.extraction import CpuRunner, ImageJob
    from quadrat.extractors import create_extractor

    rng = np.random.default_rng(1)
    jobs = []
    for i, path in enumerate(sorted(images.iterdir())[: args.parity_images]):
        rows = rng.integers(0, args.height, args.points)
        cols = rng.integers(0, args.width, args.points)
        rows[:2], cols[:2] = (0, args.height - 1), (0, args.width - 1)  # two corners
        jobs.append(ImageJob(i, path.name, str(path), np.arange(args.points), rows, cols))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu_extractor = create_extractor(
            model_name, random_weights=True, device="cpu", batch_size=32
        )
    got = np.concatenate([f for _, f in runner(jobs, extractor)])
    expected = np.concatenate([f for _, f in CpuRunner(workers=args.workers)(jobs, cpu_extractor)])
    cosine = (got * expected).sum(1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1) + 1e-30
    )
    scale = float(np.abs(expected).max())
    return {
        "patches": len(got),
        "min_cosine": round(float(cosine.min()), 6),
        "mean_cosine": round(float(cosine.mean()), 6),
        "max_abs_diff_over_max_abs": round(float(np.abs(got - expected).max()) / scale, 6),
    }


def decode_speed(images: Path, device: str, group: int) -> dict[str, Any]:
    """Batched decode_jpeg of every generated file (bytes already in memory), images/s."""
    from torchvision.io import ImageReadMode, decode_jpeg

    from quadrat.io.images import read_bytes

    data = [torch.frombuffer(read_bytes(p), dtype=torch.uint8) for p in sorted(images.iterdir())]
    groups = [data[i : i + group] for i in range(0, len(data), group)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        decode_jpeg(groups[0], mode=ImageReadMode.RGB, device=device)  # warm-up (nvJPEG init)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for chunk in groups:
            decode_jpeg(chunk, mode=ImageReadMode.RGB, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "images": len(data),
        "group": group,
        "pixels_vs_pillow": pixel_parity(sorted(images.iterdir())[:8], device),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(data) / seconds, 1),
    }


def store_speed(template: Path, root: Path, dim: int = 1280) -> dict[str, Any]:
    """The store's ceiling: ``extract_features`` with a runner that only hands out
    ready-made features (float16 blocks, one transaction per image, in this thread)."""
    from quadrat import Project
    from quadrat.extraction import ImageJob
    from quadrat.extractors import ExtractorConfig, TorchExtractor

    db = root / "store-only.db"
    shutil.copy(template, db)
    ready = np.random.default_rng(0).random((1000, dim), dtype=np.float32)

    def no_network(jobs: Any, _extractor: Any) -> Any:
        job: ImageJob
        for job in jobs:
            yield job, ready[: len(job)]

    extractor = TorchExtractor(
        torch.nn.Identity(), ExtractorConfig(name="store-only", feature_dim=dim), weights_tag=""
    )
    project = Project.open(str(db))
    start = time.perf_counter()
    summary = project.source(SOURCE).extract(extractor, runner=no_network)
    seconds = time.perf_counter() - start
    project.close()
    db.unlink()
    return {
        "points": summary.points,
        "seconds": round(seconds, 3),
        "patches_per_s": round(summary.points / seconds, 1),
        "images_per_s": round(summary.images_done / seconds, 1),
    }


def pixel_parity(paths: list[Path], device: str) -> dict[str, Any]:
    """Device-decoded pixels against Pillow's (load_rgb), in grey levels."""
    from torchvision.io import ImageReadMode, decode_jpeg

    from quadrat.io.images import load_rgb, read_bytes

    diffs = []
    for path in paths:
        encoded = torch.frombuffer(read_bytes(path), dtype=torch.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
        pixels = decoded.permute(1, 2, 0).cpu().numpy().astype(np.int16)
        diffs.append(np.abs(pixels - load_rgb(path).astype(np.int16)).ravel())
    diff = np.concatenate(diffs)
    return {
        "images": len(paths),
        "mean_abs": round(float(diff.mean()), 4),
        "p99_abs": int(np.percentile(diff, 99)),
        "max_abs": int(diff.max()),
        "identical_fraction": round(float((diff == 0).mean()), 4),
    }


def child(args: argparse.Namespace) -> None:
    """``--one MODEL:MODE --db PATH``: print one run's JSON line."""
    model_name, mode = args.one.split(":")
    print(json.dumps(run_one(Path(args.db), model_name, mode, args)))


def parent(args: argparse.Namespace) -> None:
    modes = args.modes or ("eager,compiled" if args.device.startswith("cuda") else "eager")
    root = Path(tempfile.mkdtemp(prefix="gpu_extract_", dir=args.tmp))
    results: dict[str, Any] = {
        "benchmark": "gpu_extract",
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "images": args.images,
        "points_per_image": args.points,
        "image_size": [args.height, args.width],
        "batch_size": batch_size(args),
        "dtype": "fp32" if args.fp32 else "bf16-autocast",
        "memory_format": "channels_last",
        "workers": args.workers,
        "prefetch": args.prefetch,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    try:
        start = time.perf_counter()
        template = prepare(root, args)
        results["prepare_seconds"] = round(time.perf_counter() - start, 1)
        runs = []
        for model_name in args.models.split(","):
            for mode in modes.split(","):
                db = root / f"{model_name}-{mode}.db"
                shutil.copy(template, db)
                command = [sys.executable, __file__, "--one", f"{model_name}:{mode}"]
                command += ["--db", str(db), *forwarded(args)]
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=args.run_timeout
                )
                if done.returncode != 0:
                    tail = done.stderr.strip().splitlines()[-3:]
                    runs.append({"model": model_name, "mode": mode, "error": " | ".join(tail)})
                else:
                    runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                db.unlink()
        results["runs"] = runs
        results["decode"] = decode_speed(root / "images", args.device, args.decode_group)
        results["store_only"] = store_speed(template, root)
        if args.device.startswith("cuda"):
            best = {
                name: max(
                    (r.get("end_to_end_patches_per_s", 0) for r in runs if r["model"] == name),
                    default=0,
                )
                for name in TARGETS
            }
            results["targets_end_to_end"] = TARGETS
            results["meets_targets"] = {
                name: best[name] >= target for name, target in TARGETS.items() if best[name]
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


def forwarded(args: argparse.Namespace) -> list[str]:
    """The options a child run needs, as given to the parent."""
    out = ["--device", args.device, "--points", str(args.points)]
    out += ["--workers", str(args.workers), "--prefetch", str(args.prefetch)]
    out += ["--model-batches", str(args.model_batches), "--batch-size", str(batch_size(args))]
    out += ["--height", str(args.height), "--width", str(args.width)]
    out += ["--parity-images", str(args.parity_images)]
    return out + (["--fp32"] if args.fp32 else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--points", type=int, default=50, help="random points per image")
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--models", default="efficientnet_b0,resnet50")
    parser.add_argument("--modes", help="eager,compiled (default on CUDA) or eager (CPU)")
    parser.add_argument("--batch-size", type=int, help="default 512 on CUDA, 8 on CPU")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--workers", type=int, default=8, help="file-reading threads")
    parser.add_argument("--prefetch", type=int, default=3, help="groups queued ahead")
    parser.add_argument("--model-batches", type=int, default=None, help="timed model-only")
    parser.add_argument("--parity-images", type=int, default=2, help="images compared")
    parser.add_argument("--decode-group", type=int, default=64, help="images per decode call")
    parser.add_argument("--run-timeout", type=float, default=600, help="seconds per child run")
    parser.add_argument("--tmp", help="folder for the generated files (default: system temp)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model_batches is None:
        args.model_batches = 30 if args.device.startswith("cuda") else 1
    if args.one:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
