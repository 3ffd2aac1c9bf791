"""Dataset reports: what subsampling kept, per dataset, site and label, and on a map.

Why: thinning a survey is only trustworthy if one can see what was dropped where. The
report is a map of every image (grey) and the kept ones (coloured by site), and one CSV
of counts before and after, per dataset, per site and per label. Files are written
atomically (:mod:`quadrat.io.tables`, :mod:`quadrat.io.atomic`), so an interrupted run
leaves the previous report whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from quadrat.errors import InputError
from quadrat.io.tables import write_table
from quadrat.reports.plots import _save

#: Sites labelled by name on the map when there are at most this many.
MAX_NAMED_SITES = 25


def counts_before_after(
    before: pd.DataFrame, after: pd.DataFrame, label_column: str | None = None
) -> pd.DataFrame:
    """Rows before and after per dataset, per (dataset, site) and per label, long format.

    Columns: ``level`` (dataset / site / label), ``dataset``, ``name``, ``before``,
    ``after``, ``kept_fraction``.
    """
    levels: list[tuple[str, list[str]]] = [("dataset", ["dataset"]), ("site", ["dataset", "site"])]
    if label_column is not None:
        if label_column not in before.columns:
            raise InputError(f"no label column {label_column!r}", value=list(before.columns))
        levels.append(("label", [label_column]))
    parts = []
    for level, keys in levels:
        was = before.groupby(keys, dropna=False, sort=True).size().rename("before")
        now = after.groupby(keys, dropna=False, sort=True).size().rename("after")
        both = pd.concat([was, now], axis=1).fillna(0).astype(int).reset_index()
        both.insert(0, "level", level)
        if level == "label":
            both = both.rename(columns={label_column: "name"})
            both.insert(1, "dataset", "")
        elif level == "dataset":
            both["name"] = both["dataset"]
        else:
            both = both.rename(columns={"site": "name"})
        parts.append(both[["level", "dataset", "name", "before", "after"]])
    table = pd.concat(parts, ignore_index=True)
    table["kept_fraction"] = (table["after"] / table["before"].clip(lower=1)).round(4)
    return table


def plot_sites_map(
    before: pd.DataFrame, after: pd.DataFrame, path: str | Path, *, title: str = ""
) -> Path:
    """Every image as a grey dot, kept images coloured by site, site names at centroids.

    Plain longitude/latitude axes with the aspect set for the mean latitude: enough to
    see tracks and gaps without a map-projection dependency.
    """
    fig = Figure(figsize=(8, 7))
    ax = fig.add_subplot()
    ax.scatter(before["longitude"], before["latitude"], s=3, c="0.8", lw=0, label="all images")
    sites = after.groupby(["dataset", "site"], sort=False, dropna=False)
    colours = [f"C{k % 10}" for k in range(sites.ngroups)]
    for colour, (_, group) in zip(colours, sites, strict=True):
        ax.scatter(group["longitude"], group["latitude"], s=6, c=colour, lw=0)
    if sites.ngroups <= MAX_NAMED_SITES:
        centres = before.groupby(["dataset", "site"], sort=False, dropna=False)[
            ["latitude", "longitude"]
        ].median()
        for (_, site), row in centres.dropna().iterrows():
            ax.annotate(str(site), (row["longitude"], row["latitude"]), fontsize=7, alpha=0.8)
    mean_lat = float(np.nanmean(before["latitude"])) if len(before) else 0.0
    if np.isfinite(mean_lat):
        ax.set_aspect(1 / max(np.cos(np.radians(mean_lat)), 1e-3), adjustable="datalim")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title or f"{len(after):,} of {len(before):,} images kept ({sites.ngroups} sites)")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def write_subsample_report(
    before: pd.DataFrame,
    after: pd.DataFrame,
    sites: pd.DataFrame,
    out_dir: str | Path,
    *,
    label_column: str | None = None,
) -> list[Path]:
    """``map.png``, ``counts.csv`` (before/after) and ``sites.csv`` (per-site decisions)."""
    out = Path(out_dir)
    return [
        plot_sites_map(before, after, out / "map.png"),
        write_table(counts_before_after(before, after, label_column), out / "counts.csv"),
        write_table(sites, out / "sites.csv"),
    ]
