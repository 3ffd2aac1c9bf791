"""Cover from machine labels on real data: naive vs corrected, and whether the intervals hold.

On the Moorea LTER 2008 photoquadrats (CC BY 4.0, MCR LTER, Beijbom et al. 2012; the
800x800 copy whose points no longer line up is left out), repeatedly: hold out some
images, train quadrat's classifier on the rest exactly as ``quadrat train`` does
(``train_classifier``: 7/8 train, 1/8 validation by image, calibrated scores), predict
every held-out point, and estimate the held-out images' cover from those machine labels
alone: naive (classify and count), ACC and PACC (corrected with the validation
confusions the classifier record stores), each with its 95 % two-stage bootstrap
interval; and, as a yardstick, ACC and PACC with the held-out points' own confusions
(``*_oracle``: what the correction gives when its error rates are the right ones). The
truth is each held-out image's cover from its known labels, per image, per site (the reef
pole, from the file name) and for the held-out set.

Prints JSON: per level and method, the mean absolute cover error (percentage points), the
coverage of the intervals (share of (group, label) intervals that contain the true
cover) and their mean width, over every label, over the labels present (in the truth or
the estimate), and over the common ones (true cover at least 1 %). Texture features (no torch, no
weights). Skips with a message when the data folder is absent.

    .venv/bin/python benchmarks/cover_accuracy.py --splits 10 --test-images 8
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESIZED = "mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"
METHODS = ("naive", "acc", "pacc")
ORACLES = ("acc_oracle", "pacc_oracle")


def features(data: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The annotated points (image, site, label) and their texture features."""
    from quadrat.extractors import create_extractor
    from quadrat.io.coralnet import read_annotations_csv
    from quadrat.io.images import load_rgb
    from quadrat.patches import crop_patches

    table = read_annotations_csv(data / "annotations.csv")
    table = table[table["image"] != RESIZED].sort_values(["image"], kind="stable")
    extractor = create_extractor("texture")
    blocks, rows = [], []
    for name, points in table.groupby("image", sort=True):
        image = load_rgb(data / "images" / str(name))
        patches = crop_patches(image, points["row"].to_numpy(), points["column"].to_numpy())
        blocks.append(np.asarray(extractor.extract(patches), dtype=np.float32))
        rows.append(points[["image", "label"]])
    frame = pd.concat(rows, ignore_index=True)
    frame["image"] = frame["image"].astype(str)
    frame["label"] = frame["label"].astype(str)
    frame["site"] = frame["image"].map(lambda n: re.search(r"pole\d+-\d+", n).group(0))  # type: ignore[union-attr]
    return frame, np.concatenate(blocks)


def one_split(
    points: pd.DataFrame, X: np.ndarray, labels: list[str], test: set[str], args: Any, seed: int
) -> dict[str, Any]:
    """Train on the other images, predict ``test``, score every level and method."""
    from quadrat.classifiers.metrics import evaluate, mean_scores
    from quadrat.classifiers.training import train_classifier
    from quadrat.reports.cover_uncertainty import cover_intervals
    from quadrat.reports.quantify import Validation

    held = points["image"].isin(test).to_numpy()
    train = ~held
    result = train_classifier(
        X[train],
        points["label"].to_numpy()[train],
        groups=points["image"].to_numpy()[train],
        kind=args.kind,
        random_state=seed,
    )
    classes = [str(c) for c in result.classes]
    stored = mean_scores(result.val_proba, result.val_true, result.classes)
    validation = Validation(
        tuple(classes),
        np.asarray(result.metrics.confusion, dtype=np.float64),
        np.asarray(stored["mean_scores"], dtype=np.float64),
        min_support=args.min_support,
    )
    proba = np.asarray(result.estimator.predict_proba(X[held]))
    # The oracle: the held-out points' own confusions (what the correction would use if
    # the validation points behaved exactly like the images being corrected).
    y_held = points["label"].to_numpy()[held]
    known = np.isin(y_held, classes)
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    oracle = Validation(
        tuple(classes),
        evaluate(y_held[known], predicted[known], labels=classes).confusion.astype(np.float64),
        np.asarray(mean_scores(proba[known], y_held[known], classes)["mean_scores"]),
        min_support=args.min_support,
    )
    machine = points[held].assign(
        label=np.asarray(classes, dtype=object)[proba.argmax(axis=1)], known=False
    )
    machine["source"] = "held-out"
    truth_points = points[held].assign(known=True)
    truth_points["source"] = "held-out"
    out: dict[str, Any] = {
        "accuracy": float(np.mean(machine["label"].to_numpy() == points["label"][held])),
        "validation_points": int(validation.support.sum()),
        "levels": {},
    }
    for level in ("image", "site", "source"):
        truth = cover_intervals(truth_points, labels, group=level, intervals=False)
        true = truth["estimate"].to_numpy()
        entry = {}
        for name in METHODS + ORACLES:
            method = name.removesuffix("_oracle")
            frame = cover_intervals(
                machine,
                labels,
                group=level,
                method=method,
                validation=oracle if name.endswith("_oracle") else validation,
                scores=proba,
                replicates=args.replicates,
                seed=seed,
            )
            assert (frame["group"].to_numpy() == truth["group"].to_numpy()).all()
            entry[name] = {
                "abs_error": np.abs(frame["estimate"].to_numpy() - true),
                "covered": (frame["lower"].to_numpy() <= true + 1e-9)
                & (true <= frame["upper"].to_numpy() + 1e-9),
                "width": (frame["upper"] - frame["lower"]).to_numpy(),
                # Labels present in the truth or the estimate: where cover is not a trivial 0.
                "present": (true > 0) | (frame["estimate"].to_numpy() > 0),
                # Labels with at least 1 % true cover (not the 1-point rarities).
                "common": true >= 1.0,
            }
        out["levels"][level] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/moorea-lter-2008")
    parser.add_argument("--splits", type=int, default=10, help="random held-out sets")
    parser.add_argument("--test-images", type=int, default=8, help="held-out images per split")
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--kind", choices=("lr", "mlp"), default="lr")
    parser.add_argument(
        "--min-support",
        type=int,
        default=None,
        help="validation points a label needs to be corrected (default: quadrat's)",
    )
    args = parser.parse_args()
    if args.min_support is None:
        from quadrat.reports.quantify import MIN_SUPPORT

        args.min_support = MIN_SUPPORT
    if not (args.data / "annotations.csv").is_file():
        print(json.dumps({"skipped": f"no Moorea data at {args.data} (pass --data)"}))
        return
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    points, X = features(args.data)
    extract_s = time.perf_counter() - start
    labels = sorted(points["label"].unique())
    images = sorted(points["image"].unique())
    rng = np.random.default_rng(0)
    runs = []
    for split in range(args.splits):
        test = set(rng.choice(images, size=args.test_images, replace=False).tolist())
        runs.append(one_split(points, X, labels, test, args, seed=split))
        print(f"split {split + 1}/{args.splits} done", file=sys.stderr, flush=True)
    results: dict[str, Any] = {}
    for level in ("image", "site", "source"):
        results[level] = {}
        for method in METHODS + ORACLES:
            parts = [run["levels"][level][method] for run in runs]
            cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            present, common = cat["present"], cat["common"]
            results[level][method] = {
                "mean_abs_error_pp": round(float(cat["abs_error"].mean()), 3),
                "mean_abs_error_pp_present": round(float(cat["abs_error"][present].mean()), 3),
                "coverage_95": round(float(cat["covered"].mean()), 3),
                "coverage_95_present": round(float(cat["covered"][present].mean()), 3),
                "mean_width_pp_present": round(float(cat["width"][present].mean()), 3),
                "mean_abs_error_pp_common": round(float(cat["abs_error"][common].mean()), 3),
                "coverage_95_common": round(float(cat["covered"][common].mean()), 3),
                "intervals_common": int(common.sum()),
                "intervals": int(cat["covered"].size),
                "intervals_present": int(present.sum()),
            }
    print(
        json.dumps(
            {
                "data": "Moorea LTER 2008, 20 images x 200 points (the resized one left out)",
                "labels": labels,
                "extractor": "texture",
                "classifier": args.kind,
                "splits": args.splits,
                "held_out_images_per_split": args.test_images,
                "replicates": args.replicates,
                "min_support": args.min_support,
                "machine_accuracy_mean": round(float(np.mean([r["accuracy"] for r in runs])), 4),
                "validation_points_mean": round(
                    float(np.mean([r["validation_points"] for r in runs])), 1
                ),
                "results": results,
                "extract_seconds": round(extract_s, 1),
                "seconds": round(time.perf_counter() - start, 1),
                "loadavg": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
