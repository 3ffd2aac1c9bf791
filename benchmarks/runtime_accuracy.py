"""What the faster extraction modes change: features and accuracy, on real Moorea points.

Extracts EfficientNet-B0 features for the same Moorea LTER 2008 points (CC BY 4.0, MCR
LTER) under each mode (RUNTIME[+bf16]), compares each mode's features with eager fp32
(max abs difference, min cosine), and trains the same logistic regression on each with
the same image-grouped 4-fold split (never points of one image on both sides), reporting
accuracy and macro F1 per mode and the difference from eager. Random weights by default
(BatchNorm re-estimated): absolute accuracies are a floor, the *differences* between modes
are the point; pass --weights for a real checkpoint. Prints one JSON object.

    .venv/bin/python benchmarks/runtime_accuracy.py --points 30
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESIZED = "mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/moorea-lter-2008")
    parser.add_argument("--points", type=int, default=30, help="points per image (first N)")
    parser.add_argument("--modes", default="eager,openvino,eager+bf16,openvino+bf16")
    parser.add_argument("--extractor", default="efficientnet_b0")
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from quadrat.extractors import create_extractor
    from quadrat.io.coralnet import read_annotations_csv
    from quadrat.io.images import load_rgb
    from quadrat.patches import crop_patches

    table = read_annotations_csv(args.data / "annotations.csv")
    table = table[table["image"] != RESIZED]
    table = table.groupby("image", sort=True).head(args.points)
    patches, labels, groups = [], [], []
    for name, rows in table.groupby("image", sort=True):
        image = load_rgb(args.data / "images" / str(name))
        patches.append(crop_patches(image, rows["row"].to_numpy(), rows["column"].to_numpy()))
        labels.extend(rows["label"].astype(str))
        groups.extend([name] * len(rows))
    X_patches = np.concatenate(patches)
    y, g = np.asarray(labels), np.asarray(groups)

    def evaluate(features: np.ndarray) -> dict[str, float]:
        predicted = np.empty(len(y), dtype=object)
        for train, test in GroupKFold(n_splits=4).split(features, y, g):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            predicted[test] = model.fit(features[train], y[train]).predict(features[test])
        return {
            "accuracy": round(float(accuracy_score(y, predicted)), 4),
            "macro_f1": round(float(f1_score(y, predicted, average="macro")), 4),
        }

    results: dict[str, Any] = {}
    reference: np.ndarray | None = None
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        runtime, _, precision = mode.partition("+")
        extractor = create_extractor(
            args.extractor,
            args.weights,
            random_weights=args.weights is None,
            runtime=runtime,
            autocast_bf16=precision == "bf16",
        )
        extractor.extract(X_patches[:2])  # build/compile outside the timing
        start = time.perf_counter()
        features = extractor.extract(X_patches)
        seconds = time.perf_counter() - start
        entry: dict[str, Any] = {
            "key": extractor.key,
            "patches_per_s": round(len(features) / seconds, 1),
            **evaluate(features),
        }
        if reference is None:
            reference = features
        else:
            cos = np.sum(reference * features, 1) / (
                np.linalg.norm(reference, axis=1) * np.linalg.norm(features, axis=1)
            )
            entry["max_abs_diff_vs_first"] = float(np.abs(reference - features).max())
            entry["min_cosine_vs_first"] = float(cos.min())
            first = next(iter(results.values()))
            entry["accuracy_change_vs_first"] = round(entry["accuracy"] - first["accuracy"], 4)
        results[mode] = entry
    majority = float(np.unique(y, return_counts=True)[1].max() / len(y))
    print(
        json.dumps(
            {
                "data": "Moorea LTER 2008, 20 images (the resized one left out)",
                "points": len(y),
                "majority_accuracy": round(majority, 4),
                "extractor": args.extractor,
                "weights": str(args.weights) if args.weights else "random (BatchNorm re-estimated)",
                "split": "image-grouped 4-fold, StandardScaler + LogisticRegression",
                "modes": results,
                "loadavg": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
