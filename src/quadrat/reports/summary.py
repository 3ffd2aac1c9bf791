"""A source at a glance: counts, the active classifier's metrics, alleviation, cover, and
the classifiers the policy rejected (with why).

Built from a :class:`quadrat.Source` alone (no store access, no SQL here);
``Source.report(out_dir)`` is the public way in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quadrat.io.atomic import write_text

if TYPE_CHECKING:
    from quadrat.workflow.source import Source


@dataclass
class SourceReport:
    """What ``quadrat report`` prints; ``files`` lists what :func:`write_report` wrote."""

    source: str
    n_images: int
    n_confirmed_images: int
    n_points: int
    status_counts: dict[str, int]
    target_accuracy: float
    #: The active classifier (the latest the policy accepted: what ``classify`` uses).
    classifier: dict[str, Any] | None = None
    #: Classifiers the policy rejected, oldest first: id, kind, extractor_key, accuracy,
    #: compared_with (the classifier active when it was trained, or None),
    #: compared_accuracy, and ``reason`` in words.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    per_label: list[dict[str, Any]] = field(default_factory=list)
    curve: pd.DataFrame | None = None
    suggested_threshold: dict[str, float] | None = None
    cover: pd.DataFrame | None = None
    overall_cover: dict[str, float] = field(default_factory=dict)
    #: The source's cover with its 95 % two-stage bootstrap interval (percent; columns
    #: label, estimate, lower, upper), machine labels as they are: docs/cover.md.
    cover_intervals: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)


def build_report(src: Source, *, target_accuracy: float = 0.95) -> SourceReport:
    """Counts, the active classifier with its suggested threshold, the rejected ones, cover.

    The active classifier is the latest accepted one (a newer one the policy rejected is
    listed in ``rejected`` with its accuracy against the one active when it was trained).
    """
    from quadrat.classifiers.metrics import choose_threshold

    counts = src.counts()
    totals = ("images", "confirmed_images", "points", "annotations")
    status_counts = {
        status: n
        for status, n in counts.items()
        if status not in totals and (n or status == "unannotated")
    }
    report = SourceReport(
        source=src.name,
        n_images=counts["images"],
        n_confirmed_images=counts["confirmed_images"],
        n_points=counts["points"],
        status_counts=status_counts,
        target_accuracy=target_accuracy,
    )
    history = src.classifiers()
    report.rejected = _rejected(history)
    record = next((c for c in reversed(history) if c.accepted), None)
    if record is not None:
        codes = src.label_codes()
        metrics = dict(record.metrics)
        report.classifier = {
            "id": record.id,
            "kind": record.kind,
            "extractor_key": record.extractor_key,
            "accepted": record.accepted,
            "accuracy": record.accuracy,
            "macro_f1": float(metrics.get("macro_f1", float("nan"))),
            "n_train": record.n_train,
            "n_val": record.n_val,
            "n_images": record.n_images,
            "train_seconds": record.train_seconds,
            "hyperparameters": record.hyperparameters,
            "metrics": metrics,
        }
        report.per_label = [
            {**row, "label": codes.get(_as_int(row["label"]), row["label"])}
            for row in _per_label_rows(metrics.get("per_label"))
        ]
        if metrics.get("alleviate_curve"):
            report.curve = pd.DataFrame(metrics["alleviate_curve"])
            chosen = choose_threshold(report.curve, target_accuracy)
            if chosen is not None:
                row = report.curve.loc[(report.curve["threshold"] - chosen).abs().idxmin()]
                report.suggested_threshold = {
                    k: float(row[k])
                    for k in ("threshold", "accuracy_accepted", "fraction_accepted")
                }
        report.classifier["label_codes"] = codes
    cover = src.cover()
    report.cover = cover
    if len(cover):
        report.overall_cover = {
            str(c): float(cover[c].mean()) for c in cover.columns[4:] if cover[c].mean() > 0
        }
        whole = src.cover(True, level="source")
        labels = [str(c) for c in cover.columns[4:]]
        report.cover_intervals = pd.DataFrame(
            {
                "label": labels,
                **{
                    part: [float(whole[f"{label} {part}"].iloc[0]) for label in labels]
                    for part in ("estimate", "lower", "upper")
                },
            }
        )
    return report


def _rejected(history: list[Any]) -> list[dict[str, Any]]:
    """Rejected classifiers with the accuracy that beat them (history is oldest first)."""
    out: list[dict[str, Any]] = []
    active: Any = None
    for record in history:
        if record.accepted:
            active = record
            continue
        compared = active.accuracy if active is not None else None
        if active is None:
            reason = "rejected by the policy (no accepted classifier to compare with)"
        elif record.accuracy is None:
            reason = (
                "rejected: no validation accuracy (no validation point with a known label); "
                f"classifier {active.id} stayed active"
            )
        else:
            reason = (
                f"rejected: validation accuracy {record.accuracy:.3f} did not beat "
                f"classifier {active.id}'s {_fmt(compared)}, which stayed active"
            )
        out.append(
            {
                "id": record.id,
                "kind": record.kind,
                "extractor_key": record.extractor_key,
                "accuracy": record.accuracy,
                "compared_with": active.id if active is not None else None,
                "compared_accuracy": compared,
                "reason": reason,
            }
        )
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _per_label_rows(per_label: Any) -> list[dict[str, Any]]:
    """Per-label metrics as stored (a column-oriented dict or a list of rows)."""
    if per_label is None:
        return []
    frame = pd.DataFrame(per_label)
    return frame.to_dict(orient="records")


def write_report(report: SourceReport, out: Path) -> list[Path]:
    """Plots (alleviate curve, confusion matrix, cover), metrics.json and cover.csv."""
    from quadrat.io.coralnet import write_percent_cover_csv
    from quadrat.reports.plots import plot_alleviate_curve, plot_confusion_matrix, plot_cover

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if report.classifier is not None:
        metrics = report.classifier["metrics"]
        if report.curve is not None:
            chosen = report.suggested_threshold["threshold"] if report.suggested_threshold else None
            written.append(
                plot_alleviate_curve(
                    report.curve, out / "alleviate_curve.png", chosen_threshold=chosen
                )
            )
        if metrics.get("confusion") is not None:
            codes = report.classifier["label_codes"]
            labels = [codes.get(_as_int(x), str(x)) for x in metrics.get("labels", [])]
            written.append(
                plot_confusion_matrix(
                    np.asarray(metrics["confusion"]), labels, out / "confusion_matrix.png"
                )
            )
        summary = {k: v for k, v in report.classifier.items() if k not in ("label_codes",)}
        summary["rejected"] = report.rejected
        write_text(out / "metrics.json", json.dumps(summary, indent=2, default=str))
        written.append(out / "metrics.json")
    if report.cover is not None and len(report.cover):
        written.append(write_percent_cover_csv(report.cover, out / "cover.csv"))
        wide = report.cover.set_index("Image name").iloc[:, 3:]
        written.append(plot_cover(wide, out / "cover.png", title=f"Cover: {report.source}"))
        if report.cover_intervals is not None:
            bounds = report.cover_intervals.set_index("label") / 100.0
            written.append(
                plot_cover(
                    bounds["estimate"],
                    out / "cover_intervals.png",
                    title=f"Cover of {report.source} (95 % two-stage bootstrap interval)",
                    intervals=bounds,
                )
            )
    return written
