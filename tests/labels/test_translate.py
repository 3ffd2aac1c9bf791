"""Label translation: proposals by kind, the reviewed CSV, roll-up and covers per level."""

from __future__ import annotations

import glob
import io
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from quadrat.errors import CsvFormatError, InputError
from quadrat.labels.catami import CatamiTree, name_keys
from quadrat.labels.catami_io import default_catami
from quadrat.labels.rollup import UNMAPPED, apply_mapping, covers_per_level, roll_up_codes
from quadrat.labels.translate import Matcher, propose_mapping, tokens, unmapped
from quadrat.labels.translate_io import (
    MAPPING_COLUMNS,
    SourceLabel,
    read_annotations,
    read_mapping,
    read_source_labels,
    shipped_mapping,
    write_mapping,
)
from tests.data.catami.data import CLASS_FOLDERS, EXPECTED


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(default_catami())


def test_name_forms_and_tokens() -> None:
    assert name_keys("Sand / mud (<2mm)") == {"sand / mud (<2mm)", "sand / mud", "sand", "mud"}
    assert name_keys("Boulders") == {"boulder"}
    assert tokens("SI_kelpBry") == ["si", "kelp", "bry"]
    assert tokens("CCA (crustose coralline algae)") == ["cca", "crustose", "coralline", "algae"]


def test_coralnet_labelset(tree: CatamiTree, catami_files: dict[str, Path]) -> None:
    labels = read_source_labels(catami_files["labelset"], "coralnet-labelset")
    assert [s.label for s in labels] == ["CCA", "Sand", "Porit", "Macro", "Off"]
    assert labels[0] == SourceLabel("CCA", "CCA (crustose coralline algae)", "Algae")
    mapping = propose_mapping(labels, tree).set_index("source_label")
    for label, code in EXPECTED["coralnet_codes"].items():
        assert mapping.loc[label, "caab_code"] == code, label
    assert mapping.loc["Sand", "kind"] == "exact-name" and mapping.loc["Sand", "score"] == 0.95
    assert mapping.loc["Macro", "kind"] == "exact-name" and mapping.loc["Macro", "score"] == 1.0
    assert mapping.loc["Off", "kind"] == "unmapped"
    assert mapping.loc["Porit", "kind"] == "unmapped"  # the tiny tree has no stony corals
    assert mapping.loc["Sand", "catami_path"] == (
        "Physical > Substrate > Unconsolidated (soft) > Sand / mud (<2mm)"
    )


def test_squidle_lineages(tree: CatamiTree, catami_files: dict[str, Path]) -> None:
    labels = read_source_labels(catami_files["squidle"], "squidle")
    assert len(labels) == 6
    mapping = propose_mapping(labels, tree).set_index("source_label")
    for lineage, code in EXPECTED["squidle_codes"].items():
        assert mapping.loc[lineage, "caab_code"] == code, lineage
    ecklonia = mapping.loc["Biota > Macroalgae > Large canopy-forming > Brown > Ecklonia radiata"]
    assert ecklonia["kind"] == "normalised-path" and ecklonia["score"] == 0.8
    assert "deepest known ancestor" in ecklonia["note"]
    assert unmapped(mapping.reset_index()) == ["Biota > Molluscs > Gastropods > Abalone"]


def test_class_folders(tree: CatamiTree, catami_files: dict[str, Path]) -> None:
    labels = read_source_labels(catami_files["names"], "names")
    assert [s.label for s in labels] == sorted(CLASS_FOLDERS)
    mapping = propose_mapping(labels, tree).set_index("source_label")
    assert mapping.loc["SU_bould", "caab_code"] == "82001003"  # 'bould' starts 'boulder'
    assert mapping.loc["unknown", "kind"] == "unmapped"


@pytest.mark.parametrize(
    ("label", "name", "group", "code", "kind"),
    [
        ("CCA", "CCA (crustose coralline algae)", "Algae", "80300934", "synonym"),
        ("Turf", "Turf algae", "Algae", "80300930", "synonym"),  # nested: the deeper node
        ("SI_kelpBry", "", "", "20000000", "synonym"),  # unrelated: the last word
        ("RE_fil", "", "", "80300933", "synonym"),  # colour prefix refines to 'Red'
        ("Soft", "Soft Coral", "Other Invertebrates", "11168901", "synonym"),  # not Bryozoa
        ("x", "anemones: Flytrap", "", "11229901", "exact-name"),  # last segment of a path
        ("x", "[SUBSTRATE] > Water column", "", "", "unmapped"),  # not 'Substrate'
        ("x", "Gastropoda", "", "24000000", "fuzzy"),
        ("x", "Zooanthid", "", "11284000", "fuzzy"),
        ("x", "Microalgae", "", "", "unmapped"),  # not 'Macroalgae', though 90% alike
        ("MAENR", "", "", "80300929", "cpc-code"),
        ("MA", "Montastraea annularis", "Hard coral", "11290000", "functional-group"),
        ("Off", "Off", "Other", "", "unmapped"),
    ],
)
def test_match_kinds_on_the_shipped_tree(
    matcher: Matcher, label: str, name: str, group: str, code: str, kind: str
) -> None:
    proposal = matcher.propose(SourceLabel(label, name, group))
    assert (proposal.code, proposal.kind) == (code, kind)
    assert 0.0 <= proposal.score <= 1.0


def test_mapping_csv_round_trip_and_review(tree: CatamiTree, tmp_path: Path) -> None:
    mapping = propose_mapping(["Sand", "Macroalgae", "Off"], tree)
    path = write_mapping(mapping, tmp_path / "mapping.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["mapping.csv"]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(MAPPING_COLUMNS)
    assert read_mapping(path, tree) == {"Sand": "82001013", "Macroalgae": "80300000"}
    frame.loc[frame["source_label"] == "Off", "caab_code"] = "82001001"  # a reviewer's edit
    frame.to_csv(path, index=False)
    assert read_mapping(path, tree)["Off"] == "82001001"
    frame.loc[2, "caab_code"] = "12345678"
    frame.to_csv(path, index=False)
    with pytest.raises(CsvFormatError, match=r"line 4: caab_code '12345678' \(for 'Off'\)"):
        read_mapping(path, tree)
    pd.concat([frame.iloc[:2], frame.iloc[:1]]).to_csv(path, index=False)
    with pytest.raises(CsvFormatError, match="line 4: source label listed twice"):
        read_mapping(path, tree)
    frame.drop(columns="caab_code").to_csv(path, index=False)
    with pytest.raises(CsvFormatError, match="missing column 'caab_code'"):
        read_mapping(path, tree)


def test_covers_per_level(tree: CatamiTree, catami_files: dict[str, Path]) -> None:
    points = read_annotations(catami_files["squidle"], "squidle")
    assert len(points) == 8
    mapping = dict(EXPECTED["squidle_codes"])
    codes = apply_mapping(points["label"], {k: v for k, v in mapping.items() if v})
    assert (codes == "").sum() == 1
    assert roll_up_codes(codes, 1, tree).tolist()[:4] == [
        "80300000",
        "80300000",
        "82001005",
        "80000000",  # 'Biota' alone cannot be refined: it stays at depth 0
    ]
    covers = covers_per_level(points["image"], codes, [0, 1], tree)
    sums = covers.groupby(["image", "level"])["cover"].sum()
    assert sums.round(9).eq(1.0).all()
    level1 = covers[(covers["image"] == "img_a") & (covers["level"] == 1)].set_index("name")
    assert level1.loc["Macroalgae", "cover"] == 0.5
    assert level1.loc["Unconsolidated (soft)", "head"] == "substrate"
    assert level1.loc["Biota", "points"] == 1
    level0 = covers[(covers["image"] == "img_b") & (covers["level"] == 0)].set_index("name")
    assert level0.loc["Substrate", "cover"] == 0.5
    assert level0.loc[UNMAPPED, "cover"] == 0.25 and level0.loc[UNMAPPED, "caab_code"] == ""


def test_reading_annotations(catami_files: dict[str, Path], tmp_path: Path) -> None:
    coralnet = read_annotations(catami_files["annotations"], "coralnet-labelset")
    assert coralnet["label"].tolist()[:3] == ["CCA", "CCA", "Sand"]
    assert coralnet["image"].nunique() == 2
    folders = read_annotations(catami_files["names"], "names")
    assert len(folders) == sum(CLASS_FOLDERS.values())
    assert folders.set_index("image").loc["SU_bould/SU_bould_1.jpg", "label"] == "SU_bould"
    with pytest.raises(CsvFormatError, match="no column 'Label'") as info:
        read_annotations(catami_files["squidle"], "coralnet-labelset")
    assert info.value.param == "label_column"  # the CLI turns it into its flag
    bad = tmp_path / "labelset.csv"
    bad.write_text("Label ID,Name\n1,Sand\n")
    with pytest.raises(CsvFormatError, match="needs 'Short Code' and 'Name'"):
        read_source_labels(bad, "coralnet-labelset")
    with pytest.raises(InputError, match="unknown source kind"):
        read_source_labels(bad, "cpce")


# -- the real sources --------------------------------------------------------------------
def _kinds(mapping: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in mapping["kind"].value_counts().items()}


@pytest.mark.shared_data
def test_moorea_labelset(shared_data: Path) -> None:
    labels = read_source_labels(
        shared_data / "moorea-lter-2008" / "labelset.csv", "coralnet-labelset"
    )
    mapping = propose_mapping(labels).set_index("source_label")
    assert mapping.loc["CCA", "caab_code"] == "80300934"  # Encrusting: Red: Calcareous
    assert mapping.loc["Sand", "caab_code"] == "82001013"
    assert mapping.loc["Turf", "caab_code"] == "80300930"
    assert mapping.loc["Macro", "caab_code"] == "80300000"
    assert mapping.loc["Porit", "caab_code"] == "11290000"  # functional group: stony corals
    assert mapping.loc["Fung", "caab_code"] == "11298000"  # Fungia: mushroom corals
    assert unmapped(mapping.reset_index()) == ["Off"]


@pytest.mark.shared_data
def test_squidle_export(shared_data: Path) -> None:
    export = glob.glob(str(shared_data / "squidle-tasmania-kelp" / "annotations-*.csv"))[0]
    mapping = propose_mapping(read_source_labels(export, "squidle"))
    assert len(mapping) == 6 and not unmapped(mapping)
    points = read_annotations(export, "squidle")
    codes = apply_mapping(points["label"], read_mapping_from(mapping))
    covers = covers_per_level(points["image"], codes, [1])
    overall = covers.groupby("name")["points"].sum()
    assert overall["Unconsolidated (soft)"] == 813 and overall["Macroalgae"] == 420


def read_mapping_from(mapping: pd.DataFrame) -> dict[str, str]:
    return dict(zip(mapping["source_label"], mapping["caab_code"], strict=True))


@pytest.mark.shared_data
def test_seattle_class_folders(shared_data: Path) -> None:
    labels = read_source_labels(shared_data / "seattle-rov-patches" / "patches", "names")
    assert len(labels) == 25
    mapping = propose_mapping(labels).set_index("source_label")
    expected = {
        "SU_bould": "82001003",
        "SU_cob": "82001004",
        "SU_sand": "82001013",
        "SU_silt": "82001016",
        "SU_shell": "82001008",
        "RE_CCA": "80300934",
        "GR_ulva": "80300924",
    }
    for label, code in expected.items():
        assert mapping.loc[label, "caab_code"] == code, label
    assert mapping.loc["unknown", "kind"] == "unmapped"


@pytest.mark.shared_data
@pytest.mark.slow
def test_coralnet_global_labels(shared_data: Path) -> None:
    labels = read_source_labels(shared_data / "coralnet-labels" / "labels.csv", "coralnet-labelset")
    assert len(labels) == 7542
    mapping = propose_mapping(labels)
    kinds = _kinds(mapping)
    assert kinds["unmapped"] < 0.1 * len(mapping)
    tree = default_catami()
    exact = mapping[mapping["kind"] == "exact-name"]
    for name, code in zip(exact["source_name"], exact["caab_code"], strict=True):
        assert name_keys(name.split(":")[-1]) & name_keys(tree.node(code).name), name


def test_shipped_seattle_mapping_is_valid() -> None:
    mapping = shipped_mapping("seattle_rov")
    assert len(mapping) == 23  # 25 classes; 'SU_anth' and 'unknown' stay unmapped
    tree = default_catami()
    assert tree.path_str(mapping["KE_sugar"]) == "Biota > Macroalgae > Laminate > Brown"
    assert tree.head(mapping["SU_bould"]) == "substrate"
    with pytest.raises(InputError, match="no shipped mapping named 'nope'"):
        shipped_mapping("nope")


@pytest.mark.shared_data
def test_shipped_seattle_mapping_names_every_class_folder(shared_data: Path) -> None:
    folders = {p.name for p in (shared_data / "seattle-rov-patches" / "patches").iterdir()}
    shipped = resources.files("quadrat.labels").joinpath("data", "seattle_rov_catami.csv")
    table = pd.read_csv(io.StringIO(shipped.read_text()), dtype=str, keep_default_na=False)
    assert set(table["source_label"]) == folders
    assert set(folders) - set(shipped_mapping("seattle_rov")) == {"SU_anth", "unknown"}
