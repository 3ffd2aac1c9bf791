"""``quadrat dataset catami | translate | rollup`` from the command line."""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd
import pytest
from tests.data.catami.data import make_catami_fixture
from typer.testing import CliRunner

from quadrat.cli import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, ["dataset", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return " ".join(result.output.split())


def fail(*args: str) -> str:
    result = runner.invoke(app, ["dataset", *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert text.startswith("error:"), text
    return text


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_catami_fixture(tmp_path_factory.mktemp("catami_cli"))


def test_catami_counts_show_and_tree() -> None:
    out = run("catami")
    assert "CATAMI nodes (289)" in out and "biota" in out and "252" in out
    out = run("catami", "show", "sand")
    assert "caab 82001013" in out and "cpc SUS" in out
    assert "Physical > Substrate > Unconsolidated (soft) > Sand / mud (<2mm)" in out
    assert "head: substrate depth: 2" in out and "children: 3" in out
    out = run("catami", "show", "Macroalgae: Encrusting", "--tree", "--depth", "2")
    assert "Red 80300929 MAENR" in out and "Calcareous 80300934" in out
    out = run("catami", "tree", "Relief", "--depth", "1")
    assert "High 82003005" in out and "Wall" not in out


def test_catami_errors_are_one_line(files: dict[str, Path]) -> None:
    assert "2 CATAMI nodes have the CPC code 'SUPBR'" in fail("catami", "show", "SUPBR")
    assert "no CATAMI node has code, name or CPC code 'Kelp forest'" in fail(
        "catami", "show", "Kelp forest"
    )
    bad = files["caab_csv"].parent / "broken.json"
    bad.write_text("[{")
    assert "broken.json" in fail("catami", "--scheme", str(bad))


def test_catami_with_another_scheme_and_build(files: dict[str, Path], tmp_path: Path) -> None:
    out = run("catami", "--scheme", str(files["paths"]))
    assert "CATAMI nodes (24)" in out  # 20 nodes under 4 head tags
    out_csv = tmp_path / "own.csv"
    out = run("catami", "build", str(files["caab_csv"]), "--out", str(out_csv))
    assert f"wrote 21 nodes to {out_csv}" in out
    assert "Strap-like leaves" in run("catami", "show", "SEAGS", "--scheme", str(out_csv))


def test_translate_then_rollup(files: dict[str, Path], tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.csv"
    out = run(
        "translate", str(files["labelset"]), "--format", "coralnet-labelset", "--out", str(mapping)
    )
    assert "5 labels -> CATAMI" in out and "unmapped (1): Off" in out
    frame = pd.read_csv(mapping, dtype=str, keep_default_na=False).set_index("source_label")
    assert frame.loc["CCA", "caab_code"] == "80300934"
    covers = tmp_path / "covers.csv"
    out = run(
        "rollup",
        str(files["annotations"]),
        "--mapping",
        str(mapping),
        "--depth",
        "0",
        "--depth",
        "1",
        "--out",
        str(covers),
    )
    assert "6 points on 2 images; 5 mapped (83.3%)" in out
    table = pd.read_csv(covers, dtype={"caab_code": str}, keep_default_na=False)
    q1 = table[(table["image"] == "q1.jpg") & (table["level"] == 1)].set_index("name")
    assert q1.loc["Macroalgae", "cover"] == 0.5 and q1.loc["(unmapped)", "cover"] == 0.25
    assert set(table["level"]) == {0, 1}


def test_translate_with_a_survey_vocabulary(files: dict[str, Path], tmp_path: Path) -> None:
    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("term,caab_code,note\nbould,82001003,\nfucus,80300927,test only\n")
    mapping = tmp_path / "mapping.csv"
    out = run(
        "translate",
        str(files["names"]),
        "--format",
        "names",
        "--vocabulary",
        str(vocabulary),
        "--out",
        str(mapping),
        "--scheme",
        str(files["caab_csv"]),
    )
    assert "4 labels -> CATAMI" in out
    frame = pd.read_csv(mapping, dtype=str, keep_default_na=False).set_index("source_label")
    assert frame.loc["BR_fucus", "caab_code"] == "80300927"  # from the given vocabulary
    assert frame.loc["SU_bould", "kind"] == "synonym"
    vocabulary.write_text("word,code\nx,1\n")
    assert "vocabulary.csv: missing column 'term'" in fail(
        "translate",
        str(files["names"]),
        "--format",
        "names",
        "--vocabulary",
        str(vocabulary),
        "--out",
        str(mapping),
    )


def test_translate_and_rollup_errors(files: dict[str, Path], tmp_path: Path) -> None:
    assert "needs 'Short Code' and 'Name'" in fail(
        "translate",
        str(files["squidle"]),
        "--format",
        "coralnet-labelset",
        "--out",
        str(tmp_path / "m.csv"),
    )
    assert not (tmp_path / "m.csv").exists()
    assert "fuzzy cutoff is a similarity ratio in [0, 1]" in fail(
        "translate",
        str(files["labelset"]),
        "--format",
        "coralnet-labelset",
        "--out",
        str(tmp_path / "m.csv"),
        "--fuzzy-cutoff",
        "2",
    )
    good = tmp_path / "good.csv"
    good.write_text("source_label,caab_code\nCCA,80300934\n")
    assert "level must be 0 or more" in fail(
        "rollup",
        str(files["annotations"]),
        "--mapping",
        str(good),
        "--depth",
        "-1",
        "--out",
        str(tmp_path / "c.csv"),
    )
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("source_label,caab_code\nCCA,80300934\nSand,1234\n")
    text = fail(
        "rollup",
        str(files["annotations"]),
        "--mapping",
        str(mapping),
        "--out",
        str(tmp_path / "c.csv"),
    )
    assert "mapping.csv, line 3: caab_code '00001234'" in text
    assert (
        "nope.csv: file not found"
        in fail(
            "rollup",
            str(tmp_path / "nope.csv"),
            "--mapping",
            str(mapping),
            "--out",
            str(tmp_path / "c.csv"),
        ).lower()
    )


@pytest.mark.shared_data
def test_real_sources_from_the_cli(shared_data: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "seattle.csv"
    out = run(
        "translate",
        str(shared_data / "seattle-rov-patches" / "patches"),
        "--format",
        "names",
        "--out",
        str(mapping),
    )
    assert "25 labels -> CATAMI" in out and "unknown" in out
    covers = tmp_path / "seattle_covers.csv"
    out = run(
        "rollup",
        str(shared_data / "seattle-rov-patches" / "patches"),
        "--format",
        "names",
        "--mapping",
        str(mapping),
        "--depth",
        "1",
        "--out",
        str(covers),
    )
    assert "934 points on 934 images" in out
    export = glob.glob(str(shared_data / "squidle-tasmania-kelp" / "annotations-*.csv"))[0]
    squidle_map = tmp_path / "squidle.csv"
    out = run("translate", export, "--format", "squidle", "--out", str(squidle_map))
    assert "6 labels -> CATAMI" in out and "unmapped" not in out
    out = run(
        "rollup",
        export,
        "--format",
        "squidle",
        "--mapping",
        str(squidle_map),
        "--depth",
        "1",
        "--out",
        str(tmp_path / "squidle_covers.csv"),
    )
    assert "1500 points on 300 images; 1500 mapped (100.0%)" in out


def test_from_is_an_old_spelling_of_format(files: dict[str, Path], tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.csv"
    out = run(
        "translate", str(files["labelset"]), "--from", "coralnet-labelset", "-o", str(mapping)
    )
    assert "--from is deprecated; use --format" in out and mapping.exists()
