"""``quadrat dataset subsample``: --spatial-only, the subsite bonuses and --group-by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tests.data.tracks.data import few_positions, site_table, two_stretches
from typer.testing import CliRunner

from quadrat.cli import app

runner = CliRunner()


def subsample(table: pd.DataFrame, tmp_path: Path, *options: str) -> tuple[int, str, pd.DataFrame]:
    """Write ``table``, run the command on it, return its status, output and kept rows."""
    path, out = tmp_path / "survey.csv", tmp_path / "kept.csv"
    table.to_csv(path, index=False)
    out.unlink(missing_ok=True)
    result = runner.invoke(app, ["dataset", "subsample", str(path), "-o", str(out), *options])
    kept = pd.read_csv(out) if out.exists() else pd.DataFrame()
    return result.exit_code, result.output, kept


def test_spatial_only_drops_a_site_without_navigation(tmp_path: Path) -> None:
    n = 600
    no_nav = site_table(np.full(n, np.nan), np.full(n, np.nan), site="no-nav")
    table = pd.concat([no_nav, few_positions(2000, 4)], ignore_index=True)
    code, _, kept = subsample(table, tmp_path)
    assert code == 0
    assert (kept["site"] == "no-nav").sum() == n
    assert (kept["site"] == "drop-camera").sum() == 1000  # evenly spaced to the target
    code, output, kept = subsample(table, tmp_path, "--spatial-only")
    assert code == 0, output
    assert "no-nav" not in set(kept["site"])
    assert "dropped" in output
    assert 0 < (kept["site"] == "drop-camera").sum() < 1000  # thinned by distance instead


def test_subsite_bonuses(tmp_path: Path) -> None:
    table = two_stretches(700.0)  # 800 rows, 1 pseudo-site, 2 subsites
    code, _, kept = subsample(table, tmp_path)
    assert code == 0
    assert len(kept) < 800  # minimum 500 + 250 < 800
    code, _, kept = subsample(table, tmp_path, "--subsite-min-bonus", "400")
    assert code == 0
    assert len(kept) == 800  # minimum 900: kept whole
    options = ("--target", "100", "--min", "50", "--factors", "1,2,3")
    _, _, default = subsample(table, tmp_path, *options)
    code, _, none = subsample(table, tmp_path, *options, "--subsite-target-bonus", "0")
    assert code == 0
    assert len(none) < len(default)  # target 100 instead of 150: one factor further


def test_negative_bonus_names_the_flag(tmp_path: Path) -> None:
    code, output, _ = subsample(two_stretches(700.0), tmp_path, "--subsite-target-bonus", "-5")
    assert code == 1
    assert "--subsite-target-bonus" in output


def test_group_by_site_merges_equal_site_names(tmp_path: Path) -> None:
    table = pd.concat(
        [few_positions(300, 4).assign(dataset=name) for name in ("cruise-1", "cruise-2")],
        ignore_index=True,
    )
    options = ("--target", "400", "--min", "500")
    code, _, kept = subsample(table, tmp_path, *options)
    assert code == 0
    assert len(kept) == 600  # two sites of 300, each kept whole
    code, output, kept = subsample(table, tmp_path, *options, "--group-by", "site")
    assert code == 0, output
    assert len(kept) == 400  # one site of 600, evenly spaced to 400
    code, output, _ = subsample(table, tmp_path, "--group-by", "cruise")
    assert code == 2
