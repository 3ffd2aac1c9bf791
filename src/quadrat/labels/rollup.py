"""Label translation, applied: annotations to CATAMI codes, rolled up to a level, covers.

A reviewed mapping (:func:`quadrat.labels.translate_io.read_mapping`) gives each source
label a CATAMI node; here each annotation gets its node's code, codes are rolled up to a
head-relative level (:meth:`~quadrat.labels.catami.CatamiTree.roll_up`), and point cover
is computed per image, head and level, so that surveys labelled in different vocabularies
can be compared at a common depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from quadrat.labels.catami import CatamiTree
from quadrat.labels.catami_io import default_catami

#: The name under which unmapped points are counted in covers.
UNMAPPED = "(unmapped)"


def apply_mapping(labels: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """CAAB code per annotation ('' where the label is unmapped)."""
    return labels.astype(str).map(mapping).fillna("")


def roll_up_codes(codes: pd.Series, level: int, tree: CatamiTree | None = None) -> pd.Series:
    """Each code's ancestor at ``level`` (head-relative); '' stays ''."""
    tree = tree or default_catami()
    cache_: dict[str, str] = {}
    for code in codes.unique():
        cache_[code] = tree.roll_up(code, level) if code else ""
    return codes.map(cache_)


def covers_per_level(
    images: pd.Series,
    codes: pd.Series,
    levels: Sequence[int],
    tree: CatamiTree | None = None,
) -> pd.DataFrame:
    """Point cover per image, head and CATAMI level.

    A point whose node is shallower than a level is counted at its own node (it cannot be
    refined); unmapped points count as ``(unmapped)`` so each image's covers sum to 1.
    """
    tree = tree or default_catami()
    frame = pd.DataFrame({"image": images.astype(str).to_numpy(), "code": codes.to_numpy()})
    totals = frame.groupby("image").size().rename("image_points")
    parts = []
    for level in levels:
        rolled = frame.assign(level=level, caab_code=roll_up_codes(frame["code"], level, tree))
        parts.append(rolled.groupby(["image", "level", "caab_code"]).size().rename("points"))
    table = pd.concat(parts).reset_index().join(totals, on="image")
    table["cover"] = table["points"] / table["image_points"]
    names = {
        c: (tree.node(c).name, tree.path_str(c), tree.head(c) or "")
        for c in table["caab_code"].unique()
        if c
    }
    table["head"] = table["caab_code"].map(lambda c: names[c][2] if c else "")
    table["name"] = table["caab_code"].map(lambda c: names[c][0] if c else UNMAPPED)
    table["catami_path"] = table["caab_code"].map(lambda c: names[c][1] if c else "")
    columns = ["image", "level", "head", "caab_code", "name", "catami_path", "points", "cover"]
    return table[columns].sort_values(["image", "level", "points"], ascending=[True, True, False])


__all__ = ["UNMAPPED", "apply_mapping", "covers_per_level", "roll_up_codes"]
