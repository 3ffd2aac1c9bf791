"""A tiny CoralNet source on disk: images, an annotation export, a labelset.

``make_coralnet_fixture(root)`` writes (deterministically) and returns name -> path:

- ``images``: folder with ``reef_a.jpg``, ``reef_b.jpg``, ``reef_c.jpg`` (320x240 RGB JPEG;
  ``reef_b`` carries EXIF orientation 6) plus every decoding case of
  ``tests/data/images/data.py`` under ``images/cases/`` (``case_<name>`` keys);
- ``annotations``: CoralNet's full annotation export (metadata with a renamed aux column,
  annotator info, machine suggestions) for the three reef images, 9 points each (a
  uniform 3x3 grid, CoralNet geometry), written as plain text (not by quadrat);
- ``annotations_moorea``: the same points in the Moorea form (leading unnamed index column,
  ``Label`` header, all optional columns empty);
- ``points``: a points-only upload (``Name,Row,Column``);
- ``labelset``: CoralNet labelset form ``Label ID,Short Code,Name,Functional Group``;
- ``labelset_moorea``: ``,Label_ID,Label_URL,Name,Short_Code,Functional_Group``.

``EXPECTED`` holds the facts tests check against (labels per point, cover per image).
Import it as ``from tests.data.coralnet import data`` (``tests/data`` is a package).
"""

from __future__ import annotations

from pathlib import Path

from tests.data.images import data as images_data

IMAGES = ("reef_a.jpg", "reef_b.jpg", "reef_c.jpg")
WIDTH, HEIGHT = 320, 240

#: (id, short code, name, functional group)
LABELS = (
    (59, "Acrop", "Acropora", "Hard coral"),
    (74, "Porit", "Porites", "Hard coral"),
    (101, "CCA", "CCA (crustose coralline algae)", "Algae"),
    (84, "Sand", "Sand", "Soft Substrate"),
    (85, "Off", "Off", "Other"),
)

#: Uniform 3x3 grid on 320x240 with CoralNet's geometry: cell rows 0-79, 80-159, 160-239
#: (mid 39, 119, 199); cell columns 0-105, 106-212, 213-319 (mid 52, 159, 266).
GRID = tuple((r, c) for r in (39, 119, 199) for c in (52, 159, 266))

POINT_LABELS = {
    "reef_a.jpg": ("Porit", "Porit", "CCA", "Sand", "Porit", "CCA", "Off", "Porit", "Acrop"),
    "reef_b.jpg": ("Sand", "Sand", "Sand", "CCA", "CCA", "Porit", "Porit", "Porit", "Porit"),
    "reef_c.jpg": ("CCA", "CCA", "CCA", "CCA", "CCA", "CCA", "Sand", "Sand", "Off"),
}

#: Machine top-2 suggestions for reef_c only (reef_a/b were annotated by hand).
SUGGESTIONS = {"reef_c.jpg": (("CCA", 81), ("Sand", 12))}

EXPECTED = {
    "points_per_image": 9,
    "n_points": 27,
    "cover": {
        name: {code: 100.0 * labels.count(code) / 9 for _, code, _, _ in LABELS}
        for name, labels in POINT_LABELS.items()
    },
}

_META_HEADER = (
    "Date,Site,Aux2,Aux3,Aux4,Aux5,Height (cm),Latitude,Longitude,Depth,Camera,"
    "Photographer,Water quality,Strobes,Framing gear used,White balance card,Comments"
)
_META = {
    "reef_a.jpg": "2024-03-01,North,T1,,,,50,-17.48,-149.82,10m,Nikon,A. Diver,Clear,,,,",
    "reef_b.jpg": "2024-03-01,North,T2,,,,50,-17.48,-149.82,10m,Nikon,A. Diver,Clear,,,,"
    '"Turbid, some\nsurge"',
    "reef_c.jpg": "2024-03-02,South,T1,,,,,,,,,,,,,,",
}


def _suggestion_cells(name: str) -> str:
    cells = []
    top = SUGGESTIONS.get(name, ())
    for k in range(5):
        if k < len(top):
            code, conf = top[k]
            cells += [code, str(conf)]
        else:
            cells += ["", ""]
    return ",".join(cells)


def make_coralnet_fixture(root: Path) -> dict[str, Path]:
    """Write the fixture source into ``root``; return name -> path."""
    root = Path(root)
    images_mod = images_data
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"images": image_dir}
    for i, name in enumerate(IMAGES):
        orientation = 6 if name == "reef_b.jpg" else 1
        paths[name] = images_mod._save_jpeg(
            images_mod.rgb_array(10 + i, WIDTH, HEIGHT), image_dir / name, orientation
        )
    for key, path in images_mod.make_image_fixtures(image_dir / "cases").items():
        paths[f"case_{key}"] = path

    suggestion_header = ",".join(
        f"Machine suggestion {k},Machine confidence {k}" for k in range(1, 6)
    )
    lines = [
        f"Name,{_META_HEADER},Row,Column,Label code,Annotator,Date annotated,{suggestion_header}"
    ]
    moorea = [
        ",Name,Date,Aux1,Aux2,Aux3,Aux4,Aux5,Height (cm),Latitude,Longitude,Depth,Camera,"
        "Photographer,Water quality,Strobes,Framing gear used,White balance card,Comments,"
        f"Row,Column,Label,Annotator,Date annotated,{suggestion_header}"
    ]
    points = ["Name,Row,Column"]
    index = 0
    for name in IMAGES:
        annotator = "robot" if name in SUGGESTIONS else "alice"
        for k, ((row, col), code) in enumerate(zip(GRID, POINT_LABELS[name], strict=True)):
            date = f"2024-03-05 10:{k:02d}:00+00:00"
            lines.append(
                f"{name},{_META[name]},{row},{col},{code},{annotator},{date},"
                f"{_suggestion_cells(name)}"
            )
            moorea.append(f"{index},{name},{',' * 17}{row},{col},{code},Imported,{date},{',' * 9}")
            points.append(f"{name},{row},{col}")
            index += 1

    paths["annotations"] = root / "annotations.csv"
    paths["annotations"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["annotations_moorea"] = root / "annotations_moorea.csv"
    paths["annotations_moorea"].write_text("\n".join(moorea) + "\n", encoding="utf-8")
    paths["points"] = root / "points.csv"
    paths["points"].write_text("\n".join(points) + "\n", encoding="utf-8")

    labelset = ["Label ID,Short Code,Name,Functional Group"]
    labelset += [f'{i},{code},"{name}",{group}' for i, code, name, group in LABELS]
    paths["labelset"] = root / "labelset.csv"
    paths["labelset"].write_text("\n".join(labelset) + "\n", encoding="utf-8")

    moorea_ls = [",Label_ID,Label_URL,Name,Short_Code,Functional_Group"]
    moorea_ls += [
        f"{k},{i},https://coralnet.ucsd.edu/label/{i}/,{name},{code},{group}"
        for k, (i, code, name, group) in enumerate(LABELS)
    ]
    paths["labelset_moorea"] = root / "labelset_moorea.csv"
    paths["labelset_moorea"].write_text("\n".join(moorea_ls) + "\n", encoding="utf-8")
    return paths
