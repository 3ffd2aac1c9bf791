"""pyspacer 0.14.0 and quadrat side by side, in one run: prints ONE JSON object.

Each figure is measured for both engines on the same data in the same run, with the
ratio quadrat / pyspacer (for speeds: the speedup; for RSS and seconds below 1 is better):

- extraction points/s from the same JPEG files, same points, same EfficientNet-B0 weights
  file (pyspacer's layout: random weights, BatchNorm statistics re-estimated on patches of
  these images), each engine in its own subprocess, and that subprocess's peak RSS;
  quadrat runs ``Source.extract`` on a temporary SQLite project (what
  ``quadrat extract`` does), pyspacer ``spacer.tasks.extract_features`` per image;
- feature agreement on those points (max abs difference, min cosine similarity);
- MLP training end to end on synthetic 1280-d features (pyspacer: writing its feature
  files + ``train_classifier(TrainClassifierMsg(...))``; quadrat:
  ``classifiers.training.train_classifier(X, y, groups=..., kind="mlp")``) and the
  validation accuracy each reports (each engine's own split);
- scoring points/s (pyspacer ``classify_features`` per feature file; quadrat
  ``predict_proba`` + ``top_k``) on the same points.

pyspacer runs on quadrat's interpreter with PYTHONPATH=<its --target folder>
(``tests/data/pyspacer/install.sh``): $QUADRAT_PYSPACER_PATH, else ../pyspacer-env, else it
is installed into ~/.cache/quadrat/pyspacer-env on first use.

    .venv/bin/python benchmarks/compare_pyspacer.py --quick   # 4 images, 10k train points
    .venv/bin/python benchmarks/compare_pyspacer.py           # 20 images, 100k train points
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM (Linux) starts afresh at exec; ru_maxrss does not
    (it keeps the parent's peak from before the fork), so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------------------ workers
# Each runs in its own subprocess (``--worker NAME JOB.json OUT.json``); pyspacer workers
# get PYTHONPATH=<pyspacer folder>. They write JSON results (and arrays to .npy files).


def worker_pyspacer_extract(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from spacer.data_classes import DataLocation, ImageFeatures
    from spacer.extractors import EfficientNetExtractor
    from spacer.messages import ExtractFeaturesMsg
    from spacer.tasks import extract_features

    feature_dir = Path(job["work"]) / "pyspacer_extract"
    feature_dir.mkdir(exist_ok=True)
    start = time.perf_counter()
    extractor = EfficientNetExtractor(
        data_locations={"weights": DataLocation("filesystem", job["weights"])}
    )
    locs = []
    for i, image in enumerate(job["images"]):
        loc = DataLocation("filesystem", str(feature_dir / f"{i}.featurevector"))
        extract_features(
            ExtractFeaturesMsg(
                job_token=f"bench-{i}",
                extractor=extractor,
                rowcols=[(int(r), int(c)) for r, c in image["rowcols"]],
                image_loc=DataLocation("filesystem", image["path"]),
                feature_loc=loc,
            )
        )
        locs.append(loc)
    seconds = time.perf_counter() - start
    points = sum(len(im["rowcols"]) for im in job["images"])
    rss = _peak_rss_mb()  # before reading back, which is not part of the figure
    features = np.concatenate(
        [np.array([p.data for p in ImageFeatures.load(loc).point_features]) for loc in locs]
    )
    np.save(out.with_suffix(".npy"), features)
    return {"points": points, "seconds": seconds, "peak_rss_mb": rss}


def worker_quadrat_extract(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from quadrat import Project
    from quadrat.extractors import create_extractor
    from quadrat.store.features import load_features
    from quadrat.store.schema import Image, Point

    project = Project.open(job["project"])
    start = time.perf_counter()
    runtime, _, precision = job.get("mode", "auto").partition("+")
    extractor = create_extractor(
        "efficientnet_b0",
        weights=job["weights"],
        runtime=runtime,
        autocast_bf16=precision == "bf16",
    )
    # float32 storage, so the agreement figures measure the network, not float16 rounding.
    summary = project.source("bench").extract(extractor, dtype="float32")
    seconds = time.perf_counter() - start
    rss = _peak_rss_mb()
    with project.store.session() as session:
        order = (
            session.execute(
                select(Point.id)
                .join(Image, Image.id == Point.image_id)
                .order_by(Image.name, Point.number)
            )
            .scalars()
            .all()
        )
        matrix = load_features(session, extractor.key, dtype="float32")
    index = {int(p): i for i, p in enumerate(matrix.point_ids)}
    np.save(out.with_suffix(".npy"), matrix.features[[index[int(p)] for p in order]])
    project.close()
    return {
        "points": summary.points,
        "seconds": seconds,
        "extract_seconds": summary.seconds,
        "peak_rss_mb": rss,
        "key": extractor.key,
    }


def _shim_prefit_calibration() -> bool:
    """pyspacer 0.14 calibrates with ``CalibratedClassifierCV(clf, cv="prefit")``, which
    scikit-learn 1.8 removed; quadrat's environment may have a newer one. In this
    subprocess only, pyspacer's module gets a subclass whose ``fit`` does the documented
    replacement (``CalibratedClassifierCV(FrozenEstimator(clf))``: one sigmoid fitted on
    the given points, the model not refitted) and keeps ``cv="prefit"`` and the bare model,
    as pyspacer's ``load_classifier`` checks. Returns whether the shim was needed."""
    import sklearn.calibration as calibration
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        calibration.CalibratedClassifierCV(cv="prefit")._validate_params()
        return False
    except InvalidParameterError:
        pass
    import spacer.train_classifier as spacer_train

    spacer_train.CalibratedClassifierCV = _prefit_class()
    return True


def _prefit_class() -> type:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    global _PrefitCalibrated

    class _PrefitCalibrated(CalibratedClassifierCV):  # type: ignore[no-redef]
        def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> Any:
            inner = CalibratedClassifierCV(FrozenEstimator(self.estimator), method=self.method)
            inner.fit(X, y)
            for calibrated in inner.calibrated_classifiers_:
                calibrated.estimator = self.estimator
            self.calibrated_classifiers_ = inner.calibrated_classifiers_
            self.classes_ = inner.classes_
            if hasattr(inner, "n_features_in_"):
                self.n_features_in_ = inner.n_features_in_
            return self

    _PrefitCalibrated.__qualname__ = "_PrefitCalibrated"  # picklable as __main__._PrefitCalibrated
    return _PrefitCalibrated


def worker_pyspacer_train(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels, PointFeatures
    from spacer.messages import ClassifyFeaturesMsg, TrainClassifierMsg
    from spacer.tasks import classify_features, train_classifier

    shimmed = _shim_prefit_calibration()
    data = np.load(job["data"])
    X, y, groups = data["X"], data["y"], data["groups"]
    work = Path(job["work"]) / "pyspacer_train"
    work.mkdir(exist_ok=True)
    start = time.perf_counter()
    labels = ImageLabels()
    locs = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        # Row/column are only keys here: point j of the image sits at (j, j).
        feats = ImageFeatures(
            point_features=[PointFeatures(j, j, X[r]) for j, r in enumerate(rows)],
            valid_rowcol=True,
            feature_dim=X.shape[1],
            npoints=len(rows),
        )
        loc = DataLocation("filesystem", str(work / f"{int(g)}.featurevector"))
        feats.store(loc)
        labels.add_image(loc, [(j, j, int(y[r])) for j, r in enumerate(rows)])
        locs.append((loc, rows))
    write_seconds = time.perf_counter() - start
    model_loc = DataLocation("filesystem", str(work / "model.pkl"))
    t0 = time.perf_counter()
    ret = train_classifier(
        TrainClassifierMsg(
            job_token="bench",
            trainer="minibatch",
            nbr_epochs=job["epochs"],
            clf_type="MLP",
            labels=labels,
            previous_model_locs=[],
            model_loc=model_loc,
            valresult_loc=DataLocation("filesystem", str(work / "valresult.json")),
        )
    )
    train_seconds = time.perf_counter() - t0
    total = time.perf_counter() - start
    from spacer.storage import load_classifier

    test = np.load(job["test"])
    clf = load_classifier(model_loc)
    test_accuracy = float(np.mean(clf.predict(test["X"].astype(np.float64)) == test["y"]))
    # Scoring: whole feature files, up to job["score_points"] points.
    chosen, n = [], 0
    for loc, rows in locs:
        if n >= job["score_points"]:
            break
        chosen.append(loc)
        n += len(rows)
    t0 = time.perf_counter()
    for loc in chosen:
        classify_features(
            ClassifyFeaturesMsg(job_token="score", feature_loc=loc, classifier_loc=model_loc)
        )
    score_seconds = time.perf_counter() - t0
    return {
        "write_feature_files_seconds": write_seconds,
        "train_classifier_seconds": train_seconds,
        "train_seconds_end_to_end": total,
        "pyspacer_runtime_field": ret.runtime,
        "val_accuracy": ret.acc,
        "test_accuracy": test_accuracy,
        "ref_accs": ret.ref_accs,
        "score_points": n,
        "score_seconds": score_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "prefit_shim": shimmed,
    }


def worker_quadrat_train(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from quadrat.classifiers.metrics import top_k
    from quadrat.classifiers.training import train_classifier

    data = np.load(job["data"])
    X, y, groups = data["X"], data["y"], data["groups"]
    start = time.perf_counter()
    result = train_classifier(X, y, groups=groups, kind="mlp", random_state=0)
    total = time.perf_counter() - start
    test = np.load(job["test"])
    predicted = result.estimator.predict(test["X"])
    test_accuracy = float(np.mean(predicted == test["y"]))
    # Same points as pyspacer scores: the first whole images up to score_points.
    order = np.unique(groups)
    n, keep = 0, []
    for g in order:
        if n >= job["score_points"]:
            break
        rows = np.flatnonzero(groups == g)
        keep.append(rows)
        n += len(rows)
    Xs = X[np.concatenate(keep)]
    t0 = time.perf_counter()
    proba = result.estimator.predict_proba(Xs)
    top_k(proba, result.classes, k=5)
    score_seconds = time.perf_counter() - t0
    return {
        "train_seconds_end_to_end": total,
        "fit_seconds": result.train_seconds,
        "val_accuracy": result.metrics.accuracy,
        "test_accuracy": test_accuracy,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "fitted": result.hyperparameters.get("fitted"),
        "score_points": n,
        "score_seconds": score_seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


def worker_pyspacer_fit(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """Suite worker: pyspacer's train_classifier (kind MLP or LR) on the given points,
    scored on the validation images; stages: writing feature files, training."""
    t_enter = time.perf_counter()
    from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels, PointFeatures
    from spacer.messages import TrainClassifierMsg
    from spacer.storage import load_classifier
    from spacer.tasks import train_classifier

    shimmed = _shim_prefit_calibration()
    imports = time.perf_counter() - t_enter
    data = np.load(job["data"])
    X, y, groups = data["X"], data["y"], data["groups"]
    work = Path(job["work"]) / "pyspacer_fit"
    work.mkdir(exist_ok=True)
    start = time.perf_counter()
    labels = ImageLabels()
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        feats = ImageFeatures(
            point_features=[PointFeatures(j, j, X[r].astype(float)) for j, r in enumerate(rows)],
            valid_rowcol=True,
            feature_dim=X.shape[1],
            npoints=len(rows),
        )
        loc = DataLocation("filesystem", str(work / f"{int(g)}.featurevector"))
        feats.store(loc)
        labels.add_image(loc, [(j, j, int(y[r])) for j, r in enumerate(rows)])
    write_seconds = time.perf_counter() - start
    model_loc = DataLocation("filesystem", str(work / "model.pkl"))
    t0 = time.perf_counter()
    ret = train_classifier(
        TrainClassifierMsg(
            job_token="bench",
            trainer="minibatch",
            nbr_epochs=job["epochs"],
            clf_type=job["kind"].upper(),
            labels=labels,
            previous_model_locs=[],
            model_loc=model_loc,
            valresult_loc=DataLocation("filesystem", str(work / "valresult.json")),
        )
    )
    train_seconds = time.perf_counter() - t0
    test = np.load(job["test"])
    clf = load_classifier(model_loc)
    accuracy = float(np.mean(clf.predict(test["X"].astype(np.float64)) == test["y"]))
    return {
        "import_seconds": imports,
        "prepare_seconds": write_seconds,
        "train_seconds": train_seconds,
        "own_val_accuracy": float(ret.acc),
        "heldout_accuracy": accuracy,
        "prefit_shim": shimmed,
        "peak_rss_mb": _peak_rss_mb(),
    }


def worker_quadrat_fit(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """Suite worker: quadrat's train_classifier with its defaults (kind mlp or lr)."""
    t_enter = time.perf_counter()
    from quadrat.classifiers.training import train_classifier

    imports = time.perf_counter() - t_enter
    data = np.load(job["data"])
    estimator = None
    if job.get("params"):  # e.g. {"refit": true}: the default classifier with these changes
        from quadrat.classifiers.estimators import make_classifier

        estimator = make_classifier(job["kind"], None).set_params(**job["params"])
    t0 = time.perf_counter()
    result = train_classifier(
        data["X"], data["y"], groups=data["groups"], kind=job["kind"], estimator=estimator
    )
    train_seconds = time.perf_counter() - t0
    test = np.load(job["test"])
    accuracy = float(np.mean(result.estimator.predict(test["X"]) == test["y"]))
    return {
        "import_seconds": imports,
        "prepare_seconds": 0.0,
        "train_seconds": train_seconds,
        "own_val_accuracy": float(result.metrics.accuracy),
        "heldout_accuracy": accuracy,
        "calibration": result.hyperparameters["split"]["calibration"],
        "fitted": result.hyperparameters["fitted"],
        "peak_rss_mb": _peak_rss_mb(),
    }


WORKERS = {
    "pyspacer_fit": worker_pyspacer_fit,
    "quadrat_fit": worker_quadrat_fit,
    "pyspacer_extract": worker_pyspacer_extract,
    "quadrat_extract": worker_quadrat_extract,
    "pyspacer_train": worker_pyspacer_train,
    "quadrat_train": worker_quadrat_train,
}


# ------------------------------------------------------------------------- orchestration


def pyspacer_path() -> Path:
    """A folder holding pyspacer 0.14.0 (installed there with install.sh if needed)."""
    env = os.environ.get("QUADRAT_PYSPACER_PATH")
    candidates = [Path(env)] if env else [REPO.parent / "pyspacer-env"]
    candidates.append(Path.home() / ".cache" / "quadrat" / "pyspacer-env")
    for path in candidates:
        if (path / "spacer" / "tasks.py").exists():
            return path
    target = candidates[0] if env else candidates[-1]
    print(f"installing pyspacer 0.14.0 into {target}", file=sys.stderr)
    subprocess.run(
        ["bash", str(REPO / "tests/data/pyspacer/install.sh"), str(target)],
        check=True,
        stdout=sys.stderr,
    )
    return target


def pyspacer_python() -> Path | None:
    """pyspacer's own interpreter (a virtualenv with its pinned dependencies, as CoralNet
    runs it): $QUADRAT_PYSPACER_PYTHON, else ../pyspacer-venv/bin/python if present."""
    env = os.environ.get("QUADRAT_PYSPACER_PYTHON")
    path = Path(env) if env else REPO.parent / "pyspacer-venv" / "bin" / "python"
    return path if path.exists() else None


def run_worker(name: str, job: dict[str, Any], work: Path, pyspacer: Path | None) -> dict[str, Any]:
    """Run one worker in a fresh process; pyspacer's on its own venv's interpreter when
    there is one (else on quadrat's with PYTHONPATH). Adds the whole call's wall time
    (interpreter start, imports and setup included) and the child's peak RSS (wait4)."""
    job_path, out_path = work / f"{name}.job.json", work / f"{name}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ)
    python = sys.executable
    if pyspacer is not None:
        own = pyspacer_python()
        if own is not None:
            python = str(own)
            env.pop("PYTHONPATH", None)
        else:
            env["PYTHONPATH"] = os.pathsep.join([str(pyspacer), str(REPO)])
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    script = str(Path(__file__).resolve())
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [python, script, "--worker", name, str(job_path), str(out_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"worker {name} failed:\n{err.read()[-4000:]}")
    result = json.loads(out_path.read_text())
    result["subprocess_wall_seconds"] = wall
    result["child_maxrss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["python"] = python
    result["loadavg_1min"] = round(load, 2)
    return result


def make_images(folder: Path, n: int, height: int, width: int, seed: int) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        # Smooth colour fields plus noise, as benchmarks/extract_points.py.
        small = rng.integers(0, 255, (height // 50, width // 50, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """How far quadrat's stored features are from pyspacer's on the same points."""
    cos = np.sum(theirs * ours, 1) / (np.linalg.norm(theirs, axis=1) * np.linalg.norm(ours, axis=1))
    return {
        "points": int(theirs.shape[0]),
        "max_abs_diff": float(np.abs(theirs - ours).max()),
        "max_abs_feature": float(np.abs(theirs).max()),
        "mean_abs_feature": float(np.abs(theirs).mean()),
        "min_cosine": float(cos.min()),
    }


def ratio(q: float, p: float, digits: int = 2) -> float | None:
    return round(q / p, digits) if p else None


def pair(q: float, p: float, digits: int = 1) -> dict[str, Any]:
    return {"quadrat": round(q, digits), "pyspacer": round(p, digits), "ratio": ratio(q, p)}


MOOREA_RESIZED = "mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"  # points off: left out


def real_features(name: str, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texture features (weights-free) of a real source in ../shared/data, cached:
    ``moorea`` (20 photoquadrats, 4,000 points; groups = images) or ``seattle`` (934
    patches, 25 classes; each patch its own group: their source images are not given)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}_texture.npz"
    if path.exists():
        data = np.load(path)
        return data["X"], data["y"], data["groups"]
    from quadrat.extractors import create_extractor
    from quadrat.io.images import load_rgb
    from quadrat.patches import crop_patches

    extractor = create_extractor("texture")
    root = REPO.parent / "shared" / "data"
    blocks, labels, groups = [], [], []
    if name == "moorea":
        from quadrat.io.coralnet import read_annotations_csv

        table = read_annotations_csv(root / "moorea-lter-2008" / "annotations.csv")
        table = table[table["image"] != MOOREA_RESIZED]
        for g, (image, points) in enumerate(table.groupby("image", sort=True)):
            pixels = load_rgb(root / "moorea-lter-2008" / "images" / str(image))
            patches = crop_patches(pixels, points["row"].to_numpy(), points["column"].to_numpy())
            blocks.append(np.asarray(extractor.extract(patches), dtype=np.float32))
            labels += [str(v) for v in points["label"]]
            groups += [g] * len(points)
    elif name == "seattle":
        from PIL import Image

        files = sorted((root / "seattle-rov-patches" / "patches").glob("*/*.jpg"))
        for g, file in enumerate(files):
            with Image.open(file) as im:
                patch = np.asarray(im.convert("RGB").resize((224, 224)))[None]
            blocks.append(np.asarray(extractor.extract(patch), dtype=np.float32))
            labels.append(file.parent.name)
            groups.append(g)
    else:
        raise SystemExit(f"unknown real source {name!r}: moorea or seattle")
    _, y = np.unique(np.array(labels), return_inverse=True)
    X, g_arr = np.concatenate(blocks), np.array(groups, dtype=np.int64)
    np.savez(path, X=X, y=y.astype(np.int64), groups=g_arr)
    return X, y.astype(np.int64), g_arr


def _median(values: list[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


def run_suite(args: argparse.Namespace, spacer_dir: Path, work: Path) -> dict[str, Any]:
    """Training side by side: per generator, size and kind, ``--repeats`` runs of each
    engine, every run a fresh process; medians, with the 1-minute load average at the
    start of each run beside them (median and max)."""
    from quadrat.classifiers.synthetic import (
        make_point_features,
        make_subclass_features,
        split_by_image,
    )

    generators = {"point": make_point_features, "subclass": make_subclass_features}
    table: list[dict[str, Any]] = []
    cases: list[tuple[str, int]] = [
        (g, int(v)) for g in args.generators.split(",") if g for v in args.sizes.split(",")
    ]
    cases += [(name, 0) for name in args.real.split(",") if name]
    for gen_name, size in cases:
        if size:  # synthetic: train + reference = size points, validation on top
            data = generators[gen_name](round(size / 0.9), random_state=args.seed)
            X_all, y_all, g_all = data.X, data.y, data.groups
        else:  # real: all its points
            X_all, y_all, g_all = real_features(gen_name, args.cache)
        # Real sources are small: 20 % of the images validate (Moorea: 4 photos).
        split = split_by_image(
            g_all, reference=0.1, validation=0.1 if size else 0.2, random_state=args.seed
        )
        given = np.sort(np.concatenate([split.train, split.reference]))
        np.savez(work / "suite_train.npz", X=X_all[given], y=y_all[given], groups=g_all[given])
        np.savez(work / "suite_val.npz", X=X_all[split.validation], y=y_all[split.validation])
        for kind in args.kinds.split(","):
            job = {
                "work": str(work),
                "data": str(work / "suite_train.npz"),
                "test": str(work / "suite_val.npz"),
                "kind": kind,
                "epochs": args.epochs,
            }
            runs: dict[str, list[dict[str, Any]]] = {"pyspacer": [], "quadrat": []}
            for _ in range(args.repeats):
                runs["pyspacer"].append(run_worker("pyspacer_fit", job, work, spacer_dir))
                runs["quadrat"].append(run_worker("quadrat_fit", job, work, None))
            row: dict[str, Any] = {
                "generator": gen_name,
                "points": int(given.size),
                "validation_points": int(split.validation.size),
                "kind": kind,
                "repeats": args.repeats,
            }
            for engine, rs in runs.items():
                loads = [r["loadavg_1min"] for r in rs]
                row[engine] = {
                    "whole_call_s": round(_median([r["subprocess_wall_seconds"] for r in rs]), 2),
                    "import_s": round(_median([r["import_seconds"] for r in rs]), 2),
                    "prepare_s": round(_median([r["prepare_seconds"] for r in rs]), 2),
                    "train_s": round(_median([r["train_seconds"] for r in rs]), 2),
                    "peak_rss_mb": round(_median([r["peak_rss_mb"] for r in rs]), 1),
                    "heldout_accuracy": round(_median([r["heldout_accuracy"] for r in rs]), 4),
                    "own_val_accuracy": round(_median([r["own_val_accuracy"] for r in rs]), 4),
                    "loadavg_median": round(_median(loads), 2),
                    "loadavg_max": round(max(loads), 2),
                }
            row["quadrat"]["fitted"] = runs["quadrat"][0].get("fitted")
            row["quadrat"]["calibration"] = runs["quadrat"][0].get("calibration")
            row["speedup_whole_call"] = ratio(
                row["pyspacer"]["whole_call_s"], row["quadrat"]["whole_call_s"]
            )
            row["accuracy_gain_points"] = round(
                100 * (row["quadrat"]["heldout_accuracy"] - row["pyspacer"]["heldout_accuracy"]),
                1,
            )
            print(json.dumps(row), file=sys.stderr, flush=True)
            table.append(row)
    return {"training": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--train-points", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=10, help="pyspacer's nbr_epochs")
    parser.add_argument("--score-points", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="4 images, 10,000 train points")
    parser.add_argument("--skip", default="", help="comma list: extract,train")
    parser.add_argument(
        "--modes",
        default="auto,eager",
        help="quadrat extraction modes, comma list of RUNTIME[+bf16] (runtimes: auto (the "
        "default: OpenVINO on CPU), eager, compile, openvino); the first is the headline "
        "figure, all are compared to pyspacer",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="training side by side only: --generators x --sizes x --kinds, --repeats runs",
    )
    parser.add_argument("--generators", default="point,subclass")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--kinds", default="mlp,lr")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="data and split seed")
    parser.add_argument(
        "--real",
        default="",
        help="also real sources from ../shared/data, comma list: moorea,seattle (texture "
        "features, cached in --cache)",
    )
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "quadrat" / "compare_pyspacer"
    )
    parser.add_argument("--worker", nargs=3, metavar=("NAME", "JOB", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        name, job_path, out_path = args.worker
        import warnings

        warnings.simplefilter("ignore")
        result = WORKERS[name](json.loads(Path(job_path).read_text()), Path(out_path))
        Path(out_path).write_text(json.dumps(result))
        return

    if args.quick:
        args.images, args.train_points = 4, 10_000
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    sys.path.insert(0, str(REPO))
    import warnings

    import torch
    from sqlalchemy import select
    from tests.data.pyspacer.data import make_pyspacer_checkpoint

    from quadrat import Project
    from quadrat.classifiers.synthetic import make_point_features
    from quadrat.io.images import load_rgb
    from quadrat.patches import crop_patches
    from quadrat.store.schema import Image, Point

    warnings.simplefilter("ignore")
    own = pyspacer_python()
    spacer_dir = own.parent.parent if own is not None else pyspacer_path()
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "default (or as given)",
        "images": args.images,
        "points_per_image": args.points,
        "image_size": [args.height, args.width],
        "train_points": args.train_points,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "pyspacer_path": str(spacer_dir),
    }
    results["pyspacer_python"] = str(pyspacer_python() or sys.executable)
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compare_pyspacer_") as tmp:
        work = Path(tmp)
        if args.suite:
            skip = {"extract", "train"}
            results.update(run_suite(args, spacer_dir, work))
        if "extract" not in skip:
            folder = work / "images"
            folder.mkdir()
            make_images(folder, args.images, args.height, args.width, seed=0)
            # One project with the images and CoralNet-style random points; pyspacer gets
            # exactly those points.
            project = Project.create(work / "bench.db")
            project.create_source("bench")
            project.source("bench").import_images([folder])
            project.source("bench").generate_points(f"m_{args.points}", seed=0)
            with project.store.session() as session:
                rows = session.execute(
                    select(Image.name, Image.path, Point.row, Point.column)
                    .join(Point, Point.image_id == Image.id)
                    .order_by(Image.name, Point.number)
                ).all()
            project.close()
            images: dict[str, dict[str, Any]] = {}
            for name, path, r, c in rows:
                images.setdefault(name, {"path": path, "rowcols": []})["rowcols"].append([r, c])
            # Weights in pyspacer's layout, BatchNorm statistics from this data's patches.
            first = next(iter(images.values()))
            rc = np.array(first["rowcols"][:16])
            calib = crop_patches(load_rgb(first["path"]), rc[:, 0], rc[:, 1])
            weights = work / "efficientnet_b0_pyspacer.pt"
            make_pyspacer_checkpoint(weights, calibration=np.ascontiguousarray(calib))
            job = {
                "work": str(work),
                "weights": str(weights),
                "project": str(work / "bench.db"),
                "images": list(images.values()),
            }
            p = run_worker("pyspacer_extract", job, work, spacer_dir)
            fp = np.load(work / "pyspacer_extract.npy")
            modes = [m.strip() for m in args.modes.split(",") if m.strip()]
            by_mode: dict[str, Any] = {}
            for mode in modes:
                # Fresh project copy per mode: each run extracts every point.
                shutil.copy(work / "bench.db", work / "bench_mode.db")
                q = run_worker(
                    "quadrat_extract",
                    {**job, "mode": mode, "project": str(work / "bench_mode.db")},
                    work,
                    None,
                )
                fq = np.load(work / "quadrat_extract.npy").astype(np.float64)
                by_mode[mode] = {
                    "points_per_s": pair(q["points"] / q["seconds"], p["points"] / p["seconds"]),
                    "seconds": pair(q["seconds"], p["seconds"], 2),
                    "peak_rss_mb": pair(q["peak_rss_mb"], p["peak_rss_mb"]),
                    "feature_agreement": agreement(fq, fp),
                    "key": q["key"],
                }
            results["extraction"] = {
                "points": p["points"],
                "mode": modes[0],
                **{k: v for k, v in by_mode[modes[0]].items() if k != "feature_agreement"},
                "note": "seconds include loading the weights; quadrat stores float32 here "
                "(float16 is its default), pyspacer float64",
            }
            results["feature_agreement"] = by_mode[modes[0]]["feature_agreement"]
            if len(modes) > 1:
                results["extraction_modes"] = by_mode
        if "train" not in skip:
            # A common test set (10% of the images, seeded) that neither engine sees, so
            # the two accuracies are comparable; each engine's own validation figure (its
            # own split of the rest) is reported too.
            data = make_point_features(args.train_points, random_state=0)
            images = np.unique(data.groups)
            test_images = np.random.default_rng(0).choice(
                images, size=max(1, len(images) // 10), replace=False
            )
            is_test = np.isin(data.groups, test_images)
            np.savez(
                work / "train.npz",
                X=data.X[~is_test],
                y=data.y[~is_test],
                groups=data.groups[~is_test],
            )
            np.savez(work / "test.npz", X=data.X[is_test], y=data.y[is_test])
            job = {
                "work": str(work),
                "data": str(work / "train.npz"),
                "test": str(work / "test.npz"),
                "epochs": args.epochs,
                "score_points": args.score_points,
            }
            p = run_worker("pyspacer_train", job, work, spacer_dir)
            q = run_worker("quadrat_train", job, work, None)
            results["training_mlp"] = {
                "seconds_end_to_end": pair(
                    q["train_seconds_end_to_end"], p["train_seconds_end_to_end"], 2
                ),
                "speedup": ratio(p["train_seconds_end_to_end"], q["train_seconds_end_to_end"]),
                "pyspacer_write_feature_files_seconds": round(p["write_feature_files_seconds"], 2),
                "pyspacer_train_classifier_seconds": round(p["train_classifier_seconds"], 2),
                "test_accuracy_common_split": pair(q["test_accuracy"], p["test_accuracy"], 4),
                "test_points": int(is_test.sum()),
                "val_accuracy_own_split": pair(q["val_accuracy"], p["val_accuracy"], 4),
                "quadrat_fitted": q["fitted"],
                "pyspacer_prefit_calibration_shim": p["prefit_shim"],
                "peak_rss_mb": pair(q["peak_rss_mb"], p["peak_rss_mb"]),
                "note": "each engine's own split (quadrat 7/8 train by image; pyspacer "
                "train/ref/val 80/10/10); pyspacer accuracy omits labels unseen in train/ref",
            }
            results["scoring"] = {
                "points": q["score_points"],
                "points_per_s": pair(
                    q["score_points"] / q["score_seconds"], p["score_points"] / p["score_seconds"]
                ),
                "note": "pyspacer classify_features per feature file (loads file and "
                "pickled classifier each call); quadrat predict_proba + top_k(5) in memory",
            }
    results["total_seconds"] = round(time.perf_counter() - start_all, 1)
    results["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
