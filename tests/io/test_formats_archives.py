"""ZIPs of annotation files (BIIGLE's report download, CoralNet's annotations_cpc.zip)
written and read back, hostile archives refused before anything is unpacked, and the
Squidle+ export as Squidle+ lays it out (fractions, sorted columns, an index column)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from quadrat import Project
from quadrat.errors import CsvFormatError, InputError, LimitError
from quadrat.io.formats._zip import RATIO_FLOOR, check_member_name, unpack, write_zip
from quadrat.io.formats.biigle import REPORT_COLUMNS, read_biigle_report, write_biigle_report
from quadrat.io.formats.cpce import read_cpce, write_cpce
from quadrat.io.formats.squidle import COLUMNS, read_squidle, write_squidle
from quadrat.limits import Limits
from tests.data.coralnet import data as coralnet
from tests.data.coralnet.data import GRID, HEIGHT, IMAGES, LABELS, POINT_LABELS, WIDTH
from tests.data.cpce import data as cpce_data


@dataclass(frozen=True)
class ZipLimits(Limits):
    """Limits with small ZIP limits (whether or not :class:`Limits` has these fields)."""

    zip_members: int = 10_000
    zip_bytes: int = 512 << 20
    zip_ratio: int = 100


def expected(labels: bool = True) -> list[tuple[str, int, int, str | None]]:
    return [
        (n, r, c, code if labels else None)
        for n in IMAGES
        for (r, c), code in zip(GRID, POINT_LABELS[n], strict=True)
    ]


def source_table(folder: str = "") -> pd.DataFrame:
    table = pd.DataFrame(expected(), columns=["image", "row", "column", "label"])
    table["image"] = folder + table["image"]
    table["width"], table["height"] = WIDTH, HEIGHT
    return table


def points_of(table: pd.DataFrame) -> list[tuple[str, int, int, str | None]]:
    return [
        (str(n), int(r), int(c), lab if isinstance(lab, str) else None)
        for n, r, c, lab in zip(
            table["image"], table["row"], table["column"], table["label"], strict=True
        )
    ]


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def opened(path: Path, limits: Limits | None = None) -> None:
    """Unpack the .cpc members of ``path`` and let them go."""
    with unpack(path, suffixes=(".cpc",), limits=limits):
        pass


# ----------------------------------------------------------------------------- BIIGLE


def test_biigle_zip_is_one_csv_per_volume_named_as_biigle_names_it(tmp_path: Path) -> None:
    table = source_table()
    names = {code: name for _, code, name, _ in LABELS}
    table["label_name"] = table["label"].map(names)
    out = tmp_path / "report.zip"
    assert write_biigle_report(table, out, volume="Reef/../survey 2024", volume_id="7") == 27
    with zipfile.ZipFile(out) as archive:
        [name] = archive.namelist()
        text = archive.read(name).decode()
    assert name == "7-Reef_.._survey 2024.csv"  # no separator survives in the name
    assert text.splitlines()[0].split(",") == list(REPORT_COLUMNS)
    back = read_biigle_report(out)
    assert points_of(back) == [(n, r, c, names[lab]) for n, r, c, lab in expected()]
    plain = tmp_path / "report.csv"  # any other name: the CSV itself
    write_biigle_report(table, plain)
    assert plain.read_text() == text
    with pytest.raises(InputError, match="volume_id"):
        write_biigle_report(table, tmp_path / "x.zip", volume_id="seven")


def test_biigle_zip_of_several_volumes_and_a_bad_row_names_its_member(tmp_path: Path) -> None:
    table = source_table()
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    write_biigle_report(table.iloc[:9], first)
    write_biigle_report(table.iloc[9:], second)
    good = make_zip(
        tmp_path / "two.zip",
        [("1-reef a.csv", first.read_bytes()), ("2-reef b.csv", second.read_bytes())],
    )
    assert points_of(read_biigle_report(good)) == expected()
    lines = second.read_text().splitlines()
    lines[3] = lines[3].replace('"[', '"[oops', 1)
    bad = make_zip(
        tmp_path / "bad.zip",
        [("1-reef a.csv", first.read_bytes()), ("2-reef b.csv", "\n".join(lines).encode())],
    )
    with pytest.raises(CsvFormatError) as info:
        read_biigle_report(bad)
    assert info.value.path == Path(f"{bad}/2-reef b.csv") and info.value.line == 4
    empty = make_zip(tmp_path / "none.zip", [("readme.txt", b"hello")])
    with pytest.raises(InputError, match=r"no \.csv file in this ZIP"):
        read_biigle_report(empty)


# ----------------------------------------------------------------------------- CPCe


def test_cpce_zip_round_trip_keeps_sub_folders(tmp_path: Path) -> None:
    table = source_table("site 1/")
    table.loc[0, "label"] = None
    out = tmp_path / "annotations_cpc.zip"
    assert write_cpce(table, out, image_dir=r"D:\Survey") == 3
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        first = archive.read("site 1/reef_a.cpc")
    assert names == [f"site 1/{n[:-4]}.cpc" for n in IMAGES]
    assert first.startswith(b'"","D:\\Survey\\site 1\\reef_a.jpg",4800,3600,14400,10800\r\n')
    folder = tmp_path / "folder"
    write_cpce(table, folder, image_dir=r"D:\Survey")
    assert (folder / "site 1" / "reef_a.cpc").read_bytes() == first  # the same files
    back = read_cpce(out)
    assert [(r, c, lab) for _, r, c, lab in points_of(back)] == [
        (r, c, lab) for _, r, c, lab in points_of(table)
    ]
    assert back["file"].iloc[0] == f"{out}/site 1/reef_a.cpc"
    with pytest.raises(InputError, match="climbs out") as info:
        write_cpce(source_table("../"), tmp_path / "escape.zip")
    assert info.value.path == tmp_path / "escape.zip"
    assert not (tmp_path / "escape.zip").exists()


def test_cpce_zip_errors_name_member_and_line(tmp_path: Path) -> None:
    files = cpce_data.make_cpce_fixture(tmp_path / "cpc")
    archive = make_zip(
        tmp_path / "up.zip",
        [
            ("T1/a.cpc", files["reef_a"].read_bytes()),
            ("T1/b.cpc", files["point_ragged"].read_bytes()),
            ("__MACOSX/T1/._a.cpc", b"\x00\x05junk"),  # Finder's shadow files are skipped
        ],
    )
    with pytest.raises(InputError) as info:
        read_cpce(archive)
    assert info.value.path == Path(f"{archive}/T1/b.cpc")
    assert info.value.line == cpce_data.BAD["point_ragged"]
    twice = make_zip(
        tmp_path / "twice.zip",
        [("a.cpc", files["reef_a"].read_bytes()), ("b.cpc", files["reef_a"].read_bytes())],
    )
    with pytest.raises(InputError, match=r"a second \.cpc file for image") as again:
        read_cpce(twice)
    assert again.value.path == Path(f"{twice}/b.cpc")


def test_cpce_zip_into_a_source_and_out(tmp_path: Path) -> None:
    fixture = coralnet.make_coralnet_fixture(tmp_path / "coralnet")
    files = cpce_data.make_cpce_fixture(tmp_path / "cpc")
    archive = make_zip(tmp_path / "up.zip", [("Site A/reef_a.cpc", files["reef_a"].read_bytes())])
    with Project.create(tmp_path / "p.db") as project:
        src = project.create_source("reef", labelset=fixture["labelset"])
        src.import_images([fixture[name] for name in IMAGES])
        summary = src.import_annotations(archive, format="cpce")
        assert (summary.images, summary.points, summary.annotations) == (1, 9, 9)
        out = tmp_path / "annotations_cpc.zip"
        assert src.export("cpce", out) == 1  # one file per image with points
    back = read_cpce(out)
    labelled = [(n, r, c, lab) for n, r, c, lab in points_of(back) if lab is not None]
    assert labelled == expected()[:9]


# ----------------------------------------------------------------------------- hostile ZIPs


@pytest.mark.parametrize(
    "name, message",
    [
        ("../evil.cpc", "climbs out"),
        ("a/../../evil.cpc", "climbs out"),
        ("..\\evil.cpc", "climbs out"),
        ("/etc/evil.cpc", "absolute"),
        ("C:\\Windows\\evil.cpc", "absolute"),
        ("C:evil.cpc", "absolute"),
        ("bad\x01name.cpc", "control characters"),
    ],
)
def test_member_names_that_leave_the_folder_are_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    good = cpce_data.cpc_text(cpce_data.REEF_A).encode()
    archive = make_zip(tmp_path / "evil.zip", [("ok.cpc", good), (name, good)])
    with pytest.raises(InputError, match=message):
        read_cpce(archive)
    with pytest.raises(InputError, match=message):
        check_member_name(name, archive="x.zip")
    with pytest.raises(InputError, match=message):
        write_zip(tmp_path / "out.zip", [(name, b"x")])
    assert not (tmp_path / "out.zip").exists()


def test_links_encryption_and_duplicates_are_refused(tmp_path: Path) -> None:
    good = cpce_data.cpc_text(cpce_data.REEF_A).encode()
    link = zipfile.ZipInfo("link.cpc")
    link.create_system = 3
    link.external_attr = (0o120777) << 16  # a symbolic link to the text below
    archive = make_zip(tmp_path / "link.zip", [("ok.cpc", good), (link, b"/etc/passwd")])
    with pytest.raises(InputError, match="symbolic link"):
        read_cpce(archive)
    archive = make_zip(tmp_path / "secret.zip", [("secret.cpc", good)])
    raw = bytearray(archive.read_bytes())  # set the "encrypted" flag, as an encrypting tool
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        raw[raw.index(signature) + offset] |= 0x1
    archive.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="encrypted"):
        read_cpce(archive)
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = make_zip(tmp_path / "dup.zip", [("a.cpc", good), ("a.cpc", good)])
    with pytest.raises(InputError, match="two members are named"):
        read_cpce(archive)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(make_zip(tmp_path / "whole.zip", [("a.cpc", good)]).read_bytes()[:-30])
    with pytest.raises(InputError, match="not a readable ZIP"):
        opened(broken)


def test_zip_bomb_ratio_sizes_and_member_count_are_limited(tmp_path: Path) -> None:
    bomb = make_zip(tmp_path / "bomb.zip", [("a.cpc", b"0" * (RATIO_FLOOR + 1))])
    assert bomb.stat().st_size < 20_000  # some kilobytes that inflate to a megabyte
    with pytest.raises(LimitError, match="zip_ratio") as info:
        read_cpce(bomb)
    assert info.value.path == Path(f"{bomb}/a.cpc")
    with pytest.raises(LimitError, match="csv_bytes"):
        opened(bomb, ZipLimits(csv_bytes=1000, zip_ratio=10**6))
    many = make_zip(tmp_path / "many.zip", [(f"{k}.cpc", b"x") for k in range(5)])
    with pytest.raises(LimitError, match="zip_members"):
        opened(many, ZipLimits(zip_members=4))
    with pytest.raises(LimitError, match="zip_bytes"):
        opened(many, ZipLimits(zip_bytes=4))
    with unpack(many, suffixes=(".cpc",), limits=ZipLimits(zip_members=5, zip_bytes=5)) as out:
        assert [m.name for m in out] == [f"{k}.cpc" for k in range(5)]
        assert all(m.file.read_bytes() == b"x" for m in out)
        assert {m.file.parent for m in out} != {tmp_path}  # a private folder, not theirs


def test_member_over_the_file_limit_in_a_biigle_zip(tmp_path: Path) -> None:
    table = source_table()
    csv = tmp_path / "big.csv"
    write_biigle_report(pd.concat([table] * 20, ignore_index=True), csv)
    archive = make_zip(tmp_path / "big.zip", [("1-big.csv", csv.read_bytes())])
    limit = archive.stat().st_size + 10  # the archive fits, its member does not
    with pytest.raises(LimitError, match="csv_bytes") as info:
        read_biigle_report(archive, limits=Limits(csv_bytes=limit, points_per_image=10_000))
    assert info.value.path == Path(f"{archive}/1-big.csv")


# ----------------------------------------------------------------------------- Squidle+


def _squidle_export(rows: list[dict[str, str]], separator: str = ".") -> bytes:
    """A frame as Squidle+'s dataframe.csv template writes it: sorted columns, a leading
    index column, every cell quoted."""
    frame = pd.DataFrame(rows).sort_index(axis=1)
    frame.columns = [c.replace(".", separator) for c in frame.columns]
    buffer = io.StringIO()
    frame.to_csv(buffer, quoting=1)
    return buffer.getvalue().encode()


def _row(k: int, x: str, y: str, name: str = "Ecklonia radiata") -> dict[str, str]:
    return {
        "label.id": "7326",
        "label.name": name,
        "label.lineage_names": f"Biota > Macroalgae > {name}",
        "point.id": str(2027680 + k),
        "point.media.key": "PR_20100604_231041_196_LC16",
        "point.media.path_best": "https://example.org/full_res/PR_20100604_231041_196_LC16.jpg",
        "point.pose.lat": "-43.13635625",
        "point.x": x,
        "point.y": y,
        "tag_names": "",
        "updated_at": "2021-03-23 02:10:36.601827",
    }


@pytest.mark.parametrize("separator", [".", "_"])
def test_squidle_reads_the_export_as_squidle_lays_it_out(tmp_path: Path, separator: str) -> None:
    path = tmp_path / "annotations-dataframe.csv"
    rows = [_row(0, "0.8333333333333334", "0.16666666666666666"), _row(1, "", "")]
    rows.append(_row(2, "0.5", "0.5", name=""))
    path.write_bytes(_squidle_export(rows, separator))
    table = read_squidle(path)
    assert table["image"].tolist() == ["PR_20100604_231041_196_LC16.jpg"] * 2
    assert table["x_fraction"].tolist() == pytest.approx([5 / 6, 0.5])
    assert table["label"].tolist() == ["Ecklonia radiata", None]
    assert table["line"].tolist() == [2, 4]
    assert table.attrs["skipped_without_position"] == 1  # the whole-image label


def test_squidle_refuses_pixels_by_line_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "pixels.csv"
    path.write_bytes(_squidle_export([_row(0, "0.5", "0.5"), _row(1, "1200", "800")]))
    with pytest.raises(CsvFormatError, match="looks like a pixel") as info:
        read_squidle(path)
    assert info.value.line == 3 and info.value.path == path


def test_squidle_writer_lays_columns_out_as_the_export(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert write_squidle(source_table(), out) == 27
    header, first = out.read_text().splitlines()[:2]
    assert header.split(",") == ["", *sorted(COLUMNS)]
    assert first.startswith("0,")
    back = read_squidle(out)
    pixels = list(
        zip(
            back["image"],
            (back["y_fraction"] * HEIGHT).astype(int),
            (back["x_fraction"] * WIDTH).astype(int),
            back["label"],
            strict=True,
        )
    )
    assert pixels == expected()


def _lie_about_sizes(path: Path, claimed: int) -> None:
    """Rewrite every uncompressed size in ``path`` (local headers and central directory)
    to ``claimed``: a ZIP whose headers lie, as a hostile one would."""
    import struct

    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            struct.pack_into("<I", data, found + offset, claimed)
            start = found + 4
    path.write_bytes(bytes(data))


def test_a_zip_whose_headers_lie_about_sizes_is_stopped(tmp_path: Path) -> None:
    """The headers say 10 bytes; the member inflates to 400,000. zipfile inflates no more
    than the header claims, so the lie cannot carry bytes past the checks (which also run
    on the bytes as they inflate): it is an error naming the member (the CRC-32 differs),
    never a silent truncation or a traceback."""
    liar = make_zip(tmp_path / "liar.zip", [("a.cpc", b"0" * 400_000)])
    _lie_about_sizes(liar, 10)
    with zipfile.ZipFile(liar) as archive:
        assert archive.infolist()[0].file_size == 10  # the lie is what zipfile reads
    with pytest.raises(InputError) as info:
        opened(liar)
    assert "a.cpc" in str(info.value) and "cannot unpack" in str(info.value)
    # Claiming more than it holds: what is unpacked is what the member really holds (its
    # CRC-32 matches), nothing invented, nothing cut.
    bigger = make_zip(tmp_path / "bigger.zip", [("a.cpc", b"0" * 1000)])
    _lie_about_sizes(bigger, 5000)
    with unpack(bigger, suffixes=(".cpc",)) as members:
        assert [m.file.read_bytes() for m in members] == [b"0" * 1000]
