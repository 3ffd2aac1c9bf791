"""Benchmark: hostile and unlucky inputs through the CLI; counts clean errors and tracebacks.

Issue 12 asks for "zero tracebacks and zero rows lost". Each case runs one ``quadrat``
command in a fresh process against a small project built from the synthetic demo survey
(20 annotated images), then checks three things:

- the exit status is the documented one for the case's error family (docs/cli.md);
- stderr holds no Python traceback and its last line says ``error:`` (or a warning);
- the project still holds what it held before (images, points, annotations): nothing lost
  or half-written.

Prints one JSON object: cases, clean errors, tracebacks, wrong statuses, rows lost, and a
row per case. A behaviour suite with the same spirit lives in ``tests/reliability/``; this
script is the catalogue's census, run by hand:

    python benchmarks/reliability.py                # every case
    python benchmarks/reliability.py --only points  # cases whose name contains "points"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

QUADRAT = [sys.executable, "-m", "quadrat"]


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: set[int]  # acceptable exit statuses
    setup: Callable[[Path], None] | None = None
    result: dict[str, object] = field(default_factory=dict)


def _csv(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _catalogue(work: Path) -> list[Case]:
    db = str(work / "survey.db")
    images = str(work / "survey" / "images")
    bad = work / "bad"
    header = "Name,Date,Row,Column,Label,Annotator\n"
    good_row = "demo_quadrat_001.jpg,2024-03-01,10,10,Sand,x\n"

    def csv_case(name: str, body: str, expect: set[int], *extra: str) -> Case:
        path = bad / f"{name}.csv"
        return Case(
            name,
            ["import", str(path), "-i", images, "-p", db, *extra],
            expect,
            setup=lambda _w, p=path, b=body: _csv(p, b),
        )

    def write_bytes(path: Path, data: bytes) -> Callable[[Path], None]:
        return lambda _w: path.write_bytes(data)

    foreign = work / "foreign.db"

    def make_foreign(_w: Path) -> None:
        with sqlite3.connect(foreign) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")

    cases = [
        csv_case("path-escape", header + "../../etc/passwd,2024-03-01,1,1,Sand,x\n", {1}),
        csv_case("absolute-path", header + "/etc/passwd,2024-03-01,1,1,Sand,x\n", {1}),
        csv_case("unknown-label", header + good_row.replace("Sand", "Nope"), {1}),
        # Rows naming an already imported image are refused as a duplicate first (5).
        csv_case("point-outside", header + good_row.replace(",10,10,", ",99999,10,"), {1, 5}),
        csv_case("negative-row", header + good_row.replace(",10,10,", ",-5,10,"), {1}),
        csv_case("float-row", header + good_row.replace(",10,10,", ",1.5,10,"), {1}),
        csv_case("huge-row", header + good_row.replace(",10,10,", ",1e300,10,"), {1}),
        csv_case("missing-column", "Name,Row,Column\ndemo_quadrat_001.jpg,1,1\n", {1, 5}),
        csv_case("empty-file", "", {1}),
        csv_case("header-only", header, {0, 1, 3}),
        csv_case("missing-image", header + good_row.replace("001", "999"), {1, 4}),
        csv_case("duplicate-import", header + good_row, {5}),
        csv_case("formula-name", header + "=HYPERLINK(1),2024-03-01,1,1,Sand,x\n", {1, 4}),
        Case(
            "binary-csv",
            ["import", str(bad / "binary.csv"), "-i", images, "-p", db],
            {1},
            setup=write_bytes(bad / "binary.csv", b"\x00\x01\x02PK\x03\x04" * 100),
        ),
        Case("csv-missing", ["import", str(bad / "nope.csv"), "-i", images, "-p", db], {1, 4}),
        Case("csv-is-a-folder", ["import", str(bad), "-i", images, "-p", db], {1, 4}),
        Case("points-1e9", ["points", "m_1000000000", "-s", "reef", "-p", db], {6}),
        Case("points-garbage", ["points", "banana", "-p", db], {1}),
        Case("points-zero", ["points", "m_0", "-p", db], {1, 3}),
        Case("extract-float64", ["extract", "--dtype", "float64", "-p", db], {1, 2}),
        Case("extract-cnn-no-weights", ["extract", "-e", "efficientnet_b0", "-p", db], {1, 7}),
        Case("extract-unknown", ["extract", "-e", "no_such_net", "-p", db], {1}),
        Case("extract-bad-device", ["extract", "--device", "gpu9", "-p", db], {1}),
        Case("train-bad-kind", ["train", "--kind", "svm", "-p", db], {1, 2}),
        Case("classify-threshold-2", ["classify", "--threshold", "2", "-p", db], {1}),
        Case("classify-untrained", ["classify", "-p", db], {1, 3, 4}),
        Case(
            "project-missing",
            ["export", "cover", "-o", str(work / "c.csv"), "-p", str(work / "missing.db")],
            {4},
        ),
        Case(
            "project-is-text",
            ["export", "cover", "-o", str(work / "c.csv"), "-p", str(bad / "text.db")],
            {1},
            setup=write_bytes(bad / "text.db", b"not a database\n" * 10),
        ),
        Case(
            "project-foreign-sqlite",
            ["export", "cover", "-o", str(work / "c.csv"), "-p", str(foreign)],
            {1},
            setup=make_foreign,
        ),
        Case("init-existing-source", ["init", "-p", db, "-s", "reef"], {5}),
        Case("export-to-folder", ["export", "annotations", "-o", str(bad), "-p", db], {1}),
        Case(
            "export-no-such-folder",
            ["export", "annotations", "-o", str(work / "no" / "such" / "x.csv"), "-p", db],
            {0, 1, 4},
        ),
        Case("source-unknown", ["points", "-s", "lagoon", "-p", db], {4}),
        Case("unknown-option", ["points", "--frobnicate", "-p", db], {2}),
        Case(
            "labelset-binary",
            ["import", "--labelset", str(bad / "labels.csv"), "-p", db],
            {1},
            setup=write_bytes(bad / "labels.csv", bytes(range(256)) * 10),
        ),
        Case(
            "dataset-validate-binary",
            ["dataset", "validate", str(bad / "meta.csv"), "-o", str(work / "m.parquet")],
            {1},
            setup=write_bytes(bad / "meta.csv", b"\xff\xfe\x00\x00" * 50),
        ),
        Case(
            "dataset-subsample-missing",
            ["dataset", "subsample", str(bad / "none.parquet"), "-o", str(work / "k.parquet")],
            {4},
        ),
        Case(
            "dataset-translate-empty",
            ["dataset", "translate", str(bad / "empty.csv"), "-o", str(work / "map.csv")],
            {1, 2},
            setup=write_bytes(bad / "empty.csv", b""),
        ),
    ]
    return cases


def _counts(db: Path) -> dict[str, int]:
    import quadrat

    with quadrat.Project.open(db, read_only=True) as project:
        return project.source("reef").counts()


def _build(work: Path) -> None:
    from quadrat.demo import make_demo_survey

    survey = make_demo_survey(
        work / "survey", n_annotated=20, n_new=2, points_per_image=10, size=(240, 320)
    )
    run = [
        ["init", "-p", str(work / "survey.db"), "-s", "reef", "--labelset",
         str(survey.labelset_csv)],
        ["import", str(survey.annotations_csv), "-i", str(survey.annotated_dir), "-p",
         str(work / "survey.db")],
    ]  # fmt: skip
    for argv in run:
        subprocess.run([*QUADRAT, *argv], check=True, capture_output=True, env=_env())
    (work / "bad").mkdir()


def _env() -> dict[str, str]:
    return {**os.environ, "QUADRAT_NO_PROGRESS": "1", "COLUMNS": "200", "NO_COLOR": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="quadrat-reliability-"))
    try:
        _build(work)
        cases = [c for c in _catalogue(work) if args.only in c.name]
        for case in cases:
            if case.setup is not None:
                case.setup(work)
            before = _counts(work / "survey.db")
            start = time.perf_counter()
            try:
                proc = subprocess.run(
                    [*QUADRAT, *case.argv],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    env=_env(),
                )
                status, stderr = proc.returncode, proc.stderr
            except subprocess.TimeoutExpired:
                status, stderr = -1, "timed out"
            after = _counts(work / "survey.db")
            lines = [line for line in stderr.strip().splitlines() if line.strip()]
            case.result = {
                "name": case.name,
                "status": status,
                "expected": sorted(case.expect),
                "seconds": round(time.perf_counter() - start, 2),
                "traceback": "Traceback (most recent call last)" in stderr,
                "clean": status == 0
                or (bool(lines) and lines[-1].lstrip().startswith(("error:", "warning:"))),
                "rows_lost": any(after[k] < before.get(k, 0) for k in after),
                "stderr_last_line": lines[-1][:300] if lines else "",
            }
        rows = [c.result for c in cases]
        print(
            json.dumps(
                {
                    "cases": len(rows),
                    "clean_errors": sum(bool(r["clean"]) and not r["traceback"] for r in rows),
                    "tracebacks": sum(bool(r["traceback"]) for r in rows),
                    "unexpected_status": [
                        r["name"] for r in rows if r["status"] not in r["expected"]
                    ],  # type: ignore[operator]
                    "rows_lost": sum(bool(r["rows_lost"]) for r in rows),
                    "results": rows,
                },
                indent=1,
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
