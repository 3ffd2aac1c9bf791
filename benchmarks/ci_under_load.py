"""Benchmark: `.ci/run` several times in a row while busy processes load the cores.

Issue 11 asks for proof that CI cannot flake: three passing runs in a row with two busy
processes keeping both cores of the 2-core machine at 100%. The load is ``--load`` plain
Python spin loops (``while True: pass``, one core each, nothing else shared), started
before the first run and ended (by their own process ids) after the last. Prints one JSON
object: each run's exit status, wall seconds and the per-check summary `.ci/run` printed,
plus the load average seen at the end.

    python3 benchmarks/ci_under_load.py                  # 3 runs, 2 busy processes
    python3 benchmarks/ci_under_load.py --runs 1 --load 0

Only the standard library: it runs before `.ci/run` has built the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^\s+(\S+)\s+(passed|FAILED \(exit \d+\))\s+(\d+)s$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load", type=int, default=2, help="busy processes (one core each)")
    parser.add_argument(
        "--logs", type=Path, default=Path(tempfile.gettempdir()) / "quadrat-ci-under-load"
    )
    args = parser.parse_args()

    args.logs.mkdir(parents=True, exist_ok=True)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    runs = []
    try:
        for i in range(1, args.runs + 1):
            log = args.logs / f"run{i}.log"
            start = time.monotonic()
            with log.open("w") as out:
                rc = subprocess.call(
                    ["bash", str(ROOT / ".ci" / "run")], stdout=out, stderr=subprocess.STDOUT
                )
            seconds = round(time.monotonic() - start)
            checks = {}
            for line in log.read_text(errors="replace").splitlines():
                if m := SUMMARY.match(line):
                    checks[m.group(1)] = {"result": m.group(2), "seconds": int(m.group(3))}
            runs.append(
                {
                    "run": i,
                    "exit": rc,
                    "seconds": seconds,
                    "checks": checks,
                    "log": str(log),
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                }
            )
            print(f"run {i}: exit {rc} in {seconds} s", file=sys.stderr, flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(
        json.dumps(
            {
                "busy_processes": args.load,
                "load": "python -c 'while True: pass', one per core",
                "cpus": os.cpu_count(),
                "runs": runs,
                "all_passed": all(r["exit"] == 0 for r in runs),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
