"""The image browser's pages on 10,000 images (300,000 points): each filter and sort.

Builds a synthetic SQLite project with plain SQL (fast; no pixels: the browser reads only
rows): 10,000 images with a Date and a site (Aux1), 30 points each; a third of the images
confirmed by a person, a third machine-labelled with top-5 scores, a sixth partly
confirmed, the rest unannotated. Then times ``quadrat.store.browse.image_page`` for each
filter and sort (median of 5, first page and a middle page), and prints JSON.

    .venv/bin/python benchmarks/ui_browse.py [--images 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ("Sand", "CCA", "Porit", "Turf", "Macro")


def build(path: Path, n_images: int, points_per_image: int = 30) -> None:
    import quadrat

    labelset = path.parent / "labelset.csv"
    labelset.write_text(
        "Label ID,Name,Short Code\n"
        + "".join(f"{i},{code},{code}\n" for i, code in enumerate(LABELS, 1))
    )
    with quadrat.Project.create(path) as project:
        project.create_source("reef", labelset=labelset, point_spec=f"m_{points_per_image}")
    rng = np.random.default_rng(0)
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=OFF")
    label_ids = [r[0] for r in db.execute("SELECT id FROM labels ORDER BY id")]
    db.execute(
        "INSERT INTO extractors (key, name, feature_dim, config) VALUES ('texture@v1', "
        "'texture', 10, '{}')"
    )
    db.execute(
        "INSERT INTO classifiers (id, source_id, extractor_key, kind, hyperparameters, metrics,"
        " n_images, n_train, n_val, accuracy, accepted, train_seconds, model, created_at)"
        " VALUES (1, 1, 'texture@v1', 'lr', '{}', '{}', 20, 1, 1, 0.8, 1, 1.0, x'00',"
        " '2026-01-01 00:00:00')"
    )
    images, points, annotations, scores = [], [], [], []
    point_id = 0
    for i in range(n_images):
        image_id = i + 1
        date = f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}"
        meta = json.dumps({"Date": date, "Aux1": f"site{i % 20}"})
        images.append(
            (
                image_id,
                1,
                f"img_{i:05d}.jpg",
                f"/x/{i}.jpg",
                f"{i:064x}",
                640,
                480,
                1,
                meta,
                "2026-01-01 00:00:00",
            )
        )
        kind = ("confirmed", "machine", "partial", "machine", "confirmed", "none")[i % 6]
        for n in range(points_per_image):
            point_id += 1
            points.append((point_id, image_id, n + 1, n * 10, n * 12, "m_30"))
            label = label_ids[int(rng.integers(len(label_ids)))]
            human = kind == "confirmed" or (kind == "partial" and n < 10)
            if kind == "none":
                continue
            if human:
                annotations.append((point_id, label, "CONFIRMED", "anna", None))
            else:
                annotations.append((point_id, label, "MACHINE", None, 1))
                top = float(rng.uniform(0.2, 1.0))
                for rank in range(5):
                    scores.append((point_id, 1, rank, label_ids[rank], top / (rank + 1)))
    db.executemany("INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?,?)", images)
    db.executemany(
        'INSERT INTO points (id, image_id, number, "row", "column", generated_by)'
        " VALUES (?,?,?,?,?,?)",
        points,
    )
    db.executemany(
        "INSERT INTO annotations (point_id, label_id, status, annotator, classifier_id)"
        " VALUES (?,?,?,?,?)",
        annotations,
    )
    db.executemany(
        "INSERT INTO scores (point_id, classifier_id, rank, label_id, score) VALUES (?,?,?,?,?)",
        scores,
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


CASES: dict[str, dict[str, Any]] = {
    "by name": {},
    "status machine": {"status": "machine"},
    "status todo": {"status": "todo"},
    "sort uncertainty": {"sort": "uncertainty"},
    "sort date": {"sort": "date"},
    "status todo + sort date": {"status": "todo", "sort": "date"},
    "label": {"label_id": "LABEL"},
    "date range": {"date_from": "2024-03-01", "date_to": "2024-05-31"},
    "site": {"site": "site3"},
    "confidence below 0.3": {"max_confidence": 0.3},
    "label + status machine": {"label_id": "LABEL", "status": "machine"},
    "site + sort uncertainty": {"site": "site3", "sort": "uncertainty"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, default=None, help="build (or reuse) it here")
    args = parser.parse_args()
    from quadrat.store import browse
    from quadrat.store.project import Store

    folder = args.keep or Path(tempfile.mkdtemp(prefix="quadrat-browse-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "browse.db"
    started = time.perf_counter()
    if not path.exists():
        build(path, args.images)
    build_s = time.perf_counter() - started
    store = Store.open(path)
    results: dict[str, Any] = {"images": args.images, "build_s": round(build_s, 1)}
    try:
        with store.session() as session:
            label_id = browse.labels(session, 1)[0].id
        for name, case in CASES.items():
            kwargs = {k: (label_id if v == "LABEL" else v) for k, v in case.items()}
            filters = {k: kwargs.pop(k) for k in list(kwargs) if k not in ("status", "sort")}
            if filters:
                if not hasattr(browse, "ImageFilter"):
                    results[name] = "not supported"
                    continue
                kwargs["where"] = browse.ImageFilter(**filters)
            timings = []
            total = 0
            try:
                for offset in (0, 0, 0, 0, 0, 2000):
                    with store.session() as session:
                        t0 = time.perf_counter()
                        total, _rows = browse.image_page(
                            session, 1, offset=offset, limit=100, **kwargs
                        )
                        timings.append(time.perf_counter() - t0)
            except (TypeError, ValueError):  # an older quadrat without this filter or sort
                results[name] = "not supported"
                continue
            results[name] = {
                "total": total,
                "median_s": round(statistics.median(timings[1:5]), 3),
                "offset_2000_s": round(timings[5], 3),
            }
    finally:
        store.close()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
