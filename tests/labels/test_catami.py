"""The CATAMI tree: loaders for every published form, lookups, ancestry, roll-up."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quadrat.errors import CsvFormatError, InputError, UnknownNodeError
from quadrat.labels.catami import CatamiNode, CatamiTree, normalise_name, split_path
from quadrat.labels.catami_io import (
    default_catami,
    load_caab_csv,
    load_catami_csv,
    load_paths,
    load_tree,
    load_tree_json,
    write_catami_csv,
)
from tests.data.catami.data import EXPECTED, NODES, TYPO_PARENT


def test_caab_csv_repairs_the_missing_parent_and_says_where(catami_files: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match=r"line 11: parent 80000901 of 63600903"):
        tree = load_caab_csv(catami_files["caab_csv"])
    assert len(tree) == EXPECTED["nodes"]
    assert tree.parent("63600903") == "63600901"
    assert tree.node("80300929").cpc_code == "MAENR"  # the published padding is stripped
    assert tree.node("80300929").name == "Red"
    with pytest.raises(InputError, match=TYPO_PARENT) as info:
        load_caab_csv(catami_files["caab_csv"], repair=False)
    assert str(catami_files["caab_csv"]) in str(info.value)


def test_lookups(tree: CatamiTree) -> None:
    assert tree.find("80300929") == "80300929"
    assert tree.find("10000000") == "10000000"
    assert tree.find("sponges") == "10000000"  # names are case-insensitive
    assert tree.find("SEAGRASSES") == "63600901"
    assert tree.find("Biota > Macroalgae > Encrusting > Red") == "80300929"
    assert tree.find("Macroalgae: Encrusting: Red") == "80300929"  # CATAMI display name
    assert tree.find("Relief: High: Wall") == "82003007"  # display name under 'Physical'
    assert tree.find("MAENR") == "80300929"  # CPC code
    assert tree.find("sand") == "82001013"  # one side of 'Sand / mud (<2mm)'
    assert tree.find("boulder") == "82001003"  # singular
    assert sorted(tree.by_name("brown")) == ["80300902", "80300927"]
    with pytest.raises(UnknownNodeError, match="2 CATAMI nodes have the name 'Brown'"):
        tree.find("Brown")
    with pytest.raises(UnknownNodeError, match="no CATAMI node has path"):
        tree.find("Biota > Corals")
    with pytest.raises(UnknownNodeError, match="'Kelp forest'"):
        tree.find("Kelp forest")
    assert "80300929" in tree and "99999999" not in tree


def test_split_path_is_the_one_path_splitter() -> None:
    waves = "Physical > Bedforms > 2D > Waves (>10cm height)"
    assert split_path(waves + ",") == ["Physical", "Bedforms", "2D", "Waves (>10cm height)"]
    assert split_path(waves, display_names=False)[:3] == ["Physical", "Bedforms", "2D"]
    assert split_path("Macroalgae: Encrusting: Red") == ["Macroalgae", "Encrusting", "Red"]
    assert split_path("Sponges: Crusts", display_names=False) == ["Sponges: Crusts"]
    assert split_path("  ") == []


def test_ancestry_depth_heads_and_roll_up(tree: CatamiTree) -> None:
    red = "80300929"
    assert tree.ancestors(red) == ["80000000", "80300000", "80300926"]
    assert tree.path(red) == ("Biota", "Macroalgae", "Encrusting", "Red")
    assert tree.depth(red) == 3 and tree.depth("80000000") == 0
    assert tree.head(red) == "biota"
    assert tree.head("82003007") == "relief" and tree.depth("82003007") == 2
    assert tree.depth("82001000") == 0  # head roots count from themselves, not 'Physical'
    assert tree.head("82000000") is None and tree.depth("82000000") == 0
    assert tree.roll_up(red, 0) == "80000000"
    assert tree.roll_up(red, 1) == "80300000"
    assert tree.roll_up(red, 3) == red
    assert tree.roll_up("80300000", 5) == "80300000"  # shallower nodes stay themselves
    assert tree.roll_up("82003007", 1) == "82003005"
    with pytest.raises(InputError):
        tree.roll_up(red, -1)
    assert set(tree.descendants("80300926")) == {"80300927", "80300929"}
    assert tree.children("80300000") == ["80300926", "80300901"]  # sorted by name
    assert tree.heads() == {
        "biota": "80000000",
        "substrate": "82001000",
        "relief": "82003000",
        "bedforms": "82002000",
    }
    sizes = {h: len(tree.head_nodes(h, include_root=True)) for h in tree.heads()}
    assert sizes == EXPECTED["head_sizes"]
    counts = tree.counts()
    assert counts["nodes"].sum() == len(tree)
    assert counts.query("head == 'biota' and depth == 3")["nodes"].item() == 3


def test_tree_json_gives_the_same_tree(tree: CatamiTree, catami_files: dict[str, Path]) -> None:
    from_json = load_tree_json(catami_files["tree_json"])
    assert len(from_json) == len(tree) + 1  # plus its 'Not Considered' root
    for code, _display, _parent, cpc in NODES:
        assert from_json.node(code).name == tree.node(code).name
        assert from_json.node(code).cpc_code == cpc
        if code not in ("80000000", "82000000"):  # roots hang under 'Not Considered' there
            assert from_json.parent(code) == tree.parent(code)
    assert from_json.head("80300929") == "biota"
    assert from_json.depth("80300929") == 3
    assert from_json.heads() == tree.heads()


def test_paths_tolerate_trailing_commas(catami_files: dict[str, Path]) -> None:
    naive = pd.read_csv(catami_files["paths"], on_bad_lines="skip")
    assert len(naive) == 7  # a plain read drops the 5 rows with a stray comma
    paths = load_paths(catami_files["paths"])
    sizes = {h: len(paths.head_nodes(h)) for h in paths.heads()}
    assert sizes == EXPECTED["paths_head_sizes"]
    wall = "[RELIEF] > High > Wall"
    assert wall in paths and paths.head(wall) == "relief" and paths.depth(wall) == 2
    assert paths.find("[BIOTA] > Biota > Macroalgae > Encrusting > Red").endswith("Red")
    lines = ["Biota > Macroalgae > Laminate", "Biota > Sponges"]
    from_lines = load_paths(lines)
    assert len(from_lines) == 4 and from_lines.parent("Biota > Sponges") == "Biota"
    with pytest.raises(InputError, match="line 2"):
        load_paths(["Biota > Sponges", "Biota >  > Crusts"])


def test_own_csv_round_trip(tree: CatamiTree, tmp_path: Path) -> None:
    out = write_catami_csv(tree, tmp_path / "own.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["own.csv"]  # no temp file left behind
    again = load_catami_csv(out)
    pd.testing.assert_frame_equal(again.to_frame(), tree.to_frame())
    assert load_tree(out).to_frame().equals(tree.to_frame())
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == [
        "caab_code",
        "name",
        "parent_caab_code",
        "cpc_code",
        "head",
        "path",
    ]
    assert frame.set_index("caab_code").loc["80300929", "path"] == (
        "Biota > Macroalgae > Encrusting > Red"
    )


def test_bad_trees_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="duplicate node code '1'"):
        CatamiTree([CatamiNode("1", "a", None), CatamiNode("1", "b", None)])
    with pytest.raises(InputError, match="cycle"):
        CatamiTree([CatamiNode("1", "a", "2"), CatamiNode("2", "b", "1")])
    with pytest.raises(InputError, match="names parent '9'"):
        CatamiTree([CatamiNode("1", "a", "9")])
    bad = tmp_path / "bad.csv"
    bad.write_text("caab_code,label\n1,x\n")
    with pytest.raises(CsvFormatError, match="missing column"):
        load_catami_csv(bad)
    bad.write_text("caab_code,name,parent_caab_code\n1,a,\n2,,1\n")
    with pytest.raises(CsvFormatError, match="line 3"):
        load_catami_csv(bad)
    bad.write_text("caab_code,name,parent_caab_code\n1,a,\n\n2,,1\n")  # a blank line
    with pytest.raises(CsvFormatError, match="line 4"):  # the line in the file, not the row
        load_catami_csv(bad)
    broken = tmp_path / "bad.json"
    broken.write_text('[{"pk": 1, "fields": {"caab_code": "1"}}]')
    with pytest.raises(InputError, match="record 0 lacks"):
        load_tree_json(broken)
    broken.write_text("[{")
    with pytest.raises(InputError, match="not JSON"):
        load_tree_json(broken)


def test_shipped_v1_4_tree() -> None:
    tree = default_catami()
    assert len(tree) == 289
    sizes = {h: len(tree.head_nodes(h)) for h in tree.heads()}
    assert sizes == {"biota": 251, "substrate": 18, "relief": 7, "bedforms": 8}
    assert tree.path_str(tree.find("SEAGS")) == "Biota > Seagrasses > Strap-like leaves"
    assert sorted(tree.by_cpc("SUPBR")) == ["82001009", "82001018"]  # as published
    assert tree.find("Macroalgae: Encrusting: Red: Calcareous") == "80300934"
    assert max(tree.depth(c) for c in tree.head_nodes("biota")) == 7


# -- against the published files -------------------------------------------------------
@pytest.mark.shared_data
def test_shipped_table_is_the_published_caab_csv(shared_data: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="80000901"):
        rebuilt = load_caab_csv(shared_data / "catami" / "catami-caab-codes_1.4.csv")
    pd.testing.assert_frame_equal(rebuilt.to_frame(), default_catami().to_frame())
    published = pd.read_csv(
        shared_data / "catami" / "catami-caab-codes_1.4.csv", dtype=str, keep_default_na=False
    )
    assert len(published) == len(default_catami()) == 289


@pytest.mark.shared_data
def test_tree_json_differs_only_by_the_documented_v1_4_changes(shared_data: Path) -> None:
    shipped = default_catami()
    old = load_tree_json(shared_data / "catami" / "catami_classification_tree.json")
    assert len(old) == 274
    common = [n.code for n in old if n.code in shipped]
    assert len(common) == 269
    moved = {c for c in common if old.parent(c) != shipped.parent(c)}
    # the two roots hang under 'Not Considered' there; v1.4 moved barrels to the cup-likes,
    # stalked sponges to the erect forms, and dropped the 'Echiura / Sipuncula' grouping
    assert moved == {"80000000", "82000000", "10000907", "10000906", "17020000", "17000000"}
    renamed = {c for c in common if old.node(c).name != shipped.node(c).name}
    assert renamed == {
        "11290901",  # Solitary / mushroom -> Solitary
        "28825902",  # With gastropod shell -> With shell or stone home
        "28825903",  # With zoanthid -> With anemones
        "10000909",  # Hollow forms -> Cup-likes
        "10000910",  # Cups and alikes -> Cups
        "10000907",  # Massive forms: Barrels -> Barrels
        "10000905",  # Radially organised -> Balls
        "82003007",  # Rock wall -> Wall
    }
    only_old = {n.code for n in old if n.code not in shipped}
    assert only_old == {"00000000", "00000001", "00000002", "11290914", "80600902"}
    assert old.heads() == shipped.heads()


@pytest.mark.shared_data
def test_forward_facing_schema_agrees(shared_data: Path) -> None:
    """Every code both know has the same name; the others resolve by path to an ancestor."""
    shipped = default_catami()
    frame = pd.read_csv(
        shared_data / "catami" / "benthic-annotation-schema-forward-facing.csv",
        dtype=str,
        keep_default_na=False,
    )
    assert len(frame) == 303
    levels = [f"level_{i}" for i in range(1, 9)]
    same = unknown = resolved = 0
    for row in frame.itertuples():
        names = [
            getattr(row, c) for c in levels if getattr(row, c) and not getattr(row, c).isdigit()
        ]
        code = row.caab_code.zfill(8)
        if code in shipped:
            assert normalise_name(names[-1]) == normalise_name(shipped.node(code).name), code
            same += 1
            continue
        unknown += 1
        if shipped.by_path(names) is not None:
            resolved += 1
    assert (same, unknown) == (287, 16)
    assert resolved == 11  # species codes under a v1.4 node; 5 codes have no v1.4 path


@pytest.mark.shared_data
def test_benthicnet_paths_give_the_probe_heads(shared_data: Path) -> None:
    paths = load_paths(shared_data / "catami" / "catami_ex.csv")
    sizes = {h: len(paths.head_nodes(h)) for h in paths.heads()}
    assert sizes == {"biota": 272, "substrate": 23, "bedforms": 8, "relief": 7}
    # BenthicNet's 'levels below the top' count from the first level under the tag
    levels = {h: max(paths.depth(c) for c in paths.head_nodes(h)) - 1 for h in sizes}
    assert levels == {"biota": 6, "substrate": 4, "bedforms": 2, "relief": 1}
    worms = load_paths(shared_data / "catami" / "finalized_output.csv", column="catami")
    assert set(worms.heads()) == {"biota", "substrate", "bedforms", "relief"}
