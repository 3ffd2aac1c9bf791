"""Benchmark: training time, validation accuracy and scoring throughput of the classifiers.

Synthetic 1280-d float16 features (20 labels, Zipf-like frequencies, images of 50 points
with a shared per-image shift; see quadrat.classifiers.synthetic), split by image exactly
as ``train_classifier`` does for a source. Prints one JSON object.

    .venv/bin/python benchmarks/train_classifiers.py --sizes 1000,10000,100000 --kinds lr,mlp
    .venv/bin/python benchmarks/train_classifiers.py --sizes 100000 --kinds mlp \
        --backends sklearn,torch --device cpu    # scikit-learn vs the PyTorch trainer

Compare with pyspacer 0.14 on 100,000 synthetic points (2 cores): MLP 85-90 s, LR 140 s of
training (plus ~115 s of feature-file I/O), scoring 1,100-1,800 points/s. Shared machines
move by 2x between runs: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np
import sklearn
import threadpoolctl

from quadrat.classifiers.estimators import CalibratedLogisticRegression, CoralNetMLP
from quadrat.classifiers.metrics import top_k
from quadrat.classifiers.synthetic import make_point_features
from quadrat.classifiers.training import train_classifier


def run_one(
    n: int, kind: str, seed: int, blas_threads: int | None, backend: str, device: str
) -> dict[str, Any]:
    """Train one classifier on ``n`` synthetic points and score all of them.

    ``backend`` "torch" trains with the PyTorch trainer on ``device`` (the MLP's
    ``backend="torch"``, logistic regression's ``solver="torch"``).
    """
    data = make_point_features(n, random_state=seed)
    # "auto" sizes: the MLP picks CoralNet's shape from its training points at fit time.
    estimator: CalibratedLogisticRegression | CoralNetMLP
    torch_options = {"device": device} if backend == "torch" else {}
    if kind == "lr":
        if backend == "torch":
            torch_options["solver"] = "torch"
        estimator = CalibratedLogisticRegression(
            blas_threads=blas_threads, random_state=seed, **torch_options
        )
    else:
        if backend == "torch":
            torch_options["backend"] = "torch"
        estimator = CoralNetMLP(blas_threads=blas_threads, random_state=seed, **torch_options)
    start, cpu = time.perf_counter(), time.process_time()
    result = train_classifier(
        data.X, data.y, groups=data.groups, estimator=estimator, random_state=seed
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    proba = result.estimator.predict_proba(data.X)
    labels, _scores = top_k(proba, result.classes, k=5)
    score_seconds = time.perf_counter() - start
    return {
        "n_points": n,
        "kind": kind,
        "backend": backend,
        "device": getattr(result.estimator, "device_", "cpu"),
        "n_train": result.n_train,
        "n_calibration": result.n_calibration,
        "n_val": result.n_val,
        "train_seconds": round(result.train_seconds, 2),
        "split_fit_evaluate_seconds": round(wall, 2),
        "split_fit_evaluate_cpu_seconds": round(cpu, 2),
        "val_accuracy": round(result.metrics.accuracy, 4),
        "val_macro_f1": round(result.metrics.macro_f1, 4),
        "majority_baseline": round(float(np.bincount(data.y).max() / n), 4),
        "fitted": result.hyperparameters["fitted"],
        "score_points_per_second": round(n / score_seconds),
        "top5_shape": list(labels.shape),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--kinds", default="lr,mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads", default="1", help="BLAS threads per fit/score, or 'none' (as set)"
    )
    parser.add_argument("--backends", default="sklearn", help="sklearn and/or torch")
    parser.add_argument("--device", default="auto", help="torch backend: auto, cpu, cuda")
    args = parser.parse_args()
    threads = None if args.blas_threads.lower() == "none" else int(args.blas_threads)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    load_start = os.getloadavg()[0]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    runs = [
        run_one(n, kind, args.seed, threads, backend, args.device)
        for n in sizes
        for kind in kinds
        for backend in backends
    ]
    blas = threadpoolctl.threadpool_info()
    print(
        json.dumps(
            {
                "benchmark": "train_classifiers",
                "features": {
                    "dims": 1280,
                    "classes": 20,
                    "points_per_image": 50,
                    "dtype": "float16",
                },
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1min_at_start": round(load_start, 2),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2),
                    "blas_threads_setting": threads,
                    "python": platform.python_version(),
                    "sklearn": sklearn.__version__,
                    "numpy": np.__version__,
                    "blas_threads": [b.get("num_threads") for b in blas],
                },
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
