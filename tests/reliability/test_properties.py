"""Property-based tests (hypothesis) of the parsers and of point generation (issue 12 item 7).

- CSV: any text given as a CoralNet annotation export or labelset is either read or refused
  with a quadrat InputError naming the file, never another exception; reading in chunks
  gives exactly what reading the whole file gives (frames, lines, errors).
- CPCe: generated valid files read back to the same points; mutated files are read or
  refused with an InputError naming the file and a line.
- Points: every CoralNet spec places exactly its number of points, inside the image,
  the same for the same seed; malformed specs are InputErrors.

Examples are few, derandomized and without a database or deadline, so CI is stable.
"""

from __future__ import annotations

import csv
import io
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quadrat.errors import InputError, LimitError, QuadratError
from quadrat.io.coralnet import read_annotations_csv, read_labelset_csv, write_annotations_csv
from quadrat.io.cpce import read_cpc
from quadrat.io.csv import read_csv
from quadrat.io.csv_chunks import iter_csv
from quadrat.limits import Limits
from quadrat.points import PointSpec
from tests.data.cpce import data as cpce_data


def stable(examples: int) -> Callable[[Any], Any]:
    """Few examples, the same ones every run, no example database, no deadline."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None)


@contextmanager
def written(data: bytes, name: str = "input.csv") -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        yield path


def outcome(read: Callable[[], Any]) -> Any:
    """What a reader returns, or its error as (class, message); anything else fails."""
    try:
        return read()
    except QuadratError as error:
        return (type(error), str(error))


# ------------------------------------------------------------------------ strategies

#: Characters that stress a CSV reader: separators, quotes, line ends, spaces, a BOM,
#: accents, a CJK character, an emoji, NUL-free control characters.
_TRICKY = st.sampled_from(
    [",", '"', "\n", "\r\n", "\r", " ", "\t", "\ufeff", "é", "中", "🐠", "\x0b"]
)
_cell_text = st.lists(
    st.one_of(_TRICKY, st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    max_size=12,
).map("".join)
_line_end = st.sampled_from(["\n", "\r\n"])


@st.composite
def csv_documents(draw: st.DrawFn, header: list[str] | None = None) -> bytes:
    """A well-formed CSV (Python's writer: quotes where needed) of random cells."""
    n_fields = len(header) if header else draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(_cell_text, min_size=n_fields, max_size=n_fields), max_size=8))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(_line_end))
    writer.writerow(header or [f"h{i}" for i in range(n_fields)])
    for row in rows:
        if draw(st.booleans()) and draw(st.booleans()):
            buffer.write(draw(_line_end))  # a blank line between rows
        writer.writerow(row)
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + buffer.getvalue().encode("utf-8")


def _whole_and_chunks(path: Path, chunk: int) -> tuple[Any, Any]:
    def chunks() -> tuple[list[str], pd.DataFrame, np.ndarray]:
        parts = list(iter_csv(path, chunk_bytes=chunk))
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        return parts[0].header, frame, np.concatenate([p.lines for p in parts])

    def whole() -> tuple[list[str], pd.DataFrame, np.ndarray]:
        table = read_csv(path)
        return table.header, table.frame, table.lines

    return outcome(whole), outcome(chunks)


def _assert_same(whole: Any, chunked: Any) -> None:
    if isinstance(whole, tuple) and isinstance(whole[0], type):
        assert chunked == whole
        return
    assert not (isinstance(chunked, tuple) and isinstance(chunked[0], type)), chunked
    assert whole[0] == chunked[0]
    pd.testing.assert_frame_equal(whole[1], chunked[1])
    assert whole[2].tolist() == chunked[2].tolist()


# ----------------------------------------------------------------------------- CSV


@stable(120)
@given(document=csv_documents(), chunk=st.integers(1, 48))
def test_a_csv_read_in_chunks_is_the_csv_read_whole(document: bytes, chunk: int) -> None:
    with written(document) as path:
        whole, chunked = _whole_and_chunks(path, chunk)
    assert not isinstance(whole[0], type), whole  # a well-formed CSV always reads
    _assert_same(whole, chunked)


@stable(120)
@given(
    text=st.text(st.sampled_from(list('ab,"\n\r é')), max_size=40),
    chunk=st.integers(1, 16),
)
def test_any_text_read_in_chunks_is_the_text_read_whole(text: str, chunk: int) -> None:
    """Ragged rows, stray quotes, lone CRs: the same table or the same error either way."""
    with written(("h1,h2\n" + text).encode()) as path:
        whole, chunked = _whole_and_chunks(path, chunk)
    _assert_same(whole, chunked)


_ANNOTATION_HEADER = ["Name", "Row", "Column", "Label code", "Comments", "Date annotated"]


@st.composite
def annotation_documents(draw: st.DrawFn) -> bytes:
    """CoralNet exports whose rows are mostly good, sometimes not (empty or bad cells)."""
    cell = st.one_of(st.integers(0, 5000).map(str), st.sampled_from(["", "-3", "1.5", " 7 ", "x"]))
    n = draw(st.integers(0, 12))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(_line_end))
    writer.writerow(_ANNOTATION_HEADER)
    for _ in range(n):
        writer.writerow(
            [
                draw(st.one_of(st.sampled_from(["a.jpg", "b.jpg", "é 1.jpg", ""]), _cell_text)),
                draw(cell),
                draw(cell),
                draw(st.sampled_from(["Porit", "CCA", "", " Sand "])),
                draw(_cell_text),
                draw(st.sampled_from(["", "2024-03-05 10:01:00+00:00", "not a date"])),
            ]
        )
    return buffer.getvalue().encode("utf-8")


@stable(60)
@given(document=annotation_documents(), chunk=st.integers(1, 64))
def test_annotations_read_in_chunks_are_the_annotations_read_whole(
    document: bytes, chunk: int
) -> None:
    """Same frame, or the same error: message, line and "N more such rows"."""
    limits = Limits(points_per_image=6)
    with written(document) as path:
        whole = outcome(lambda: read_annotations_csv(path, chunk_bytes=None, limits=limits))
        chunked = outcome(lambda: read_annotations_csv(path, chunk_bytes=chunk, limits=limits))
    if isinstance(whole, pd.DataFrame):
        assert isinstance(chunked, pd.DataFrame), chunked
        pd.testing.assert_frame_equal(whole, chunked)
        assert whole.attrs == chunked.attrs
    else:
        assert chunked == whole


@stable(150)
@given(
    body=st.one_of(
        st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
    ),
    bom=st.booleans(),
    crlf=st.booleans(),
)
def test_any_annotation_file_is_read_or_refused_naming_it(body: str, bom: bool, crlf: bool) -> None:
    text = "Name,Row,Column,Label code\n" + body
    if crlf:
        text = text.replace("\n", "\r\n")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogatepass")
    with written(data) as path:
        try:
            frame = read_annotations_csv(path)
        except InputError as error:
            assert error.path == path and str(error).startswith(str(path))
        else:
            assert frame["row"].dtype == np.int64 and (frame["line"] >= 2).all()


@stable(150)
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_labelset_are_read_or_refused_naming_the_file(data: bytes) -> None:
    with written(data, "labels.csv") as path:
        try:
            read_labelset_csv(path)
        except InputError as error:
            assert error.path == path


@stable(50)
@given(document=csv_documents(header=["Label ID", "Short Code", "Name", "Functional Group"]))
def test_any_labelset_shaped_csv_is_read_or_refused_by_line(document: bytes) -> None:
    with written(document, "labels.csv") as path:
        try:
            table = read_labelset_csv(path)
        except InputError as error:
            assert error.path == path
        else:
            assert table["short_code"].notna().all()


_name = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=10
)


@stable(30)
@given(
    rows=st.lists(
        st.tuples(_name, st.integers(0, 10**6), st.integers(0, 10**6), _name), max_size=10
    )
)
def test_an_annotation_export_reads_back_as_written(
    rows: list[tuple[str, int, int, str]],
) -> None:
    frame = pd.DataFrame(
        {
            "image": pd.Series([r[0] for r in rows], dtype="string"),
            "row": pd.Series([r[1] for r in rows], dtype="int64"),
            "column": pd.Series([r[2] for r in rows], dtype="int64"),
            "label": pd.Series([r[3] for r in rows], dtype="string"),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # names that look like formulas
            write_annotations_csv(frame, path)
        back = read_annotations_csv(path, chunk_bytes=16)
    assert back["image"].tolist() == frame["image"].tolist()
    assert back["row"].tolist() == frame["row"].tolist()
    assert back["column"].tolist() == frame["column"].tolist()
    assert back["label"].tolist() == frame["label"].tolist()


# ----------------------------------------------------------------------------- CPCe

_token = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"'), max_size=8
).map(str.strip)


@st.composite
def cpc_files(draw: st.DrawFn) -> tuple[bytes, int, int, int, list[tuple[int, int, str, str]]]:
    """(file bytes, scale, width, height, points) of a valid .cpc file."""
    width, height = draw(st.integers(1, 4000)), draw(st.integers(1, 3000))
    scale = draw(st.sampled_from([15, 12]))
    points = draw(
        st.lists(
            st.tuples(st.integers(0, height - 1), st.integers(0, width - 1), _token, _token),
            min_size=1,
            max_size=30,
        )
    )
    text = cpce_data.cpc_text(
        points,
        width=width,
        height=height,
        scale=scale,
        image_path=draw(_token),
        headers=draw(st.sampled_from([None, ("",) * 28, ("La Jolla, CA", "123")])),
        newline=draw(_line_end),
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    return text.encode(encoding), scale, width, height, points


@stable(100)
@given(cpc=cpc_files())
def test_a_valid_cpc_file_reads_back_its_points(
    cpc: tuple[bytes, int, int, int, list[tuple[int, int, str, str]]],
) -> None:
    data, scale, width, height, points = cpc
    with written(data, "image.cpc") as path:
        read = read_cpc(path, scale=scale)
    assert (read.width, read.height) == (width, height)
    assert [(p.row, p.column, p.code, p.notes) for p in read.points] == points


_MUTATIONS = st.sampled_from(["delete", "duplicate", "swap", "replace", "insert", "truncate"])


@stable(200)
@given(
    cpc=cpc_files(),
    mutation=_MUTATIONS,
    where=st.integers(0, 10**6),
    junk=st.binary(min_size=1, max_size=8),
)
def test_a_mutated_cpc_file_is_read_or_refused_with_a_line(
    cpc: tuple[bytes, int, int, int, list[tuple[int, int, str, str]]],
    mutation: str,
    where: int,
    junk: bytes,
) -> None:
    data, scale, *_ = cpc
    lines = data.splitlines(keepends=True)
    i = where % len(lines)
    if mutation == "delete":
        del lines[i]
    elif mutation == "duplicate":
        lines.insert(i, lines[i])
    elif mutation == "swap":
        j = (i + 1) % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    mutated = b"".join(lines)
    k = where % (len(mutated) + 1)
    if mutation == "replace":
        mutated = mutated[:k] + junk + mutated[k + len(junk) :]
    elif mutation == "insert":
        mutated = mutated[:k] + junk + mutated[k:]
    elif mutation == "truncate":
        mutated = mutated[: k or 1]
    with written(mutated, "image.cpc") as path:
        try:
            read_cpc(path, scale=scale)
        except InputError as error:
            assert error.path == path
            assert error.line is not None and error.line >= 1, str(error)
            assert str(error).startswith(f"{path}, line {error.line}: ")


# --------------------------------------------------------------------------- points


@st.composite
def specs_and_images(draw: st.DrawFn) -> tuple[str, int, int]:
    """(spec, height, width) with at most 1,000 points that fit the image."""
    height, width = draw(st.integers(1, 3000)), draw(st.integers(1, 3000))
    kind = draw(st.sampled_from("mtu"))
    if kind == "m":
        return f"m_{draw(st.integers(1, 1000))}", height, width
    rows = draw(st.integers(1, min(height, 30)))
    cols = draw(st.integers(1, min(width, 1000 // rows)))
    if kind == "u":
        return f"u_{rows}_{cols}", height, width
    per_cell = draw(st.integers(1, max(1, 1000 // (rows * cols))))
    return f"t_{rows}_{cols}_{per_cell}", height, width


@stable(150)
@given(case=specs_and_images(), seed=st.integers(0, 2**32 - 1))
def test_every_spec_places_its_points_inside_the_image(
    case: tuple[str, int, int], seed: int
) -> None:
    text, height, width = case
    spec = PointSpec.parse(text)
    assert str(spec) == text
    points = spec.generate(height, width, seed=seed)
    assert points.shape == (spec.count, 2) and points.dtype == np.int64
    assert ((points[:, 0] >= 0) & (points[:, 0] < height)).all()
    assert ((points[:, 1] >= 0) & (points[:, 1] < width)).all()
    again = spec.generate(height, width, seed=seed)
    assert np.array_equal(points, again)


@stable(200)
@given(
    text=st.one_of(st.text(max_size=20), st.from_regex(r"[mtui](_\d{1,12}){0,5}", fullmatch=True))
)
def test_any_spec_text_is_a_spec_or_an_input_error(text: str) -> None:
    try:
        spec = PointSpec.parse(text)
    except InputError as error:  # LimitError included
        assert isinstance(error, LimitError) or repr(text) in str(error) or "point" in str(error)
        return
    assert PointSpec.parse(str(spec)) == spec
    assert spec.method == "imported" or spec.count <= Limits().points_per_image


@pytest.mark.parametrize("text", ["m_1000000000", "t_1000_1000_1000", "u_100000_100000"])
def test_huge_specs_are_refused_before_allocating(text: str) -> None:
    with pytest.raises(LimitError, match="points_per_image"):
        PointSpec.parse(text)
    spec = PointSpec("simple", n=10**9)
    with pytest.raises(LimitError):
        spec.generate(100, 100, seed=0)


# ------------------------------------------------------- chunked import, limits, memory


def test_a_streamable_file_really_comes_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "Name,Row,Column\n" + "".join(f'"im {i % 7}.jpg",{i},{i}\n' for i in range(500))
    )
    parts = list(iter_csv(path, chunk_bytes=256))
    assert len(parts) > 20
    assert all(len(p) <= 256 // 10 for p in parts)  # no chunk much over 256 bytes of rows
    assert sum(len(p) for p in parts) == 500
    assert np.concatenate([p.lines for p in parts]).tolist() == list(range(2, 502))


@pytest.mark.parametrize("chunk", [None, 7, 64, 1 << 20])
def test_the_csv_limits_are_the_same_in_chunks(tmp_path: Path, chunk: int | None) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Name,Row,Column\n" + "a.jpg,1,1\n" * 11)
    with pytest.raises(LimitError, match="too many rows: 11 is over the limit csv_rows = 10"):
        read_annotations_csv(path, limits=Limits(csv_rows=10), chunk_bytes=chunk)
    with pytest.raises(LimitError, match="csv_bytes") as caught:
        read_annotations_csv(path, limits=Limits(csv_bytes=50), chunk_bytes=chunk)
    assert caught.value.path == path
    with pytest.raises(LimitError, match="points_per_image") as caught:
        read_annotations_csv(path, limits=Limits(points_per_image=10), chunk_bytes=chunk)
    assert caught.value.line == 2


def test_errors_late_in_a_chunked_file_are_the_whole_files(tmp_path: Path) -> None:
    """The first bad row by check order, and the count of such rows over every chunk."""
    path = tmp_path / "a.csv"
    rows = [f"a{i % 3}.jpg,{i},{i}" for i in range(300)]
    rows[40] = "a0.jpg,x,1"  # a bad Row early ...
    rows[250] = ",1,1"  # ... and an empty Name late: Name is checked first
    rows[280] = "a1.jpg,y,1"
    path.write_text("Name,Row,Column\n" + "\n".join(rows) + "\n")
    for chunk in (None, 16, 300):
        with pytest.raises(InputError, match="Name is empty") as caught:
            read_annotations_csv(path, chunk_bytes=chunk)
        assert caught.value.line == 252
    rows[250] = "a2.jpg,1,1"
    path.write_text("Name,Row,Column\n" + "\n".join(rows) + "\n")
    for chunk in (None, 16, 300):
        with pytest.raises(InputError, match=r"Row must be .* got 'x' \(1 more such rows\)") as c:
            read_annotations_csv(path, chunk_bytes=chunk)
        assert c.value.line == 42


def test_a_chunked_import_stores_nothing_when_a_late_row_is_bad(
    tmp_path: Path, survey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    import quadrat
    from quadrat.workflow import importing

    monkeypatch.setattr(
        importing,
        "read_annotations_csv",
        functools.partial(read_annotations_csv, chunk_bytes=64),
    )
    text = survey.annotations_csv.read_text(encoding="utf-8")
    header, *rows = text.splitlines()
    bad = survey.annotations_csv.with_name("bad.csv")
    cells = rows[-1].split(",")
    cells[header.split(",").index("Row")] = "x"  # the last row's Row is not a number
    bad.write_text("\n".join([header, *rows, ",".join(cells)]) + "\n")
    with quadrat.Project.create(tmp_path / "p.db") as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        with pytest.raises(InputError) as caught:
            src.import_annotations(bad, survey.annotated_dir)
        assert caught.value.path == bad and caught.value.line == len(rows) + 2
        assert src.counts()["images"] == 0 and src.counts()["points"] == 0
        summary = src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        assert summary.points == len(rows) == src.counts()["points"]
