"""CPCe ``.cpc`` files: one image's points and their labels, as Coral Point Count writes them.

CPCe (Coral Point Count with Excel extensions, a Windows program) saves each image's
annotation as a small text file whose lines are comma-separated tokens, some in double
quotes (CPCe has no escape for a quote inside a token):

==========  ==================================================================
line        tokens
==========  ==================================================================
1           ``"code file path","image path",width,height,display width,display height``
2-5         the annotation area's corners ``x,y``: bottom left, bottom right,
            top right, top left
6           N, the number of points (a positive integer)
next N      each point's ``x,y`` (x from the left, y from the top)
next N      each point's ``"number","label code","Notes","notes"``
up to 28    optional header fields, one quoted value a line (absent in CPCe 3.5)
==========  ==================================================================

Sizes and positions are in CPCe units: :data:`CPCE_UNITS_PER_PIXEL` (15) per pixel
when CPCe ran at 96 DPI; CPCe 3.5 at 120 DPI wrote 12 (pass ``scale=12``). Point
positions are non-negative integers; a point's pixel is ``round(units / scale)``, as
CoralNet's CPC upload converts them. Tokens are stripped of surrounding spaces.

The paths in line 1 are where the files were on the CPCe user's machine (Windows paths,
usually): they are returned as written and never opened.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from quadrat.errors import InputError, NotFoundError
from quadrat.limits import Limits, current

#: CPCe units per pixel when CPCe ran at 96 DPI (every CPCe 4.x file).
CPCE_UNITS_PER_PIXEL = 15

#: Header-field lines CPCe 4.1 writes after the labels (older versions write none).
N_HEADER_FIELDS = 28

#: The longest line read. CPCe writes short lines (Windows paths are at most 260
#: characters); a longer one means the file is not a CPCe file.
MAX_LINE_CHARS = 65_536

#: Encodings tried in turn: UTF-8 (a byte-order mark is fine), then Windows-1252, the
#: "ANSI" code page CPCe's Windows machines wrote paths and notes in.
ENCODINGS = ("utf-8-sig", "cp1252")


@dataclass(frozen=True)
class CpcPoint:
    """One point: its pixel position, CPCe's number for it, its label code and notes."""

    row: int
    column: int
    #: CPCe's point identifier, as given ("1", "2", ... or "A", "B", ...).
    number: str
    #: The label code as given ("" when the point is not annotated).
    code: str
    #: The notes code as given ("" when none).
    notes: str
    #: Line of the file holding the point's position (its label line is ``N`` later).
    line: int


@dataclass(frozen=True)
class CpcFile:
    """A parsed ``.cpc`` file (see the module doc for the format)."""

    path: Path
    #: The CPCe code file's path, as written.
    code_path: str
    #: The image's path on the machine that ran CPCe, as written (never opened).
    image_path: str
    #: Image size in pixels (line 1's CPCe units divided by ``scale``).
    width: int
    height: int
    #: CPCe units per pixel the file was read with.
    scale: int
    #: Annotation area corners ``(x, y)`` in CPCe units: bottom left, bottom right, top
    #: right, top left.
    area: tuple[tuple[float, float], ...]
    points: tuple[CpcPoint, ...]
    #: The header fields after the labels, as given (empty for CPCe 3.5 files).
    headers: tuple[str, ...]

    @property
    def image_name(self) -> str:
        """The image's file name: the last part of :attr:`image_path` (``\\`` or ``/``)."""
        return PureWindowsPath(self.image_path).name


def read_cpc(
    path: str | Path, *, scale: int = CPCE_UNITS_PER_PIXEL, limits: Limits | None = None
) -> CpcFile:
    """Read a ``.cpc`` file; InputError (with the file and line) when it is not one.

    More points than ``limits.points_per_image``, or a file over ``limits.csv_bytes``,
    raise LimitError before the points are read.
    """
    path = Path(path)
    limits = current(limits)
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise InputError(
            f"scale must be a positive integer (CPCe units per pixel), got {scale!r}",
            value=scale,
            param="scale",
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise NotFoundError("file not found", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read file: {exc}", path=path) from exc
    if path.is_dir():
        raise InputError("is a folder, expected a CPCe .cpc file", path=path)
    limits.check("csv_bytes", size, what="CPCe file is too large (bytes)", path=path)
    if size == 0:
        raise InputError("empty file (expected a CPCe .cpc file)", path=path)
    try:
        try:
            return _parse(path, ENCODINGS[0], scale, limits)
        except UnicodeDecodeError:  # not UTF-8: CPCe's ANSI code page (every byte decodes)
            return _parse(path, ENCODINGS[1], scale, limits)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=path) from exc


class _Lines:
    """The physical lines of a text file, checked for binary content and length."""

    def __init__(self, path: Path, fh: Iterator[str]) -> None:
        self.path = path
        self.fh = fh
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        for text in self.fh:
            self.count += 1
            if "\x00" in text:
                raise InputError(
                    "not a CPCe file (binary content)", path=self.path, line=self.count
                )
            if len(text) > MAX_LINE_CHARS:
                raise InputError(
                    f"line is longer than {MAX_LINE_CHARS:,} characters: not a CPCe file",
                    path=self.path,
                    line=self.count,
                )
            yield text


class _Reader:
    """Records of a ``.cpc`` file with the line each starts on."""

    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path = path
        self.lines = lines
        self.records = csv.reader(lines, delimiter=",", quotechar='"', strict=False)
        self.line = 0  # first line of the record last read

    def next(self) -> list[str] | None:
        start = self.lines.count + 1
        try:
            tokens = next(self.records)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise InputError(
                f"not a CPCe line: {exc}", path=self.path, line=self.lines.count
            ) from exc
        self.line = start
        return [t.strip() for t in tokens]

    def expect(self, n: int, what: str) -> list[str]:
        tokens = self.next()
        if tokens is None:
            raise InputError(
                f"the file ends after line {self.lines.count}, before {what}",
                path=self.path,
                line=self.lines.count,
            )
        if len(tokens) != n:
            raise InputError(
                f"{what} should have {n} comma-separated value(s), found {len(tokens)}",
                path=self.path,
                line=self.line,
                value=len(tokens),
            )
        return tokens

    def fail(self, message: str, value: object = None) -> InputError:
        return InputError(message, path=self.path, line=self.line, value=value)


def _parse(path: Path, encoding: str, scale: int, limits: Limits) -> CpcFile:
    errors = "strict" if encoding == ENCODINGS[0] else "replace"  # cp1252's 5 unused bytes
    with path.open(encoding=encoding, errors=errors, newline="") as fh:
        reader = _Reader(path, _Lines(path, fh))
        code_path, image_path, width_u, height_u, _display_w, _display_h = reader.expect(
            6, "line 1 (code file, image, width, height, display width and height)"
        )
        width = _size(reader, width_u, "width", scale)
        height = _size(reader, height_u, "height", scale)

        corners = ("bottom left", "bottom right", "top right", "top left")
        area = []
        for corner in corners:
            x, y = reader.expect(2, f"the annotation area's {corner} corner (x,y)")
            area.append((_number(reader, x, corner), _number(reader, y, corner)))

        (count_text,) = reader.expect(1, "the number of points")
        if not count_text.isascii() or not count_text.isdigit() or int(count_text) < 1:
            raise reader.fail(
                f"the number of points must be a positive integer, got {count_text!r}",
                count_text,
            )
        count = int(count_text)
        limits.check(
            "points_per_image",
            count,
            what="CPCe file has too many points",
            path=path,
            line=reader.line,
        )

        positions: list[tuple[int, int, int]] = []
        for k in range(1, count + 1):
            x, y = reader.expect(2, f"point {k}'s position (x,y)")
            column = _position(reader, x, k, "x", scale)
            row = _position(reader, y, k, "y", scale)
            if row >= height or column >= width:
                raise reader.fail(
                    f"point {k} at x={x}, y={y} is pixel (row {row}, column {column}), "
                    f"outside the {width}x{height} image",
                    (x, y),
                )
            positions.append((row, column, reader.line))

        points = []
        for k, (row, column, line) in enumerate(positions, start=1):
            number, code, _notes_word, notes = reader.expect(
                4, f'point {k}\'s label ("number","code","Notes","notes")'
            )
            points.append(CpcPoint(row, column, number, code, notes, line))

        headers = []
        for _ in range(N_HEADER_FIELDS):
            tokens = reader.next()
            if tokens is None:
                break
            headers.append(tokens[0] if tokens else "")  # a blank line: an empty field

    return CpcFile(
        path=path,
        code_path=code_path,
        image_path=image_path,
        width=width,
        height=height,
        scale=scale,
        area=tuple(area),
        points=tuple(points),
        headers=tuple(headers),
    )


def _size(reader: _Reader, text: str, what: str, scale: int) -> int:
    """Image width or height in pixels from CPCe units."""
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise reader.fail(
            f"image {what} must be a positive integer (CPCe units), got {text!r}", text
        )
    units = int(text)
    if units % scale:
        raise reader.fail(
            f"image {what} {units} is not a whole number of pixels at {scale} CPCe units "
            "per pixel (files from CPCe 3.5 at 120 DPI use 12: give scale=12)",
            units,
        )
    return units // scale


def _number(reader: _Reader, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value == value and abs(value) != float("inf")):  # NaN or infinite
        raise reader.fail(f"the annotation area's {what} corner must be numbers, got {text!r}")
    return value


def _position(reader: _Reader, text: str, k: int, axis: str, scale: int) -> int:
    """A point's row (y) or column (x) in pixels."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise reader.fail(
            f"point {k}'s {axis} must be a non-negative integer (CPCe units), got {text!r}",
            text,
        )
    return round(int(text) / scale)


#: CPCe's display size in pixels written by CoralNet's from-scratch export (x scale).
DISPLAY_SIZE = (960, 720)


def cpc_text(
    *,
    image_path: str,
    width: int,
    height: int,
    points: Sequence[tuple[int, int, str, str]],
    code_path: str = "",
    scale: int = CPCE_UNITS_PER_PIXEL,
    numbers: Sequence[str] | None = None,
    area: Sequence[tuple[float, float]] | None = None,
    headers: Sequence[str] = ("",) * N_HEADER_FIELDS,
) -> str:
    """The text of a ``.cpc`` file as CoralNet's from-scratch CPCe export writes it.

    ``points`` are ``(row, column, code, notes)`` in pixels; sizes and positions are
    written in CPCe units (pixels x ``scale``), the area defaults to the whole image,
    point numbers to 1, 2, ...; lines end in CRLF. CPCe cannot escape a quote, so ``"``
    is removed from every text value (as CoralNet does).
    """
    if not points:
        raise InputError("a .cpc file needs at least one point", param="points")

    def q(value: str) -> str:
        return '"' + str(value).replace('"', "") + '"'

    def units(value: float) -> str:
        number = value * scale
        return str(int(number)) if float(number).is_integer() else f"{number:.4f}"

    if area is None:
        right, bottom = float(width - 1), float(height - 1)
        area = ((0.0, bottom), (right, bottom), (right, 0.0), (0.0, 0.0))
    display_w, display_h = DISPLAY_SIZE
    lines = [
        ",".join(
            [
                q(code_path),
                q(image_path),
                str(width * scale),
                str(height * scale),
                str(display_w * scale),
                str(display_h * scale),
            ]
        )
    ]
    lines += [f"{units(x)},{units(y)}" for x, y in area]
    lines.append(str(len(points)))
    lines += [f"{int(c) * scale},{int(r) * scale}" for r, c, _, _ in points]
    names = numbers if numbers is not None else [str(k) for k in range(1, len(points) + 1)]
    lines += [
        ",".join([q(n), q(code), q("Notes"), q(notes)])
        for n, (_, _, code, notes) in zip(names, points, strict=True)
    ]
    lines += [q(h) for h in headers]
    return "".join(line + "\r\n" for line in lines)


def write_cpc(path: str | Path, text: str) -> Path:
    """Write a ``.cpc`` file's text (from :func:`cpc_text`) atomically, in CPCe's code page
    (Windows-1252), or UTF-8 when the text has characters that code page lacks."""
    from quadrat.io.atomic import write_bytes

    try:
        data = text.encode(ENCODINGS[1])
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    return write_bytes(path, data)


__all__ = [
    "CPCE_UNITS_PER_PIXEL",
    "DISPLAY_SIZE",
    "CpcFile",
    "CpcPoint",
    "cpc_text",
    "read_cpc",
    "write_cpc",
]
