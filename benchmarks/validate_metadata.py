"""Metadata reading and validation speed: a synthetic per-image CSV through the readers.

Writes a CSV of N image rows (string cells, as a survey log has them; 1% bad rows of five
kinds), then times ``read_csv_metadata``, ``validate_metadata`` and ``write_metadata``
(Parquet). Prints one JSON object: rows, bad rows found per reason, seconds per step.

    .venv/bin/python benchmarks/validate_metadata.py              # 1,000,000 rows
    .venv/bin/python benchmarks/validate_metadata.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from quadrat.datasets.readers import read_csv_metadata
from quadrat.datasets.schema import validate_metadata, write_metadata


def synthetic_log(n: int, seed: int = 0) -> pd.DataFrame:
    """N images in 200 sites along random walks, one every 2 s, with 1% planted flaws."""
    rng = np.random.default_rng(seed)
    site = np.sort(rng.integers(0, 200, n))
    lat = -43.0 + site * 0.01 + np.cumsum(rng.normal(0, 1e-5, n))
    lon = 148.0 + np.cumsum(rng.normal(0, 1e-5, n))
    start = pd.Timestamp("2020-01-01T00:00:00Z")
    times = start + pd.to_timedelta(np.arange(n) * 2, unit="s")
    frame = pd.DataFrame(
        {
            "site": [f"site_{s:03d}" for s in site],
            "img_name": [f"IMG_{i:07d}.jpg" for i in range(n)],
            "lat": np.round(lat, 7).astype(str),
            "lon": np.round(lon, 7).astype(str),
            "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "depth": np.round(rng.uniform(5, 60, n), 2).astype(str),
            "altitude": np.round(rng.uniform(1, 3, n), 2).astype(str),
        }
    )
    bad = rng.choice(np.arange(1, n), size=n // 100, replace=False)
    kinds = np.array_split(bad, 5)
    frame.loc[kinds[0], ["lat", "lon"]] = "0"
    frame.loc[kinds[1], "lat"] = "95.5"
    frame.loc[kinds[2], "timestamp"] = "not recorded"
    frame.loc[kinds[3], ["site", "img_name"]] = frame.loc[0, ["site", "img_name"]].tolist()
    frame.loc[kinds[4], "depth"] = "deep"
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "log.csv"
        synthetic_log(args.rows).to_csv(csv_path, index=False)
        t0 = time.perf_counter()
        table = read_csv_metadata(csv_path, dataset="synthetic")
        t1 = time.perf_counter()
        report = validate_metadata(table, on_error="drop")
        t2 = time.perf_counter()
        write_metadata(report.table, Path(folder) / "meta.parquet")
        t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "bad_rows": report.n_bad,
                "reasons": {str(k): int(v) for k, v in report.reason_counts().items()},
                "read_s": round(t1 - t0, 2),
                "validate_s": round(t2 - t1, 2),
                "write_parquet_s": round(t3 - t2, 2),
                "rows_per_s_validate": round(args.rows / (t2 - t1)),
            }
        )
    )


if __name__ == "__main__":
    main()
