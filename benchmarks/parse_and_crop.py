"""Benchmark: CoralNet CSV parsing and patch cropping, the speed figures tests used to assert.

The tests keep the behaviour (100,000 rows parse with the right line numbers; crops have
the right shape); the seconds live here, printed as one JSON object, because a loaded CI
machine turns a wall-clock assertion into a coin toss. Best of ``--repeat`` runs after a
warm-up. Well under a minute on 2 cores.

    .venv/bin/python benchmarks/parse_and_crop.py
    .venv/bin/python benchmarks/parse_and_crop.py --rows 1000000 --repeat 5

Targets (from the retired test assertions; 2-core VM): ``read_annotations_csv`` on 100k
CoralNet rows < 1.0 s, 100k rows with quoted line breaks < 1.5 s; ``crop_patches`` on 200
points of a 2000x1500 image > 2,000 patches/s (measured ~30,000; pyspacer's whole pipeline
runs ~18 points/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quadrat.io.coralnet import read_annotations_csv
from quadrat.limits import Limits
from quadrat.patches import crop_patches

HEADER = (
    "Name,Date,Aux1,Aux2,Aux3,Aux4,Aux5,Height (cm),Latitude,Longitude,Depth,Camera,"
    "Photographer,Water quality,Strobes,Framing gear used,White balance card,Comments,"
    "Row,Column,Label,Annotator,Date annotated"
)


def best_of(func: Callable[[], object], repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls, after one untimed warm-up call."""
    func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def coralnet_rows(n: int) -> str:
    """A CoralNet annotation export with Moorea's columns, ``n`` rows."""
    lines = [HEADER]
    for i in range(n):
        lines.append(
            f"img{i % 200:04d}.jpg,2008-04-0{1 + i % 9},LTER 1,Fringing Reef,Pole 1-2,,,,"
            f"-17.48,-149.84,10,Nikon,LTER,Good,Yes,Yes,Yes,,"
            f"{i % 1500},{i % 2000},L{i % 9},alice,2021-05-03 10:00:00+00:00"
        )
    return "\n".join(lines) + "\n"


def quoted_rows(n: int) -> str:
    """``n`` rows, every third with a quoted comment spanning two lines."""
    rows = ["Name,Row,Column,Label,Comments"]
    rows += [
        f"img{i % 50}.jpg,{i % 2000},{i % 1500},L{i % 9}," + ('"a,\nb"' if i % 3 == 0 else "ok")
        for i in range(n)
    ]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, Any] = {}
    many = Limits(points_per_image=args.rows)  # a parse benchmark, not a real survey
    with tempfile.TemporaryDirectory() as tmp:
        for name, text, target in (
            ("csv_plain", coralnet_rows(args.rows), 1.0),
            ("csv_quoted_line_breaks", quoted_rows(args.rows), 1.5),
        ):
            path = Path(tmp) / f"{name}.csv"
            path.write_text(text, encoding="utf-8")
            rows = len(read_annotations_csv(path, limits=many))
            seconds = best_of(lambda p=path: read_annotations_csv(p, limits=many), args.repeat)
            results[name] = {
                "rows": rows,
                "seconds": round(seconds, 4),
                "rows_per_s": round(rows / seconds),
                "target_s_per_100k": target,
                "met": seconds * 100_000 / rows < target,
            }

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    r = rng.integers(0, 1500, args.points)
    c = rng.integers(0, 2000, args.points)
    seconds = best_of(lambda: crop_patches(image, r, c), args.repeat)
    rate = args.points / seconds
    results["crop_patches"] = {
        "points": args.points,
        "image": "2000x1500",
        "patches_per_s": round(rate),
        "target_patches_per_s": 2000,
        "met": rate > 2000,
    }
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
