"""CPCe ``.cpc`` files for the tests, written as CPCe 4.1 writes them (not by quadrat).

``cpc_text(...)`` builds the text of one file from pixel positions (CPCe units are
pixels x ``scale``); ``make_cpce_fixture(root)`` writes (deterministically) and returns
name -> path:

- ``reef_a``: the coralnet fixture's reef_a.jpg (320x240, a 3x3 grid, its labels), a
  Windows image path, CRLF lines, 28 empty header fields;
- ``notes``: the same points with ID + Notes codes and letters as point numbers;
- ``cpce35``: a CPCe 3.5 file: 12 units a pixel, no header lines, LF lines;
- ``cp1252``: a path and a note with "é" in Windows-1252 (CPCe's ANSI code page);
- ``bom``: a UTF-8 file with a byte-order mark and a comma inside a quoted path;
- hostile files, each with the line a reader must name (``BAD[name]``): ``too_few_lines``,
  ``ragged_line1``, ``bad_count``, ``zero_count``, ``point_outside``, ``point_negative``,
  ``point_ragged``, ``label_ragged``, ``odd_size``, ``area_text``, ``binary``,
  ``too_many_points`` (1,001 points), ``huge_count`` (a count of 10**9 and 2 points),
  ``long_line``; plus ``empty`` (0 bytes, no line).

Import it as ``from tests.data.cpce import data`` (``tests/data`` is a package).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.data.coralnet.data import GRID, HEIGHT, POINT_LABELS, WIDTH

SCALE = 15
IMAGE_PATH = r"D:\Survey 2024\Site A\reef_a.jpg"
CODE_PATH = r"C:\CPCe\codes\reef codes.txt"

#: (row, column, code, notes) of reef_a's points.
REEF_A = tuple(
    (r, c, code, "") for (r, c), code in zip(GRID, POINT_LABELS["reef_a.jpg"], strict=True)
)

#: The line of each hostile file that the reader must name.
BAD: dict[str, int] = {
    "too_few_lines": 5,
    "ragged_line1": 1,
    "bad_count": 6,
    "zero_count": 6,
    "point_outside": 8,
    "point_negative": 7,
    "point_ragged": 7,
    "label_ragged": 16,
    "odd_size": 1,
    "area_text": 3,
    "binary": 1,
    "too_many_points": 6,
    "huge_count": 6,
    "long_line": 7,
}


def _q(text: str) -> str:
    return f'"{text}"'


def cpc_lines(
    points: Sequence[tuple[int, int, str, str]],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    scale: int = SCALE,
    image_path: str = IMAGE_PATH,
    code_path: str = CODE_PATH,
    numbers: Sequence[str] | None = None,
    headers: Sequence[str] | None = ("",) * 28,
    count: str | None = None,
) -> list[str]:
    """The lines (without line ends) of a .cpc file with these (row, column, code, notes)."""
    right, bottom = (width - 1) * scale, (height - 1) * scale
    lines = [
        ",".join(
            [
                _q(code_path),
                _q(image_path),
                str(width * scale),
                str(height * scale),
                str(960 * scale),
                str(720 * scale),
            ]
        ),
        f"0,{bottom}",
        f"{right},{bottom}",
        f"{right},0",
        "0,0",
        count if count is not None else str(len(points)),
    ]
    lines += [f"{c * scale},{r * scale}" for r, c, _, _ in points]
    names = numbers if numbers is not None else [str(k) for k in range(1, len(points) + 1)]
    lines += [
        ",".join([_q(n), _q(code), _q("Notes"), _q(notes)])
        for n, (_, _, code, notes) in zip(names, points, strict=True)
    ]
    lines += [_q(h) for h in headers or ()]
    return lines


def cpc_text(points: Sequence[tuple[int, int, str, str]], *, newline: str = "\r\n", **kw) -> str:  # type: ignore[no-untyped-def]
    """The text of a .cpc file (see :func:`cpc_lines` for the keywords)."""
    return "".join(line + newline for line in cpc_lines(points, **kw))


def _letters(n: int) -> list[str]:
    return [chr(ord("A") + k % 26) * (k // 26 + 1) for k in range(n)]


def make_cpce_fixture(root: Path) -> dict[str, Path]:
    """Write the files described in the module doc under ``root``; name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def put(name: str, data: str | bytes, encoding: str = "utf-8") -> None:
        path = root / f"{name}.cpc"
        path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
        out[name] = path

    put("reef_a", cpc_text(REEF_A))
    with_notes = [
        (r, c, code, "bleached" if k % 3 == 0 else "") for k, (r, c, code, _) in enumerate(REEF_A)
    ]
    put("notes", cpc_text(with_notes, numbers=_letters(len(REEF_A))))
    put("cpce35", cpc_text(REEF_A, scale=12, headers=None, newline="\n"))
    put(
        "cp1252",
        cpc_text([(*REEF_A[0][:3], "rugosité")], image_path=r"E:\Récif\reef_a.jpg"),
        encoding="cp1252",
    )
    put("bom", b"\xef\xbb\xbf" + cpc_text(REEF_A[:2], image_path=r"D:\a, b\reef_a.jpg").encode())

    good = cpc_lines(REEF_A)
    crlf = "\r\n"

    def bad(name: str, lines: list[str]) -> None:
        put(name, "".join(line + crlf for line in lines))

    bad("too_few_lines", good[:5])
    bad("ragged_line1", ['"a","b",4800', *good[1:]])
    bad("bad_count", [*good[:5], "nine", *good[6:]])
    bad("zero_count", [*good[:5], "0", *good[6:]])
    outside = list(good)
    outside[7] = f"{WIDTH * SCALE},0"  # column 320 of a 320-wide image
    bad("point_outside", outside)
    negative = list(good)
    negative[6] = "-15,0"
    bad("point_negative", negative)
    bad("point_ragged", [*good[:6], "15,15,15", *good[7:]])
    bad("label_ragged", [*good[:15], '"1","Porit"', *good[16:]])
    bad("odd_size", ['"c","i",4801,3600,14400,10800', *good[1:]])
    bad("area_text", [*good[:2], "right,3585", *good[3:]])
    put("binary", b"\x00\x01\x02PNG" * 40)
    many = [(k % HEIGHT, k % WIDTH, "Sand", "") for k in range(1001)]
    put("too_many_points", cpc_text(many))
    put("huge_count", cpc_text(REEF_A[:2], count=str(10**9)))
    bad("long_line", [*good[:6], "1" * 70000 + ",0", *good[7:]])
    put("empty", b"")
    return out
