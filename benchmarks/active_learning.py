"""Which points to label next, simulated on real data: random vs margin vs entropy.

On the Moorea LTER 2008 photoquadrats (CC BY 4.0, MCR LTER, Beijbom et al. 2012; the
800x800 copy whose points no longer line up is left out): texture features of every
annotated point (no torch, no weights). Per seed, a quarter of the images is held out
as the test set; the rest is the pool, whose known labels play the person. Starting
from ``--start`` random pool points, each round trains a logistic regression on the
labelled points (standardised features), asks the strategy for the next ``--batch``
points (:func:`quadrat.classifiers.acquisition.select_batch`, what ``quadrat suggest``
runs, with diversity for margin and entropy) and "labels" them. Reports test accuracy
against the number of labelled points, per strategy (mean over seeds), as JSON, and plots
it to ``--plot`` (docs/img/active_learning.png). Skips with a message when the data
folder is absent.

    .venv/bin/python benchmarks/active_learning.py --seeds 3 --rounds 8 --batch 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = (
    ("random", False),
    ("margin", True),
    ("entropy", True),
    ("margin", False),
)


def fit_predict(X: np.ndarray, y: np.ndarray, *others: np.ndarray) -> list[Any]:
    """A logistic regression on (X, y); its probabilities on each of ``others``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return [model, *[model.predict_proba(o) for o in others]]


def simulate(
    X: np.ndarray, y: np.ndarray, images: np.ndarray, args: Any, seed: int
) -> dict[str, list[float]]:
    from quadrat.classifiers.acquisition import acquisition_scores, select_batch

    rng = np.random.default_rng(seed)
    names = np.unique(images)
    test_images = rng.choice(names, size=max(1, len(names) // 4), replace=False)
    test = np.isin(images, test_images)
    pool = np.flatnonzero(~test)
    start = rng.choice(pool, size=args.start, replace=False)
    curves: dict[str, list[float]] = {}
    for strategy, diverse in STRATEGIES:
        name = strategy + (" + diversity" if diverse else "")
        labelled = set(start.tolist())
        accuracies = []
        for round_ in range(args.rounds + 1):
            chosen = np.fromiter(sorted(labelled), dtype=np.int64)
            unlabelled = np.setdiff1d(pool, chosen)
            model, test_proba, pool_proba = fit_predict(
                X[chosen], y[chosen], X[test], X[unlabelled]
            )
            accuracies.append(float((model.classes_[test_proba.argmax(1)] == y[test]).mean()))
            if round_ == args.rounds:
                break
            scores = acquisition_scores(
                pool_proba, strategy, n=len(unlabelled), seed=seed * 1000 + round_
            )
            picked = select_batch(
                scores, args.batch, features=X[unlabelled] if diverse else None, diversity=diverse
            )
            labelled.update(unlabelled[picked].tolist())
        curves[name] = accuracies
    return curves


def plot(
    labelled: list[int], mean: dict[str, list[float]], sd: dict[str, list[float]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in mean.items():
        m, s = np.asarray(values), np.asarray(sd[name])
        ax.plot(labelled, m, marker="o", ms=3, label=name)
        ax.fill_between(labelled, m - s, m + s, alpha=0.15)
    ax.set_xlabel("labelled points")
    ax.set_ylabel("test accuracy (held-out images)")
    ax.set_title("Moorea LTER 2008, texture features, logistic regression")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/moorea-lter-2008")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--plot", type=Path, default=REPO / "docs/img/active_learning.png")
    args = parser.parse_args()
    if not (args.data / "annotations.csv").is_file():
        print(json.dumps({"skipped": f"no Moorea data at {args.data} (pass --data)"}))
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    from cover_accuracy import features

    from quadrat._util import limit_threads

    begin = time.perf_counter()
    points, X = features(args.data)
    y = points["label"].to_numpy()
    images = points["image"].to_numpy()
    with limit_threads(1):
        runs = [simulate(X, y, images, args, seed) for seed in range(args.seeds)]
    labelled = [args.start + r * args.batch for r in range(args.rounds + 1)]
    mean = {k: [round(float(v), 4) for v in np.mean([r[k] for r in runs], axis=0)] for k in runs[0]}
    sd = {k: [round(float(v), 4) for v in np.std([r[k] for r in runs], axis=0)] for k in runs[0]}
    plot(labelled, mean, sd, args.plot)
    print(
        json.dumps(
            {
                "data": "moorea-lter-2008 (texture features), 1/4 of images held out per seed",
                "points": len(y),
                "seeds": args.seeds,
                "labelled": labelled,
                "accuracy_mean": mean,
                "accuracy_sd": sd,
                "plot": str(
                    args.plot.relative_to(REPO) if args.plot.is_relative_to(REPO) else args.plot
                ),
                "seconds": round(time.perf_counter() - begin, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
