"""Benchmark: how long ``quadrat --help``, ``--version`` and every ``COMMAND --help`` take.

Each command runs ``--runs`` times in a fresh process (the real start-up a user waits
for: interpreter, imports, help rendering), then once more under ``python -X importtime``
to name any heavy library it loaded. Prints one JSON object: median/min/max seconds per
command, the heavy modules, the slowest command and the load average before and after (a
busy machine explains slow figures). Target (issue 11): every figure under 1 s on the
2-core VM. Tests check the imports only (tests/cli/test_cli_conventions.py), never time.

    .venv/bin/python benchmarks/cli_startup.py
    .venv/bin/python benchmarks/cli_startup.py --runs 10 --only "" --only train
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Libraries that have no business loading to print help.
HEAVY = (
    "torch",
    "torchvision",
    "timm",
    "sklearn",
    "scipy",
    "matplotlib",
    "pandas",
    "pyarrow",
    "sqlalchemy",
    "lightning",
    "lightly",
    "kornia",
    "openvino",
    "ray",
    "PIL",
    "numpy",
)


def command_paths() -> list[list[str]]:
    """Every command and sub-command, as argument lists (``[]`` for the root)."""
    import typer
    from typer.core import TyperGroup

    from quadrat.cli import app

    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def launcher() -> list[str]:
    """The installed ``quadrat`` script beside this interpreter, else ``python -m quadrat``."""
    script = Path(sys.executable).with_name("quadrat")
    return [str(script)] if script.exists() else [sys.executable, "-m", "quadrat"]


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return seconds


def heavy_imports(args: list[str]) -> tuple[list[str], float]:
    """The heavy top-level packages loaded, and the seconds spent importing (importtime)."""
    argv = [sys.executable, "-X", "importtime", "-m", "quadrat", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    loaded: set[str] = set()
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, raw_name = line[12:].split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        name = raw_name[1:]  # nesting shows as two spaces per level after "| "
        if name.split(".")[0].strip() in HEAVY:
            loaded.add(name.split(".")[0].strip())
        if not name.startswith(" "):  # top level: the cumulative figures add up
            total_us += int(cumulative)
    return sorted(loaded), total_us / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command")
    parser.add_argument(
        "--only",
        action="append",
        help="time only this command path ('' for the root, 'dataset download'); repeatable",
    )
    options = parser.parse_args()

    paths = command_paths()
    if options.only is not None:
        wanted = {tuple(item.split()) for item in options.only}
        paths = [path for path in paths if tuple(path) in wanted]
    cases: list[tuple[str, list[str]]] = [("--version", ["--version"])]
    cases += [(" ".join([*path, "--help"]), [*path, "--help"]) for path in paths]

    base = launcher()
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    for label, args in cases:
        time_once([*base, *args])  # warm the file cache once
        seconds = [time_once([*base, *args]) for _ in range(options.runs)]
        heavy, import_seconds = heavy_imports(args)
        results[label] = {
            "median_s": round(statistics.median(seconds), 3),
            "min_s": round(min(seconds), 3),
            "max_s": round(max(seconds), 3),
            "import_s": round(import_seconds, 3),
            "heavy_modules": heavy,
        }
    slowest = max(results, key=lambda label: results[label]["median_s"])
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "launcher": " ".join(Path(part).name for part in base),
                "runs": options.runs,
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "target_s": 1.0,
                "all_medians_under_target": all(r["median_s"] < 1.0 for r in results.values()),
                "slowest": {"command": slowest, **results[slowest]},
                "any_heavy_modules": sorted(
                    {m for r in results.values() for m in r["heavy_modules"]}
                ),
                "commands": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
