"""Hierarchical answers on real data: how much accuracy a parent buys, and what it costs in detail.

On the Moorea LTER 2008 photoquadrats (CC BY 4.0, MCR LTER, Beijbom et al. 2012; the
800x800 copy whose points no longer line up is left out), repeatedly: hold out some
images, train quadrat's classifier on the rest exactly as ``quadrat train`` does
(``train_classifier``: 7/8 train, 1/8 validation by image, calibrated scores; texture
features), score every held-out point, and answer it with
:func:`quadrat.labels.answers.answer` under the label tree (default: the labelset's
functional groups, label -> group; ``catami``: :data:`MOOREA_CATAMI`, a reviewed CATAMI
mapping, up to six levels; or a CATAMI mapping CSV or BIIGLE label tree JSON of your own)
for a sweep of thresholds, from the full score vector and from the top 5 (what ``quadrat
classify`` stores and the service returns).

Per threshold it prints, over every held-out point:

- ``answered``: share with an answer (level not ``none``);
- ``accuracy_answered``: share of answered points whose true label is at or below the
  answered node (a group is right when the true label is in it);
- ``correct``: share of all points answered correctly (unanswered ones count as not);
- ``leaf``: share answered at the label level (the specificity of a flat classifier);
- ``mean_depth``: mean depth of the answer below an implicit "anything" (label 2,
  group 1, none 0 in the groups tree; in the CATAMI tree Biota is 1 and a coral label 6);
- ``flat``: the flat alternative, the top label when its score reaches the threshold and
  no answer otherwise (its ``answered`` = its ``leaf``).

    .venv/bin/python benchmarks/hierarchical_answers.py --splits 10 --test-images 8
    .venv/bin/python benchmarks/hierarchical_answers.py --hierarchy groups catami mapping.csv
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
#: A CATAMI mapping of Moorea's labels, reviewed by hand for this benchmark (CAAB codes of
#: the shipped CATAMI v1.4): growth forms as Moorea's genera mostly grow there; 'Off' (off
#: the quadrat) has no CATAMI node, so it is listed with none (a root of its own).
MOOREA_CATAMI = {
    "Porit": "11290906",  # Stony corals > Massive
    "Monti": "11290908",  # Stony corals > Encrusting
    "Pocill": "11290912",  # Stony corals > Branching
    "Acrop": "11290912",  # Stony corals > Branching
    "Fung": "11298000",  # Stony corals > Solitary > Mushroom (Fungiidae)
    "CCA": "80300929",  # Macroalgae > Encrusting > Red
    "Turf": "80300930",  # Macroalgae > Filamentous / filiform
    "Macro": "80300000",  # Macroalgae
    "Sand": "82001013",  # Physical > Substrate > Unconsolidated (soft) > Sand / mud (<2mm)
    "Off": "",
}


def labelset(data: Path) -> pd.DataFrame:
    """Moorea's labelset (CoralNet's labelset CSV: Name, Short_Code, Functional_Group)."""
    from quadrat.io.coralnet import read_labelset_csv

    return read_labelset_csv(data / "labelset.csv")


def held_out_scores(
    points: pd.DataFrame, X: np.ndarray, test: set[str], kind: str, seed: int
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Scores of the held-out points, the classifier's classes, their true labels."""
    from quadrat.classifiers.training import train_classifier

    held = points["image"].isin(test).to_numpy()
    result = train_classifier(
        X[~held],
        points["label"].to_numpy()[~held],
        groups=points["image"].to_numpy()[~held],
        kind=kind,  # type: ignore[arg-type]
        random_state=seed,
    )
    proba = np.asarray(result.estimator.predict_proba(X[held]), dtype=np.float64)
    classes = [str(c) for c in result.classes]
    return proba, classes, points["label"].to_numpy()[held].astype(str)


def top5(proba: np.ndarray) -> np.ndarray:
    """The scores with all but each point's 5 best set to 0 (as stored and served)."""
    if proba.shape[1] <= 5:
        return proba
    keep = np.argsort(-proba, axis=1, kind="stable")[:, :5]
    out = np.zeros_like(proba)
    np.put_along_axis(out, keep, np.take_along_axis(proba, keep, axis=1), axis=1)
    return out


def sweep(
    proba: np.ndarray, classes: list[str], truth: np.ndarray, tree: Any, thresholds: list[float]
) -> list[dict[str, Any]]:
    """Per threshold: answers' accuracy and specificity, full and top-5, and the flat rule."""
    from quadrat.labels.answers import LABEL_LEVEL, answer
    from quadrat.labels.hierarchy import ancestor_matrix

    R = ancestor_matrix(tree.parents)
    true_nodes = np.array([tree.node_of(t) for t in truth], dtype=np.int64)
    top = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    top_score = proba.max(axis=1)
    rows = []
    for threshold in thresholds:
        entry: dict[str, Any] = {"threshold": threshold}
        for name, scores in (("full", proba), ("top5", top5(proba))):
            found = answer(scores, classes, tree, threshold)
            answered = found.node >= 0
            correct = np.zeros(len(truth), dtype=bool)
            correct[answered] = R[found.node[answered], true_nodes[answered]]
            entry[name] = {
                "answered": round(float(answered.mean()), 4),
                "accuracy_answered": round(float(correct[answered].mean()), 4)
                if answered.any()
                else None,
                "correct": round(float(correct.mean()), 4),
                "leaf": round(float((found.level == LABEL_LEVEL).mean()), 4),
                "mean_depth": round(float(np.where(answered, found.depth + 1, 0).mean()), 3),
                "levels": found.level_counts(),
            }
        sure = top_score >= threshold - 1e-9
        entry["flat"] = {
            "answered": round(float(sure.mean()), 4),
            "accuracy_answered": round(float((top[sure] == truth[sure]).mean()), 4)
            if sure.any()
            else None,
            "correct": round(float(((top == truth) & sure).mean()), 4),
        }
        rows.append(entry)
    return rows


def pooled(runs: list[list[dict[str, Any]]], weights: list[int]) -> list[dict[str, Any]]:
    """Point-weighted means of the per-split figures (levels summed)."""
    out = []
    total = float(sum(weights))
    for i, first in enumerate(runs[0]):
        entry: dict[str, Any] = {"threshold": first["threshold"]}
        for name in ("full", "top5", "flat"):
            merged: dict[str, Any] = {}
            for key in first[name]:
                parts = [(run[i][name], w) for run, w in zip(runs, weights, strict=True)]
                if key == "levels":
                    levels: dict[str, int] = {}
                    for part, _w in parts:
                        for level, n in part["levels"].items():
                            levels[level] = levels.get(level, 0) + n
                    merged[key] = levels
                elif key == "accuracy_answered":  # correct / answered, both point-weighted
                    num = sum(p["correct"] * w for p, w in parts)
                    den = sum(p["answered"] * w for p, w in parts)
                    merged[key] = round(num / den, 4) if den else None
                else:
                    merged[key] = round(sum(p[key] * w for p, w in parts) / total, 4)
            entry[name] = merged
        out.append(entry)
    return out


def tree_for(name: str, labels: pd.DataFrame) -> Any:
    """``groups``, ``catami`` (:data:`MOOREA_CATAMI`) or a tree file."""
    from quadrat.labels.answers import load_label_tree, tree_from_catami
    from quadrat.labels.catami_io import default_catami

    if name == "catami":
        mapped = {k: v for k, v in MOOREA_CATAMI.items() if v}
        outside = [k for k, v in MOOREA_CATAMI.items() if not v]
        return tree_from_catami(
            labels, mapped, default_catami(), "Moorea's CATAMI mapping", outside=outside
        )
    return load_label_tree(None if name == "groups" else Path(name), labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/moorea-lter-2008")
    parser.add_argument("--splits", type=int, default=10, help="random held-out sets")
    parser.add_argument("--test-images", type=int, default=8, help="held-out images per split")
    parser.add_argument("--kind", choices=("lr", "mlp"), default="lr")
    parser.add_argument(
        "--hierarchy",
        nargs="+",
        default=["groups", "catami"],
        help="trees: groups, catami (Moorea's reviewed mapping), a mapping CSV, a BIIGLE JSON",
    )
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=list(THRESHOLDS), help="to sweep"
    )
    args = parser.parse_args()
    if not (args.data / "annotations.csv").is_file():
        print(json.dumps({"skipped": f"no Moorea data at {args.data} (pass --data)"}))
        return
    from cover_accuracy import features

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    points, X = features(args.data)
    extract_s = time.perf_counter() - start
    trees = {name: tree_for(name, labelset(args.data)) for name in args.hierarchy}
    images = sorted(points["image"].unique())
    rng = np.random.default_rng(0)
    runs: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in trees}
    weights, accuracy = [], []
    for split in range(args.splits):
        test = set(rng.choice(images, size=args.test_images, replace=False).tolist())
        proba, classes, truth = held_out_scores(points, X, test, args.kind, seed=split)
        for name, tree in trees.items():
            runs[name].append(sweep(proba, classes, truth, tree, args.thresholds))
        weights.append(len(truth))
        accuracy.append(float(np.mean(np.asarray(classes)[proba.argmax(axis=1)] == truth)))
        print(f"split {split + 1}/{args.splits} done", file=sys.stderr, flush=True)
    print(
        json.dumps(
            {
                "data": "Moorea LTER 2008, 20 images x 200 points (the resized one left out)",
                "trees": {name: tree.source for name, tree in trees.items()},
                "extractor": "texture",
                "classifier": args.kind,
                "splits": args.splits,
                "held_out_images_per_split": args.test_images,
                "held_out_points": int(sum(weights)),
                "top1_accuracy_mean": round(float(np.mean(accuracy)), 4),
                "results": {name: pooled(run, weights) for name, run in runs.items()},
                "extract_seconds": round(extract_s, 1),
                "seconds": round(time.perf_counter() - start, 1),
                "loadavg_start": round(load_before, 2),
                "loadavg_end": round(os.getloadavg()[0], 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
