"""CoralNet's per-image percent cover ("image covers" export): compute, write, read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from quadrat.errors import CsvFormatError, InputError, UnknownLabelError
from quadrat.io.coralnet._cells import blank, fail_first, nonneg_int, read_raw, write_csv

#: Fixed leading columns of a percent-cover table / CoralNet's image-covers export.
COVER_COLUMNS: tuple[str, ...] = ("Image ID", "Image name", "Annotation status", "Points")
ALL_IMAGES = "ALL IMAGES"


def _label_order(labelset: pd.DataFrame) -> list[str]:
    """CoralNet orders cover columns by functional group, then short code."""
    frame = pd.DataFrame(
        {
            "group": labelset.get(
                "functional_group", pd.Series(pd.NA, index=labelset.index)
            ).astype("string"),
            "code": labelset["short_code"].astype("string"),
        }
    )
    frame = frame.assign(
        g=frame["group"].fillna("\uffff").str.lower(), c=frame["code"].str.lower()
    ).sort_values(["g", "c"], kind="stable")
    return [str(c) for c in frame["code"]]


def cover_table(
    annotations: pd.DataFrame,
    labelset: pd.DataFrame | None = None,
    *,
    label_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-image percent cover, as CoralNet's "image covers" export computes it.

    Input: one row per point with ``image_name``, ``label`` (short code; <NA> = point not
    annotated), optional ``image_id`` (defaults to the name) and optional ``status``
    (``confirmed``/``unconfirmed`` per point, case-insensitive; default confirmed).

    As CoralNet: images with any unannotated point are left out; an image is
    "Unconfirmed" if any point is unconfirmed, else "Confirmed"; cover = label count /
    annotated points x 100. Label columns: ``label_order``, else the labelset's codes by
    functional group then code (all of them, zeros included), else the labels seen, sorted.
    Output columns: ``Image ID, Image name, Annotation status, Points, <labels...>``
    (float percents), images sorted by name.
    """
    if "image_name" not in annotations.columns or "label" not in annotations.columns:
        raise InputError("cover_table needs columns image_name and label")
    frame = pd.DataFrame(
        {
            "name": annotations["image_name"].astype("string"),
            "id": annotations["image_id"]
            if "image_id" in annotations
            else annotations["image_name"],
            "label": annotations["label"].astype("string"),
            "status": (
                annotations["status"].astype("string").str.strip().str.lower()
                if "status" in annotations
                else pd.Series("confirmed", index=annotations.index, dtype="string")
            ),
        }
    )
    bad_status = frame["status"].notna() & ~frame["status"].isin(["confirmed", "unconfirmed"])
    if bad_status.any():
        value = frame["status"][bad_status].iloc[0]
        raise InputError(f"status must be 'confirmed' or 'unconfirmed', got {value!r}", value=value)
    if label_order is not None:
        labels = [str(x) for x in label_order]
    elif labelset is not None:
        labels = _label_order(labelset)
    else:
        labels = sorted(frame["label"].dropna().unique().tolist(), key=lambda s: (s.lower(), s))
    unknown = set(frame["label"].dropna().unique().tolist()) - set(labels)
    if unknown:
        raise UnknownLabelError(
            f"label(s) not among the cover columns: {', '.join(sorted(unknown)[:5])}",
            value=sorted(unknown)[:5],
        )

    per_image = frame.groupby("name", sort=True, dropna=False).agg(
        id=("id", "first"),
        points=("label", "size"),
        annotated=("label", "count"),
        unconfirmed=("status", lambda s: bool((s == "unconfirmed").any())),
    )
    per_image = per_image[per_image["annotated"] == per_image["points"]]
    counts = (
        frame[frame["name"].isin(per_image.index)]
        .groupby(["name", "label"], sort=False)
        .size()
        .unstack("label", fill_value=0)
        .reindex(index=per_image.index, columns=labels, fill_value=0)
    )
    percents = counts.div(per_image["annotated"], axis=0) * 100.0
    table = pd.DataFrame(
        {
            "Image ID": per_image["id"].to_numpy(),
            "Image name": per_image.index.astype(str),
            "Annotation status": np.where(per_image["unconfirmed"], "Unconfirmed", "Confirmed"),
            "Points": per_image["points"].astype(np.int64).to_numpy(),
        }
    )
    for label in labels:
        table[label] = percents[label].astype("float64").to_numpy()
    return table


def _pct(values: pd.Series) -> pd.Series:
    """CoralNet's cover formatting: always 3 decimals, never '-0.000'."""
    text = values.map(lambda x: format(float(x), ".3f"))
    return text.where(text != "-0.000", "0.000")


def write_percent_cover_csv(
    cover: pd.DataFrame, path: str | Path, *, escape_formulas: bool = False
) -> Path:
    """Write CoralNet's image-covers export (atomically).

    ``cover`` is a ``cover_table`` result: ``Image ID, Image name, Annotation status,
    Points`` then one column of percents per label. Percents are written with 3 decimals;
    when there is more than one image, a final ``ALL IMAGES`` row holds the mean of the
    per-image covers (each image weighs the same, whatever its point count).
    """
    missing = [c for c in COVER_COLUMNS if c not in cover.columns]
    if missing:
        raise InputError(f"cover table lacks column(s) {', '.join(missing)}")
    labels = [c for c in cover.columns if c not in COVER_COLUMNS]
    out = pd.DataFrame(
        {
            "Image ID": blank(cover["Image ID"]),
            "Image name": blank(cover["Image name"]),
            "Annotation status": blank(cover["Annotation status"]),
            "Points": blank(cover["Points"].astype("Int64")),
        }
    )
    for label in labels:
        out[str(label)] = _pct(cover[label].astype("float64"))
    if len(cover) > 1:
        summary = {c: "" for c in COVER_COLUMNS}
        summary["Image ID"] = ALL_IMAGES
        for label in labels:
            mean = 100.0 * (cover[label].astype("float64") / 100.0).sum() / len(cover)
            summary[str(label)] = _pct(pd.Series([mean])).iloc[0]
        out = pd.concat([out, pd.DataFrame([summary])], ignore_index=True)
    return write_csv(out, path, escape_formulas=escape_formulas)


def read_percent_cover_csv(path: str | Path) -> pd.DataFrame:
    """Read an image-covers export back: the per-image rows as ``cover_table`` returns them.

    The ``ALL IMAGES`` row, if any, is removed and kept in ``attrs['all_images']``
    (a dict of label to percent).
    """
    path = Path(path)
    body, header, lines = read_raw(path)
    missing = [c for c in COVER_COLUMNS if c not in header]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(header)}",
            path=path,
            line=1,
        )
    labels = [h for h in header if h not in COVER_COLUMNS]
    is_all = (body["Image ID"] == ALL_IMAGES).to_numpy()
    summary = body[is_all]
    body, lines = body[~is_all].reset_index(drop=True), lines[~is_all]
    table = pd.DataFrame(
        {
            "Image ID": body["Image ID"],
            "Image name": body["Image name"],
            "Annotation status": body["Annotation status"],
            "Points": nonneg_int(body["Points"], "Points", lines, path),
        }
    )
    for label in labels:
        values = pd.to_numeric(body[label].str.strip(), errors="coerce")
        fail_first(
            values.isna().to_numpy(),
            body[label],
            lines,
            path,
            f"{label} is not a number: {{value}}",
        )
        table[label] = values.astype("float64")
    table.attrs["path"] = str(path)
    if len(summary):
        table.attrs["all_images"] = {label: float(summary[label].iloc[0]) for label in labels}
    return table
