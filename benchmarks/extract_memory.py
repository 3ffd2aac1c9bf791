"""Peak memory of extraction against the number of images: bounded by the batch?

For each image count (default 20 and 1,000) a folder holds that many JPEGs of 2000x1500
(hard links to a pool of distinct files, so making 1,000 costs no more than 20; every one
is still decoded), a fresh SQLite project gets them with ``m_N`` random points each, and
``Source.extract`` runs in its own process so that its peak RSS (VmHWM) is its
own. Prints one JSON object with each run's peak RSS, RSS before extraction (imports and
network loaded), points/s, and the ratio of the largest run's peak to the smallest's
(issue 3's target: at most 1.5).

    .venv/bin/python benchmarks/extract_memory.py                       # 20 and 1000 images
    .venv/bin/python benchmarks/extract_memory.py --counts 20,200 --extractor texture
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def extract_run(db: str, extractor: str, batch_size: int, out: Any) -> None:
    """Child process: build the extractor, extract every point, report memory."""
    import warnings

    warnings.simplefilter("ignore")
    from quadrat import Project
    from quadrat.extractors import create_extractor

    project = Project.open(db)
    model = create_extractor(extractor, random_weights=True, batch_size=batch_size)
    before = vm_kb("VmRSS")
    start = time.perf_counter()
    summary = project.source("bench").extract(model)
    seconds = time.perf_counter() - start
    out.put(
        {
            "points": summary.points,
            "images": summary.images_done,
            "seconds": round(seconds, 1),
            "points_per_s": round(summary.points / seconds, 1),
            "rss_before_extraction_mb": round(before / 1024, 1),
            "peak_rss_mb": round(vm_kb("VmHWM") / 1024, 1),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="20,1000", help="image counts, comma list")
    parser.add_argument("--points", type=int, default=5, help="points per image")
    parser.add_argument("--distinct", type=int, default=20, help="distinct JPEG files")
    parser.add_argument("--extractor", default="efficientnet_b0")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import warnings

    warnings.simplefilter("ignore")
    from benchmarks.extract_points import make_images

    from quadrat import Project

    counts = [int(c) for c in args.counts.split(",")]
    runs: dict[str, Any] = {}
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="extract_memory_") as tmp:
        pool = Path(tmp) / "pool"
        pool.mkdir()
        make_images(pool, args.distinct, 1500, 2000, seed=0)
        distinct = sorted(pool.iterdir())
        for n in counts:
            folder = Path(tmp) / f"images_{n}"
            folder.mkdir()
            for i in range(n):
                os.link(distinct[i % len(distinct)], folder / f"img_{i:05d}.jpg")
            db = str(Path(tmp) / f"bench_{n}.db")
            project = Project.create(db)
            project.create_source("bench")
            project.source("bench").import_images([folder])
            project.source("bench").generate_points(f"m_{args.points}", seed=0)
            project.close()
            queue = ctx.Queue()
            child = ctx.Process(
                target=extract_run, args=(db, args.extractor, args.batch_size, queue)
            )
            child.start()
            result = queue.get()
            child.join()
            runs[str(n)] = result
    peaks = [runs[str(n)]["peak_rss_mb"] for n in counts]
    print(
        json.dumps(
            {
                "extractor": args.extractor,
                "points_per_image": args.points,
                "image_size": [1500, 2000],
                "batch_size": args.batch_size,
                "runs": runs,
                "peak_rss_ratio_largest_to_smallest": round(peaks[-1] / peaks[0], 3),
                "target_ratio": 1.5,
                "loadavg": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
