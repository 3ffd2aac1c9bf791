"""Containment: a name read from a file never reaches outside its folder (issue 12, item 2).

Hostile ``Name`` cells (``..``, absolute paths, symlinks out) point at real image files, so
a failure here would really import a file from outside the images folder.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from quadrat import Project, Source
from quadrat.datasets.download import DownloadOptions, download_images
from quadrat.demo import DemoSurvey
from quadrat.errors import InputError
from quadrat.io.paths import SHOWN_ROWS, resolve_all_under, resolve_under
from tests.data.http.data import FixtureServer, Reply, jpeg_bytes

# --------------------------------------------------------------------------- resolve_under


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x.jpg", "'..'"),
        ("a/../../x.jpg", "'..'"),
        ("..\\..\\x.jpg", "'..'"),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share\\x.jpg", "absolute"),
        ("C:\\Windows\\x.jpg", "absolute"),
        ("c:x.jpg", "absolute"),
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00.jpg", "NUL"),
    ],
)
def test_hostile_names_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as err:
        resolve_under(tmp_path, name, path="list.csv", line=7)
    assert err.value.line == 7 and err.value.value == name
    assert str(err.value).startswith("list.csv, line 7: ")


def test_names_inside_the_root_are_joined(tmp_path: Path) -> None:
    assert resolve_under(tmp_path, "a.jpg") == tmp_path / "a.jpg"
    assert resolve_under(tmp_path, "site/2024/a.jpg") == tmp_path / "site" / "2024" / "a.jpg"
    assert resolve_under(tmp_path, "a..b.jpg") == tmp_path / "a..b.jpg"  # not a '..' part
    assert resolve_under(tmp_path, "./a.jpg") == tmp_path / "a.jpg"


def test_symlink_out_is_refused_and_symlink_in_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"x")
    (root / "escape.jpg").symlink_to(secret)
    (root / "escape-dir").symlink_to(tmp_path)
    (root / "real.jpg").write_bytes(b"y")
    (root / "alias.jpg").symlink_to(root / "real.jpg")
    with pytest.raises(InputError, match="symlink"):
        resolve_under(root, "escape.jpg")
    with pytest.raises(InputError, match="symlink"):
        resolve_under(root, "escape-dir/secret.jpg")
    assert resolve_under(root, "alias.jpg") == root / "alias.jpg"


def test_a_root_that_is_itself_a_symlink_works(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.jpg").write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert resolve_under(link, "a.jpg") == link / "a.jpg"


def test_all_offending_rows_are_listed(tmp_path: Path) -> None:
    names = [("ok.jpg", 2), ("../a.jpg", 3), ("/b.jpg", 4), ("ok2.jpg", 5), ("../a.jpg", 6)]
    with pytest.raises(InputError) as err:
        resolve_all_under(tmp_path, names, path="x.csv")
    message = str(err.value)
    assert err.value.line == 3 and err.value.value == ["../a.jpg", "/b.jpg"]
    assert "2 file name(s)" in message
    assert "line 3: '../a.jpg'" in message and "line 4: '/b.jpg'" in message
    assert "ok.jpg" not in message and "line 6" not in message  # a repeated name once


def test_many_offending_rows_are_counted(tmp_path: Path) -> None:
    names = [(f"../{i}.jpg", i + 2) for i in range(SHOWN_ROWS + 5)]
    with pytest.raises(InputError) as err:
        resolve_all_under(tmp_path, names)
    assert f"{SHOWN_ROWS + 5} file name(s)" in str(err.value)
    assert "and 5 more" in str(err.value)
    assert len(err.value.value) == SHOWN_ROWS + 5  # type: ignore[arg-type]


# --------------------------------------------------------------------------- annotation import


def _rewrite_names(csv_path: Path, renames: dict[str, str]) -> None:
    with csv_path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("Name")
    for row in rows[1:]:
        row[col] = renames.get(row[col], row[col])
    with csv_path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def _source(tmp_path: Path, survey: DemoSurvey) -> Source:
    project = Project.create(tmp_path / "p.db")
    return project.create_source("reef", labelset=survey.labelset_csv)


def _names(csv_path: Path) -> list[str]:
    return list(dict.fromkeys(pd.read_csv(csv_path)["Name"].astype(str)))


def test_import_refuses_names_outside_the_images_folder(tmp_path: Path, survey: DemoSurvey) -> None:
    names = _names(survey.annotations_csv)
    images = survey.annotated_dir
    outside = tmp_path / "outside"
    outside.mkdir()
    for n in names[:3]:
        shutil.copy(images / n, outside / n)  # real, valid images: only the path is wrong
    linked = images / "linked.jpg"
    linked.symlink_to(outside / names[2])
    hostile = {
        names[0]: os.path.relpath(outside / names[0], images),  # ../../outside/x.jpg
        names[1]: str(outside / names[1]),  # absolute
        names[2]: "linked.jpg",  # a symlink out of the folder
    }
    _rewrite_names(survey.annotations_csv, hostile)
    src = _source(tmp_path, survey)
    with pytest.raises(InputError) as err:
        src.import_annotations(survey.annotations_csv, images)
    message = str(err.value)
    assert message.startswith(f"{survey.annotations_csv}, line 2: ")
    assert "3 file name(s)" in message
    for name in hostile.values():
        assert repr(name) in message
    assert src.counts()["images"] == 0 and src.counts()["points"] == 0


def test_import_of_names_in_subfolders_still_works(tmp_path: Path, survey: DemoSurvey) -> None:
    names = _names(survey.annotations_csv)
    sub = survey.annotated_dir / "site-a"
    sub.mkdir()
    shutil.move(survey.annotated_dir / names[0], sub / names[0])
    _rewrite_names(survey.annotations_csv, {names[0]: f"site-a/{names[0]}"})
    src = _source(tmp_path, survey)
    summary = src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    assert summary.images == len(names)


def test_cli_import_with_a_hostile_name_is_one_clear_line(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    from typer.testing import CliRunner

    from quadrat.cli import app

    names = _names(survey.annotations_csv)
    _rewrite_names(survey.annotations_csv, {names[0]: "../../../../etc/hostname"})
    db = tmp_path / "p.db"
    _source(tmp_path, survey).project.close()
    result = CliRunner().invoke(
        app,
        [
            "import",
            str(survey.annotations_csv),
            "--images",
            str(survey.annotated_dir),
            "--project",
            str(db),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "'../../../../etc/hostname'" in result.output
    assert "'..'" in result.output


# --------------------------------------------------------------------------- downloads


def test_download_tree_refuses_a_dataset_folder_linked_out(tmp_path: Path) -> None:
    """Names with '..' are refused by the table check; a symlinked folder in ``out`` by
    containment, before any request is made."""
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "ds").symlink_to(elsewhere)
    with FixtureServer() as server:
        table = pd.DataFrame(
            {
                "dataset": ["ds", "ds", "other"],
                "site": ["s1", "s1", "s1"],
                "image": ["a.jpg", "b.jpg", "c.jpg"],
                "url": [server.route(f"/{i}", [Reply.ok(jpeg_bytes(i))]) for i in range(3)],
            }
        )
        with pytest.raises(InputError) as err:
            download_images(table, out, layout="tree", options=DownloadOptions(retries=0))
        assert sum(server.hits.values()) == 0
    assert "2 file name(s)" in str(err.value) and "symlink" in str(err.value)
    assert list(elsewhere.iterdir()) == []


def test_a_manifest_row_pointing_out_is_not_kept(tmp_path: Path) -> None:
    """A hand-edited manifest naming a file outside ``out`` does not count as downloaded."""
    from quadrat.datasets.download import read_manifest
    from quadrat.datasets.download.manifest import MANIFEST_NAME
    from quadrat.io.tables import write_table

    out = tmp_path / "out"
    (tmp_path / "secret.jpg").write_bytes(jpeg_bytes(9))
    with FixtureServer() as server:
        table = pd.DataFrame(
            {
                "dataset": ["ds"],
                "site": ["s1"],
                "image": ["a.jpg"],
                "url": [server.route("/a.jpg", [Reply.ok(jpeg_bytes(1))] * 2)],
            }
        )
        download_images(table, out, layout="tree", options=DownloadOptions(retries=0))
        manifest = read_manifest(out)
        evil = manifest.iloc[[0]].assign(key="evil", shard="../secret.jpg")
        write_table(pd.concat([manifest, evil], ignore_index=True), out / MANIFEST_NAME)
        download_images(table, out, layout="tree", options=DownloadOptions(retries=0))
    assert read_manifest(out)["key"].tolist() == [manifest["key"].iloc[0]]
