"""Extraction killed with SIGKILL mid-run: the rerun completes, nothing duplicated or corrupt."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quadrat import Project
from quadrat.demo import DemoSurvey

pytestmark = pytest.mark.slow


def blocks(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from feature_blocks").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume(tmp_path: Path, survey: DemoSurvey) -> None:
    db = tmp_path / "k.db"
    project = Project.create(db)
    src = project.create_source("reef", labelset=survey.labelset_csv)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    project.close()
    command = [
        sys.executable,
        "-m",
        "quadrat",
        "extract",
        "-e",
        "texture",
        "--batch-size",
        "1",
        "--workers",
        "1",
        "-p",
        str(db),
    ]
    env = {**os.environ, "QUADRAT_NO_PROGRESS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300  # a bound for a stuck run, generous under load
    while blocks(db) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = blocks(db)
    if done_before >= 20:
        pytest.skip("extraction finished before it could be killed")
    assert done_before >= 3, proc.stdout.read().decode() if proc.stdout else ""
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert f"{done_before} already stored" in " ".join(result.stdout.split())
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        n_blocks, n_points, n_images = conn.execute(
            "select count(*), sum(n_points), count(distinct image_id) from feature_blocks"
        ).fetchone()
    assert (n_blocks, n_points, n_images) == (20, 240, 20)
