"""Spatial and site-grouped partitions: rules held, seeded, class balance reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quadrat.datasets.geo import haversine
from quadrat.datasets.partition import (
    class_balance,
    class_test_target,
    site_grouped_split,
    spatial_partition,
)
from quadrat.errors import InputError
from tests.data.tracks.data import metres_to_degrees, site_table


def labelled_survey(seed: int = 0, n_sites: int = 4, per_site: int = 150) -> pd.DataFrame:
    """Sites of wandering tracks (~3 m a frame) whose habitat label changes in patches."""
    rng = np.random.default_rng(seed)
    tables = []
    for k in range(n_sites):
        steps = rng.uniform(1, 5, per_site)
        heading = np.cumsum(rng.normal(0, 0.4, per_site))
        east = np.cumsum(steps * np.sin(heading)) + 5000 * k
        north = np.cumsum(steps * np.cos(heading))
        lat, lon = metres_to_degrees(east, north)
        table = site_table(lat, lon, site=f"site{k}")
        patch = (np.arange(per_site) // 25 + k) % 5
        table["biota"] = np.array(["Kelp", "Sponges", "Sand", "Seagrass", "Corals"])[patch]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def test_class_test_target_follows_the_spec() -> None:
    counts = pd.Series({"a": 100, "b": 40, "c": 20, "d": 2})
    # median of classes over 3 images: 40 -> 35% = 14; 15% of the largest = 15
    assert class_test_target(counts) == 14
    assert class_test_target(pd.Series({"a": 1000, "b": 400, "c": 20})) == 140
    assert class_test_target(pd.Series(dtype=int)) == 0


def test_spatial_partition_keeps_train_and_test_apart() -> None:
    table = labelled_survey()
    result = spatial_partition(table, "biota", seed=1)
    part = result.assignment
    assert set(part.unique()) <= {"train", "test", "excluded"}
    train, test = table[part == "train"], table[part == "test"]
    gaps = haversine(
        train["latitude"].to_numpy()[:, None],
        train["longitude"].to_numpy()[:, None],
        test["latitude"].to_numpy()[None, :],
        test["longitude"].to_numpy()[None, :],
    )
    assert gaps.min() >= 10.0  # the strict distance holds everywhere
    balance = result.balance
    per_label = balance.drop(index="(all images)")
    assert (per_label["train_fraction"] >= 0.5).all()
    assert (per_label["test_fraction"] >= 0.15 - 1e-9).all()
    assert balance.loc["(all images)", "images"] == len(table)


def test_spatial_partition_is_reproducible_with_a_seed() -> None:
    table = labelled_survey()
    first = spatial_partition(table, "biota", seed=7).assignment
    again = spatial_partition(table, "biota", seed=7).assignment
    other = spatial_partition(table, "biota", seed=8).assignment
    pd.testing.assert_series_equal(first, again)
    assert not first.equals(other)


def test_points_of_one_image_share_a_partition_and_unlabelled_rows_are_excluded() -> None:
    table = labelled_survey(n_sites=2)
    points = pd.concat([table, table.assign(biota="Sand")], ignore_index=True)  # 2 labels/image
    points.loc[0, "biota"] = "  "
    points.loc[1, "latitude"] = np.nan
    result = spatial_partition(points, "biota", seed=0)
    split = result.assignment
    assert split[0] == "excluded" and split[1] == "excluded"
    by_image = split.iloc[2:].groupby(points["image"].iloc[2:]).nunique()
    assert (by_image == 1).all()


def test_site_grouped_split_holds_out_whole_sites() -> None:
    table = labelled_survey(n_sites=5)
    result = site_grouped_split(table, "biota", test_fraction=0.4, seed=3)
    per_site = result.assignment.groupby(table["site"]).nunique()
    assert (per_site == 1).all()
    assert (result.assignment.groupby(table["site"]).first() == "test").sum() == 2
    again = site_grouped_split(table, "biota", test_fraction=0.4, seed=3)
    pd.testing.assert_series_equal(result.assignment, again.assignment)
    assert {"train", "test", "train_fraction"} <= set(result.balance.columns)
    assert result.balance.loc["(all images)", "test"] == 300


def test_class_balance_counts_an_image_once_per_label() -> None:
    labels = pd.Series(["a", "a", "b", None])
    split = pd.Series(["train", "train", "test", "excluded"])
    balance = class_balance(labels, split, np.array([0, 0, 1, 2]))
    assert balance.loc["a", "train"] == 1
    assert balance.loc["b", "test"] == 1
    assert balance.loc["(all images)", "images"] == 3


def test_bad_inputs_are_named() -> None:
    table = labelled_survey(n_sites=1)
    with pytest.raises(InputError, match="missing column"):
        spatial_partition(table, "substrate")
    with pytest.raises(InputError, match="two sites"):
        site_grouped_split(table, "biota")
    with pytest.raises(InputError, match="fractions"):
        spatial_partition(table, "biota", min_train=0.9, min_test=0.2)


@pytest.mark.shared_data
def test_squidle_kelp_partition(shared_data: Path) -> None:
    folder = shared_data / "squidle-tasmania-kelp"
    raw = pd.read_csv(next(folder.glob("annotations-*.csv")))
    table = pd.DataFrame(
        {
            "dataset": raw["point.media.deployment.campaign.key"],
            "site": raw["point.media.deployment.key"],
            "image": raw["point.media.key"],
            "latitude": raw["point.pose.lat"],
            "longitude": raw["point.pose.lon"],
            "label": raw["label.lineage_names"].str.split(" > ").str[:2].str.join(" > "),
        }
    )
    result = spatial_partition(table, "label", seed=0)
    balance = result.balance
    assert balance.loc["(all images)", "images"] == 300
    assert balance.loc["(all images)", "test"] > 0
    assert (result.assignment.groupby(table["image"]).nunique() == 1).all()


def test_truncate_lineage_uses_the_one_path_splitter() -> None:
    from quadrat.datasets.partition import truncate_lineage
    from quadrat.errors import InputError

    labels = pd.Series(["Physical > Bedforms > 2D > Waves (>10cm height),", None, "Biota"])
    assert truncate_lineage(labels, 3).tolist() == ["Physical > Bedforms > 2D", pd.NA, "Biota"]
    with pytest.raises(InputError, match="at least 1") as err:
        truncate_lineage(labels, 0)
    assert err.value.param == "label_depth"
