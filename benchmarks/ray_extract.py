"""Extraction on a local Ray cluster against one process, on the same small project.

Makes synthetic JPEGs (the shape of ``extract_points.py``), then per extractor, each in
its own spawned process so peak RSS figures are its own: a plain ``extract_features`` run,
and a run through :class:`quadrat.extraction.ray_runner.RayRunner` on a local Ray instance
with ``--ray-workers`` actors. The Ray figure is given with and without the actors' start
(Ray itself plus each worker importing torch and quadrat). Checks that both stores hold
the same features. Prints one JSON object.

    python benchmarks/ray_extract.py --extractors texture,efficientnet_b0 --images 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_points import make_images


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_one(
    db: str, images: str, name: str, points: int, batch_size: int, ray_workers: int
) -> dict[str, Any]:
    """One extractor on a fresh project; ``ray_workers`` 0 = one process, no Ray."""
    import warnings

    from quadrat import Project
    from quadrat.extraction.ray_runner import RayRunner
    from quadrat.extractors import create_extractor

    warnings.simplefilter("ignore")
    project = Project.create(db)
    project.create_source("bench")
    project.source("bench").import_images([Path(images)])
    project.source("bench").generate_points(f"m_{points}", seed=0)
    result: dict[str, Any] = {}
    start = time.perf_counter()
    runner = None
    if ray_workers:
        runner = RayRunner(
            address="local",
            num_workers=ray_workers,
            init_options={"object_store_memory": 200 * 1024 * 1024, "log_to_driver": False},
        )
        runner.start()
    extractor = create_extractor(name, random_weights=True, batch_size=batch_size)
    if runner is not None:
        list(runner([], extractor))  # wait until every actor holds the extractor
        result["startup_seconds"] = round(time.perf_counter() - start, 2)
    ready = time.perf_counter()
    summary = project.source("bench").extract(extractor, runner=runner)
    seconds = time.perf_counter() - ready
    result.update(
        key=extractor.key,
        points=summary.points,
        seconds=round(seconds, 2),
        points_per_s=round(summary.points / seconds, 1),
        driver_peak_rss_mb=peak_rss_mb(),
    )
    if runner is not None:
        total = time.perf_counter() - start
        result["points_per_s_with_startup"] = round(summary.points / total, 1)
        result["worker_peak_rss_mb"] = [round(mb, 1) for mb in runner.worker_peak_rss_mb]
        runner.close()
    project.close()
    return result


def compare_stores(db_a: str, db_b: str, key: str) -> dict[str, Any]:
    """Whether two stores hold the same features, and how far apart they are if not."""
    from quadrat import Project
    from quadrat.store.features import load_features

    matrices = []
    for db in (db_a, db_b):
        project = Project.open(db)
        with project.store.session() as session:
            matrices.append(load_features(session, key))
        project.close()
    a, b = matrices
    same_ids = bool(np.array_equal(a.point_ids, b.point_ids))
    x, y = a.features.astype(np.float64), b.features.astype(np.float64)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    cosine = (x * y).sum(axis=1) / np.where(norms > 0, norms, 1.0)
    return {
        "same_point_ids": same_ids,
        "identical_features": same_ids and bool(np.array_equal(x, y)),
        "max_abs_difference": float(np.abs(x - y).max()),
        "max_abs_feature": float(np.abs(x).max()),
        "min_cosine": round(float(cosine.min()), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--extractors", default="texture,efficientnet_b0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ray-workers", type=int, default=2)
    args = parser.parse_args()

    results: dict[str, Any] = {
        "images": args.images,
        "points_per_image": args.points,
        "image_size": [args.height, args.width],
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "ray_workers": args.ray_workers,
        "extractors": {},
    }
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        make_images(images, args.images, args.height, args.width, seed=0)
        for name in args.extractors.split(","):
            runs = {}
            for mode, workers in (("one_process", 0), ("ray", args.ray_workers)):
                db = str(root / f"{name}-{mode}.db")
                with context.Pool(1) as pool:
                    runs[mode] = pool.apply(
                        run_one,
                        (db, str(images), name, args.points, args.batch_size, workers),
                    )
                runs[mode]["db"] = db
            key = runs["ray"]["key"]
            runs["comparison"] = compare_stores(
                runs["one_process"].pop("db"), runs["ray"].pop("db"), key
            )
            results["extractors"][name] = runs
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
