"""How long cover intervals take on a large source: generated points, every level and method.

``--images`` images of ``--points`` points over 9 labels (a tenth of the images labelled
by a person, the rest by the machine), in 50 sites; ``cover_intervals`` per level and
method with ``--replicates`` replicates. Prints JSON (seconds per run and the load
average, since the development VM is shared).

    .venv/bin/python benchmarks/cover_speed.py --images 10000 --levels source,site
    .venv/bin/python benchmarks/cover_speed.py --images 2000 --levels image
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--levels", default="source,site,image")
    args = parser.parse_args()
    from quadrat.reports.cover_uncertainty import cover_intervals
    from quadrat.reports.quantify import Validation

    rng = np.random.default_rng(0)
    k = 9
    labels = [f"L{i}" for i in range(k)]
    n = args.images * args.points
    image = np.repeat(np.arange(args.images), args.points)
    points = pd.DataFrame(
        {
            "image": image,
            "label": np.asarray(labels, dtype=object)[rng.integers(0, k, size=n)],
            "known": image % 10 == 0,
            "site": image % 50,
            "source": "all",
        }
    )
    confusion = rng.integers(0, 20, (k, k)) + np.eye(k, dtype=np.int64) * 100
    validation = Validation(
        tuple(labels),
        confusion.astype(np.float64),
        mean_scores=confusion / confusion.sum(axis=1, keepdims=True),
    )
    scores = rng.dirichlet(np.ones(k), size=n)
    runs = []
    for level in args.levels.split(","):
        for method in ("naive", "acc", "pacc"):
            start = time.perf_counter()
            cover_intervals(
                points,
                labels,
                group=level,
                method=method,
                validation=validation,
                scores=scores,
                replicates=args.replicates,
            )
            runs.append(
                {
                    "level": level,
                    "method": method,
                    "seconds": round(time.perf_counter() - start, 1),
                    "loadavg": round(os.getloadavg()[0], 1),
                }
            )
    print(
        json.dumps(
            {
                "images": args.images,
                "points_per_image": args.points,
                "labels": k,
                "replicates": args.replicates,
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
