"""The CATAMI classification scheme as a tree: lookups, ancestry, heads, depth, roll-up.

CATAMI (Collaborative and Annotation Tools for Analysis of Marine Imagery, v1.4) is the
shared vocabulary that Australian surveys, Squidle+ and BenthicNet label seafloor imagery
with. Every node has a CAAB code (an 8-digit id), a short name ("Brown"), a parent and a
CPC code. The project ships v1.4 as ``data/catami_v1.4.csv`` (columns ``caab_code, name,
parent_caab_code, cpc_code, head, path``), built from the published CAAB-code CSV by
``python -m quadrat.labels.catami_io build CAAB_CSV``. Reading and writing the published
forms (and :func:`~quadrat.labels.catami_io.default_catami`) is
:mod:`quadrat.labels.catami_io`'s; this module is the tree and the name rules only, and
imports pandas only when a table is asked for.

Heads: the four independent label spaces BenthicNet trains one probe head for (``biota``,
``substrate``, ``relief``, ``bedforms``). A node's head is the nearest ancestor-or-self
named after a head (or, in BenthicNet's path lists, the ``[HEAD]`` tag of its root).
Depth counts from the head's root (``Biota`` = 0, ``Macroalgae`` = 1); a node outside
every head (``Physical``) counts from its tree root.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quadrat.errors import InputError, UnknownNodeError

if TYPE_CHECKING:  # pandas is imported when a table is asked for
    import pandas as pd

HEADS: tuple[str, ...] = ("biota", "substrate", "relief", "bedforms")
PATH_SEPARATOR = " > "
#: Columns of the project's own table (:meth:`CatamiTree.to_frame`).
OWN_COLUMNS = ("caab_code", "name", "parent_caab_code", "cpc_code", "head", "path")

_TAG = re.compile(r"^\[(?P<head>[^\]]+)\]$")
PARENTHETICAL = re.compile(r"\([^)]*\)")
# '>' separates only with spaces around it: 'Waves (>10cm height)' is one name.
_LINEAGE_SPLIT = re.compile(r"\s+>\s+")
_PATH_SPLIT = re.compile(r"\s+>\s+|:\s+")


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


def split_path(path: str, *, display_names: bool = True) -> list[str]:
    """Segments of a ' > '-joined lineage (Squidle+, BenthicNet path lists), empty ones
    dropped; with ``display_names`` also of CATAMI's ': '-joined display names.

    The one home of path splitting: '>' separates only with spaces around it, so a name
    such as 'Waves (>10cm height)' stays whole; a trailing comma (BenthicNet's rows) is
    ignored.

    >>> split_path("Physical > Bedforms > 2D > Waves (>10cm height),")
    ['Physical', 'Bedforms', '2D', 'Waves (>10cm height)']
    >>> split_path("Macroalgae: Encrusting"), split_path("A: B", display_names=False)
    (['Macroalgae', 'Encrusting'], ['A: B'])
    """
    text = str(path).strip().rstrip(",").strip()
    pattern = _PATH_SPLIT if display_names else _LINEAGE_SPLIT
    return [part.strip() for part in pattern.split(text) if part.strip()]


def normalise_code(value: object) -> str:
    """A CAAB code as 8 digits (spreadsheets drop leading zeros and add '.0');
    non-numeric codes (a path list's paths) are returned stripped.

    >>> normalise_code("8030929.0"), normalise_code(" 80300929 ")
    ('08030929', '80300929')
    """
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return text.zfill(8) if text.isdigit() else text


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
    return {singular(key) for key in keys if key}


def singular(text: str) -> str:
    """Each word of more than three letters without a plural 's' ('boulders' -> 'boulder')."""
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
        """The project's own format: one row per node, parents before children
        (written by :func:`quadrat.labels.catami_io.write_catami_csv`)."""
        import pandas as pd

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

    def counts(self) -> pd.DataFrame:
        """Node counts per head and depth (head roots included at depth 0)."""
        import pandas as pd

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


__all__ = [
    "HEADS",
    "OWN_COLUMNS",
    "PARENTHETICAL",
    "PATH_SEPARATOR",
    "CatamiNode",
    "CatamiTree",
    "name_keys",
    "normalise_code",
    "normalise_name",
    "singular",
    "split_path",
]
