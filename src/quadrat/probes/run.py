"""Run the flat and the hierarchical CATAMI probes on a backbone and a labelled table.

Why one function: ``quadrat probe`` and Python users want "how good is this backbone on
my labels" without wiring features, folds, the CATAMI encoding and the metrics by hand
(docs/probes.md shows that wiring). The steps are the evaluation script's
(``benchmarks/evaluate_representations.py``): frozen features of every labelled patch,
image-grouped stratified folds, out-of-fold predictions scored once over the whole split.

A labelled table is either a CoralNet annotation CSV (``Name, Row, Column, Label``) with
the folder of its photos (a patch is cut at every point, folds grouped by photo), or a
patch table (CSV or Parquet) with a ``path`` column of patch files (relative to the
table's folder), a label column and an optional ``group`` column (else each patch is its
own group). Labels reach the hierarchical probe through a CATAMI mapping (label -> CAAB
code, :func:`quadrat.labels.translate_io.read_mapping`) or, without one, as anything
:meth:`CatamiTree.find <quadrat.labels.catami.CatamiTree.find>` resolves (a CAAB code,
a path such as ``Biota > Macroalgae``, a unique name or CPC code); labels that resolve to
nothing are left out of that probe and listed in ``unmapped``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from quadrat.errors import InputError, TrainingDataError, UnknownNodeError

if TYPE_CHECKING:
    from quadrat.extractors.base import Extractor
    from quadrat.labels.catami import CatamiTree

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LabelledPatches:
    """Where each labelled sample's patch comes from: a patch file, or a point on a photo."""

    labels: npt.NDArray[np.str_]
    groups: npt.NDArray[np.str_]
    files: list[Path]
    rows: npt.NDArray[np.int64] | None = None
    cols: npt.NDArray[np.int64] | None = None
    lines: npt.NDArray[np.int64] | None = None  # the CSV line of each point, for errors

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, size: int) -> Iterator[npt.NDArray[np.uint8]]:
        """(n, S, S, 3) uint8 patches, ``size`` at a time; each photo is decoded once per run."""
        from quadrat.io.images import load_rgb
        from quadrat.patches import crop_patches

        photo: tuple[Path, np.ndarray] | None = None
        for start in range(0, len(self), size):
            stop = min(start + size, len(self))
            if self.rows is None or self.cols is None:
                yield np.stack([_square_patch(load_rgb(f)) for f in self.files[start:stop]])
                continue
            out = []
            for i in range(start, stop):
                if photo is None or photo[0] != self.files[i]:
                    photo = (self.files[i], load_rgb(self.files[i]))
                try:
                    out.append(crop_patches(photo[1], self.rows[i : i + 1], self.cols[i : i + 1]))
                except InputError as exc:
                    line = None if self.lines is None else int(self.lines[i])
                    raise type(exc)(
                        exc.message, path=self.files[i], line=line, value=exc.value
                    ) from None
            yield np.concatenate(out)


def _square_patch(rgb: np.ndarray) -> np.ndarray:
    """A patch file as PATCH_SIZE x PATCH_SIZE: centre-cropped to square, resized if needed."""
    from PIL import Image

    from quadrat.patches import PATCH_SIZE

    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top : top + side, left : left + side]
    if side != PATCH_SIZE:
        resized = Image.fromarray(square).resize(
            (PATCH_SIZE, PATCH_SIZE), Image.Resampling.BILINEAR
        )
        square = np.asarray(resized)
    return square


def read_labelled_patches(
    path: str | Path, *, image_dir: str | Path | None = None, label_column: str = "label"
) -> LabelledPatches:
    """A labelled table: CoralNet annotations with ``image_dir``, else a patch table.

    Rows without a label are left out. Files are checked to exist here, so a missing
    photo or patch fails before any feature is computed.
    """
    import pandas as pd

    path = Path(path)
    if image_dir is not None:
        from quadrat.io.coralnet.annotations import read_annotations_csv

        table = read_annotations_csv(path)
        table = table[table["label"].notna()]
        folder = Path(image_dir)
        files = [folder / str(name) for name in table["image"]]
        rows = table["row"].to_numpy(np.int64)
        cols = table["column"].to_numpy(np.int64)
        groups = table["image"].astype(str).to_numpy()
        lines = table["line"].to_numpy(np.int64)
    else:
        from quadrat.io.tables import read_table

        table = read_table(path, line_index=True)
        missing = [c for c in ("path", label_column) if c not in table.columns]
        if missing:
            raise InputError(
                f"a patch table needs the column(s) {', '.join(missing)} "
                "(or give the photos' folder for a CoralNet annotation CSV)",
                path=path,
                value=list(table.columns),
                param="label_column" if label_column in missing else "path",
            )
        table = table[table[label_column].notna()]
        files = [path.parent / str(p) for p in table["path"]]
        rows = cols = lines = None
        groups = (
            table["group"].astype(str).to_numpy()
            if "group" in table.columns
            else np.array([str(i) for i in range(len(table))])
        )
    for file in dict.fromkeys(files):
        if not file.is_file():
            raise InputError("image not found", path=file, param="image_dir")
    labels = pd.Series(table[label_column if image_dir is None else "label"]).astype(str)
    return LabelledPatches(
        labels=labels.to_numpy(dtype=str),
        groups=np.asarray(groups, dtype=str),
        files=files,
        rows=rows,
        cols=cols,
        lines=lines,
    )


def extract_features(
    data: LabelledPatches,
    extractor: Extractor,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> npt.NDArray[np.float32]:
    """Frozen features (n, d) of every labelled patch, one batch in memory at a time."""
    chunks = []
    done = 0
    for patches in data.batches(batch_size):
        chunks.append(np.asarray(extractor.extract(patches), dtype=np.float32))
        done += len(patches)
        if progress is not None:
            progress("Features", done, len(data))
    if not chunks:
        raise TrainingDataError("the table has no labelled sample", param="path")
    return np.concatenate(chunks)


@dataclass
class ProbeResults:
    """What :func:`run_probes` measured; ``to_dict`` is plain JSON (NaN as None)."""

    samples: int
    classes: int
    folds: int
    seed: int
    flat: dict[str, float | int]
    hierarchical: dict[str, Any] | None = None
    hierarchical_note: str | None = None
    catami: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    extractor: str | None = None
    feature_dim: int | None = None

    def to_dict(self) -> dict[str, Any]:
        from quadrat._util import jsonable

        return dict(jsonable(asdict(self)))


def catami_codes(
    labels: npt.ArrayLike, mapping: Mapping[str, str] | None = None, tree: CatamiTree | None = None
) -> tuple[dict[str, str], list[str]]:
    """{label: CAAB code} for the labels that reach CATAMI, and the sorted ones that do not."""
    from quadrat.labels.catami_io import default_catami

    tree = tree or default_catami()
    codes: dict[str, str] = {}
    unmapped: list[str] = []
    for label in sorted({str(v) for v in np.asarray(labels).ravel()}):
        if mapping is not None:
            code = mapping.get(label)
            if code is not None and code not in tree:
                raise UnknownNodeError(
                    f"the mapping gives {label!r} a code that is not a CATAMI node",
                    value=code,
                    param="mapping",
                )
        else:
            try:
                code = tree.find(label)
            except UnknownNodeError:
                code = None
        if code is None:
            unmapped.append(label)
        else:
            codes[label] = code
    return codes, unmapped


def run_probes(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
    *,
    folds: int = 4,
    seed: int = 0,
    hierarchical: bool = True,
    mapping: Mapping[str, str] | None = None,
    tree: CatamiTree | None = None,
    probe_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> ProbeResults:
    """The linear probe on the flat labels and the CATAMI probe on those that map, scored
    over the whole split from out-of-fold predictions (folds grouped by ``groups``).

    ``probe_options`` go to :class:`~quadrat.probes.hierarchical.HierarchicalProbe`
    (``epochs``, ``hidden``, ...; BenthicNet's "hp" settings by default). The hierarchical
    probe is skipped, with ``hierarchical_note`` saying why, when fewer than two labels map
    to CATAMI; ``hierarchical=False`` skips it on purpose (it needs torch).
    """
    from quadrat.probes.flat import LinearProbe, cross_validated_predictions, grouped_folds
    from quadrat.probes.metrics import flat_metrics

    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(labels).astype(str)
    g = None if groups is None else np.asarray(groups).astype(str)
    if x.ndim != 2 or len(x) != len(y):
        raise InputError(
            f"features (n, d) and labels (n,) do not fit: {x.shape}, {y.shape}",
            value=(x.shape, y.shape),
        )
    splits = grouped_folds(y, g, folds, random_state=seed)
    if progress is not None:
        progress("Probes", 0, 2 if hierarchical else 1)
    predicted = cross_validated_predictions(LinearProbe(random_state=seed), x, y, splits)
    results = ProbeResults(
        samples=len(y),
        classes=len(np.unique(y)),
        folds=len(splits),
        seed=seed,
        flat=flat_metrics(y, predicted, np.unique(y)),
    )
    if progress is not None:
        progress("Probes", 1, 2 if hierarchical else 1)
    if not hierarchical:
        results.hierarchical_note = "not asked for"
        return results
    codes, results.unmapped = catami_codes(y, mapping, tree)
    if len(set(codes.values())) < 2:
        results.hierarchical_note = "fewer than two labels map to CATAMI nodes"
        return results
    results.catami = _paths(codes, tree)
    results.hierarchical = _hierarchical(
        x, y, g, codes, folds=folds, seed=seed, tree=tree, options=probe_options or {}
    )
    if progress is not None:
        progress("Probes", 2, 2)
    return results


def _paths(codes: Mapping[str, str], tree: CatamiTree | None) -> dict[str, str]:
    from quadrat.labels.catami_io import default_catami

    tree = tree or default_catami()
    return {label: tree.path_str(code) for label, code in codes.items()}


def _hierarchical(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.str_],
    groups: npt.NDArray[np.str_] | None,
    codes: Mapping[str, str],
    *,
    folds: int,
    seed: int,
    tree: CatamiTree | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Out-of-fold constrained probabilities of the CATAMI probe on the mapped samples."""
    from quadrat.labels.hierarchy import HierarchyEncoder
    from quadrat.probes.flat import grouped_folds
    from quadrat.probes.hierarchical import HierarchicalProbe
    from quadrat.probes.metrics import depth_groups, hierarchical_metrics

    keep = np.array([label in codes for label in y])
    xk, yk = x[keep], y[keep]
    encoder = HierarchyEncoder(tree).fit()
    targets, mask = encoder.encode([[codes[label]] for label in yk])
    used = mask.any(axis=0)  # nodes no sample says anything about are not modelled
    targets, mask = targets[:, used].astype(np.int8), mask[:, used]
    R = encoder.ancestor_matrix()[np.ix_(used, used)]
    proba = np.zeros(targets.shape, dtype=np.float32)
    gk = None if groups is None else groups[keep]
    for train, test in grouped_folds(yk, gk, folds, random_state=seed):
        probe = HierarchicalProbe(R, random_state=seed, **options)
        probe.fit(xk[train], targets[train], mask[train])
        proba[test] = probe.predict_proba(xk[test])
    scores = hierarchical_metrics(
        targets, proba, mask, groups=depth_groups(encoder.depth_[used], encoder.head_of_[used])
    )
    scores["nodes"] = int(used.sum())
    return scores


def probe_backbone(
    data: LabelledPatches,
    extractor: Extractor,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    **options: Any,
) -> ProbeResults:
    """:func:`extract_features` then :func:`run_probes` (``options``), with the extractor's key."""
    features = extract_features(data, extractor, batch_size=batch_size, progress=progress)
    results = run_probes(features, data.labels, data.groups, progress=progress, **options)
    results.extractor = extractor.key
    results.feature_dim = int(features.shape[1])
    return results
