"""Finding wrong labels on real data: flip 5 % of Moorea's labels, see what audit flags.

On the Moorea LTER 2008 photoquadrats (CC BY 4.0, MCR LTER, Beijbom et al. 2012; the
800x800 copy whose points no longer line up is left out): texture features of every
annotated point (no torch, no weights), then, per seed, ``--noise`` of the labels replaced
by another label drawn from the label frequencies (seeded), and
:func:`quadrat.classifiers.label_issues.label_issues` (what ``quadrat audit`` runs:
confident learning on 5-fold out-of-fold probabilities, plus 10-neighbour agreement).
Reports precision and recall of the flagged set (confident learning and fewer than half
the neighbours agreeing, the default; and confident learning alone) against the flipped
points, and the precision of the top-``flipped`` points by score (the real set has label
noise of its own, so every precision here is a lower bound). Prints JSON; skips with a
message when the data folder is absent.

    .venv/bin/python benchmarks/audit_noise.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def flip(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` with ``fraction`` of them replaced by a different label; the mask."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    n_flip = round(fraction * len(labels))
    where = rng.choice(len(labels), size=n_flip, replace=False)
    noisy = labels.copy()
    for i in where:
        others = classes != labels[i]
        noisy[i] = rng.choice(classes[others], p=counts[others] / counts[others].sum())
    mask = np.zeros(len(labels), dtype=bool)
    mask[where] = True
    return noisy, mask


def one_seed(X: np.ndarray, y: np.ndarray, args: Any, seed: int) -> dict[str, Any]:
    from quadrat.classifiers.label_issues import label_issues

    noisy, flipped = flip(y, args.noise, seed)
    start = time.perf_counter()
    issues = label_issues(X, noisy, folds=args.folds, k=args.neighbours, seed=seed)
    seconds = time.perf_counter() - start
    flagged = issues.flagged
    hits = int((flagged & flipped).sum())
    alone = issues.confident_learning
    alone_hits = int((alone & flipped).sum())
    top = np.argsort(-issues.score, kind="stable")[: int(flipped.sum())]
    top_hits = int(flipped[top].sum())
    return {
        "seed": seed,
        "flipped": int(flipped.sum()),
        "flagged": int(flagged.sum()),
        "precision": hits / max(1, int(flagged.sum())),
        "recall": hits / max(1, int(flipped.sum())),
        "cl_alone_flagged": int(alone.sum()),
        "cl_alone_precision": alone_hits / max(1, int(alone.sum())),
        "cl_alone_recall": alone_hits / max(1, int(flipped.sum())),
        "top_score_precision": top_hits / max(1, len(top)),
        "suggested_correct": float(
            (issues.suggested[flagged & flipped] == y[flagged & flipped]).mean()
        )
        if hits
        else None,
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/moorea-lter-2008")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--neighbours", type=int, default=10)
    args = parser.parse_args()
    if not (args.data / "annotations.csv").is_file():
        print(json.dumps({"skipped": f"no Moorea data at {args.data} (pass --data)"}))
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    from cover_accuracy import features

    start = time.perf_counter()
    points, X = features(args.data)
    y = points["label"].to_numpy()
    extract_seconds = time.perf_counter() - start
    runs = [one_seed(X, y, args, seed) for seed in range(args.seeds)]
    keys = (
        "flagged",
        "precision",
        "recall",
        "cl_alone_flagged",
        "cl_alone_precision",
        "cl_alone_recall",
        "top_score_precision",
    )
    print(
        json.dumps(
            {
                "data": "moorea-lter-2008 (texture features)",
                "points": len(y),
                "noise": args.noise,
                "folds": args.folds,
                "neighbours": args.neighbours,
                "mean": {k: round(float(np.mean([r[k] for r in runs])), 3) for k in keys},
                "runs": runs,
                "extract_seconds": round(extract_seconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
