"""A tiny CATAMI tree in every published form, plus source files to translate.

``make_catami_fixture(root)`` writes (deterministically) and returns name -> path:

- ``caab_csv``: the CAAB-code CSV form (``SPECIES_CODE, CATAMI_DISPLAY_NAME, ...``) with
  v1.4's quirks: CPC codes padded with spaces, and the strap-like seagrass naming a parent
  code (80000901) that is in no row;
- ``tree_json``: the classification-tree JSON (a Django fixture; parents are record pks)
  under a 'Not Considered' root, as the published file has;
- ``paths``: BenthicNet's '>'-path list with ``[HEAD]`` tags, a header and stray trailing
  commas on the last rows;
- ``squidle``: a Squidle+ annotation export (lineage paths, 8 points on 2 images);
- ``labelset`` and ``annotations``: a CoralNet labelset and annotation export (6 points);
- ``names``: a class-folder tree (``patches/<CLASS>/*.jpg``, Seattle-style names).

``NODES`` lists the tree; ``EXPECTED`` holds the facts the tests check.
Import as ``tests.data.catami.data``.
"""

from __future__ import annotations

import json
from pathlib import Path

#: (CAAB code, display name (': '-joined below the root), parent code, CPC code)
NODES: tuple[tuple[str, str, str, str], ...] = (
    ("80000000", "Biota", "", "BIOTA"),
    ("80300000", "Macroalgae", "80000000", "MA"),
    ("80300926", "Macroalgae: Encrusting", "80300000", "MAEN"),
    ("80300927", "Macroalgae: Encrusting: Brown", "80300926", "MAENB"),
    ("80300929", "Macroalgae: Encrusting: Red", "80300926", "MAENR"),
    ("80300901", "Macroalgae: Large canopy-forming", "80300000", "MALC"),
    ("80300902", "Macroalgae: Large canopy-forming: Brown", "80300901", "MALCB"),
    ("10000000", "Sponges", "80000000", "SP"),
    ("63600901", "Seagrasses", "80000000", "SEAG"),
    ("63600903", "Seagrasses: Strap-like leaves", "63600901", "SEAGS"),
    ("82000000", "Physical", "", "P"),
    ("82001000", "Substrate", "82000000", "S"),
    ("82001001", "Substrate: Consolidated (hard)", "82001000", "SC"),
    ("82001003", "Substrate: Consolidated (hard): Boulders", "82001001", "SCB"),
    ("82001005", "Substrate: Unconsolidated (soft)", "82001000", "SU"),
    ("82001013", "Substrate: Unconsolidated (soft): Sand / mud (<2mm)", "82001005", "SUS"),
    ("82003000", "Relief", "82000000", "R"),
    ("82003005", "Relief: High", "82003000", "RH"),
    ("82003007", "Relief: High: Wall", "82003005", "RHR"),
    ("82002000", "Bedforms", "82000000", "B"),
    ("82002001", "Bedforms: None", "82002000", "BN"),
)
TYPO_PARENT = "80000901"  # what the CAAB CSV gives the strap-like seagrass

PATHS = (
    "[BIOTA] > Biota",
    "[BIOTA] > Biota > Macroalgae > Encrusting > Brown",
    "[BIOTA] > Biota > Macroalgae > Encrusting > Red",
    "[BIOTA] > Biota > Macroalgae > Large canopy-forming > Brown",
    "[BIOTA] > Biota > Sponges",
    "[BIOTA] > Biota > Seagrasses > Strap-like leaves",
    "[BIOTA] > Unclear",
    "[SUBSTRATE] > Substrate > Consolidated (hard) > Boulders,",
    "[SUBSTRATE] > Substrate > Unconsolidated (soft) > Sand / mud (<2mm),",
    "[RELIEF] > High > Wall,",
    "[BEDFORMS] > Bedforms,",
    "[BEDFORMS] > None,",
)

SQUIDLE_POINTS = (  # (image, lineage)
    ("img_a", "Biota > Macroalgae > Large canopy-forming > Brown > Ecklonia radiata"),
    ("img_a", "Biota > Macroalgae > Large canopy-forming > Brown > Ecklonia radiata"),
    ("img_a", "Physical > Substrate > Unconsolidated (soft)"),
    ("img_a", "Biota"),
    ("img_b", "Physical > Substrate > Consolidated (hard)"),
    ("img_b", "Physical > Substrate > Consolidated (hard)"),
    ("img_b", "Biota > Macroalgae > Encrusting > Red"),
    ("img_b", "Biota > Molluscs > Gastropods > Abalone"),
)

#: (label id, short code, name, functional group)
LABELSET = (
    (101, "CCA", "CCA (crustose coralline algae)", "Algae"),
    (84, "Sand", "Sand", "Soft Substrate"),
    (74, "Porit", "Porites", "Hard coral"),
    (81, "Macro", "Macroalgae", "Algae"),
    (85, "Off", "Off", "Other"),
)
CORALNET_POINTS = (  # (image, label)
    ("q1.jpg", "CCA"),
    ("q1.jpg", "CCA"),
    ("q1.jpg", "Sand"),
    ("q1.jpg", "Off"),
    ("q2.jpg", "Macro"),
    ("q2.jpg", "Sand"),
)
CLASS_FOLDERS = {"SU_bould": 2, "RE_CCA": 1, "BR_fucus": 1, "unknown": 1}

EXPECTED = {
    "nodes": len(NODES),
    "head_sizes": {"biota": 10, "substrate": 5, "relief": 3, "bedforms": 2},  # with roots
    "paths_head_sizes": {"biota": 11, "substrate": 5, "relief": 2, "bedforms": 2},  # no tags
    "coralnet_codes": {
        "CCA": "80300000",  # the vocabulary's CCA node is not in the tiny tree: 'algae' is
        "Sand": "82001013",
        "Macro": "80300000",
        "Off": "",
    },
    "squidle_codes": {
        "Biota > Macroalgae > Large canopy-forming > Brown > Ecklonia radiata": "80300902",
        "Physical > Substrate > Unconsolidated (soft)": "82001005",
        "Biota": "80000000",
        "Physical > Substrate > Consolidated (hard)": "82001001",
        "Biota > Macroalgae > Encrusting > Red": "80300929",
        "Biota > Molluscs > Gastropods > Abalone": "",
    },
}


def make_catami_fixture(root: Path) -> dict[str, Path]:
    """Write every form under ``root`` and return name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    out = {
        "caab_csv": root / "catami-caab-codes.csv",
        "tree_json": root / "catami_classification_tree.json",
        "paths": root / "catami_ex.csv",
        "squidle": root / "squidle_annotations.csv",
        "labelset": root / "labelset.csv",
        "annotations": root / "annotations.csv",
        "names": root / "patches",
    }
    lines = ["SPECIES_CODE,CATAMI_DISPLAY_NAME,CATAMI_PARENT_ID,CPC_CODES,Changes since v1.3"]
    for code, display, parent, cpc in NODES:
        if code == "63600903":
            parent = TYPO_PARENT
        lines.append(f"{code},{display},{parent}, {cpc} ,")
    out["caab_csv"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    pk = {code: index + 2 for index, (code, *_rest) in enumerate(NODES)}
    records = [
        {
            "pk": 1,
            "model": "projects.AnnotationCodes",
            "fields": {
                "caab_code": "00000000",
                "cpc_code": "NC",
                "code_name": "Not Considered",
                "parent": None,
            },
        }
    ]
    for code, display, parent, cpc in NODES:
        records.append(
            {
                "pk": pk[code],
                "model": "projects.AnnotationCodes",
                "fields": {
                    "caab_code": code,
                    "cpc_code": cpc,
                    "code_name": display.split(": ")[-1],
                    "parent": pk[parent] if parent else 1,
                    "point_colour": "8F8F8F",
                },
            }
        )
    out["tree_json"].write_text(json.dumps(records, indent=1), encoding="utf-8")

    out["paths"].write_text("catami\n" + "\n".join(PATHS) + "\n", encoding="utf-8")

    squidle = [",label.lineage_names,label.name,point.media.key,point.x,point.y"]
    for index, (image, lineage) in enumerate(SQUIDLE_POINTS):
        name = lineage.split(" > ")[-1]
        squidle.append(f"{index},{lineage},{name},{image},0.5,0.5")
    out["squidle"].write_text("\n".join(squidle) + "\n", encoding="utf-8")

    labelset = [",Label_ID,Label_URL,Name,Short_Code,Functional_Group"]
    for index, (label_id, short, name, group) in enumerate(LABELSET):
        url = f"https://coralnet.ucsd.edu/label/{label_id}/"
        labelset.append(f'{index},{label_id},{url},"{name}",{short},{group}')
    out["labelset"].write_text("\n".join(labelset) + "\n", encoding="utf-8")

    annotations = [",Name,Row,Column,Label"]
    for index, (image, label) in enumerate(CORALNET_POINTS):
        annotations.append(f"{index},{image},{10 + index},{20 + index},{label}")
    out["annotations"].write_text("\n".join(annotations) + "\n", encoding="utf-8")

    for folder, count in CLASS_FOLDERS.items():
        (out["names"] / folder).mkdir(parents=True, exist_ok=True)
        for number in range(count):
            (out["names"] / folder / f"{folder}_{number}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    return out
