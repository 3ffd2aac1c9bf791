"""End-to-end extraction speed: JPEG files -> patches -> features -> project store.

Makes a synthetic set of JPEGs (default 20 images of 2000x1500, 50 random points each,
the same shape as the pyspacer figures in ../shared/specs/pyspacer.md), imports them into
a fresh SQLite project, and times ``Source.extract`` per extractor. Prints one
JSON object.

    python benchmarks/extract_points.py --extractors texture,efficientnet_b0
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_images(folder: Path, n: int, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        # Smooth colour fields plus noise: compresses like a photo, not like white noise.
        small = rng.integers(0, 255, (height // 50, width // 50, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))
        noise = rng.normal(0, 12, base.shape)
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:04d}.jpg", quality=90)


def run_one(db: str, images: str, name: str, points: int, batch_size: int, workers: int) -> dict:
    """One extractor on a fresh project, in its own process so its peak RSS is its own."""
    import warnings

    from quadrat import Project
    from quadrat.extractors import create_extractor

    warnings.simplefilter("ignore")
    project = Project.create(db)
    project.create_source("bench")
    project.source("bench").import_images([Path(images)])
    project.source("bench").generate_points(f"m_{points}", seed=0)
    extractor = create_extractor(name, random_weights=True, batch_size=batch_size)
    start = time.perf_counter()
    summary = project.source("bench").extract(extractor, workers=workers)
    seconds = time.perf_counter() - start
    project.close()  # checkpoints the WAL into the file before its size is read
    return {
        "key": extractor.key,
        "points": summary.points,
        "seconds": round(seconds, 2),
        "points_per_s": round(summary.points / seconds, 1),
        "db_bytes_per_point": round(Path(db).stat().st_size / max(summary.points, 1), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--extractors", default="texture,efficientnet_b0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    results: dict[str, object] = {
        "images": args.images,
        "points_per_image": args.points,
        "image_size": [args.height, args.width],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "extractors": {},
    }
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        make_images(images, args.images, args.height, args.width, seed=0)
        for name in args.extractors.split(","):
            with context.Pool(1) as pool:
                results["extractors"][name] = pool.apply(  # type: ignore[index]
                    run_one,
                    (
                        str(root / f"{name}.db"),
                        str(images),
                        name,
                        args.points,
                        args.batch_size,
                        args.workers,
                    ),
                )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
