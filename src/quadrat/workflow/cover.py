"""A source's percent cover with confidence intervals, corrected or not (issue 15).

Gathers what :func:`quadrat.reports.cover_uncertainty.cover_intervals` needs from the
store: every point of the images whose points are all annotated (CoralNet's rule), which
of them a person labelled (``imported``, ``confirmed``: taken as true) and which the
machine did (``machine``, ``alleviate``: corrected), the validation confusions of the
classifier that set the machine labels (stored with it at training time), and each
machine point's scores (its stored top-5, the rest of the probability spread evenly).
See docs/cover.md for the method and its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quadrat.errors import InputError, StateError
from quadrat.store import queries

if TYPE_CHECKING:
    from quadrat.reports.quantify import Validation
    from quadrat.workflow.source import Source

#: ``corrected`` values and the estimator each names.
CORRECTIONS = {"none": "naive", "acc": "acc", "pacc": "pacc"}
#: Columns written after the label columns of a cover table with estimates.
SETTINGS_COLUMNS = ("Method", "Confidence", "Replicates")


@dataclass(frozen=True)
class Level:
    """Where cover is summarised: per ``image``, per ``site`` (a metadata column), or the
    whole ``source``."""

    kind: str
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> Level:
        """``image``, ``source`` or ``site:COLUMN`` (COLUMN: an image metadata column)."""
        value = str(text).strip()
        if value in ("image", "source"):
            return cls(value)
        kind, _, column = value.partition(":")
        if kind == "site" and column.strip():
            return cls("site", column.strip())
        raise InputError(
            f"level must be image, source or site:COLUMN (an image metadata column such as "
            f"site:Aux1), not {text!r}",
            value=text,
            param="level",
        )


def cover(
    src: Source,
    intervals: bool = False,
    *,
    level: str = "image",
    corrected: str = "none",
    confidence: float = 0.95,
    replicates: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Cover per image, site or source with ``<label> estimate`` (and, with ``intervals``,
    ``<label> lower`` / ``<label> upper``) columns after the naive ``<label>`` ones.

    Per image the leading columns are CoralNet's (``Image ID``, ``Image name``,
    ``Annotation status``, ``Points``); per site the metadata column's name, ``Images``
    and ``Points``; per source ``Source``, ``Images``, ``Points``. ``Method``,
    ``Confidence`` and ``Replicates`` close each row.
    """
    from quadrat.reports.cover_uncertainty import check_settings, cover_intervals, wide_cover

    where = Level.parse(level)
    if corrected not in CORRECTIONS:
        raise InputError(
            f"corrected must be none, acc or pacc, not {corrected!r}",
            value=corrected,
            param="corrected",
        )
    method = CORRECTIONS[corrected]
    check_settings(method, confidence, replicates)
    points, images, labels = _points(src, where)
    validation, scores = _correction(src, points, method)
    long = cover_intervals(
        points,
        labels,
        group="group",
        method=method,
        validation=validation,
        scores=scores,
        confidence=confidence,
        replicates=replicates,
        seed=seed,
        intervals=intervals,
    )
    wide = wide_cover(long, bounds=intervals) if len(long) else _empty(labels, intervals)
    settings = {
        "Method": corrected,
        "Confidence": confidence if intervals else None,
        "Replicates": replicates if intervals else None,
    }
    if where.kind == "image":
        head = images.set_index("Image name").reindex(wide.index).rename_axis("Image name")
        out = head.reset_index()[["Image ID", "Image name", "Annotation status", "Points"]]
    else:
        name = where.column if where.kind == "site" else "Source"
        group_values = long.drop_duplicates("group").set_index("group")
        out = pd.DataFrame(
            {
                name: [src.name] * len(wide) if where.kind == "source" else list(wide.index),
                "Images": group_values["images"].reindex(wide.index).to_numpy(),
                "Points": group_values["points"].reindex(wide.index).to_numpy(),
            }
        )
    out = pd.concat([out.reset_index(drop=True), wide.reset_index(drop=True)], axis=1)
    for column, value in settings.items():
        out[column] = value
    out.attrs["cover"] = long.attrs.get("cover")
    out.attrs["indistinguishable"] = long.attrs.get("indistinguishable", [])
    out.attrs["level"] = where
    return out


def _empty(labels: list[str], intervals: bool) -> pd.DataFrame:
    parts = ("estimate", "lower", "upper") if intervals else ("estimate",)
    columns = list(labels) + [f"{label} {part}" for label in labels for part in parts]
    return pd.DataFrame(columns=columns, index=pd.Index([], name="group"))


def _points(src: Source, where: Level) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Points of the complete images (CoralNet's rule), the CoralNet cover table, labels."""
    from quadrat.io.coralnet import cover_table
    from quadrat.workflow.exports import COVER_STATUS

    table = src.annotations()
    frame = pd.DataFrame(
        {
            "image_id": table["image_id"],
            "image_name": table["image"],
            "label": table["label"],
            "status": table["status"].map(COVER_STATUS),
        }
    )
    images = cover_table(frame, src.labelset())
    labels = [str(c) for c in images.columns[4:]]
    table = table[table["image"].isin(set(images["Image name"]))]
    points = pd.DataFrame(
        {
            "image": table["image"].astype(str).to_numpy(),
            "label": table["label"].astype(str).to_numpy(),
            "known": table["status"].isin(queries.HUMAN_STATUSES).to_numpy(),
        },
        index=table.index,
    )
    if where.kind == "image":
        points["group"] = points["image"]
    elif where.kind == "source":
        points["group"] = src.name
    else:
        column = str(where.column)
        metadata = table["metadata"].map(lambda m: m if isinstance(m, dict) else {})
        names = sorted({str(k) for m in metadata for k in m})
        if column not in names:
            raise InputError(
                f"no image metadata column {column!r} for level site:{column} "
                f"(columns: {', '.join(names) or 'none'})",
                value=column,
                param="level",
            )
        values = metadata.map(lambda m: m.get(column))
        points["group"] = values.map(lambda v: "" if v is None or pd.isna(v) else str(v))
    return points, images, labels


def _correction(
    src: Source, points: pd.DataFrame, method: str
) -> tuple[Validation | None, np.ndarray | None]:
    """The validation confusions (and, for pacc, each point's scores) to correct with."""
    if method == "naive" or points["known"].all():
        return None, None
    with src.project.store.session() as session:
        ids = queries.machine_label_classifiers(session, src.id)
        if None in ids:
            raise StateError(
                "some machine labels come from a classifier that no longer exists; "
                "classify again before correcting cover",
                param="corrected",
            )
        if len(ids) != 1:
            raise StateError(
                f"machine labels come from classifiers {', '.join(map(str, ids))}; classify "
                "again so that one classifier set them all before correcting cover",
                value=ids,
                param="corrected",
            )
        record = queries.get_classifier(session, src.id, int(ids[0]))  # type: ignore[arg-type]
    validation = validation_of(record.metrics, src.label_codes(), classifier_id=record.id)
    scores = machine_scores(src, points, validation) if method == "pacc" else None
    return validation, scores


def validation_of(
    metrics: dict[str, Any], codes: dict[int, str], *, classifier_id: int | None = None
) -> Validation:
    """A classifier record's validation confusions (and mean scores, when stored), with
    label ids turned into short codes."""
    from quadrat.reports.quantify import Validation

    if metrics.get("confusion") is None or metrics.get("labels") is None:
        raise StateError(
            f"classifier {classifier_id} has no stored validation confusion matrix; "
            "train a new classifier",
            value=classifier_id,
            param="corrected",
        )

    def code(value: Any) -> str:
        try:
            return codes.get(int(value), str(value))
        except (TypeError, ValueError):
            return str(value)

    labels = tuple(code(v) for v in metrics["labels"])
    confusion = np.asarray(metrics["confusion"], dtype=np.float64)
    stored = metrics.get("validation_scores")
    mean = None
    if stored and [code(v) for v in stored.get("labels", [])] == list(labels):
        mean = np.asarray(stored["mean_scores"], dtype=np.float64)
    return Validation(labels, confusion, mean, classifier_id)


def machine_scores(src: Source, points: pd.DataFrame, validation: Validation) -> np.ndarray:
    """Each point's scores over the classifier's labels from its stored top-5; the mass
    the top-5 leave is spread evenly over the other labels (exact with up to 5 labels)."""
    table = src.annotations().loc[points.index]
    classes = pd.Index(list(validation.labels))
    k = len(classes)
    scores = np.zeros((len(table), k))
    listed = np.zeros((len(table), k), dtype=bool)
    rows = np.arange(len(table))
    for rank in range(1, 6):
        if f"suggestion_{rank}" not in table:
            break
        col = classes.get_indexer(table[f"suggestion_{rank}"].astype("string").fillna(""))
        ok = col >= 0
        value = pd.to_numeric(table[f"confidence_{rank}"], errors="coerce").fillna(0.0)
        scores[rows[ok], col[ok]] = value.to_numpy(dtype=np.float64)[ok]
        listed[rows[ok], col[ok]] = True
    rest = np.clip(1.0 - scores.sum(axis=1), 0.0, None)
    others = (~listed).sum(axis=1)
    spread = np.where(others > 0, rest / np.maximum(others, 1), 0.0)
    scores = np.where(listed, scores, spread[:, None])
    machine = ~points["known"].to_numpy()
    unscored = machine & ~listed.any(axis=1)
    if unscored.any():
        raise StateError(
            f"{int(unscored.sum())} machine points have no stored scores; classify again",
            param="corrected",
        )
    return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)


def write_cover(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    summary: pd.DataFrame | None = None,
    escape_formulas: bool = False,
) -> Path:
    """Write a :func:`cover` table as CSV (percents with 3 decimals, as CoralNet's).

    ``summary``: the source-level table, written as a final ``ALL IMAGES`` row of a
    per-image table (its naive columns are the mean of the images', as CoralNet's).
    """
    from quadrat.io.coralnet._cells import blank, write_csv

    out = frame.copy()
    numeric = [c for c in out.columns if _is_percent(c, out)]
    if summary is not None and len(out) > 1:
        row: dict[str, Any] = {c: "" for c in out.columns}
        row["Image ID"] = "ALL IMAGES"
        for column in numeric:
            if column in summary.columns:
                row[column] = summary[column].iloc[0]
        for column in SETTINGS_COLUMNS:
            row[column] = out[column].iloc[0]
        out = pd.concat([out, pd.DataFrame([row])], ignore_index=True)
    for column in numeric:
        out[column] = out[column].map(_pct)
    for column in out.columns:
        if column not in numeric:
            out[column] = blank(out[column])
    return write_csv(out, path, escape_formulas=escape_formulas)


def _is_percent(column: str, frame: pd.DataFrame) -> bool:
    fixed = {"Image ID", "Image name", "Annotation status", "Points", "Images", "Source"}
    level = frame.attrs.get("level")
    if column in fixed or column in SETTINGS_COLUMNS:
        return False
    return not (level is not None and level.kind == "site" and column == level.column)


def _pct(value: Any) -> str:
    if value is None or value == "" or pd.isna(value):
        return ""
    text = format(float(value), ".3f")
    return "0.000" if text == "-0.000" else text
