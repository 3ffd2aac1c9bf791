"""Spatial subsampling: hand-built tracks, and agreement with a plain loop from the spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from quadrat.datasets.geo import consecutive_distances
from quadrat.datasets.subsample import (
    count_subsites,
    even_positions,
    subsample_distance,
    subsample_sites,
)
from quadrat.errors import InputError
from tests.data.tracks.data import (
    few_positions,
    metres_to_degrees,
    out_and_back,
    site_table,
    straight_transect,
    two_stretches,
)


def reference_subsample_distance(
    lat: NDArray[np.float64], lon: NDArray[np.float64], thr: float, method: str = "closest"
) -> list[int]:
    """The spec's loop, literally: restart the cumulative distance at every kept row."""
    valid = [i for i in range(len(lat)) if not (np.isnan(lat[i]) or np.isnan(lon[i]))]
    if len(valid) < 3:
        return valid
    d = consecutive_distances(lat[valid], lon[valid])
    if (method == "closest" and np.all(d > thr / 2)) or np.all(d >= thr):
        return valid
    cum = np.cumsum(d)
    idx, keep = 0, [0]
    while idx < len(valid) - 1:
        hits = np.flatnonzero(cum >= thr)
        if len(hits) == 0:
            break
        offset = int(hits[0])
        if method == "threshold" or (
            offset == 0 or cum[offset - 1] < thr / 2 or cum[offset] - thr <= thr - cum[offset - 1]
        ):
            offset += 1
        idx += offset
        keep.append(idx)
        walked = cum[offset - 1]
        cum = cum[offset:] - walked
    if keep[-1] != len(valid) - 1 and cum[-1] >= thr / 2:
        keep.append(len(valid) - 1)
    return [valid[k] for k in keep]


def reference_subsample_sites(
    table: pd.DataFrame, distance: float, target: int, minimum: int, factors: list[int]
) -> list[int]:
    """The spec's two passes with a loop per site; returns kept row labels in order."""
    first, spatial = [], []
    for _, site in table.groupby(["dataset", "site"], sort=False):
        lat = site["latitude"].to_numpy(float)
        lon = site["longitude"].to_numpy(float)
        n = len(site)
        n_coords = len(site.drop_duplicates(subset=["latitude", "longitude"]))
        is_spatial = n_coords >= target or n_coords > n / n_coords
        n_full, n_sub = count_subsites(lat, lon, 1000), count_subsites(lat, lon, 500)
        t_i = target * n_full + target // 2 * max(0, n_sub - n_full)
        m_i = minimum * n_full + minimum // 2 * max(0, n_sub - n_full)
        labels = list(site.index)
        if n <= m_i:
            first += labels
        elif not is_spatial:
            first += [
                labels[i] for i in np.unique(np.round(np.linspace(0, n - 1, t_i)).astype(int))
            ]
        else:
            base = reference_subsample_distance(lat, lon, distance)
            chosen = base
            if len(base) > t_i:
                for factor in factors[1:]:
                    sub = reference_subsample_distance(lat[base], lon[base], distance * factor)
                    if len(sub) < t_i:
                        break
                    chosen = [base[k] for k in sub]
            spatial += [labels[i] for i in chosen]
    return first + spatial


def test_half_metre_transect_at_2_5_m_keeps_every_fifth_row() -> None:
    lat, lon = straight_transect(101, 0.5)
    kept = subsample_distance(lat, lon, 2.5)
    assert len(kept) == 21
    np.testing.assert_array_equal(kept, np.arange(0, 101, 5))
    assert kept.tolist() == reference_subsample_distance(lat, lon, 2.5)


def test_threshold_method_takes_the_row_after_the_crossing() -> None:
    lat, lon = straight_transect(11, 1.0)
    # Steps of 1 m at 2.5 m: "threshold" keeps every 3rd row; "closest" every 2nd or 3rd.
    assert subsample_distance(lat, lon, 2.5, "threshold").tolist() == [0, 3, 6, 9]
    for method in ("closest", "threshold"):
        assert subsample_distance(lat, lon, 2.5, method).tolist() == reference_subsample_distance(
            lat, lon, 2.5, method
        )


def test_last_row_kept_only_with_half_a_threshold_of_track_left() -> None:
    lat, lon = straight_transect(12, 0.5)  # 5.5 m: 0, 5, 10, then 0.5 m left -> dropped
    assert subsample_distance(lat, lon, 2.5).tolist() == [0, 5, 10]
    lat, lon = straight_transect(14, 0.5)  # 6.5 m: 1.5 m after row 10 -> last row kept
    assert subsample_distance(lat, lon, 2.5).tolist() == [0, 5, 10, 13]


def test_short_sparse_and_missing_tracks() -> None:
    lat, lon = straight_transect(2, 0.1)
    assert subsample_distance(lat, lon, 2.5).tolist() == [0, 1]
    lat, lon = straight_transect(10, 3.0)  # all steps over the threshold: all kept
    assert subsample_distance(lat, lon, 2.5).tolist() == list(range(10))
    lat, lon = straight_transect(21, 0.5)
    lat[[3, 4]] = np.nan
    kept = subsample_distance(lat, lon, 2.5)
    assert 3 not in kept and 4 not in kept
    assert kept.tolist() == reference_subsample_distance(lat, lon, 2.5)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_non_positive_distance_is_an_input_error(bad: float) -> None:
    lat, lon = straight_transect(5)
    with pytest.raises(InputError, match="positive"):
        subsample_distance(lat, lon, bad)


steps_strategy = st.lists(
    st.one_of(st.just(0.0), st.floats(0.0, 6.0, allow_nan=False)), min_size=0, max_size=120
)


@settings(max_examples=150, deadline=None)
@given(
    steps=steps_strategy,
    turns=st.lists(st.floats(-np.pi, np.pi), min_size=1, max_size=5),
    thr=st.sampled_from([0.7, 1.25, 2.5, 5.0, 10.0]),
    method=st.sampled_from(["closest", "threshold"]),
)
def test_vectorised_thinning_keeps_the_reference_loops_rows(
    steps: list[float], turns: list[float], thr: float, method: str
) -> None:
    heading = np.resize(np.asarray(turns), len(steps))
    east = np.concatenate([[0.0], np.cumsum(np.asarray(steps) * np.sin(heading))])
    north = np.concatenate([[0.0], np.cumsum(np.asarray(steps) * np.cos(heading))])
    lat, lon = metres_to_degrees(east, north)
    expected = reference_subsample_distance(lat, lon, thr, method)
    assert subsample_distance(lat, lon, thr, method).tolist() == expected


def test_even_positions_round_half_to_even() -> None:
    assert even_positions(10, 4).tolist() == [0, 3, 6, 9]
    # linspace(0, 4, 3) = 0, 2, 4; linspace(0, 5, 3) = 0, 2.5, 5 -> 2.5 rounds to 2
    assert even_positions(6, 3).tolist() == [0, 2, 5]
    assert even_positions(3, 10).tolist() == [0, 1, 2]


def test_count_subsites_counts_real_gaps_only() -> None:
    far = two_stretches(2000.0)
    lat, lon = far["latitude"].to_numpy(), far["longitude"].to_numpy()
    assert count_subsites(lat, lon, 1000) == 2
    assert count_subsites(lat, lon, 500) == 2
    mid = two_stretches(700.0)
    lat, lon = mid["latitude"].to_numpy(), mid["longitude"].to_numpy()
    assert count_subsites(lat, lon, 1000) == 1
    assert count_subsites(lat, lon, 500) == 2
    back = out_and_back()
    lat, lon = back["latitude"].to_numpy(), back["longitude"].to_numpy()
    assert np.max(consecutive_distances(lat, lon)) > 1000  # the jump is there ...
    assert count_subsites(lat, lon, 1000) == 1  # ... but lands on covered ground
    assert count_subsites([np.nan, 1.0], [np.nan, 2.0], 500) == 1


def test_pseudo_sites_and_subsites_raise_the_targets() -> None:
    table = pd.concat(
        [
            two_stretches(2000.0).assign(site="far"),
            two_stretches(700.0).assign(site="near"),
            out_and_back().assign(site="back"),
        ],
        ignore_index=True,
    )
    result = subsample_sites(table, distance=2.5, target_population=100, min_population=50)
    sites = result.sites.set_index("site")
    assert sites.loc["far", ["pseudo_sites", "subsites", "target", "minimum"]].tolist() == [
        2,
        2,
        200,
        100,
    ]
    assert sites.loc["near", ["pseudo_sites", "subsites", "target", "minimum"]].tolist() == [
        1,
        2,
        150,
        75,
    ]
    assert sites.loc["back", ["pseudo_sites", "subsites", "target"]].tolist() == [1, 1, 100]


def test_small_sites_are_kept_whole_and_few_position_sites_evenly() -> None:
    small_lat, small_lon = straight_transect(300, 0.5)
    small = site_table(small_lat, small_lon, site="small")
    small.loc[[7, 8], ["latitude", "longitude"]] = np.nan  # whole sites keep these too
    drop = few_positions(2000, 4)
    table = pd.concat([small, drop], ignore_index=True)
    result = subsample_sites(table)  # T 1000, M 500
    sites = result.sites.set_index("site")
    assert sites.loc["small", "method"] == "whole"
    assert sites.loc["drop-camera", "method"] == "even"
    assert not sites.loc["drop-camera", "spatial"]
    kept_small = result.kept[result.kept["site"] == "small"]
    assert len(kept_small) == 300
    kept_drop = result.kept[result.kept["site"] == "drop-camera"]
    expected = 300 + np.unique(np.round(np.linspace(0, 1999, 1000)).astype(int))
    np.testing.assert_array_equal(kept_drop.index.to_numpy(), expected)


def test_site_without_any_coordinates_is_thinned_by_position() -> None:
    table = site_table(np.full(1500, np.nan), np.full(1500, np.nan), site="no-gps")
    result = subsample_sites(table)
    assert result.sites.loc[0, "method"] == "even"
    assert len(result.kept) == 1000


def test_equal_site_names_in_two_datasets_are_two_sites() -> None:
    lat, lon = straight_transect(400, 0.5)
    a = site_table(lat, lon, site="S1", dataset="one")
    b = site_table(lat, lon, site="S1", dataset="two")
    # Each site (400 rows) is under the minimum (500); merged by name they would not be.
    result = subsample_sites(pd.concat([a, b], ignore_index=True), min_population=500)
    assert len(result.sites) == 2
    assert result.sites["kept"].tolist() == [400, 400]


def test_spatial_sites_come_after_whole_ones_and_factors_escalate() -> None:
    lat, lon = straight_transect(4000, 0.5)  # 2 km at 0.5 m
    long_site = site_table(lat, lon, site="auv")
    small = site_table(*straight_transect(40, 0.5), site="tiny")
    table = pd.concat([long_site, small], ignore_index=True)
    result = subsample_sites(
        table, distance=2.5, target_population=200, min_population=50, factors=(1, 2, 4)
    )
    sites = result.sites.set_index("site")
    # 1999.5 m of track: 2.5 m -> 801 rows, 5 m -> 401, 10 m -> 201 (0, 10, ..., 1990 and
    # the last row, 9.5 m on): still >= 200, so factor 4 is used.
    assert sites.loc["auv", "factor"] == 4.0
    assert sites.loc["auv", "kept"] == 201
    assert result.kept["site"].tolist()[:40] == ["tiny"] * 40
    labels = reference_subsample_sites(table, 2.5, 200, 50, [1, 2, 4])
    assert result.kept.index.tolist() == labels


def test_target_zero_disables_the_cap_instead_of_crashing() -> None:
    lat, lon = straight_transect(1000, 0.5)
    result = subsample_sites(site_table(lat, lon), target_population=0, min_population=10)
    assert len(result.kept) == 201  # rows 0, 5, ..., 995 and the last one (2 m on)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_sitewise_matches_the_reference_on_random_surveys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tables = []
    for k in range(int(rng.integers(1, 5))):
        n = int(rng.integers(1, 700))
        kind = rng.integers(0, 3)
        if kind == 0:  # a wandering track with random step lengths
            steps = rng.exponential(rng.uniform(0.2, 2.0), n)
            heading = np.cumsum(rng.normal(0, 0.3, n))
            east, north = np.cumsum(steps * np.sin(heading)), np.cumsum(steps * np.cos(heading))
            if n > 10 and rng.random() < 0.5:
                east[n // 2 :] += rng.uniform(600, 3000)  # a jump to a second stretch
        elif kind == 1:  # a drop camera at a few positions
            east = np.repeat(rng.uniform(0, 200, 4), n)[:n]
            north = np.zeros(n)
        else:  # a hovering ROV: many duplicated fixes
            east = np.round(rng.uniform(0, 20, n))
            north = np.zeros(n)
        lat, lon = metres_to_degrees(east, north)
        tables.append(site_table(lat, lon, site=f"s{k}", dataset=f"d{k % 2}"))
    table = pd.concat(tables, ignore_index=True)
    target = int(rng.choice([20, 50, 100]))
    minimum = int(rng.choice([10, 30]))
    factors = [1, 2, 4]
    result = subsample_sites(
        table, distance=2.5, target_population=target, min_population=minimum, factors=factors
    )
    assert result.kept.index.tolist() == reference_subsample_sites(
        table, 2.5, target, minimum, factors
    )


def test_bad_coordinates_name_the_row() -> None:
    table = site_table(*straight_transect(5))
    table["latitude"] = table["latitude"].astype(object)
    table.loc[3, "latitude"] = "north-ish"
    with pytest.raises(InputError, match=r"row 3: latitude") as info:
        subsample_sites(table)
    assert info.value.value == "north-ish"
    with pytest.raises(InputError, match="missing column"):
        subsample_sites(table.drop(columns="site"))
    with pytest.raises(InputError, match="factors"):
        subsample_sites(site_table(*straight_transect(5)), factors=(0.5,))
