"""PNG figures for classifier reports: alleviate curve, confusion matrix, cover.

Figures are drawn on matplotlib's Agg canvas through the object API (no pyplot state, no
screen), and written atomically (temporary file + ``os.replace``) so a reader never sees
half a PNG and an interrupted run leaves the previous figure intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from quadrat.errors import InputError
from quadrat.io.atomic import atomic_file

#: Cover plots show this many labels; the rest are summed as "other".
MAX_COVER_LABELS = 12


def _save(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; returns the path."""
    FigureCanvasAgg(fig)
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def plot_alleviate_curve(
    curve: pd.DataFrame,
    path: str | Path,
    chosen_threshold: float | None = None,
    *,
    title: str = "Auto-accept (alleviate) trade-off",
) -> Path:
    """Accuracy of accepted points and fraction accepted against the threshold."""
    missing = {"threshold", "fraction_accepted", "accuracy_accepted"} - set(curve.columns)
    if missing:
        raise InputError(f"alleviate curve lacks columns {sorted(missing)}", path=path)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.plot(curve["threshold"], curve["accuracy_accepted"], label="accuracy of accepted", lw=2)
    ax.plot(curve["threshold"], curve["fraction_accepted"], label="fraction accepted", lw=2)
    if "overall_accuracy" in curve.columns:
        ax.plot(
            curve["threshold"],
            curve["overall_accuracy"],
            ls="--",
            lw=1,
            label="overall accuracy (rest corrected)",
        )
    if chosen_threshold is not None:
        ax.axvline(chosen_threshold, color="0.3", ls=":", label=f"threshold {chosen_threshold:.2f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence threshold (top score)")
    ax.set_ylabel("fraction")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(title)
    return _save(fig, path)


def plot_confusion_matrix(
    conf: npt.ArrayLike,
    labels: Sequence[Any] | np.ndarray,
    path: str | Path,
    *,
    title: str = "Confusion matrix (rows: true label, normalised)",
) -> Path:
    """Row-normalised confusion matrix, each cell annotated with its fraction."""
    conf = np.asarray(conf, dtype=np.float64)
    labels = [str(label) for label in labels]
    if conf.ndim != 2 or conf.shape != (len(labels), len(labels)):
        raise InputError(
            f"confusion matrix {conf.shape} does not match {len(labels)} labels", path=path
        )
    totals = conf.sum(axis=1, keepdims=True)
    norm = np.divide(conf, totals, out=np.zeros_like(conf), where=totals > 0)
    n = len(labels)
    size = max(4.0, 0.45 * n + 2.0)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if n <= 40:  # beyond that the numbers are unreadable anyway
        for i in range(n):
            for j in range(n):
                if conf[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{norm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_title(title)
    return _save(fig, path)


def _cover_table(cover: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """Cover as a wide table: one row per image (or one "all" row), one column per label.

    Accepts a Series (label -> cover), a wide DataFrame (index image, columns labels), or
    a long DataFrame with ``label`` and ``cover`` (or ``fraction``/``count``) columns and
    an optional ``image`` column.
    """
    if isinstance(cover, pd.Series):
        return cover.to_frame(name="all").T
    if "label" in cover.columns:
        value = next((c for c in ("cover", "fraction", "count") if c in cover.columns), None)
        if value is None:
            raise InputError("long cover table needs a 'cover', 'fraction' or 'count' column")
        image = "image" if "image" in cover.columns else None
        if image is None:
            return cover.groupby("label")[value].sum().to_frame(name="all").T
        return cover.pivot_table(index=image, columns="label", values=value, aggfunc="sum")
    return cover


def cover_plot_table(
    cover_frame: pd.DataFrame | pd.Series,
    *,
    max_labels: int = MAX_COVER_LABELS,
    path: str | Path | None = None,
) -> pd.DataFrame:
    """What :func:`plot_cover` draws: fractions per row, labels by overall cover.

    Labels with zero cover everywhere are left out (a legend entry for nothing misleads);
    beyond the ``max_labels`` largest the rest are summed as "other".
    """
    table = _cover_table(cover_frame).fillna(0.0).astype(np.float64)
    if table.empty or not np.isfinite(table.to_numpy()).all() or (table.to_numpy() < 0).any():
        raise InputError("cover table is empty or holds negative/non-finite values", path=path)
    totals = table.sum(axis=1).replace(0.0, np.nan)
    table = table.div(totals, axis=0).fillna(0.0)
    overall = table.sum(axis=0)
    table = table[overall[overall > 0].sort_values(ascending=False, kind="stable").index]
    if table.shape[1] > max_labels:
        kept = table.iloc[:, : max_labels - 1].copy()
        kept["other"] = table.iloc[:, max_labels - 1 :].sum(axis=1)
        table = kept
    return table


def plot_cover(
    cover_frame: pd.DataFrame | pd.Series,
    path: str | Path,
    *,
    title: str = "Cover",
    max_labels: int = MAX_COVER_LABELS,
    intervals: pd.DataFrame | None = None,
) -> Path:
    """Stacked bar of cover per image, or a bar per label for one overall cover.

    Rows are normalised to fractions; labels with no cover are left out and those beyond
    the ``max_labels`` largest overall are summed as "other" (:func:`cover_plot_table`).
    ``intervals`` (one overall cover only): ``lower`` and ``upper`` fractions indexed by
    label, drawn as error bars (labels without one, such as "other", get none).
    """
    table = cover_plot_table(cover_frame, max_labels=max_labels, path=path)
    labels = [str(c) for c in table.columns]
    if table.shape[0] == 1:
        fig = Figure(figsize=(max(5.0, 0.5 * len(labels) + 2), 4.5))
        ax = fig.add_subplot()
        values = table.iloc[0].to_numpy()
        ax.bar(labels, values, color="tab:blue")
        if intervals is not None:
            bounds = intervals.reindex([str(c) for c in table.columns])
            lower = np.clip(values - bounds["lower"].to_numpy(dtype=np.float64), 0.0, None)
            upper = np.clip(bounds["upper"].to_numpy(dtype=np.float64) - values, 0.0, None)
            ok = np.isfinite(lower) & np.isfinite(upper)
            ax.errorbar(
                np.arange(len(labels))[ok],
                values[ok],
                yerr=np.vstack([lower[ok], upper[ok]]),
                fmt="none",
                ecolor="black",
                capsize=3,
                lw=1,
            )
        ax.set_ylabel("cover (fraction of points)")
        ax.tick_params(axis="x", rotation=90)
    else:
        n = table.shape[0]
        fig = Figure(figsize=(min(30.0, max(6.0, 0.25 * n + 3)), 5))
        ax = fig.add_subplot()
        bottom = np.zeros(n)
        colours = _colours(len(labels))
        x = np.arange(n)
        for column, colour in zip(table.columns, colours, strict=True):
            values = table[column].to_numpy()
            ax.bar(x, values, bottom=bottom, label=str(column), color=colour, width=0.85)
            bottom += values
        ax.set_xticks(x, [str(i) for i in table.index], rotation=90, fontsize=7)
        ax.set_xlabel("image")
        ax.set_ylabel("cover (fraction of points)")
        ax.set_ylim(0, 1.0)
        if labels:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def _colours(n: int) -> list[Any]:
    """Distinct colours for ``n`` stacked labels (tab20, then cycling)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]
