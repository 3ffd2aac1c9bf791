"""Whole-call extraction against pyspacer: fresh processes, imports and setup included.

Issue 16's figure: 20 JPEGs of 2000x1500 with 50 points each (1,000 points), one
EfficientNet-B0 weights file in pyspacer's layout (random weights, BatchNorm statistics
re-estimated), each run a new Python process timed from its first line, so imports, the
weights file, network setup, decoding, cropping, features and the store all count.
quadrat runs ``Project.open`` + ``create_extractor`` + ``Source.extract`` (what
``quadrat extract`` does) with its defaults; pyspacer ``extract_features`` per image, as
CoralNet, in its own virtualenv (``--pyspacer-python``; tests/data/pyspacer/install.sh
``--venv``) or from a ``--target`` folder on quadrat's interpreter (``--pyspacer``).

Cases, interleaved run by run so that load drifts hit all alike:

- ``pyspacer``: its whole call;
- ``cold``: quadrat with an empty model cache (converts the network from PyTorch);
- ``warm``: quadrat with the cache the cold run left (the usual case from the 2nd call on);
- ``warm-bf16`` (``--bf16``, CPUs with bf16 only): ``precision="bf16"``.

Prints one JSON object: every run (seconds, points/s, peak RSS from VmHWM, stage times,
load average before it) and each case's medians. Run under the machine's benchmark lock:

    flock /tmp/q/bench.lock .venv/bin/python benchmarks/extract_whole.py --runs 3 \\
        --pyspacer-python ../pyspacer-venv/bin/python --bf16
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # a worker's clock starts before its imports

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def worker_quadrat(job: dict[str, Any]) -> dict[str, Any]:
    marks: dict[str, float] = {}
    from quadrat import Project
    from quadrat.extractors import create_extractor

    marks["imports"] = time.perf_counter() - _T0
    project = Project.open(job["project"])
    options = {"precision": job["precision"]} if job["precision"] != "f32" else {}
    # This process's size while a cold call's conversion child runs (it waits meanwhile):
    # with the child's peak, what the machine holds at once.
    rss_before_extractor = _status_mb("VmRSS")
    extractor = create_extractor("efficientnet_b0", weights=job["weights"], **options)
    marks["extractor_ready"] = time.perf_counter() - _T0
    summary = project.source("bench").extract(extractor)
    project.close()
    seconds = time.perf_counter() - _T0
    import resource

    # A cold call converts in a child process: its peak counts too (ru_maxrss of the
    # largest child; it may include this process's size when forked, never less).
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "child_peak_rss_mb": round(child, 1),
        "rss_while_converting_mb": rss_before_extractor,
        "points": summary.points,
        "seconds": seconds,
        "engine_seconds": summary.seconds,
        "marks": marks,
        "peak_rss_mb": _status_mb("VmHWM"),
        "extractor": type(extractor).__name__,
        "key": extractor.key,
        "torch_imported": "torch" in sys.modules,
    }


def worker_pyspacer(job: dict[str, Any]) -> dict[str, Any]:
    from spacer.data_classes import DataLocation
    from spacer.extractors import EfficientNetExtractor
    from spacer.messages import ExtractFeaturesMsg
    from spacer.tasks import extract_features

    extractor = EfficientNetExtractor(
        data_locations={"weights": DataLocation("filesystem", job["weights"])}
    )
    out = Path(job["work"])
    points = 0
    for i, image in enumerate(job["images"]):
        extract_features(
            ExtractFeaturesMsg(
                job_token=f"bench-{i}",
                extractor=extractor,
                rowcols=[(int(r), int(c)) for r, c in image["rowcols"]],
                image_loc=DataLocation("filesystem", image["path"]),
                feature_loc=DataLocation("filesystem", str(out / f"{i}.featurevector")),
            )
        )
        points += len(image["rowcols"])
    return {
        "points": points,
        "seconds": time.perf_counter() - _T0,
        "peak_rss_mb": _status_mb("VmHWM"),
    }


def run(
    kind: str, job: dict[str, Any], env: dict[str, str], python: str = sys.executable
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [python, __file__, "--worker", kind, json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall  # with the interpreter's own start
    result["points_per_s"] = result["points"] / result["seconds"]
    result["loadavg_before"] = load
    return result


def setup(root: Path, images: int, points: int) -> dict[str, Any]:
    """JPEGs, a pyspacer-layout weights file, a project with the points; the jobs."""
    sys.path.insert(0, str(REPO))
    import warnings

    warnings.simplefilter("ignore")
    from benchmarks.extract_points import make_images
    from sqlalchemy import select
    from tests.data.pyspacer.data import make_pyspacer_checkpoint

    from quadrat import Project
    from quadrat.store.schema import Image, Point

    folder = root / "images"
    folder.mkdir()
    make_images(folder, images, 1500, 2000, seed=0)
    weights = root / "efficientnet_b0.pt"
    make_pyspacer_checkpoint(weights)
    base = root / "base.db"
    project = Project.create(str(base))
    project.create_source("bench")
    project.source("bench").import_images([folder])
    project.source("bench").generate_points(f"m_{points}", seed=0)
    with project.store.session() as session:
        rows = session.execute(
            select(Image.path, Point.row, Point.column)
            .join(Point, Point.image_id == Image.id)
            .order_by(Image.name, Point.number)
        ).all()
    project.close()
    by_image: dict[str, list[list[int]]] = {}
    for path, row, col in rows:
        by_image.setdefault(str(path), []).append([int(row), int(col)])
    return {
        "weights": str(weights),
        "base": str(base),
        "images": [{"path": p, "rowcols": rc} for p, rc in by_image.items()],
    }


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--points", type=int, default=50, help="points per image")
    parser.add_argument("--pyspacer", type=Path, help="folder holding pyspacer 0.14.0")
    parser.add_argument(
        "--pyspacer-python",
        help="pyspacer's own interpreter (its virtualenv, its pinned torch), as CoralNet "
        "runs it; without it pyspacer runs on this interpreter from --pyspacer",
    )
    parser.add_argument("--bf16", action="store_true", help="add warm quadrat runs in bf16")
    args = parser.parse_args()
    if args.worker:
        kind, job = args.worker[0], json.loads(args.worker[1])
        result = worker_pyspacer(job) if kind == "pyspacer" else worker_quadrat(job)
        print(json.dumps(result))
        return

    with_pyspacer = bool(args.pyspacer or args.pyspacer_python)
    cases = (["pyspacer"] if with_pyspacer else []) + ["cold", "warm"]
    cases += ["warm-bf16"] if args.bf16 else []
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="extract_whole_") as tmp:
        root = Path(tmp)
        data = setup(root, args.images, args.points)
        base_env = {k: v for k, v in os.environ.items() if k != "QUADRAT_RUNTIME"}
        warm_cache = root / "warm-cache"
        for i in range(args.runs):
            for case in cases:
                work = root / f"{case}-{i}"
                work.mkdir()
                env = dict(base_env)
                job: dict[str, Any] = {"weights": data["weights"], "work": str(work)}
                if case == "pyspacer":
                    if args.pyspacer_python:
                        env.pop("PYTHONPATH", None)
                    else:
                        env["PYTHONPATH"] = str(args.pyspacer.resolve())
                    job["images"] = data["images"]
                else:
                    env["PYTHONPATH"] = str(REPO / "src")
                    project = work / "project.db"
                    shutil.copy(data["base"], project)
                    job |= {"project": str(project), "precision": "f32"}
                    if case == "cold":
                        env["QUADRAT_MODEL_CACHE"] = str(work / "cache")
                    else:
                        env["QUADRAT_MODEL_CACHE"] = str(warm_cache)
                        if not warm_cache.exists():  # fill it once, untimed
                            run("quadrat", job, env)
                            shutil.copy(data["base"], project)
                        if case == "warm-bf16":
                            job["precision"] = "bf16"
                if case == "pyspacer":
                    runs[case].append(run(case, job, env, args.pyspacer_python or sys.executable))
                else:
                    runs[case].append(run("quadrat", job, env))
                print(f"{case} run {i + 1}: {runs[case][-1]['seconds']:.1f} s", file=sys.stderr)
    medians = {
        case: {
            "seconds": median(r, "seconds"),
            "points_per_s": median(r, "points_per_s"),
            "peak_rss_mb": median(r, "peak_rss_mb"),
            "child_peak_rss_mb": median(r, "child_peak_rss_mb") if case != "pyspacer" else 0,
            "rss_while_converting_mb": (
                median(r, "rss_while_converting_mb") if case != "pyspacer" else 0
            ),
            "loadavg_before": [round(x["loadavg_before"], 2) for x in r],
        }
        for case, r in runs.items()
    }
    if "pyspacer" in medians:
        theirs = medians["pyspacer"]["points_per_s"]
        for case in cases[1:]:
            medians[case]["speedup_vs_pyspacer"] = round(medians[case]["points_per_s"] / theirs, 2)
    print(
        json.dumps(
            {
                "benchmark": "extract_whole",
                "images": args.images,
                "points_per_image": args.points,
                "cpu_count": os.cpu_count(),
                "medians": medians,
                "runs": runs,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
