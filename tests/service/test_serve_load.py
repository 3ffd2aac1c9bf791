"""benchmarks/serve_load.py's short path runs end to end and reports what it promises.

A real server subprocess, a loopback image server and one CoralNet-style client with 2
images, polling every second, on SQLite only. No speed is asserted (timings on a shared
machine say nothing); the test checks the report's shape, that the job finished with
every point, and that no job was lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "serve_load.py"


def test_quick_run_reports_every_number_and_loses_no_job(tmp_path: Path) -> None:
    pytest.importorskip("quadrat.service.server")
    pytest.importorskip("uvicorn")
    pytest.importorskip("huey")
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--database",
            "sqlite",
            "--clients",
            "1",
            "--images-per-client",
            "2",
            "--pool-images",
            "2",
            "--points",
            "20",
            "--workers",
            "1",
            "--poll-seconds",  # --quick polls every 2.5 s: most of a 1-job run's wait
            "1.0",
            "--max-seconds",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert report["benchmark"] == "serve_load"
    assert report["settings"]["clients"] == 1 and report["settings"]["images_per_client"] == 2
    assert set(report["results"]) == {"sqlite"}
    assert report["stopped_by_time_bound"] is False
    assert {"service.points_per_s", "inprocess.points_per_s", "overhead_percent"} <= set(
        report["what"]
    )
    sqlite = report["results"]["sqlite"]
    assert "error" not in sqlite, sqlite.get("traceback")

    service = sqlite["service"]
    assert service["jobs"] == {"submitted": 1, "finished": 1, "unfinished": 0, "lost": 0}
    assert service["images"] == 2 and service["images_failed"] == 0
    assert service["points"] == 2 * 20
    assert service["error_count"] == 0 and service["errors"] == []
    assert service["points_per_s"] > 0 and service["load_generator_cpu_s"] >= 0
    polls = service["status_poll_ms"]
    assert polls["n"] >= 1 and 0 < polls["p50"] <= polls["p95"] <= polls["max"]
    assert service["job_s"]["n"] == 1
    assert set(service["http_429"]) == {"throttled", "jobs_active"}

    inprocess = sqlite["inprocess"]
    assert len(inprocess["runs"]) == 2  # before and after the service
    assert inprocess["points"] == 2 * 2 * 20 and inprocess["images"] == 2 * 2
    assert inprocess["points_per_s"] > 0 and inprocess["processes"] == 1
    assert isinstance(sqlite["overhead_percent"], float)
