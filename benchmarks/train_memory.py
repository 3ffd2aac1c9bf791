"""Benchmark: peak memory (RSS) of loading stored features and training the MLP on them.

Builds a temporary SQLite project holding ``--points`` synthetic 1280-d float16 feature
rows (images of 50 points, as ``quadrat extract`` stores them), then, in a fresh
subprocess per configuration, loads them with ``store.features.load_features`` and trains
with ``classifiers.training.train_classifier`` (kind mlp, split by image). Peak RSS is
Linux's VmHWM, reset between stages through /proc/self/clear_refs, so each stage's peak
is its own. Prints one JSON object.

    .venv/bin/python benchmarks/train_memory.py --points 100000 --epochs 2

``--epochs`` caps the MLP's epochs: memory does not grow with epochs, and it keeps the run
short on a shared machine. The feature array alone is 100,000 x 1280 x 4 B = 512 MB in
float32 (256 MB in float16).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    """Peak RSS since exec or the last ``_reset_peak`` (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    """Start VmHWM afresh from the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def build_project(path: Path, n_points: int, seed: int) -> dict[str, Any]:
    """A project with one source, ``n_points / 50`` images and their float16 features."""
    from quadrat import Project
    from quadrat.classifiers.synthetic import make_point_features
    from quadrat.store.features import record_extractor, write_block
    from quadrat.store.schema import Image, Source

    data = make_point_features(n_points, random_state=seed)
    project = Project.create(path)
    with project.store.session() as session:
        source = Source(name="bench")
        session.add(source)
        session.flush()
        images = []
        for g in np.unique(data.groups):
            image = Image(
                source_id=source.id,
                name=f"{g}.jpg",
                path=f"/bench/{g}.jpg",
                sha256="0" * 64,
                width=10,
                height=10,
            )
            session.add(image)
            images.append(image)
        session.flush()
        record_extractor(session, "bench", "synthetic", data.X.shape[1], {})
        for image, g in zip(images, np.unique(data.groups), strict=True):
            rows = np.flatnonzero(data.groups == g)
            write_block(session, image.id, "bench", rows, data.X[rows], dtype="float16")
    np.savez(path.with_suffix(".npz"), y=data.y, groups=data.groups)
    return {"source_id": 1}


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Load + train in this (fresh) process; peak RSS per stage."""
    import quadrat.classifiers.estimators  # noqa: F401  (import cost is not a stage)
    from quadrat import Project
    from quadrat.classifiers.estimators import CoralNetMLP
    from quadrat.classifiers.training import train_classifier
    from quadrat.store.features import load_features

    labels = np.load(Path(job["db"]).with_suffix(".npz"))
    y, groups = labels["y"], labels["groups"]
    project = Project.open(job["db"])
    base = _rss_mb()
    _reset_peak()
    start = time.perf_counter()
    with project.store.session() as session:
        matrix = load_features(session, "bench", source_id=1, dtype=job["load_dtype"])
    # Rows in label order, as store.queries.training_data does (one more copy of the array).
    X = matrix.features[np.argsort(matrix.point_ids)]
    del matrix
    load_seconds = time.perf_counter() - start
    load_peak, after_load = _peak_rss_mb(), _rss_mb()
    _reset_peak()
    options: dict[str, Any] = {"max_iter": job["epochs"], "random_state": 0}
    if job["backend"] == "torch":
        options.update(backend="torch", device="cpu")
    start = time.perf_counter()
    result = train_classifier(X, y, groups=groups, estimator=CoralNetMLP(**options))
    train_seconds = time.perf_counter() - start
    return {
        "load_dtype": job["load_dtype"],
        "backend": job["backend"],
        "rss_before_load_mb": base,
        "load_peak_rss_mb": load_peak,
        "rss_after_load_mb": after_load,
        "train_peak_rss_mb": _peak_rss_mb(),
        "load_seconds": round(load_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "val_accuracy": round(result.metrics.accuracy, 4),
        "array_mb": round(X.nbytes / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", default="float32:sklearn,float16:sklearn,float16:torch")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        start = time.perf_counter()
        build_project(db, args.points, args.seed)
        build_seconds = time.perf_counter() - start
        for config in args.configs.split(","):
            load_dtype, backend = config.split(":")
            job = {"db": str(db), "load_dtype": load_dtype, "backend": backend}
            job["epochs"] = args.epochs
            done = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(job)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        json.dumps(
            {
                "benchmark": "train_memory",
                "points": args.points,
                "dims": 1280,
                "epochs": args.epochs,
                "build_seconds": round(build_seconds, 1),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
