"""Spatial subsampling speed: ``subsample_sites`` on synthetic AUV and towed-camera surveys.

Prints one JSON object: rows, sites, seconds, rows/s, kept rows, and peak RSS (MB) before
and after the run (``resource.getrusage``; the table itself is most of it).

    .venv/bin/python benchmarks/subsample.py                      # 1,000,000 rows, defaults
    .venv/bin/python benchmarks/subsample.py --distance 1.25 --target 250 --factors 1,2,4,8,16
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd

from quadrat.datasets.geo import EARTH_RADIUS_M
from quadrat.datasets.subsample import subsample_sites


def lawnmower(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An AUV grid: legs of 100-400 m, 5-20 m apart, ~0.3-1 m a frame, a little wander."""
    leg = rng.uniform(100, 400)
    spacing = rng.uniform(5, 20)
    step = rng.uniform(0.3, 1.0)
    along = np.cumsum(np.abs(rng.normal(step, step * 0.2, n)))
    leg_number = np.floor(along / leg)
    position = along - leg_number * leg
    east = np.where(leg_number % 2 == 0, position, leg - position)
    north = leg_number * spacing + rng.normal(0, 0.3, n)
    return east, north


def towed_line(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A towed camera: one long meandering line at ~0.2-2 m a frame, GPS jitter of ~0.5 m."""
    step = rng.uniform(0.2, 2.0)
    heading = np.cumsum(rng.normal(0, 0.02, n)) + rng.uniform(0, 2 * np.pi)
    steps = np.abs(rng.normal(step, step * 0.3, n))
    east = np.cumsum(steps * np.sin(heading)) + rng.normal(0, 0.5, n)
    north = np.cumsum(steps * np.cos(heading)) + rng.normal(0, 0.5, n)
    return east, north


def make_survey(n_rows: int, n_sites: int, seed: int) -> pd.DataFrame:
    """``n_rows`` images in ``n_sites`` sites of very unequal sizes (a few big AUV missions)."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0, 1.5, n_sites)
    sizes = np.maximum(1, np.floor(weights / weights.sum() * n_rows)).astype(int)
    sizes[np.argmax(sizes)] += n_rows - sizes.sum()
    lats, lons, names, datasets = [], [], [], []
    for k, n in enumerate(sizes):
        east, north = (lawnmower if k % 2 == 0 else towed_line)(int(n), rng)
        lat0, lon0 = rng.uniform(-60, 60), rng.uniform(-180, 180)
        lats.append(lat0 + np.degrees(north / EARTH_RADIUS_M))
        lons.append(lon0 + np.degrees(east / (EARTH_RADIUS_M * np.cos(np.radians(lat0)))))
        names.append(np.full(n, f"site{k:04d}"))
        datasets.append(np.full(n, f"{'auv' if k % 2 == 0 else 'towed'}-{k % 7}"))
    site = np.concatenate(names)
    frame = np.arange(n_rows)
    return pd.DataFrame(
        {
            "dataset": pd.Categorical(np.concatenate(datasets)),
            "site": pd.Categorical(site),
            "image": pd.Series(frame).astype(str) + ".jpg",
            "latitude": np.concatenate(lats),
            "longitude": np.concatenate(lons),
            "datetime": pd.Timestamp("2020-01-01") + pd.to_timedelta(frame, unit="s"),
            "depth": rng.uniform(5, 60, n_rows),
            "altitude": rng.uniform(1, 3, n_rows),
            "platform": "AUV",
        }
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distance", type=float, default=2.5)
    parser.add_argument("--target", type=int, default=1000)
    parser.add_argument("--min", type=int, default=500, dest="minimum")
    parser.add_argument("--factors", default="1")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="a second, untimed run under tracemalloc: peak bytes allocated by subsample_sites",
    )
    args = parser.parse_args()
    factors = tuple(float(f) for f in args.factors.split(","))

    table = make_survey(args.rows, args.sites, args.seed)
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    result = subsample_sites(
        table,
        distance=args.distance,
        target_population=args.target,
        min_population=args.minimum,
        factors=factors,
    )
    seconds = time.perf_counter() - start
    methods = result.sites["method"].value_counts().to_dict()
    traced_mb = None
    if args.trace_memory:
        tracemalloc.start()
        subsample_sites(
            table,
            distance=args.distance,
            target_population=args.target,
            min_population=args.minimum,
            factors=factors,
        )
        traced_mb = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    print(
        json.dumps(
            {
                "rows": len(table),
                "sites": len(result.sites),
                "largest_site_rows": int(result.sites["rows"].max()),
                "distance_m": args.distance,
                "target": args.target,
                "min": args.minimum,
                "factors": list(factors),
                "seconds": round(seconds, 3),
                "rows_per_s": round(len(table) / seconds),
                "kept_rows": len(result.kept),
                "sites_by_method": methods,
                "peak_rss_mb_after_table": round(rss_before, 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "subsample_peak_alloc_mb": traced_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
