"""Benchmark: feature extraction throughput (patches/s) of each extractor, one JSON object.

Random-weight networks (speed does not depend on the weights) on smooth synthetic
224 px patches, fp32, channels-last, batch 32, on the CPU by default; the first batch is
a warm-up and is not timed. The default run takes well under a minute on 2 cores.

    .venv/bin/python benchmarks/extract_model.py
    .venv/bin/python benchmarks/extract_model.py --extractors efficientnet_b0 --bf16 --n 256
    .venv/bin/python benchmarks/extract_model.py --extractors texture \
        --moorea ../shared/data/moorea-lter-2008 --points 60

``--precisions f32,bf16,int8`` (with ``--moorea``) measures what OpenVINO's reduced precisions
cost on those photos: cosine similarity of each point's features to exact (f32) ones and
the same classifiers' accuracy (issue 16; ``bf16`` needs a CPU with bf16 instructions,
``int8`` NNCF, calibrated on 256 of the same unlabelled patches).

``--moorea`` adds each extractor's accuracy on the Moorea 2008 photoquadrats (20 images,
the downscaled one left out; logistic regression and MLP(100), image-grouped 4-fold CV),
the set specs/measurements.md reports a texture descriptor at 0.678 / 0.698 on
(60 points per image, majority 0.465).

Reference (specs/measurements.md, 2-core VM): timm EfficientNet-B0 batch 32 fp32,
8.7 patches/s NCHW, 12.4 channels-last (37.6 in another run with 2 threads); one H100
with bf16, channels-last, batch 512: 19,500 patches/s. Shared machines move by 2x between
runs: compare extractors within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from quadrat.extractors import create_extractor
from quadrat.extractors.torch_extractor import synthetic_patches
from quadrat.io.images import load_rgb
from quadrat.patches import crop_patches

DEFAULT_N = {"texture": 2048}  # patches timed per extractor; CNNs: --n


def run_one(name: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"device": args.device, "batch_size": args.batch_size}
    if name != "texture":
        options |= {"channels_last": not args.nchw, "autocast_bf16": args.bf16}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        start = time.perf_counter()
        extractor = create_extractor(name, random_weights=True, **options)
        build = time.perf_counter() - start
    # Distinct patches, cycled from a smaller synthetic set (generating them costs time too).
    pool = synthetic_patches(min(n, 256), seed=1).numpy()
    patches = pool[np.arange(n) % len(pool)]
    extractor.extract(patches[: args.batch_size])  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    features = extractor.extract(patches)
    seconds = time.perf_counter() - start
    return {
        "extractor": name,
        "key": extractor.key,
        "feature_dim": int(features.shape[1]),
        "patches": n,
        "seconds": round(seconds, 3),
        "patches_per_second": round(n / seconds, 1),
        "build_seconds": round(build, 2),
    }


DOWNSCALED = "mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"  # points no longer line up


def moorea_patches(root: Path, points: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Patches, labels and image ids of up to ``points`` random points per Moorea image."""
    table = pd.read_csv(root / "annotations.csv")
    table = table[table["Name"] != DOWNSCALED]
    rng = np.random.default_rng(seed)
    patches, labels, groups = [], [], []
    for group, (name, rows) in enumerate(table.groupby("Name")):
        rows = rows.iloc[rng.permutation(len(rows))[:points]]
        image = load_rgb(root / "images" / name)
        patches.append(crop_patches(image, rows["Row"].to_numpy(), rows["Column"].to_numpy()))
        labels += rows["Label"].tolist()
        groups += [group] * len(rows)
    return np.concatenate(patches), np.array(labels), np.array(groups)


def accuracy(name: str, data: tuple[np.ndarray, ...], args: argparse.Namespace) -> dict:
    """Image-grouped 4-fold accuracy of LR and MLP(100) on one extractor's features."""
    patches, labels, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        features = create_extractor(name, random_weights=True, device=args.device).extract(patches)
    return {"extractor": name, **grouped_accuracy(features, labels, groups)}


def grouped_accuracy(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict:
    """Image-grouped 4-fold accuracy of LR and MLP(100), and the majority baseline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.neural_network import MLPClassifier

    out: dict[str, Any] = {"points": len(labels)}
    models = {
        "lr": lambda: LogisticRegression(max_iter=3000),
        "mlp": lambda: MLPClassifier((100,), max_iter=500, random_state=0),
    }
    for kind, make in models.items():
        predicted = np.empty_like(labels)
        for train, test in GroupKFold(4).split(features, labels, groups):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence warnings
                predicted[test] = make().fit(features[train], labels[train]).predict(features[test])
        out[f"{kind}_accuracy"] = round(float(np.mean(predicted == labels)), 3)
    out["majority"] = round(float(np.unique(labels, return_counts=True)[1].max() / len(labels)), 3)
    return out


def precision_costs(
    name: str, data: tuple[np.ndarray, ...], precisions: list[str], weights: Path | None = None
) -> list[dict[str, Any]]:
    """Each OpenVINO precision against exact f32 on the same patches: cosine, accuracy."""
    patches, labels, groups = data
    source: dict[str, Any] = {"weights": weights} if weights else {"random_weights": True}
    exact: np.ndarray | None = None
    out = []
    # int8's calibration: 256 of the patches, seeded (unlabelled; only activation ranges).
    calibration = patches[np.random.default_rng(1).permutation(len(patches))[:256]]
    for precision in ["f32", *[p for p in precisions if p != "f32"]]:
        options: dict[str, Any] = {"calibration": calibration} if precision == "int8" else {}
        extractor = create_extractor(
            name, runtime="openvino", precision=precision, **source, **options
        )
        start = time.perf_counter()
        features = extractor.extract(patches)
        seconds = time.perf_counter() - start
        row: dict[str, Any] = {
            "precision": precision,
            "key": extractor.key,
            "patches_per_second": round(len(patches) / seconds, 1),
        }
        if exact is None:
            exact = features
        else:
            cos = np.sum(features * exact, 1) / (
                np.linalg.norm(features, axis=1) * np.linalg.norm(exact, axis=1)
            )
            row |= {
                "cosine_median": round(float(np.median(cos)), 6),
                "cosine_min": round(float(cos.min()), 6),
                "max_abs_diff": float(np.abs(features - exact).max()),
                "feature_scale": float(np.abs(exact).max()),
            }
        out.append(row | grouped_accuracy(features, labels, groups))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractors", default="texture,efficientnet_b0,resnet50")
    parser.add_argument("--n", type=int, default=128, help="patches timed per CNN")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (not exact)")
    parser.add_argument("--nchw", action="store_true", help="contiguous, not channels-last")
    parser.add_argument("--moorea", type=Path, help="moorea-lter-2008 folder: add accuracy")
    parser.add_argument("--points", type=int, default=60, help="Moorea points per image")
    parser.add_argument("--precisions", help="with --moorea: OpenVINO precisions, e.g. f32,bf16")
    parser.add_argument(
        "--bn-on-moorea",
        action="store_true",
        help="with --precisions: efficientnet_b0 weights whose BatchNorm statistics come "
        "from Moorea patches (features of a trained network's scale), not random_weights",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.extractors.split(",")
    extra: dict[str, Any] = {}
    if args.precisions:
        if not args.moorea:
            parser.error("--precisions needs --moorea")
        data = moorea_patches(args.moorea, args.points)
        weights = None
        if args.bn_on_moorea:
            # Random EfficientNet-B0 in pyspacer's layout, BatchNorm statistics estimated on
            # 64 of the Moorea patches: features of a trained network's scale (about 1).
            import sys
            import tempfile

            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.data.pyspacer.data import make_pyspacer_checkpoint

            weights = Path(tempfile.mkdtemp(prefix="extract_model_")) / "b0.pt"
            pick = np.random.default_rng(2).permutation(len(data[0]))[:64]
            make_pyspacer_checkpoint(weights, calibration=data[0][pick])
        extra["precision_costs"] = {
            name: precision_costs(name, data, args.precisions.split(","), weights) for name in names
        }
        print(json.dumps({"benchmark": "extract_model", **extra}, indent=2))
        return
    results = [run_one(name, DEFAULT_N.get(name, args.n), args) for name in names]
    if args.moorea:
        data = moorea_patches(args.moorea, args.points)
        extra["moorea_accuracy"] = [accuracy(name, data, args) for name in names]
    print(
        json.dumps(
            {
                "benchmark": "extract_model",
                "device": args.device,
                "dtype": "bf16-autocast" if args.bf16 else "fp32",
                "memory_format": "nchw" if args.nchw else "channels_last",
                "batch_size": args.batch_size,
                "torch_threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "torch": torch.__version__,
                "platform": platform.platform(),
                "results": results,
                **extra,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
