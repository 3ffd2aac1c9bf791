"""Evidence for issue 5: do the representations here know anything about benthic labels?

On the real data in ../shared/data, compares the weights-free texture extractor, randomly
initialised CNNs (BatchNorm re-estimated) and backbones pretrained here with quadrat.ssl,
by a linear probe's accuracy and macro F1 over whole splits (out-of-fold predictions):

- Seattle ROV patches (25 classes, up to ``--seattle-per-class`` each), stratified 4-fold:
  the patches are independent crops whose file names (UUIDs) do not name their ROV image,
  so they cannot be grouped by image.
- Moorea 2008 points (``--moorea-points`` per image, the 800x800 resized copy left out),
  image-grouped stratified 4-fold: no image on both sides of a split.
- The hierarchical CATAMI probe on Seattle classes translated to CATAMI (the translation
  module's proposals plus a reviewed table below), per head and depth.

``--pretrain-steps N`` first pretrains ``--pretrain-backbone`` with ``--pretrain-method``
for N steps on patches cut from the Moorea and georeferenced photos (a short CPU run).
``--real-bn N`` adds, for each random CNN, a row with its BatchNorm statistics
re-estimated on N real patches: the control that tells pretraining from BN statistics.
Features are cached in ``--work`` (atomic .npy files), so a killed run resumes. Prints
one JSON object on stdout; progress goes to stderr.

    .venv/bin/python benchmarks/evaluate_representations.py --pretrain-steps 150
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from quadrat.cli._common import progress_bar
from quadrat.errors import InputError
from quadrat.extractors import TorchExtractor, create_extractor
from quadrat.io.coralnet import read_annotations_csv
from quadrat.io.images import load_rgb
from quadrat.patches import PATCH_SIZE, crop_patches
from quadrat.probes import (
    HierarchicalProbe,
    LinearProbe,
    cross_validated_predictions,
    depth_groups,
    flat_metrics,
    grouped_folds,
    hierarchical_metrics,
)

Progress = Callable[[str, int, int], None]

#: The Moorea photo that was downscaled after annotation (see ../shared/data/README.md).
MOOREA_RESIZED = "mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"

#: Reviewed translation of Seattle folder names the automatic proposals left unmapped, as
#: CATAMI paths (a person's judgement, like an edited mapping CSV). Left unmapped: MS
#: (mobile species: crabs to fish, no single node below Biota), SI (sessile invertebrates,
#: several phyla), SU_anth (man-made objects, not in CATAMI) and unknown.
SEATTLE_REVIEWED = {
    "BR_encrust": "Biota > Macroalgae > Encrusting > Brown",
    "KE_5rib": "Biota > Macroalgae > Laminate > Brown",  # five-ribbed kelp, a bladed kelp
    "KE_sieve": "Biota > Macroalgae > Laminate > Brown",  # sieve kelp
    "KE_sugar": "Biota > Macroalgae > Laminate > Brown",  # sugar kelp
    "RE_branch": "Biota > Macroalgae > Erect coarse branching > Red",
    "RE_bush": "Biota > Macroalgae > Erect fine branching > Red",
    "RE_leaf": "Biota > Macroalgae > Laminate > Red",
}


def save_atomic(array: np.ndarray, path: Path) -> None:
    """Write an .npy so that a killed run never leaves a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_patch(path: Path, size: int = PATCH_SIZE) -> np.ndarray:
    """A stored patch as (size, size, 3) uint8: centre-cropped to square, resized if needed."""
    rgb = load_rgb(path)
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top : top + side, left : left + side]
    if side != size:
        square = np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))
    return square


def load_seattle(root: Path, per_class: int, progress: Progress) -> dict[str, np.ndarray]:
    """Patches and folder-name labels, the first ``per_class`` files (sorted) of each class."""
    folder = root / "seattle-rov-patches" / "patches"
    if not folder.is_dir():
        raise InputError("Seattle patch folder not found", path=folder)
    files: list[Path] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files.extend(sorted(class_dir.glob("*.jpg"))[:per_class])
    patches = np.empty((len(files), PATCH_SIZE, PATCH_SIZE, 3), dtype=np.uint8)
    for i, file in enumerate(files):
        patches[i] = to_patch(file)
        if (i + 1) % 100 == 0 or i + 1 == len(files):
            progress("Seattle patches", i + 1, len(files))
    labels = np.array([f.parent.name for f in files])
    return {"patches": patches, "labels": labels, "groups": np.arange(len(files))}


def load_moorea(
    root: Path, points_per_image: int, max_images: int | None, seed: int, progress: Progress
) -> dict[str, np.ndarray]:
    """``points_per_image`` random annotated points of every usable image, cut at 224 px."""
    folder = root / "moorea-lter-2008"
    table = read_annotations_csv(folder / "annotations.csv")
    table = table[table["image"] != MOOREA_RESIZED]
    images = sorted(table["image"].unique())[:max_images]
    rng = np.random.default_rng(seed)
    patches, labels, groups = [], [], []
    for number, image in enumerate(images, start=1):
        rows = table[table["image"] == image]
        take = rows.iloc[np.sort(rng.permutation(len(rows))[:points_per_image])]
        pixels = load_rgb(folder / "images" / image)
        patches.append(crop_patches(pixels, take["row"].to_numpy(), take["column"].to_numpy()))
        labels.extend(take["label"].astype(str))
        groups.extend([image] * len(take))
        progress("Moorea images", number, len(images))
    return {
        "patches": np.concatenate(patches),
        "labels": np.array(labels),
        "groups": np.array(groups),
    }


def pretrain_backbone(
    root: Path, work: Path, method: str, backbone: str, steps: int, size: int, batch: int
) -> tuple[Path, dict[str, Any]]:
    """A short quadrat.ssl run on patches cut from the Moorea and georeferenced photos."""
    from quadrat.ssl.config import SSLConfig
    from quadrat.ssl.train import pretrain

    out = work / f"pretrain-{method}-{backbone}-{size}px-{steps}steps"
    target = out / "backbone.safetensors"
    info = {
        "method": method,
        "backbone": backbone,
        "steps": steps,
        "image_size": size,
        "batch_size": batch,
    }
    if target.exists():
        return target, {**info, "seconds": None, "cached": True}
    photos = work / "pretrain-photos"  # links, not copies, to the shared photos
    photos.mkdir(parents=True, exist_ok=True)
    sources = sorted((root / "moorea-lter-2008" / "images").glob("*.jpg"))
    sources += sorted((root / "georef-photoquadrats" / "PhotoswithGPS").glob("*.jpg"))
    for source in sources:
        link = photos / f"{source.parent.parent.name}-{source.name}"
        if not link.exists():
            link.symlink_to(source)
    config = SSLConfig.for_method(
        method,
        backbone=backbone,
        max_steps=steps,
        epochs=1000,
        batch_size=batch,
        accelerator="cpu",
        precision="32-true",
        checkpoint_every_n_steps=10,
        log_every_n_steps=10,
        augment={"image_size": size},
        data={
            "num_workers": 1,
            "patches_per_photo": 32,
            "patch_size": 2 * size,
            "shuffle_buffer": 256,
        },
    )
    start = time.perf_counter()
    result = pretrain(config, photos, out, kind="photos", resume=True)
    info.update(seconds=round(time.perf_counter() - start, 1), photos=len(sources), cached=False)
    return result, info


def features_for(
    name: str,
    weights: Path | None,
    datasets: dict[str, dict[str, np.ndarray]],
    work: Path,
    batch_size: int,
    progress: Progress,
    bn_patches: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features of every data set for one extractor, from the cache when present.

    ``bn_patches``: re-estimate the network's BatchNorm statistics on these real patches
    first (the control that separates "pretrained" from "BN statistics of real images").
    """
    # An exported backbone file names its own network, so it stands in for the name.
    extractor = create_extractor(
        name if weights is None else str(weights),
        random_weights=weights is None,
        batch_size=batch_size,
    )
    variant = ""
    if bn_patches is not None:
        if not isinstance(extractor, TorchExtractor):
            raise InputError(f"{name} has no BatchNorm statistics to re-estimate", value=name)
        with torch.no_grad():
            batch = extractor.preprocess(torch.from_numpy(bn_patches))
            torch.optim.swa_utils.update_bn([batch], extractor.model)
        extractor.model.eval()
        variant = f"+real-bn{len(bn_patches)}"
    out, info = {}, {"key": extractor.key + variant, "dim": extractor.feature_dim}
    for data_name, data in datasets.items():
        tag = f"{extractor.key}{variant}-{data_name}-{len(data['patches'])}".replace("/", "_")
        cache = work / "features" / f"{tag.replace(':', '_').replace('@', '_')}.npy"
        if cache.exists():
            out[data_name] = np.load(cache)
            continue
        patches = data["patches"]
        start, chunks = time.perf_counter(), []
        step = max(batch_size, 64)
        for i in range(0, len(patches), step):
            chunks.append(extractor.extract(patches[i : i + step]))
            progress(f"{name} on {data_name}", min(i + step, len(patches)), len(patches))
        features = np.concatenate(chunks)
        info[f"{data_name}_patches_per_s"] = round(len(patches) / (time.perf_counter() - start), 1)
        save_atomic(features, cache)
        out[data_name] = features
    return out, info


def real_patch_sample(datasets: dict[str, dict[str, np.ndarray]], n: int, seed: int) -> np.ndarray:
    """``n`` patches drawn evenly from the data sets, for BatchNorm re-estimation."""
    rng = np.random.default_rng(seed)
    share = max(1, n // len(datasets))
    return np.concatenate(
        [
            d["patches"][rng.choice(len(d["patches"]), min(share, len(d["patches"])), False)]
            for d in datasets.values()
        ]
    )


def linear_probe_scores(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, folds: int, seed: int
) -> dict[str, Any]:
    """Whole-split accuracy and macro F1 of out-of-fold linear-probe predictions."""
    splits = grouped_folds(labels, groups, folds, random_state=seed)
    predicted = cross_validated_predictions(
        LinearProbe(random_state=seed), features, labels, splits
    )
    scores = flat_metrics(labels, predicted, np.unique(labels))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def seattle_hierarchy(labels: np.ndarray) -> dict[str, Any]:
    """CATAMI targets, masks, ancestor matrix (R) and groups for the mapped Seattle patches."""
    from quadrat.labels.catami_io import default_catami
    from quadrat.labels.hierarchy import HierarchyEncoder
    from quadrat.labels.translate import propose_mapping
    from quadrat.labels.translate_io import SourceLabel

    tree = default_catami()
    classes = sorted(set(labels))
    proposals = propose_mapping([SourceLabel(c) for c in classes], tree)
    mapping = {row.source_label: row.caab_code for row in proposals.itertuples() if row.caab_code}
    for label, path in SEATTLE_REVIEWED.items():
        code = tree.by_path(path)
        if code is None:
            raise InputError("reviewed CATAMI path not in the tree", value=path)
        mapping.setdefault(label, code)
    keep = np.array([label in mapping for label in labels])
    encoder = HierarchyEncoder(tree).fit()
    targets, mask = encoder.encode([[mapping[label]] for label in labels[keep]])
    used = mask.any(axis=0)  # nodes no patch says anything about are not modelled at all
    return {
        "keep": keep,
        "targets": targets[:, used].astype(np.int8),
        "mask": mask[:, used],
        "ancestor_matrix": encoder.ancestor_matrix()[np.ix_(used, used)],
        "groups": depth_groups(encoder.depth_[used], encoder.head_of_[used]),
        "mapping": {label: tree.path_str(code) for label, code in sorted(mapping.items())},
        "unmapped": [c for c in classes if c not in mapping],
    }


def hierarchical_scores(
    features: np.ndarray,
    labels: np.ndarray,
    hierarchy: dict[str, Any],
    folds: int,
    seed: int,
    probe_options: dict[str, Any],
) -> dict[str, Any]:
    """Out-of-fold constrained probabilities of the CATAMI probe, scored over the split."""
    keep = hierarchy["keep"]
    x, y_flat = features[keep], labels[keep]
    targets, mask = hierarchy["targets"], hierarchy["mask"]
    proba = np.zeros(targets.shape, dtype=np.float32)
    for train, test in grouped_folds(y_flat, None, folds, random_state=seed):
        probe = HierarchicalProbe(hierarchy["ancestor_matrix"], random_state=seed, **probe_options)
        probe.fit(x[train], targets[train], mask[train])
        proba[test] = probe.predict_proba(x[test])
    scores = hierarchical_metrics(targets, proba, mask, groups=hierarchy["groups"])

    def rounded(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, float):
            return None if np.isnan(value) else round(value, 4)  # JSON has no NaN
        return value

    return rounded(scores)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data",
        help="the shared data folder",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "quadrat-evaluate",
        help="cache of features and pretraining runs",
    )
    parser.add_argument(
        "--extractors",
        default="texture,timm:resnet18,efficientnet_b0",
        help="comma-separated extractor names (random weights for CNNs)",
    )
    parser.add_argument(
        "--pretrained",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an exported backbone file to compare (repeatable)",
    )
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        default=0,
        help="pretrain a backbone here first for this many steps (0: no)",
    )
    parser.add_argument("--pretrain-method", default="simsiam")
    parser.add_argument("--pretrain-backbone", default="resnet18")
    parser.add_argument("--pretrain-size", type=int, default=112)
    parser.add_argument("--pretrain-batch", type=int, default=32)
    parser.add_argument(
        "--real-bn",
        type=int,
        default=0,
        help="also score each random CNN with BatchNorm statistics re-estimated on this many "
        "real patches (the control for pretrained backbones; 0: no)",
    )
    parser.add_argument("--seattle-per-class", type=int, default=40)
    parser.add_argument("--moorea-points", type=int, default=60)
    parser.add_argument("--moorea-images", type=int, default=None)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--hier-epochs", type=int, default=100)
    parser.add_argument("--hier-lr", type=float, default=3e-5)
    parser.add_argument("--hier-hidden", type=int, default=2048)
    parser.add_argument("--no-hierarchical", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole evaluation; returns the JSON table."""
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*random weights.*")
    started = time.perf_counter()
    result: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    names = [name.strip() for name in args.extractors.split(",") if name.strip()]
    extractors: list[tuple[str, Path | None]] = [(name, None) for name in names]
    for item in args.pretrained:
        name, _, path = item.partition("=")
        if not path:
            raise InputError("--pretrained takes NAME=PATH", value=item)
        extractors.append((name, Path(path)))
    with progress_bar() as progress:
        if args.pretrain_steps > 0:
            path, info = pretrain_backbone(
                args.data,
                args.work,
                args.pretrain_method,
                args.pretrain_backbone,
                args.pretrain_steps,
                args.pretrain_size,
                args.pretrain_batch,
            )
            result["pretraining"] = info
            extractors.append((f"ssl-{args.pretrain_method}-{args.pretrain_backbone}", path))
        datasets = {
            "seattle": load_seattle(args.data, args.seattle_per_class, progress),
            "moorea": load_moorea(
                args.data, args.moorea_points, args.moorea_images, args.seed, progress
            ),
        }
    result["data"] = {
        name: {
            "n": len(d["labels"]),
            "classes": int(np.unique(d["labels"]).size),
            "groups": int(np.unique(d["groups"]).size),
            "majority": round(
                float(np.unique(d["labels"], return_counts=True)[1].max() / len(d["labels"])), 4
            ),
        }
        for name, d in datasets.items()
    }
    hierarchy = None
    if not args.no_hierarchical:
        hierarchy = seattle_hierarchy(datasets["seattle"]["labels"])
        result["catami"] = {
            "mapping": hierarchy["mapping"],
            "unmapped": hierarchy["unmapped"],
            "n": int(hierarchy["keep"].sum()),
            "nodes": int(hierarchy["targets"].shape[1]),
        }
    table: dict[str, Any] = {}
    runs: list[tuple[str, str, Path | None, np.ndarray | None]] = [
        (name, name, weights, None) for name, weights in extractors
    ]
    if args.real_bn > 0:
        bn_patches = real_patch_sample(datasets, args.real_bn, args.seed)
        runs += [(f"{n}+real-bn", n, None, bn_patches) for n in names if n != "texture"]
    for name, extractor_name, weights, bn in runs:
        with progress_bar() as progress:
            features, info = features_for(
                extractor_name, weights, datasets, args.work, args.batch_size, progress, bn
            )
        row: dict[str, Any] = {"extractor": info}
        row["seattle"] = linear_probe_scores(
            features["seattle"], datasets["seattle"]["labels"], None, args.folds, args.seed
        )
        row["moorea"] = linear_probe_scores(
            features["moorea"],
            datasets["moorea"]["labels"],
            datasets["moorea"]["groups"],
            args.folds,
            args.seed,
        )
        if hierarchy is not None:
            start = time.perf_counter()
            row["seattle_catami"] = hierarchical_scores(
                features["seattle"],
                datasets["seattle"]["labels"],
                hierarchy,
                args.folds,
                args.seed,
                {"epochs": args.hier_epochs, "lr": args.hier_lr, "hidden": args.hier_hidden},
            )
            row["seattle_catami"]["seconds"] = round(time.perf_counter() - start, 1)
        table[name] = row
        print(f"{name}: Seattle {row['seattle']}, Moorea {row['moorea']}", file=sys.stderr)
    result["results"] = table
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
