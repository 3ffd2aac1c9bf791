"""Peak memory of a large CoralNet annotation CSV: read in chunks or whole (issue 12 item 3).

Writes a CoralNet full-export CSV of ``--rows`` points (default 1,000,000: 200 points on
each of 5,000 images, with CoralNet's 17 metadata columns, annotator and date), then in a
fresh process each (so each peak RSS, VmHWM, is its own):

- ``read``: :func:`quadrat.io.coralnet.read_annotations_csv` alone;
- ``import``: ``Source.import_annotations`` into a new SQLite project (the images are hard
  links to one small JPEG, so only the CSV is large),

once with the default chunk size (:data:`quadrat.io.csv_chunks.CSV_CHUNK_BYTES`) and once with
``chunk_bytes=None`` (the whole text at once, as before chunking). Prints one JSON object:
rows, CSV MB, and per stage and mode the peak RSS MB, the RSS before the step (imports
loaded) and seconds.

    .venv/bin/python benchmarks/csv_memory.py                      # 1M rows, read + import
    .venv/bin/python benchmarks/csv_memory.py --rows 100000 --stages read
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

POINTS_PER_IMAGE = 200
LABELS = (("Acrop", "Acropora"), ("Porit", "Porites"), ("CCA", "CCA"), ("Sand", "Sand"))
HEADER = (
    "Name,Date,Aux1,Aux2,Aux3,Aux4,Aux5,Height (cm),Latitude,Longitude,Depth,Camera,"
    "Photographer,Water quality,Strobes,Framing gear used,White balance card,Comments,"
    "Row,Column,Label code,Annotator,Date annotated\n"
)


def vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def make_inputs(root: Path, rows: int) -> tuple[Path, Path, Path]:
    """(annotations CSV, image folder, labelset CSV) under ``root``."""
    from PIL import Image

    images = root / "images"
    images.mkdir()
    pool = root / "pool.jpg"
    Image.new("RGB", (400, 300), (40, 90, 120)).save(pool, quality=80)
    n_images = -(-rows // POINTS_PER_IMAGE)
    for i in range(n_images):
        os.link(pool, images / f"img_{i:06d}.jpg")
    labelset = root / "labelset.csv"
    labelset.write_text(
        "Label ID,Short Code,Name,Functional Group\n"
        + "".join(f"{i + 1},{code},{name},Other\n" for i, (code, name) in enumerate(LABELS))
    )
    csv_path = root / "annotations.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        for i in range(rows):
            image = i // POINTS_PER_IMAGE
            meta = (
                f"2024-03-{image % 28 + 1:02d},Site {image % 7},T{image % 3},,,,50,-17.48,"
                f"-149.82,10m,Nikon,A. Diver,Clear,,,,"
            )
            comment = '"Turbid, some surge"' if image % 10 == 0 else ""
            fh.write(
                f"img_{image:06d}.jpg,{meta}{comment},{(i * 7) % 300},{(i * 13) % 400},"
                f"{LABELS[i % len(LABELS)][0]},alice,2024-03-05 10:{i % 60:02d}:00+00:00\n"
            )
    return csv_path, images, labelset


def child(stage: str, mode: str, csv_path: str, images: str, labelset: str, out: Any) -> None:
    """One measured step in its own process."""
    import functools
    import warnings

    warnings.simplefilter("ignore")
    import quadrat
    from quadrat.io.coralnet import read_annotations_csv
    from quadrat.workflow import importing

    chunk: dict[str, Any] = {} if mode == "chunked" else {"chunk_bytes": None}
    importing.read_annotations_csv = functools.partial(read_annotations_csv, **chunk)  # type: ignore[assignment]
    before = vm_kb("VmRSS")
    start = time.perf_counter()
    if stage == "read":
        rows = len(read_annotations_csv(csv_path, **chunk))
    else:
        db = Path(csv_path).with_name(f"bench-{mode}.db")
        with quadrat.Project.create(db) as project:
            src = project.create_source("bench", labelset=labelset)
            rows = src.import_annotations(csv_path, images).points
    out.put(
        {
            "rows": rows,
            "seconds": round(time.perf_counter() - start, 1),
            "rss_before_mb": round(before / 1024, 1),
            "peak_rss_mb": round(vm_kb("VmHWM") / 1024, 1),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stages", default="read,import")
    parser.add_argument("--modes", default="chunked,whole")
    args = parser.parse_args()
    from quadrat.io.csv_chunks import CSV_CHUNK_BYTES

    result: dict[str, Any] = {"rows": args.rows, "chunk_bytes": CSV_CHUNK_BYTES}
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        csv_path, images, labelset = make_inputs(Path(tmp), args.rows)
        result["csv_mb"] = round(csv_path.stat().st_size / 2**20, 1)
        result["generate_seconds"] = round(time.perf_counter() - start, 1)
        for stage in args.stages.split(","):
            for mode in args.modes.split(","):
                queue = context.Queue()
                proc = context.Process(
                    target=child,
                    args=(stage, mode, str(csv_path), str(images), str(labelset), queue),
                )
                proc.start()
                result[f"{stage}_{mode}"] = queue.get()
                proc.join()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
