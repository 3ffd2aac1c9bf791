"""quadrat.io.cpce: CPCe .cpc files read into pixel points, hostile ones refused by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from quadrat.errors import InputError, LimitError, NotFoundError
from quadrat.io.cpce import CPCE_UNITS_PER_PIXEL, CpcFile, read_cpc
from quadrat.limits import Limits
from tests.data.coralnet.data import GRID, HEIGHT, POINT_LABELS, WIDTH
from tests.data.cpce import data


@pytest.fixture(scope="module")
def cpce(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return data.make_cpce_fixture(tmp_path_factory.mktemp("cpce"))


def test_reads_a_cpce_41_file(cpce: dict[str, Path]) -> None:
    cpc = read_cpc(cpce["reef_a"])
    assert isinstance(cpc, CpcFile) and cpc.path == cpce["reef_a"]
    assert cpc.image_path == r"D:\Survey 2024\Site A\reef_a.jpg"
    assert cpc.image_name == "reef_a.jpg"
    assert cpc.code_path == r"C:\CPCe\codes\reef codes.txt"
    assert (cpc.width, cpc.height, cpc.scale) == (WIDTH, HEIGHT, CPCE_UNITS_PER_PIXEL)
    assert [(p.row, p.column) for p in cpc.points] == list(GRID)
    assert tuple(p.code for p in cpc.points) == POINT_LABELS["reef_a.jpg"]
    assert [p.number for p in cpc.points] == [str(k) for k in range(1, 10)]
    assert all(p.notes == "" for p in cpc.points)
    assert [p.line for p in cpc.points] == list(range(7, 16))
    assert cpc.headers == ("",) * 28
    right, bottom = (WIDTH - 1) * 15, (HEIGHT - 1) * 15
    assert cpc.area == ((0, bottom), (right, bottom), (right, 0), (0, 0))


def test_notes_and_letter_numbers_are_kept_as_given(cpce: dict[str, Path]) -> None:
    cpc = read_cpc(cpce["notes"])
    assert [p.number for p in cpc.points][:3] == ["A", "B", "C"]
    assert [p.notes for p in cpc.points][:4] == ["bleached", "", "", "bleached"]


def test_a_cpce_35_file_at_12_units_a_pixel_without_headers(cpce: dict[str, Path]) -> None:
    cpc = read_cpc(cpce["cpce35"], scale=12)
    assert (cpc.width, cpc.height, cpc.headers) == (WIDTH, HEIGHT, ())
    assert [(p.row, p.column) for p in cpc.points] == list(GRID)


def test_windows_1252_and_a_byte_order_mark(cpce: dict[str, Path]) -> None:
    ansi = read_cpc(cpce["cp1252"])
    assert ansi.image_path == r"E:\Récif\reef_a.jpg" and ansi.points[0].notes == "rugosité"
    bom = read_cpc(cpce["bom"])
    assert bom.code_path.startswith("C:") and bom.image_path == r"D:\a, b\reef_a.jpg"
    assert len(bom.points) == 2


def test_positions_round_to_the_nearest_pixel(tmp_path: Path) -> None:
    lines = data.cpc_lines([(0, 0, "Sand", "")])
    lines[6] = "22,8"  # 22/15 = 1.47 -> column 1; 8/15 = 0.53 -> row 1
    path = tmp_path / "r.cpc"
    path.write_text("\r\n".join(lines) + "\r\n")
    (point,) = read_cpc(path).points
    assert (point.row, point.column) == (1, 1)


def test_paths_inside_the_file_are_never_opened(tmp_path: Path) -> None:
    path = tmp_path / "x.cpc"
    path.write_text(data.cpc_text([(1, 1, "A", "")], image_path="/etc/shadow"))
    assert read_cpc(path).image_path == "/etc/shadow"  # returned, not read


@pytest.mark.parametrize("name", sorted(data.BAD))
def test_a_hostile_file_names_its_line(cpce: dict[str, Path], name: str) -> None:
    with pytest.raises(InputError) as caught:
        read_cpc(cpce[name])
    error = caught.value
    assert error.path == cpce[name]
    assert error.line == data.BAD[name], str(error)
    assert str(error).startswith(f"{cpce[name]}, line {data.BAD[name]}: ")


def test_point_limits_come_from_limits(cpce: dict[str, Path]) -> None:
    with pytest.raises(LimitError, match="points_per_image"):
        read_cpc(cpce["too_many_points"])
    assert len(read_cpc(cpce["too_many_points"], limits=Limits(points_per_image=1001)).points)
    with pytest.raises(LimitError, match="points_per_image = 5"):
        read_cpc(cpce["reef_a"], limits=Limits(points_per_image=5))
    with pytest.raises(LimitError, match="csv_bytes"):
        read_cpc(cpce["reef_a"], limits=Limits(csv_bytes=100))


def test_empty_missing_and_folder(cpce: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty file"):
        read_cpc(cpce["empty"])
    with pytest.raises(NotFoundError, match="file not found"):
        read_cpc(tmp_path / "nope.cpc")
    with pytest.raises(InputError, match="is a folder"):
        read_cpc(tmp_path)


@pytest.mark.parametrize("scale", [0, -15, 1.5, True])
def test_a_bad_scale_names_the_parameter(cpce: dict[str, Path], scale: object) -> None:
    with pytest.raises(InputError, match="scale must be a positive integer") as caught:
        read_cpc(cpce["reef_a"], scale=scale)  # type: ignore[arg-type]
    assert caught.value.param == "scale"


def test_a_missing_label_line_at_the_end(tmp_path: Path) -> None:
    lines = data.cpc_lines(data.REEF_A, headers=None)[:-1]  # the last label line is gone
    path = tmp_path / "short.cpc"
    path.write_text("\r\n".join(lines) + "\r\n")
    with pytest.raises(InputError, match="ends after line 23, before point 9's label") as caught:
        read_cpc(path)
    assert caught.value.line == 23


def test_an_unclosed_quote_is_a_clean_error(tmp_path: Path) -> None:
    lines = data.cpc_lines(data.REEF_A)
    lines[15] = '"1,"Porit","Notes",""'
    path = tmp_path / "quote.cpc"
    path.write_text("\r\n".join(lines) + "\r\n")
    with pytest.raises(InputError) as caught:
        read_cpc(path)
    assert caught.value.line is not None and caught.value.line >= 16
