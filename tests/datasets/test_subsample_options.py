"""BenthicNet's remaining subsampling options: forbidding even spacing, subsite bonuses, grouping.

Each test runs a generated metadata table with and without the option and checks what
changes, so a option that is silently ignored fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quadrat.datasets.subsample import subsample_distance, subsample_sites
from quadrat.errors import InputError
from tests.data.tracks.data import few_positions, site_table, straight_transect, two_stretches


def nav_less(n: int, site: str = "no-nav") -> pd.DataFrame:
    """A site whose images have no position at all (a camera without navigation)."""
    return site_table(np.full(n, np.nan), np.full(n, np.nan), site=site)


def test_forbidding_nonspatial_thins_a_drop_camera_by_distance() -> None:
    table = few_positions(2000, 4)
    default = subsample_sites(table)
    forced = subsample_sites(table, allow_nonspatial=False)
    assert default.sites["method"].tolist() == ["even"]
    assert len(default.kept) == 1000
    assert forced.sites["method"].tolist() == ["spatial"]
    assert bool(forced.sites["spatial"].iloc[0])
    expected = subsample_distance(table["latitude"], table["longitude"], 2.5)
    assert forced.kept.index.tolist() == table.index[expected].tolist()
    assert len(forced.kept) < 1000


def test_forbidding_nonspatial_drops_a_site_without_navigation() -> None:
    lat, lon = straight_transect(1200, 0.5)
    table = pd.concat(
        [nav_less(600), nav_less(100, site="small-no-nav"), site_table(lat, lon)],
        ignore_index=True,
    )
    default = subsample_sites(table)
    forced = subsample_sites(table, allow_nonspatial=False)
    by_site = forced.sites.set_index("site")
    assert default.sites.set_index("site").loc["no-nav", "kept"] == 600  # even, under target
    assert by_site.loc["no-nav", "method"] == "dropped"
    assert by_site.loc["no-nav", "kept"] == 0
    assert "no-nav" not in set(forced.kept["site"])
    # At or under the minimum a site stays whole, navigation or not (as in the original).
    assert by_site.loc["small-no-nav", "method"] == "whole"
    assert by_site.loc["small-no-nav", "kept"] == 100
    # A site with navigation is thinned the same either way.
    transect = default.kept[default.kept["site"] == "site-a"].index.tolist()
    assert forced.kept[forced.kept["site"] == "site-a"].index.tolist() == transect


def test_subsite_target_bonus_sets_the_target_and_the_factor() -> None:
    table = two_stretches(700.0)  # 1 pseudo-site, 2 subsites, 800 rows 1 m apart
    settings = {"target_population": 100, "min_population": 50, "factors": (1, 2, 3)}
    default = subsample_sites(table, **settings)  # type: ignore[arg-type]
    none = subsample_sites(table, subsite_target_bonus=0, **settings)  # type: ignore[arg-type]
    some = subsample_sites(table, subsite_target_bonus=30, **settings)  # type: ignore[arg-type]
    assert default.sites[["pseudo_sites", "subsites"]].iloc[0].tolist() == [1, 2]
    assert default.sites["target"].iloc[0] == 150  # T + T // 2
    assert none.sites["target"].iloc[0] == 100
    assert some.sites["target"].iloc[0] == 130
    assert default.sites["factor"].iloc[0] == 2.0  # ~160 rows at 5 m; 7.5 m falls under 150
    assert none.sites["factor"].iloc[0] == 3.0  # ~108 rows at 7.5 m still reach 100
    assert len(none.kept) < len(default.kept)


def test_subsite_min_bonus_can_keep_a_site_whole() -> None:
    table = two_stretches(700.0)  # 800 rows
    default = subsample_sites(table)  # minimum 500 + 250 = 750 < 800: thinned
    raised = subsample_sites(table, subsite_min_bonus=400)  # 900 >= 800: whole
    assert default.sites["minimum"].iloc[0] == 750
    assert default.sites["method"].iloc[0] == "spatial"
    assert raised.sites["minimum"].iloc[0] == 900
    assert raised.sites["method"].iloc[0] == "whole"
    assert len(raised.kept) == 800


def test_explicit_default_bonuses_change_nothing() -> None:
    table = two_stretches(700.0)
    default = subsample_sites(table, target_population=100, min_population=50)
    explicit = subsample_sites(
        table,
        target_population=100,
        min_population=50,
        subsite_target_bonus=50,
        subsite_min_bonus=25,
    )
    assert explicit.kept.index.tolist() == default.kept.index.tolist()
    pd.testing.assert_frame_equal(explicit.sites, default.sites)


@pytest.mark.parametrize("param", ["subsite_target_bonus", "subsite_min_bonus"])
def test_negative_bonus_is_refused(param: str) -> None:
    with pytest.raises(InputError) as caught:
        subsample_sites(two_stretches(700.0), **{param: -1})  # type: ignore[arg-type]
    assert caught.value.param == param


def two_datasets_one_site_name() -> pd.DataFrame:
    """Two datasets, each with a drop-camera site of the same name and 300 images."""
    first = few_positions(300, 4).assign(dataset="cruise-1")
    second = few_positions(300, 4).assign(dataset="cruise-2")
    return pd.concat([first, second], ignore_index=True)


def test_grouping_by_site_alone_merges_equal_names() -> None:
    table = two_datasets_one_site_name()
    settings = {"target_population": 400, "min_population": 500}
    apart = subsample_sites(table, **settings)  # type: ignore[arg-type]
    merged = subsample_sites(table, group_by=("site",), **settings)  # type: ignore[arg-type]
    assert len(apart.sites) == 2
    assert apart.sites["method"].tolist() == ["whole", "whole"]  # 300 <= 500 each
    assert len(apart.kept) == 600
    assert len(merged.sites) == 1
    assert list(merged.sites.columns[:1]) == ["site"]
    assert "dataset" not in merged.sites.columns
    assert merged.sites["method"].tolist() == ["even"]  # 600 > 500: spaced to 400
    assert len(merged.kept) == 400


def test_grouping_by_site_alone_needs_no_dataset_column() -> None:
    table = two_datasets_one_site_name().drop(columns="dataset")
    result = subsample_sites(table, group_by=["site"])
    assert len(result.sites) == 1
    with pytest.raises(InputError, match="dataset"):
        subsample_sites(table)


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        subsample_sites(two_datasets_one_site_name(), group_by=("dataset",))
    assert caught.value.param == "group_by"
