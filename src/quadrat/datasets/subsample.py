"""BenthicNet's per-site spatial subsampling, re-implemented from the spec and vectorised.

Why: survey platforms photograph the seafloor every second or so, so neighbouring images
are near duplicates. BenthicNet keeps images about ``distance`` metres apart along each
track and caps every site near a target population (``../shared/specs/benthicnet.md``,
"Spatial subsampling"). Differences from the original, all deliberate:

- sites are grouped by ``(dataset, site)`` by default, not by ``site`` alone (which merged
  equal site names from different datasets; ``group_by=("site",)`` asks for it);
- one Earth radius for every distance (:data:`quadrat.datasets.geo.EARTH_RADIUS_M`);
- integer subsite bonuses (``T // 2``, ``M // 2``): the original's float ``T / 2`` crashed
  the even-spacing step; identical figures whenever T and M are even (all the defaults);
- ``target_population=0`` disables the cap instead of crashing;
- each site is one vectorised pass (cumulative sums + ``searchsorted`` give every row's
  next kept row at once; only the kept rows are followed), not a Python loop per row
  that rescans the rest of the track, so a site costs O(N log N) rather than ~O(N^2);
- the distance after the last kept row is ``cum[r] - cum[last]`` in one subtraction; the
  original re-subtracts every step. Both are the same in exact arithmetic; they can
  differ only when a distance is within rounding (~1e-9 m) of a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.neighbors import BallTree

from quadrat.datasets.geo import consecutive_distances, metres_to_radians, midpoints, to_radians_xy
from quadrat.errors import InputError

SITE_KEYS = ("dataset", "site")
#: The two groupings offered: BenthicNet's own (``site`` alone) and quadrat's default.
GROUPINGS = (SITE_KEYS, ("site",))
REQUIRED_COLUMNS = (*SITE_KEYS, "latitude", "longitude")
METHODS = ("closest", "threshold")
Progress = Callable[[str, int, int], None]

Positions = NDArray[np.intp]


@dataclass(frozen=True)
class SubsampleResult:
    """The kept rows (original index, BenthicNet's order) and one summary row per site."""

    kept: pd.DataFrame
    sites: pd.DataFrame


def _valid_positions(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> Positions:
    return np.flatnonzero(~(np.isnan(lat) | np.isnan(lon)))


def count_subsites(lat: ArrayLike, lon: ArrayLike, gap: float = 500.0) -> int:
    """Number of separate stretches of a track: 1 + gaps over ``gap`` metres that are real.

    A jump between consecutive images longer than ``gap`` only counts when no image of the
    site lies within ``0.4 * gap`` of the jump's midpoint; otherwise the track merely
    came back to an area it had already covered (bad ordering, not a new subsite).
    """
    return _count_subsites(np.asarray(lat, np.float64), np.asarray(lon, np.float64), [gap])[0]


def _count_subsites(
    lat: NDArray[np.float64], lon: NDArray[np.float64], gaps: Sequence[float]
) -> list[int]:
    """:func:`count_subsites` for several gaps, sharing one distance array and one tree."""
    keep = _valid_positions(lat, lon)
    if len(keep) < 2:
        return [1 for _ in gaps]
    la, lo = lat[keep], lon[keep]
    steps = consecutive_distances(la, lo)
    tree: BallTree | None = None
    counts = []
    for gap in gaps:
        jumps = np.flatnonzero(steps > gap)
        if len(jumps) == 0:
            counts.append(1)
            continue
        if tree is None:
            tree = BallTree(to_radians_xy(la, lo), metric="haversine")
        mid_lat, mid_lon = midpoints(la[jumps], lo[jumps], la[jumps + 1], lo[jumps + 1])
        near = tree.query_radius(
            to_radians_xy(mid_lat, mid_lon), r=metres_to_radians(0.4 * gap), count_only=True
        )
        counts.append(1 + int(np.count_nonzero(near == 0)))
    return counts


def subsample_distance(
    lat: ArrayLike, lon: ArrayLike, threshold: float = 2.5, method: str = "closest"
) -> Positions:
    """Positions of the rows to keep so that kept images are about ``threshold`` m apart.

    Distances are measured *along the track* (file order). Row 0 is kept; from each kept
    row the next is the first row at least ``threshold`` further along ("threshold"), or
    whichever of the two rows straddling that distance is nearer to it, but never one
    closer than ``threshold / 2`` ("closest"). The last row is kept when at least
    ``threshold / 2`` of track remains. Rows without coordinates are dropped; under three
    rows, or when no two consecutive rows are too close, every row is kept.
    """
    if method not in METHODS:
        raise InputError(
            f"unknown subsampling method (use one of {', '.join(METHODS)})", value=method
        )
    if not threshold > 0:
        raise InputError("the subsampling distance must be positive", value=threshold)
    lat_a = np.asarray(lat, np.float64)
    lon_a = np.asarray(lon, np.float64)
    valid = _valid_positions(lat_a, lon_a)
    n = len(valid)
    if n < 3:
        return valid
    steps = consecutive_distances(lat_a[valid], lon_a[valid])
    if (method == "closest" and bool(np.all(steps > threshold / 2))) or bool(
        np.all(steps >= threshold)
    ):
        return valid
    along = np.concatenate([[0.0], np.cumsum(steps)])
    following = _next_kept(along, threshold, method)
    kept = _follow(following, n)
    last = kept[-1]
    if last != n - 1 and along[n - 1] - along[last] >= threshold / 2:
        kept.append(n - 1)
    return valid[np.asarray(kept, dtype=np.intp)]


def _next_kept(along: NDArray[np.float64], threshold: float, method: str) -> NDArray[np.intp]:
    """For every row ``i``, the row kept next if ``i`` is kept (-1: none), all at once."""
    n = len(along)
    rows = np.arange(n - 1, dtype=np.intp)
    base = along[:-1]
    cross = np.searchsorted(along, base + threshold, side="left").astype(np.intp)
    cross = np.maximum(cross, rows + 1)
    # searchsorted compares cum[r] >= cum[i] + t; the spec compares cum[r] - cum[i] >= t.
    # They can disagree by one rounding step: nudge until the spec's test holds exactly.
    while True:
        back = (cross > rows + 1) & (along[np.maximum(cross - 1, 0)] - base >= threshold)
        if not back.any():
            break
        cross = np.where(back, cross - 1, cross)
    while True:
        fwd = (cross < n) & (along[np.minimum(cross, n - 1)] - base < threshold)
        if not fwd.any():
            break
        cross = np.where(fwd, cross + 1, cross)
    found = cross < n
    if method == "threshold":
        return np.where(found, cross, -1)
    safe = np.minimum(cross, n - 1)
    at_cross = along[safe] - base
    before = along[safe - 1] - base
    take_cross = (
        (safe - 1 == rows) | (before < threshold / 2) | (at_cross - threshold <= threshold - before)
    )
    return np.where(found, np.where(take_cross, safe, safe - 1), -1)


def _follow(following: NDArray[np.intp], n: int) -> list[int]:
    """Walk the next-kept pointers from row 0: one step per *kept* row, not per row."""
    pointers = following.tolist()
    kept = [0]
    row = 0
    while row < n - 1:
        row = pointers[row]
        if row < 0:
            break
        kept.append(row)
    return kept


def even_positions(n_rows: int, target: int) -> Positions:
    """``target`` positions spread evenly over ``n_rows`` (round half to even, unique)."""
    if n_rows <= target:
        return np.arange(n_rows, dtype=np.intp)
    return np.unique(np.round(np.linspace(0, n_rows - 1, target)).astype(np.intp))


def _coerce_coordinate(table: pd.DataFrame, column: str, limit: float) -> NDArray[np.float64]:
    """The column as floats; a non-number or an out-of-range value names its row.

    The row is named by its index label, as ``<index name> <label>`` (e.g. ``line 7``
    when a reader indexed the table by file line), else ``row <label>``.
    """
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = (values.isna() & raw.notna()) | (values.abs() > limit)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        where = f"{table.index.name or 'row'} {table.index[row]}"
        raise InputError(
            f"{where}: {column} must be a number within +/-{limit:g}", value=raw.iloc[row]
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _site_codes(
    table: pd.DataFrame, group_by: Sequence[str] = SITE_KEYS
) -> tuple[NDArray[np.intp], pd.DataFrame]:
    """Site number of every row (order of first appearance) and the site keys."""
    grouped = table.groupby(list(group_by), sort=False, dropna=False)
    codes = grouped.ngroup().to_numpy(dtype=np.intp)
    first = np.unique(codes, return_index=True)[1]
    keys = table.iloc[first][list(group_by)].reset_index(drop=True)
    return codes, keys


def _coordinate_counts(
    codes: NDArray[np.intp], lat: NDArray[np.float64], lon: NDArray[np.float64], n_sites: int
) -> NDArray[np.intp]:
    """Distinct (lat, lon) pairs per site, a missing value counting as one value."""
    lat_f = np.where(np.isnan(lat), 1e3, lat)
    lon_f = np.where(np.isnan(lon), 1e3, lon)
    order = np.lexsort((lon_f, lat_f, codes))
    c, la, lo = codes[order], lat_f[order], lon_f[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (la[1:] != la[:-1]) | (lo[1:] != lo[:-1])
    return np.bincount(c[new], minlength=n_sites).astype(np.intp)


def _check_grouping(group_by: Sequence[str]) -> tuple[str, ...]:
    keys = tuple(group_by)
    if keys not in GROUPINGS:
        raise InputError(
            "sites are grouped by ('dataset', 'site') or by ('site',)",
            value=group_by,
            param="group_by",
        )
    return keys


def _bonus(bonus: int | None, population: int, param: str) -> int:
    """A subsite bonus: the given number, or half the population (BenthicNet's T/2, M/2)."""
    if bonus is None:
        return population // 2
    if bonus < 0:
        raise InputError("a subsite bonus must be >= 0 images", value=bonus, param=param)
    return int(bonus)


def _check_parameters(
    distance: float, target: int, minimum: int, factors: Sequence[float], gaps: Sequence[float]
) -> list[float]:
    if not distance > 0:
        raise InputError(
            f"distance must be positive (metres), not {distance}", value=distance, param="distance"
        )
    if target < 0 or minimum < 0:
        raise InputError("target and minimum populations must be >= 0", value=(target, minimum))
    if any(not gap > 0 for gap in gaps):
        raise InputError("pseudo-site and subsite gaps must be positive (metres)", value=gaps)
    steps = sorted(float(f) for f in factors)
    if not steps or steps[0] < 1:
        raise InputError("distance factors must be >= 1", value=list(factors))
    if steps[0] != 1:
        steps.insert(0, 1.0)
    return steps


def subsample_sites(
    table: pd.DataFrame,
    distance: float = 2.5,
    target_population: int = 1000,
    min_population: int = 500,
    pseudo_site_gap: float = 1000.0,
    subsite_gap: float = 500.0,
    factors: Sequence[float] = (1,),
    *,
    allow_nonspatial: bool = True,
    subsite_target_bonus: int | None = None,
    subsite_min_bonus: int | None = None,
    group_by: Sequence[str] = SITE_KEYS,
    progress: Progress | None = None,
) -> SubsampleResult:
    """Thin every (dataset, site) of a BenthicNet metadata table, as BenthicNet's pass does.

    Per site: the targets grow with the number of pseudo-sites (gaps over
    ``pseudo_site_gap``) and subsites (gaps over ``subsite_gap``); a site at or under
    its minimum is kept whole, a site whose images share few positions is thinned
    evenly by position, and any other is thinned spatially with :func:`subsample_distance`,
    re-thinned at ``distance * factor`` while it stays at or above its target. Output:
    whole and evenly spaced sites first, then spatial ones, each in order of first
    appearance, rows in file order (sort by time beforehand if the file is not).
    Works one site at a time on index arrays, so memory is the table plus a few
    numbers per row.

    ``allow_nonspatial=False`` forbids even spacing by position, as BenthicNet's
    option of that name: every site above its minimum is thinned spatially, so a site
    without any navigation is dropped (method ``dropped``, nothing kept), and rows
    without coordinates of a spatial site are dropped as always. Sites at or under
    their minimum are still kept whole. ``subsite_target_bonus`` and
    ``subsite_min_bonus`` are the images added to a site's target and minimum for each
    subsite beyond its pseudo-sites (``None``: half of ``target_population`` and
    ``min_population``, BenthicNet's bonuses; 0: subsites add nothing). ``group_by`` is
    what makes a site: ``("dataset", "site")`` (the default) or ``("site",)`` alone, as
    the original did, which merges equal site names of different datasets.
    """
    group_by = _check_grouping(group_by)
    target_bonus = _bonus(subsite_target_bonus, target_population, "subsite_target_bonus")
    min_bonus = _bonus(subsite_min_bonus, min_population, "subsite_min_bonus")
    required = (*group_by, "latitude", "longitude")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", value=list(table.columns))
    steps = _check_parameters(
        distance, target_population, min_population, factors, (pseudo_site_gap, subsite_gap)
    )
    lat = _coerce_coordinate(table, "latitude", 90.0)
    lon = _coerce_coordinate(table, "longitude", 180.0)
    codes, keys = _site_codes(table, group_by)
    n_sites = len(keys)
    n_coords = _coordinate_counts(codes, lat, lon, n_sites)
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_sites))])

    first_pass: list[Positions] = []
    spatial_pass: list[Positions] = []
    summary: list[dict[str, object]] = []
    every = max(1, n_sites // 200)
    for site in range(n_sites):
        rows = order[bounds[site] : bounds[site + 1]]
        positions, decision = _subsample_one_site(
            lat[rows],
            lon[rows],
            int(n_coords[site]),
            distance=distance,
            target=target_population,
            minimum=min_population,
            gaps=(pseudo_site_gap, subsite_gap),
            factors=steps,
            allow_nonspatial=allow_nonspatial,
            bonuses=(target_bonus, min_bonus),
        )
        kept_rows = rows[positions]
        (spatial_pass if decision["method"] == "spatial" else first_pass).append(kept_rows)
        decision["kept"] = len(kept_rows)
        summary.append(decision)
        if progress is not None and (site % every == 0 or site == n_sites - 1):
            progress("Subsampling sites", site + 1, n_sites)

    parts = first_pass + spatial_pass
    kept = np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)
    sites = pd.concat([keys, pd.DataFrame(summary, index=keys.index)], axis=1)
    return SubsampleResult(kept=table.iloc[kept], sites=sites)


def _subsample_one_site(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    n_coords: int,
    *,
    distance: float,
    target: int,
    minimum: int,
    gaps: tuple[float, float],
    factors: Sequence[float],
    allow_nonspatial: bool,
    bonuses: tuple[int, int] | None = None,
) -> tuple[Positions, dict[str, object]]:
    """The spec's decision for one site: kept positions, and its targets, method, factor."""
    n_rows = len(lat)
    has_coords = bool(np.any(~(np.isnan(lat) | np.isnan(lon))))
    spatial = has_coords and (
        not allow_nonspatial or (target > 0 and n_coords >= target) or n_coords > n_rows / n_coords
    )
    if target > 0:
        n_full, n_sub = _count_subsites(lat, lon, gaps)
        extra = max(0, n_sub - n_full)
        target_bonus, min_bonus = bonuses if bonuses is not None else (target // 2, minimum // 2)
        site_target = target * n_full + target_bonus * extra
        site_minimum = minimum * n_full + min_bonus * extra
    else:
        n_full = n_sub = 1
        site_target, site_minimum = 0, minimum
    factor_used = 0.0
    if n_rows <= site_minimum:
        method, positions = "whole", np.arange(n_rows, dtype=np.intp)
    elif not has_coords and not allow_nonspatial:
        method, positions = "dropped", np.empty(0, dtype=np.intp)
    elif not spatial:
        method = "even"
        positions = (
            even_positions(n_rows, site_target) if target > 0 else np.arange(n_rows, dtype=np.intp)
        )
    else:
        method = "spatial"
        positions, factor_used = _thin_with_factors(lat, lon, distance, site_target, factors)
    return positions, {
        "rows": n_rows,
        "coordinates": n_coords,
        "spatial": spatial,
        "pseudo_sites": n_full,
        "subsites": n_sub,
        "target": site_target,
        "minimum": site_minimum,
        "method": method,
        "factor": factor_used,
    }


def _thin_with_factors(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    distance: float,
    target: int,
    factors: Sequence[float],
) -> tuple[Positions, float]:
    """Thin at ``distance``; re-thin that result at larger factors while >= ``target`` remain.

    Each factor re-thins the factor-1 result (not the previous factor's), and the first
    result below the target is discarded, as in the original.
    """
    base = subsample_distance(lat, lon, distance)
    chosen, used = base, 1.0
    if target <= 0 or len(base) <= target:
        return chosen, used
    for factor in factors:
        if factor == 1:
            continue
        again = base[subsample_distance(lat[base], lon[base], distance * factor)]
        if len(again) < target:
            break
        chosen, used = again, float(factor)
    return chosen, used
