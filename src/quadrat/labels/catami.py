"""The CATAMI classification scheme as a tree: lookups, ancestry, roll-up, and loaders.

CATAMI (Collaborative and Annotation Tools for Analysis of Marine Imagery, v1.4) is the
shared vocabulary that Australian surveys, Squidle+ and BenthicNet label seafloor imagery
with. Every node has a CAAB code (an 8-digit id), a short name ("Brown"), a parent and a
CPC code. The project ships v1.4 as ``data/catami_v1.4.csv`` (columns ``caab_code, name,
parent_caab_code, cpc_code, head, path``), built from the published CAAB-code CSV by
``python -m quadrat.labels.catami build CAAB_CSV``.

Heads: the four independent label spaces BenthicNet trains one probe head for (``biota``,
``substrate``, ``relief``, ``bedforms``). A node's head is the nearest ancestor-or-self
named after a head (or, in BenthicNet's path lists, the ``[HEAD]`` tag of its root).
Depth counts from the head's root (``Biota`` = 0, ``Macroalgae`` = 1); a node outside
every head (``Physical``) counts from its tree root.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from quadrat.errors import CsvFormatError, InputError
from quadrat.io.atomic import atomic_file
from quadrat.io.csv import read_csv_frame

HEADS: tuple[str, ...] = ("biota", "substrate", "relief", "bedforms")
PATH_SEPARATOR = " > "
DEFAULT_FILE = "catami_v1.4.csv"
OWN_COLUMNS = ("caab_code", "name", "parent_caab_code", "cpc_code", "head", "path")

_TAG = re.compile(r"^\[(?P<head>[^\]]+)\]$")
PARENTHETICAL = re.compile(r"\([^)]*\)")


class UnknownNodeError(InputError):
    """A code, name or path that names no node (or several) of the CATAMI tree."""


@dataclass(frozen=True)
class CatamiNode:
    """One class of the scheme; ``parent`` is the parent's code (None for a root)."""

    code: str
    name: str
    parent: str | None
    cpc_code: str = ""


def normalise_name(text: str) -> str:
    """Case- and spacing-insensitive form of a name, so 'Sand  / Mud' matches 'sand / mud'."""
    return " ".join(str(text).replace("\u00a0", " ").split()).casefold()


def split_path(path: str) -> list[str]:
    """Segments of a '>'- or ':'-joined path (CATAMI display names use ': ')."""
    text = str(path).strip().rstrip(",").strip()
    parts = re.split(r"\s+>\s+|:\s+", text)
    return [part.strip() for part in parts if part.strip()]


def name_keys(name: str) -> set[str]:
    """The forms under which a node name is matched exactly.

    'Sand / mud (<2mm)' -> {'sand / mud (<2mm)', 'sand / mud', 'sand', 'mud'}; words are
    made singular ('Boulders' -> 'boulder') because labels use both.
    """
    full = normalise_name(name)
    bare = normalise_name(PARENTHETICAL.sub(" ", full))
    keys = {full, bare}
    if " / " in bare:
        keys.update(part.strip() for part in bare.split(" / ") if part.strip())
    return {_singular(key) for key in keys if key}


def _singular(text: str) -> str:
    words = [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in text.split()
    ]
    return " ".join(words)


class CatamiTree:
    """An immutable tree of :class:`CatamiNode` with lookups by code, name, path and CPC code.

    Codes are unique; names are not (there are many 'Brown' nodes), so a name lookup
    returns every match and :meth:`find` insists on a unique one.
    """

    def __init__(self, nodes: Iterable[CatamiNode], *, source: str = "") -> None:
        self.source = source
        self._nodes: dict[str, CatamiNode] = {}
        for node in nodes:
            if node.code in self._nodes:
                raise InputError(f"duplicate node code {node.code!r}", path=source or None)
            self._nodes[node.code] = node
        self._children: dict[str | None, list[str]] = {}
        for node in self._nodes.values():
            if node.parent is not None and node.parent not in self._nodes:
                raise InputError(
                    f"node {node.code} ({node.name}) names parent {node.parent!r}, "
                    "which is not in the tree",
                    path=source or None,
                    value=node.parent,
                )
            self._children.setdefault(node.parent, []).append(node.code)
        for siblings in self._children.values():
            siblings.sort(key=lambda code: (self._nodes[code].name.casefold(), code))
        self._lineage: dict[str, tuple[str, ...]] = {}
        for code in self._nodes:
            self._lineage[code] = self._walk_up(code)
        self._heads = {code: self._head_of(code) for code in self._nodes}
        self._by_name: dict[str, list[str]] = {}
        self._by_path: dict[tuple[str, ...], str] = {}
        self._by_cpc: dict[str, list[str]] = {}
        self._by_alias: dict[str, set[str]] = {}
        for code, node in self._nodes.items():
            self._by_name.setdefault(normalise_name(node.name), []).append(code)
            self._by_path[tuple(normalise_name(n) for n in self.path(code))] = code
            for key in name_keys(node.name):
                self._by_alias.setdefault(key, set()).add(code)
            if node.cpc_code:
                self._by_cpc.setdefault(node.cpc_code.upper(), []).append(code)

    def _walk_up(self, code: str) -> tuple[str, ...]:
        """Codes from the root down to ``code``; a cycle is an input error."""
        chain = [code]
        seen = {code}
        parent = self._nodes[code].parent
        while parent is not None:
            if parent in seen:
                raise InputError(f"the parent links of node {code} form a cycle", value=code)
            seen.add(parent)
            chain.append(parent)
            parent = self._nodes[parent].parent
        return tuple(reversed(chain))

    def _head_of(self, code: str) -> str | None:
        lineage = self._lineage[code]
        tag = _TAG.match(self._nodes[lineage[0]].name)
        if tag is not None:
            return tag.group("head").casefold()
        for ancestor in lineage:
            name = normalise_name(self._nodes[ancestor].name)
            if name in HEADS:
                return name
        return None

    # -- basic access -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[CatamiNode]:
        """Nodes depth-first from each root, siblings by name: a stable, readable order."""
        stack = list(reversed(self._children.get(None, [])))
        while stack:
            code = stack.pop()
            yield self._nodes[code]
            stack.extend(reversed(self._children.get(code, [])))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._nodes

    def node(self, code: str) -> CatamiNode:
        """The node with this CAAB code."""
        try:
            return self._nodes[str(code)]
        except KeyError:
            raise UnknownNodeError(f"no CATAMI node has code {code!r}", value=code) from None

    @property
    def roots(self) -> list[str]:
        return list(self._children.get(None, []))

    def children(self, code: str) -> list[str]:
        self.node(code)
        return list(self._children.get(code, []))

    def parent(self, code: str) -> str | None:
        return self.node(code).parent

    def ancestors(self, code: str) -> list[str]:
        """Codes of every ancestor, root first (the node itself excluded)."""
        self.node(code)
        return list(self._lineage[code][:-1])

    def descendants(self, code: str) -> list[str]:
        """Codes of every node below ``code``, depth-first."""
        out: list[str] = []
        stack = list(reversed(self.children(code)))
        while stack:
            child = stack.pop()
            out.append(child)
            stack.extend(reversed(self._children.get(child, [])))
        return out

    def path(self, code: str) -> tuple[str, ...]:
        """Names from the tree root down to the node."""
        self.node(code)
        return tuple(self._nodes[c].name for c in self._lineage[code])

    def path_str(self, code: str) -> str:
        return PATH_SEPARATOR.join(self.path(code))

    def head(self, code: str) -> str | None:
        """Which of :data:`HEADS` (or a path list's own tag) the node belongs to."""
        self.node(code)
        return self._heads[code]

    def head_root(self, code: str) -> str:
        """The top node of the node's head (itself for a node outside every head)."""
        lineage = self._lineage[code]
        head = self.head(code)
        for index, ancestor in enumerate(lineage):
            if self._heads[ancestor] == head and (
                index == 0 or self._heads[lineage[index - 1]] != head
            ):
                return ancestor
        return lineage[0]

    def depth(self, code: str) -> int:
        """Levels below the head's root (head root = 0); outside every head, below the root."""
        lineage = self._lineage[code]
        return len(lineage) - 1 - lineage.index(self.head_root(code))

    def roll_up(self, code: str, level: int) -> str:
        """The ancestor-or-self at ``level`` (head-relative); shallower nodes stay themselves."""
        if level < 0:
            raise InputError("a roll-up level must be 0 or more", value=level)
        lineage = self._lineage[self.node(code).code]
        start = lineage.index(self.head_root(code))
        return lineage[min(start + level, len(lineage) - 1)]

    def heads(self) -> dict[str, str]:
        """Head name -> code of its root node, for the heads this tree has."""
        found: dict[str, str] = {}
        for code in self._nodes:
            head = self._heads[code]
            if head is not None and head not in found:
                found[head] = self.head_root(code)
        return {head: found[head] for head in sorted(found, key=_head_order)}

    def head_nodes(self, head: str, *, include_root: bool = False) -> list[str]:
        """Codes of a head's nodes in tree order (the head's own root only if asked)."""
        roots = self.heads()
        if head not in roots:
            raise UnknownNodeError(f"the tree has no head {head!r}", value=head)
        root = roots[head]
        below = self.descendants(root)
        return [root, *below] if include_root else below

    # -- lookups ------------------------------------------------------------------------
    def by_name(self, name: str) -> list[str]:
        """Codes of every node with this name (case- and spacing-insensitive)."""
        return list(self._by_name.get(normalise_name(name), []))

    def by_cpc(self, cpc_code: str) -> list[str]:
        """Codes of nodes with this CPC code (v1.4 gives 'SUPBR' to two nodes)."""
        return list(self._by_cpc.get(str(cpc_code).strip().upper(), []))

    def by_path(self, path: str | Sequence[str]) -> str | None:
        """The node at a full path from a root (names case-insensitive), else None."""
        parts = split_path(path) if isinstance(path, str) else list(path)
        return self._by_path.get(tuple(normalise_name(p) for p in parts))

    def find(self, query: str) -> str:
        """One node from a CAAB code, a path ('>' or ': '), a unique name or a CPC code."""
        text = str(query).strip()
        if text in self._nodes:
            return text
        if text.isdigit() and text.zfill(8) in self._nodes:
            return text.zfill(8)
        if len(split_path(text)) > 1:
            found = self.by_path(text) or self.by_path(self._display_to_path(text))
            if found is not None:
                return found
            raise UnknownNodeError(f"no CATAMI node has path {text!r}", value=text)
        for matches, kind in ((self.by_name(text), "name"), (self.by_cpc(text), "CPC code")):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                paths = "; ".join(self.path_str(code) for code in matches[:6])
                raise UnknownNodeError(
                    f"{len(matches)} CATAMI nodes have the {kind} {text!r} ({paths}); "
                    "give a path or a CAAB code",
                    value=text,
                )
        aliases = {c for key in name_keys(text) for c in self._by_alias.get(key, set())}
        if len(aliases) == 1:
            return aliases.pop()
        raise UnknownNodeError(f"no CATAMI node has code, name or CPC code {text!r}", value=text)

    def _display_to_path(self, text: str) -> list[str]:
        """A CATAMI display name ('Sponges: Crusts') lacks its root: try each root."""
        parts = split_path(text)
        for root in self.roots:
            if self.by_path([self._nodes[root].name, *parts]) is not None:
                return [self._nodes[root].name, *parts]
            for child in self._children.get(root, []):
                candidate = [self._nodes[root].name, self._nodes[child].name, *parts]
                if self.by_path(candidate) is not None:
                    return candidate
        return parts

    # -- tables -------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The project's own format: one row per node, parents before children."""
        rows = [
            {
                "caab_code": node.code,
                "name": node.name,
                "parent_caab_code": node.parent or "",
                "cpc_code": node.cpc_code,
                "head": self._heads[node.code] or "",
                "path": self.path_str(node.code),
            }
            for node in self
        ]
        return pd.DataFrame(rows, columns=list(OWN_COLUMNS))

    def write_csv(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` atomically (temp file + os.replace)."""
        return write_frame_atomic(self.to_frame(), path)

    def counts(self) -> pd.DataFrame:
        """Node counts per head and depth (head roots included at depth 0)."""
        rows = [
            {"head": self._heads[code] or "", "depth": self.depth(code)} for code in self._nodes
        ]
        frame = pd.DataFrame(rows)
        table = frame.groupby(["head", "depth"]).size().rename("nodes").reset_index()
        return table.sort_values(
            ["head", "depth"], key=lambda s: s.map(_head_order) if s.name == "head" else s
        ).reset_index(drop=True)


def _head_order(head: str) -> tuple[int, str]:
    return (HEADS.index(head) if head in HEADS else len(HEADS), head)


def write_frame_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """A CSV that is either complete or absent: written beside, then renamed."""
    with atomic_file(path, "w", newline="", encoding="utf-8") as stream:
        frame.to_csv(stream, index=False)
    return Path(path)


def _code(value: object) -> str:
    """CAAB codes are 8 digits; spreadsheets drop the leading zeros."""
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return text.zfill(8) if text.isdigit() else text


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    frame = read_csv_frame(path)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(frame.columns)})",
            path=path,
        )
    return frame


def load_catami_csv(path: str | Path) -> CatamiTree:
    """The project's own format (see :data:`OWN_COLUMNS`; ``head``/``path`` are derived)."""
    path = Path(path)
    frame = _read_csv(path, ("caab_code", "name", "parent_caab_code"))
    nodes = []
    for index, row in frame.iterrows():
        line = int(str(index)) + 2
        code = _code(row["caab_code"])
        if not code or not row["name"].strip():
            raise CsvFormatError("empty caab_code or name", path=path, line=line, value=code)
        parent = _code(row["parent_caab_code"]) or None
        nodes.append(CatamiNode(code, row["name"].strip(), parent, row.get("cpc_code", "").strip()))
    return _tree(nodes, path)


def _tree(nodes: list[CatamiNode], path: Path | str) -> CatamiTree:
    try:
        return CatamiTree(nodes, source=str(path))
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(str(exc), path=path, value=exc.value) from None


def load_caab_csv(path: str | Path, *, repair: bool = True) -> CatamiTree:
    """The published CATAMI CAAB-code CSV (``SPECIES_CODE, CATAMI_DISPLAY_NAME, ...``).

    Display names are ': '-joined paths without the root; the short name is the last part.
    v1.4 gives both seagrass morphologies the parent 80000901, a code that exists nowhere:
    with ``repair`` a parent missing from the file is replaced by the node whose display
    name is this one's prefix, with a warning naming the line.
    """
    path = Path(path)
    frame = _read_csv(path, ("SPECIES_CODE", "CATAMI_DISPLAY_NAME", "CATAMI_PARENT_ID"))
    by_display = {
        normalise_name(row["CATAMI_DISPLAY_NAME"]): _code(row["SPECIES_CODE"])
        for _, row in frame.iterrows()
    }
    codes = set(by_display.values())
    nodes = []
    for index, row in frame.iterrows():
        line = int(str(index)) + 2
        code = _code(row["SPECIES_CODE"])
        display = row["CATAMI_DISPLAY_NAME"].strip()
        if not code.isdigit() or not display:
            raise CsvFormatError(
                "a row needs a numeric SPECIES_CODE and a display name",
                path=path,
                line=line,
                value=code,
            )
        parts = split_path(display)
        parent = _code(row["CATAMI_PARENT_ID"]) or None
        if parent is not None and parent not in codes and repair and len(parts) > 1:
            fixed = by_display.get(normalise_name(": ".join(parts[:-1])))
            if fixed is not None:
                warnings.warn(
                    f"{path}, line {line}: parent {parent} of {code} ({display}) is not in the "
                    f"file; using {fixed}, the node its display name sits under",
                    stacklevel=2,
                )
                parent = fixed
        cpc = row.get("CPC_CODES", "").strip()
        nodes.append(CatamiNode(code, parts[-1], parent, cpc))
    return _tree(nodes, path)


def load_tree_json(path: str | Path) -> CatamiTree:
    """The classification-tree JSON: a Django fixture of ``AnnotationCodes`` records.

    Parents are record primary keys, not CAAB codes; they are resolved here.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(records, list):
        raise InputError("expected a list of records", path=path)
    by_pk: dict[object, dict[str, object]] = {}
    for number, record in enumerate(records):
        fields = record.get("fields") if isinstance(record, dict) else None
        if not isinstance(fields, dict) or "caab_code" not in fields or "code_name" not in fields:
            raise InputError(
                f"record {number} lacks fields.caab_code / fields.code_name", path=path
            )
        by_pk[record.get("pk", number)] = fields
    nodes = []
    for pk, fields in by_pk.items():
        parent_pk = fields.get("parent")
        if parent_pk is not None and parent_pk not in by_pk:
            raise InputError(f"record pk={pk} names a missing parent", path=path, value=parent_pk)
        parent = None if parent_pk is None else _code(by_pk[parent_pk]["caab_code"])
        nodes.append(
            CatamiNode(
                _code(fields["caab_code"]),
                str(fields["code_name"]).strip(),
                parent,
                str(fields.get("cpc_code") or "").strip(),
            )
        )
    return _tree(nodes, path)


def read_path_lines(path: str | Path, *, column: str | None = None) -> list[tuple[int, str]]:
    """(line, path) pairs from a '>'-path list: a plain list or the first/named CSV column.

    Tolerates BenthicNet's rows that end in a stray comma (an empty second field) and a
    header row (any first line without '>').
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    field = 0
    start = 0
    header = [cell.strip() for cell in rows[0]]
    if not any(">" in cell for cell in header):
        start = 1
        if column is not None:
            if column not in header:
                raise CsvFormatError(
                    f"no column {column!r} (found: {', '.join(header)})", path=path, line=1
                )
            field = header.index(column)
    out = []
    for number, row in enumerate(rows[start:], start=start + 1):
        if len(row) <= field or not row[field].strip():
            continue
        out.append((number, row[field].strip()))
    return out


def load_paths(source: str | Path | Iterable[str], *, column: str | None = None) -> CatamiTree:
    """A tree from '>'-joined paths (BenthicNet's ``catami_ex.csv``, Squidle+ lineages).

    Intermediate nodes are implied. Nodes have no CAAB codes in this form, so a node's
    code is its path; CPC codes are empty.
    """
    if isinstance(source, str | Path) and Path(source).is_file():
        lines = read_path_lines(source, column=column)
        label = str(source)
    elif isinstance(source, str | Path):
        raise FileNotFoundError(f"no such path list: {source}")
    else:
        lines = list(enumerate(source, start=1))
        label = ""
    nodes: dict[str, CatamiNode] = {}
    for line, text in lines:
        parts = [part.strip() for part in re.split(r"\s+>\s+", text.strip().rstrip(","))]
        if any(not part or part.startswith(">") or part.endswith(">") for part in parts):
            where = "" if label else f"line {line}: "
            raise InputError(
                f"{where}empty segment in path {text!r}", path=label or None, line=line, value=text
            )
        for depth in range(len(parts)):
            code = PATH_SEPARATOR.join(parts[: depth + 1])
            if code not in nodes:
                parent = PATH_SEPARATOR.join(parts[:depth]) if depth else None
                nodes[code] = CatamiNode(code, parts[depth], parent)
    return _tree(list(nodes.values()), label)


def load_tree(path: str | Path) -> CatamiTree:
    """Any published form, told apart by extension and header."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return load_tree_json(path)
    header = path.read_text(encoding="utf-8-sig").split("\n", 1)[0]
    if "SPECIES_CODE" in header:
        return load_caab_csv(path)
    if "caab_code" in header and "parent_caab_code" in header:
        return load_catami_csv(path)
    return load_paths(path)


@cache
def default_catami() -> CatamiTree:
    """The shipped CATAMI v1.4 tree (cached: it is immutable)."""
    resource = resources.files("quadrat.labels").joinpath("data", DEFAULT_FILE)
    with resources.as_file(resource) as file:
        return load_catami_csv(file)


def build_default(caab_csv: str | Path, out: str | Path) -> CatamiTree:
    """Regenerate the shipped table from the published v1.4 CAAB-code CSV."""
    tree = load_caab_csv(caab_csv)
    tree.write_csv(out)
    return tree


def _main(argv: Sequence[str]) -> int:
    """``python -m quadrat.labels.catami build CAAB_CSV [OUT]``."""
    if len(argv) < 2 or argv[0] != "build":
        print("usage: python -m quadrat.labels.catami build CAAB_CSV [OUT]", file=sys.stderr)
        return 2
    default_out = Path(__file__).resolve().parent / "data" / DEFAULT_FILE
    out = Path(argv[2]) if len(argv) > 2 else default_out
    tree = build_default(argv[1], out)
    print(f"wrote {len(tree)} nodes to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
