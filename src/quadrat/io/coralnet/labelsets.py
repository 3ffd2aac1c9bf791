"""CoralNet labelsets (export, Moorea and global-list CSVs, CoralNet-Toolbox ``Labels.json``)
and label resolution."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quadrat.errors import CsvFormatError, InputError, NotFoundError, UnknownLabelError
from quadrat.io.coralnet._cells import (
    INT_RE,
    blank,
    fail_first,
    read_raw,
    text_cells,
    write_csv,
)
from quadrat.io.csv import header_key
from quadrat.limits import current

#: JSON keys (lower case, spaces as ``_``) per labelset column, in preference order.
_JSON_KEYS: dict[str, tuple[str, ...]] = {
    "short_code": ("short_label_code", "short_code", "code"),
    "name": ("long_label_code", "name", "long_label", "long_name"),
    "functional_group": ("functional_group", "group"),
    "label_id": ("label_id", "id"),
}

_JSON_EXPECTED = (
    "a list of label objects, an object with a 'labels' list, or an object of label "
    "objects, each with a short code ('short_label_code' or 'short_code') and optionally "
    "a name ('long_label_code' or 'name'), as CoralNet-Toolbox's Labels.json"
)


def read_labelset(path: str | Path) -> pd.DataFrame:
    """A labelset file in any form quadrat reads: JSON (by ``.json`` suffix or a leading
    ``[``/``{``) via :func:`read_labelset_json`, else CSV via :func:`read_labelset_csv`."""
    path = Path(path)
    if path.suffix.lower() == ".json" or _starts_like_json(path):
        return read_labelset_json(path)
    return read_labelset_csv(path)


def _starts_like_json(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError:
        return False  # read_labelset_csv reports it
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{")


def read_labelset_json(path: str | Path) -> pd.DataFrame:
    """Read a JSON labelset (CoralNet-Toolbox's ``Labels.json``) into the frame of
    :func:`read_labelset_csv`.

    Accepted: a list of label objects, ``{"labels": [...]}``, or an object whose values are
    label objects. Per label: short code from ``short_label_code`` (Toolbox), ``short_code``
    or ``code`` (required, unique case-insensitively); name from ``long_label_code``
    (Toolbox), ``name``, ``long_label`` or ``long_name`` (else the short code);
    ``functional_group``; a CoralNet
    label id from ``label_id`` or ``id`` when it is a non-negative integer (Toolbox's own
    string ids are ignored). Other keys (``color``...) are ignored.
    """
    path = Path(path)
    limits = current(None)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFoundError("labelset file not found", path=path, param="path") from None
    limits.check("csv_bytes", size, what="labelset file size in bytes", path=path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc}); expected {_JSON_EXPECTED}", path=path) from None
    except RecursionError:  # [[[[...]]]] nested deeper than Python's stack
        raise InputError(
            f"JSON nested too deeply to be a labelset; expected {_JSON_EXPECTED}", path=path
        ) from None
    items: Any = data
    if isinstance(data, dict):
        items = data["labels"] if "labels" in data else list(data.values())
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(item, dict) for item in items)
    ):
        raise InputError(f"unrecognised JSON labelset; expected {_JSON_EXPECTED}", path=path)
    rows: dict[str, list[Any]] = {column: [] for column in _JSON_KEYS}
    for number, item in enumerate(items, start=1):
        keys = {str(k).strip().lower().replace(" ", "_"): v for k, v in item.items()}
        for column, names in _JSON_KEYS.items():
            value = next((keys[n] for n in names if keys.get(n) not in (None, "")), None)
            if column == "label_id":
                text = str(value).strip() if isinstance(value, int | str) else ""
                value = int(text) if text.isdigit() else None
            elif value is not None:
                value = str(value).strip() or None
            rows[column].append(value)
        if rows["short_code"][-1] is None:
            raise InputError(
                f"label {number} has no short code ('short_label_code' or 'short_code'); "
                f"expected {_JSON_EXPECTED}",
                path=path,
                value=item,
            )
        if rows["name"][-1] is None:  # as the Toolbox: a label without a long name is its code
            rows["name"][-1] = rows["short_code"][-1]
    frame = pd.DataFrame(
        {
            "label_id": pd.array(rows["label_id"], dtype="Int64"),
            "name": pd.array(rows["name"], dtype="string"),
            "short_code": pd.array(rows["short_code"], dtype="string"),
            "functional_group": pd.array(rows["functional_group"], dtype="string"),
        }
    )
    dup = frame["short_code"].str.lower().duplicated()
    if dup.any():
        code = str(frame["short_code"][dup].iloc[0])
        raise InputError(
            f"duplicate short code {code!r} (codes are case-insensitive)", path=path, value=code
        )
    ids = frame["label_id"]
    if (ids.notna() & ids.duplicated()).any():
        frame["label_id"] = pd.array([None] * len(frame), dtype="Int64")  # not CoralNet ids
    frame.attrs["path"] = str(path)
    return frame


def read_labelset_csv(path: str | Path) -> pd.DataFrame:
    """Read a labelset: columns ``label_id`` (Int64, <NA> if absent), ``name``,
    ``short_code``, ``functional_group`` (strings, <NA> if absent).

    Accepts CoralNet's labelset export (``Label ID,Short Code``), the Moorea form
    (``,Label_ID,Label_URL,Name,Short_Code,Functional_Group``) and CoralNet's global label
    list (``,Label ID,Name,URL,Functional Group,Popularity %,Short Code,...``); header
    case, spaces and underscores do not matter. Short codes must be unique
    (case-insensitively, as CoralNet matches them).
    """
    path = Path(path)
    body, header, lines = read_raw(path)
    by_key = {header_key(h).replace(" ", "_"): h for h in header}
    if "short_code" not in by_key:
        raise CsvFormatError(
            f"missing a Short Code column; found {', '.join(header) or 'none'} "
            "(CoralNet's labelset form: Label ID,Short Code; or a CoralNet-Toolbox "
            "Labels.json)",
            path=path,
            line=1,
        )
    n = len(body)
    out: dict[str, pd.Series] = {}
    if "label_id" in by_key:
        raw_id = text_cells(body[by_key["label_id"]])
        ok = raw_id.str.fullmatch(INT_RE).to_numpy(dtype=bool, na_value=False)
        fail_first(
            (raw_id.notna() & ~ok).to_numpy(),
            raw_id,
            lines,
            path,
            "Label ID must be a non-negative integer, got {value}",
        )
        out["label_id"] = raw_id.astype("Int64")
    else:
        out["label_id"] = pd.Series(pd.NA, index=body.index, dtype="Int64")
    for column in ("name", "short_code", "functional_group"):
        out[column] = (
            text_cells(body[by_key[column]])
            if column in by_key
            else pd.Series(pd.NA, index=body.index, dtype="string")
        )
    codes = out["short_code"]
    fail_first(codes.isna().to_numpy(), codes, lines, path, "Short Code is empty")
    dup = codes.str.lower().duplicated().to_numpy()
    fail_first(dup, codes, lines, path, "duplicate short code {value} (codes are case-insensitive)")
    ids = out["label_id"]
    dup_id = (ids.notna() & ids.duplicated()).to_numpy()
    fail_first(dup_id, ids.astype("string"), lines, path, "duplicate Label ID {value}")
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))
    frame.attrs["path"] = str(path)
    return frame


def resolve_labels(
    values: pd.Series,
    labelset: pd.DataFrame,
    *,
    path: str | Path | None = None,
    lines: Sequence[int] | np.ndarray | pd.Series | None = None,
) -> pd.Series:
    """Map labels given as short code, name or label id to the labelset's short codes.

    Matching order per value: short code (case-insensitive, as CoralNet), then name
    (case-insensitive, exact otherwise), then label id. <NA> stays <NA>. Unknown values
    raise UnknownLabelError naming the first few values and their lines.
    """
    codes = labelset["short_code"].astype("string")
    lookup: dict[str, str] = {}
    # Lowest priority first so that higher priorities overwrite.
    if "label_id" in labelset:
        for label_id, code in zip(labelset["label_id"], codes, strict=True):
            if pd.notna(label_id):
                lookup[str(int(label_id))] = str(code)
    if "name" in labelset:
        names = labelset["name"].astype("string").str.strip().str.lower()
        unique_names = ~names.duplicated(keep=False)
        for name, code, ok in zip(names, codes, unique_names, strict=True):
            if pd.notna(name) and ok:
                lookup[str(name)] = str(code)
    for code in codes:
        lookup[str(code).lower()] = str(code)

    text = values.astype("string").str.strip()
    uniques = text.dropna().unique()
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for value in uniques:
        key = str(value).lower()
        if key in lookup:
            mapping[value] = lookup[key]
            continue
        if key.isdigit() and str(int(key)) in lookup:  # "074" -> label id 74
            mapping[value] = lookup[str(int(key))]
            continue
        unknown.append(value)
    if unknown:
        unknown_set = set(unknown)
        mask = text.isin(unknown_set).to_numpy(dtype=bool, na_value=False)
        positions = np.flatnonzero(mask)
        line_values = np.asarray(lines) if lines is not None else None
        shown = []
        first_line = None
        seen_values: set[str] = set()
        for pos in positions:
            value = str(text.iloc[pos])
            if value in seen_values:
                continue
            seen_values.add(value)
            where = ""
            if line_values is not None:
                line_no = int(line_values[pos])
                first_line = first_line if first_line is not None else line_no
                where = f" (line {line_no})"
            shown.append(f"{value!r}{where}")
            if len(shown) == 5:
                break
        more = len(unknown_set) - len(shown)
        extra = f" and {more} more" if more > 0 else ""
        raise UnknownLabelError(
            f"{len(unknown_set)} label(s) not in the labelset (by short code, name or id): "
            f"{', '.join(shown)}{extra}",
            path=path,
            line=first_line,
            value=sorted(unknown_set)[:5],
        )
    result = text.map(mapping).astype("string")
    result.name = values.name
    return result


def write_labelset_csv(
    labelset: pd.DataFrame, path: str | Path, *, escape_formulas: bool = False
) -> Path:
    """Write a labelset in CoralNet's export form ``Label ID,Short Code`` (sorted by code),
    followed by ``Name`` and ``Functional Group`` when the labelset has them."""
    if "short_code" not in labelset.columns:
        raise InputError("labelset frame lacks a short_code column")
    ordered = labelset.assign(_k=labelset["short_code"].astype("string").str.lower())
    ordered = ordered.sort_values("_k", kind="stable")
    ids = ordered["label_id"] if "label_id" in ordered else pd.Series(pd.NA, index=ordered.index)
    out: dict[str, pd.Series] = {
        "Label ID": blank(ids.astype("Int64")),
        "Short Code": blank(ordered["short_code"]),
    }
    for column, header in (("name", "Name"), ("functional_group", "Functional Group")):
        if column in ordered and ordered[column].notna().any():
            out[header] = blank(ordered[column])
    return write_csv(pd.DataFrame(out), path, escape_formulas=escape_formulas)
