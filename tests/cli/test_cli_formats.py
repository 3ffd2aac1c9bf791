"""quadrat formats, and --format on import and export annotations/labelset."""

from __future__ import annotations

import json
from pathlib import Path

from tests.data.coralnet import data as coralnet
from tests.data.formats import data
from typer.testing import CliRunner

from quadrat.cli import app

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    return " ".join(result.output.split())


def test_formats_lists_every_format() -> None:
    out = run("formats")
    for name in ("cpce", "viame", "coco", "geojson", "biigle", "squidle", "coralnet-points"):
        assert name in out


def test_import_and_export_with_format(tmp_path: Path) -> None:
    fixture = coralnet.make_coralnet_fixture(tmp_path / "c")
    files = data.make_formats_fixture(tmp_path / "f")
    db = str(tmp_path / "p.db")
    run("init", "-p", db, "--source", "reef", "--labelset", str(fixture["labelset"]))
    out = run(
        "import",
        str(files["viame.csv"]),
        "--format",
        "viame",
        "-i",
        str(fixture["images"]),
        "-p",
        db,
    )
    assert "imported 3 images, 27 points, 27 annotations (viame)" in out
    out = run("export", "annotations", "-o", str(tmp_path / "c.json"), "-f", "coco", "-p", db)
    assert "wrote 27 records (coco)" in out
    assert len(json.loads((tmp_path / "c.json").read_text())["annotations"]) == 27
    run(
        "export",
        "annotations",
        "-o",
        str(tmp_path / "cpc"),
        "-f",
        "cpce",
        "-p",
        db,
        "--option",
        "image_dir=D:\\Survey",
        "--confirmed-only",
    )
    assert (tmp_path / "cpc" / "reef_a.cpc").read_text().startswith('"","D:\\Survey\\reef_a.jpg"')
    out = run(
        "export",
        "annotations",
        "-o",
        str(tmp_path / "v.csv"),
        "-f",
        "viame",
        "-p",
        db,
        "--option",
        "half_size=x",
        code=1,
    )
    assert "half_size must be a non-negative integer" in out and "--half-size" not in out
    run(
        "export",
        "annotations",
        "-o",
        str(tmp_path / "m.geojson"),
        "-f",
        "geojson",
        "-p",
        db,
        "--option",
        "points=no",
    )
    document = json.loads((tmp_path / "m.geojson").read_text())
    assert document["quadrat"]["images_without_position"] == list(coralnet.IMAGES)
    assert sorted(p.name for p in (tmp_path / "cpc").iterdir()) == [
        "reef_a.cpc",
        "reef_b.cpc",
        "reef_c.cpc",
    ]
    run(
        "export", "labelset", "-o", str(tmp_path / "tree.json"), "-f", "biigle-label-tree", "-p", db
    )
    wrong = run("export", "cover", "-o", str(tmp_path / "x"), "-f", "coco", "-p", db, code=1)
    assert "does not apply to 'export cover'" in wrong
    run("export", "labelset", "-o", str(tmp_path / "y"), "-f", "coco", "-p", db, code=1)
    unknown = run("import", str(files["viame.csv"]), "-f", "viam", "-p", db, code=1)
    assert "did you mean 'viame'" in unknown and "--format" in unknown

    db2 = str(tmp_path / "q.db")
    run("init", "-p", db2, "--source", "reef", "--labelset", str(fixture["labelset"]))
    images = [arg for n in coralnet.IMAGES for arg in ("-i", str(fixture[n]))]
    run("import", *images, "-p", db2)
    out = run("import", str(tmp_path / "cpc"), "-f", "cpce", "-p", db2)
    assert "imported 3 images, 27 points, 27 annotations (cpce)" in out
