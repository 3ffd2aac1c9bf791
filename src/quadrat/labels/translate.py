"""Label translation: a source's labels to CATAMI nodes, as a CSV a person reviews.

Every source names its classes its own way (CoralNet short codes and free names, Squidle+
lineage paths, folder names). :func:`propose_mapping` suggests one CATAMI node per label
and says how it found it (``kind``) and how sure it is (``score``, 0-1); the table is
written as a plain CSV that a person edits (change ``caab_code``, clear it to drop a
label) and read back with :func:`read_mapping`, which checks every code against the tree.

Match kinds, tried in this order (the first that finds a unique node wins):

``normalised-path``  '>'/':'-joined path, case/plural-insensitive; a path deeper than the
                     tree maps to its deepest known ancestor (score = matched share).
``exact-name``       the name equals one node's name (1.0) or a form of it without its
                     parenthetical, singular, or one side of a 'a / b' name (0.95).
``synonym``          the whole name, or its last word that is known, is in the shipped
                     vocabulary of benthic terms (``data/catami_synonyms.csv``); colour
                     words or prefixes (red/RE, green/GR, brown/BR) refine to that child.
``fuzzy``            difflib similarity to a node name that starts with the same two
                     letters, >= the cutoff (score = ratio).
``cpc-code``         the short code equals a CPC code (0.6); when the source gives a
                     functional group, only if the node lies on that group's lineage,
                     because CoralNet short codes are not CPC codes ('MA' is Montastraea).
``functional-group`` CoralNet's functional group (0.5: coarse, e.g. Hard coral -> Stony).
``unmapped``         nothing fitted; listed for a person to decide.

A reviewer who changes a row may set its kind to ``reviewed``; :func:`read_mapping` reads
only ``source_label`` and ``caab_code``.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from quadrat.errors import CsvFormatError, InputError
from quadrat.io.csv import read_csv_frame
from quadrat.labels.catami import (
    PARENTHETICAL as _PAREN,
)
from quadrat.labels.catami import (
    CatamiTree,
    _code,
    _singular,
    default_catami,
    name_keys,
    normalise_name,
    write_frame_atomic,
)

MATCH_KINDS: tuple[str, ...] = (
    "normalised-path",
    "exact-name",
    "synonym",
    "fuzzy",
    "cpc-code",
    "functional-group",
    "unmapped",
)
SOURCE_KINDS: tuple[str, ...] = ("coralnet-labelset", "squidle", "names")
MAPPING_COLUMNS: tuple[str, ...] = (
    "source_label",
    "source_name",
    "caab_code",
    "catami_path",
    "kind",
    "score",
    "note",
)
UNMAPPED = "(unmapped)"

#: CoralNet functional groups -> the CATAMI node they all sit under.
FUNCTIONAL_GROUPS: dict[str, str] = {
    "hard coral": "11290000",
    "algae": "80300000",
    "seagrass": "63600901",
    "soft substrate": "82001005",
    "hard substrate": "82001001",
    "other invertebrates": "80000000",
}
#: Colour words and the abbreviations survey codes use for them.
COLOURS: dict[str, str] = {
    "red": "red",
    "re": "red",
    "rhodophyta": "red",
    "green": "green",
    "gr": "green",
    "chlorophyta": "green",
    "brown": "brown",
    "br": "brown",
    "phaeophyta": "brown",
}
_SOURCE_SPLIT = re.compile(r"\s+>\s+|\s*[:;]\s*")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


@dataclass(frozen=True)
class SourceLabel:
    """One label of a source: the key annotations use, plus what helps to match it."""

    label: str
    name: str = ""
    group: str = ""

    @property
    def texts(self) -> list[str]:
        return [text for text in dict.fromkeys((self.name, self.label)) if text]


@dataclass(frozen=True)
class Proposal:
    """A suggested CATAMI node for one source label ('' when unmapped)."""

    source: SourceLabel
    code: str
    kind: str
    score: float
    note: str = ""


def tokens(text: str) -> list[str]:
    """Lower-case words of a label, splitting snake_case, camelCase and punctuation."""
    spaced = _CAMEL.sub(" ", str(text))
    return [t for t in re.split(r"[^a-z0-9]+", spaced.casefold()) if t]


class Matcher:
    """Indexes of one tree (names, aliases, CPC codes, vocabulary) built once, reused."""

    def __init__(self, tree: CatamiTree, synonyms: dict[str, str] | None = None) -> None:
        self.tree = tree
        self.synonyms = {
            _singular(normalise_name(term)): code
            for term, code in (default_synonyms() if synonyms is None else synonyms).items()
            if code in tree
        }
        self.exact: dict[str, set[str]] = {}
        self.alias: dict[str, set[str]] = {}
        self.keys: dict[str, set[str]] = {}
        for node in tree:
            keys = name_keys(node.name)
            self.keys[node.code] = keys
            self.exact.setdefault(normalise_name(node.name), set()).add(node.code)
            for key in keys:
                self.alias.setdefault(key, set()).add(node.code)
        self._fuzzy_choices: dict[str, list[str]] = {}
        for key in sorted(k for k, codes in self.alias.items() if len(codes) == 1):
            self._fuzzy_choices.setdefault(key[:2], []).append(key)

    # -- the kinds ----------------------------------------------------------------------
    def by_path(self, text: str) -> tuple[str, float, str] | None:
        parts = _source_segments(text)
        if len(parts) < 2 and not (len(parts) == 1 and ">" in text):
            return None
        for keep in range(len(parts), 0, -1):
            found = self._path_suffix(parts[:keep])
            if found is None:
                continue
            if keep < len(parts) and keep == 1 and self.tree.depth(found) == 0:
                return None  # only a head matched: no information, let other kinds try
            note = "" if keep == len(parts) else f"deepest known ancestor of {text!r}"
            return found, keep / len(parts), note
        return None

    def _path_suffix(self, parts: Sequence[str]) -> str | None:
        """The unique node whose path ends with ``parts`` (alias-insensitive)."""
        wanted = [_singular(normalise_name(_PAREN.sub(" ", p))) or normalise_name(p) for p in parts]
        candidates = self.alias.get(wanted[-1], set()) | self.exact.get(
            normalise_name(parts[-1]), set()
        )
        hits = []
        for code in candidates:
            lineage = [*self.tree.ancestors(code), code]
            if len(lineage) < len(parts):
                continue
            tail = lineage[len(lineage) - len(parts) :]
            if all(
                w in self.keys[c] or w == normalise_name(self.tree.node(c).name)
                for w, c in zip(wanted, tail, strict=True)
            ):
                hits.append(code)
        return hits[0] if len(hits) == 1 else None

    def by_name(self, text: str) -> tuple[str, float] | None:
        exact = self.exact.get(normalise_name(text), set())
        if len(exact) == 1:
            return next(iter(exact)), 1.0
        if exact:
            return None
        for key in name_keys(text):
            codes = self.alias.get(key, set())
            if len(codes) == 1:
                return next(iter(codes)), 0.95
        return None

    def by_cpc(self, code: str) -> str | None:
        hits = [c for c in self.tree.by_cpc(code) if self.tree.node(c).cpc_code == code.strip()]
        return hits[0] if len(hits) == 1 else None

    def by_synonym(self, text: str) -> tuple[str, float, str] | None:
        colour = next((COLOURS[w] for w in tokens(text) if w in COLOURS), None)
        bare = _PAREN.sub(" ", text)
        inside = " ".join(_PAREN.findall(text)).strip("() ")
        for whole_text in dict.fromkeys((text, bare, inside)):
            whole = _singular(" ".join(tokens(whole_text)))
            if whole in self.synonyms:
                code = self._refine(self.synonyms[whole], colour)
                return code, 0.9, f"vocabulary term {whole!r}"
        words = tokens(bare) or tokens(text)
        hits: list[tuple[str, str]] = []
        index = 0
        while index < len(words):
            two = _singular(" ".join(words[index : index + 2]))
            one = _singular(words[index])
            if index + 1 < len(words) and two in self.synonyms:
                hits.append((self.synonyms[two], two))
                index += 2
                continue
            term = one if one in self.synonyms else self._vocabulary_prefix(one)
            if term is not None:
                hits.append((self.synonyms[term], term))
            index += 1
        if not hits:
            return None
        code, term = self._combine(hits)
        return self._refine(code, colour), 0.7, f"vocabulary term {term!r} in {text!r}"

    def _combine(self, hits: list[tuple[str, str]]) -> tuple[str, str]:
        """Nested hits ('turf algae'): the deepest; unrelated ones: the last word wins,
        since English puts the head noun last ('kelp bryozoan' is a bryozoan)."""
        best = hits[-1]
        for code, term in hits:
            lineage = [*self.tree.ancestors(code), code]
            if best[0] in lineage and len(lineage) > len(self.tree.ancestors(best[0])) + 1:
                best = (code, term)
        return best

    def _vocabulary_prefix(self, word: str) -> str | None:
        """Survey codes truncate words ('bould', 'cob'): a unique vocabulary term it starts."""
        if len(word) < 3 or word in COLOURS:
            return None
        terms = {t for t in self.synonyms if t.startswith(word) and " " not in t}
        codes = {self.synonyms[t] for t in terms}
        return min(terms) if len(codes) == 1 else None

    def _refine(self, code: str, colour: str | None) -> str:
        if colour is None:
            return code
        for child in self.tree.children(code):
            if normalise_name(self.tree.node(child).name) == colour:
                return child
        return code

    def _related(self, code: str, other: str | None) -> bool:
        """One node lies on the other's lineage (a CPC hit agrees with the group)."""
        if other is None or other not in self.tree or self.tree.depth(other) == 0:
            return False  # 'Other Invertebrates' -> Biota vouches for nothing
        return other in [*self.tree.ancestors(code), code] or code in self.tree.ancestors(other)

    def by_fuzzy(self, text: str, cutoff: float) -> tuple[str, float] | None:
        key = _singular(normalise_name(_PAREN.sub(" ", text)))
        if len(key) < 4:
            return None
        # only names that start like the label: 'Microalgae' is no 'Macroalgae', 'Reel' no 'Eel'
        choices = self._fuzzy_choices.get(key[:2], [])
        best = difflib.get_close_matches(key, choices, n=1, cutoff=cutoff)
        if not best:
            return None
        ratio = difflib.SequenceMatcher(None, key, best[0]).ratio()
        return next(iter(self.alias[best[0]])), round(ratio, 3)

    # -- one label ----------------------------------------------------------------------
    def propose(self, source: SourceLabel, *, fuzzy_cutoff: float = 0.85) -> Proposal:
        """The first kind (in :data:`MATCH_KINDS` order) that finds one node.

        Paths are looked for in every text; names only in the name (a short code such as
        CoralNet's 'Soft' is no name), and only in its last segment when it is a path whose
        deeper part did not resolve ('[SUBSTRATE] > Water column' is not 'Substrate');
        codes only in the label.
        """
        for text in source.texts:
            found = self.by_path(text)
            if found is not None:
                return Proposal(source, found[0], "normalised-path", round(found[1], 3), found[2])
        segments = _source_segments(source.name or source.label)
        text = segments[-1] if segments else source.name or source.label
        named = self.by_name(text)
        if named is not None:
            return Proposal(source, named[0], "exact-name", named[1])
        synonym = self.by_synonym(text)
        if synonym is not None:
            return Proposal(source, synonym[0], "synonym", synonym[1], synonym[2])
        fuzzy = self.by_fuzzy(text, fuzzy_cutoff)
        if fuzzy is not None:
            return Proposal(source, fuzzy[0], "fuzzy", fuzzy[1])
        group = FUNCTIONAL_GROUPS.get(normalise_name(source.group))
        cpc = self.by_cpc(source.label)
        if cpc is not None and (not source.group or self._related(cpc, group)):
            return Proposal(source, cpc, "cpc-code", 0.6, "short code equals the CPC code")
        if group is not None and group in self.tree:
            return Proposal(source, group, "functional-group", 0.5, f"group {source.group!r}")
        return Proposal(source, "", "unmapped", 0.0)


def _source_segments(text: str) -> list[str]:
    """Path segments of a source label; a '[HEAD]' tag becomes the head's name."""
    parts = [p.strip() for p in _SOURCE_SPLIT.split(str(text).strip().rstrip(",")) if p.strip()]
    if parts and parts[0].startswith("[") and parts[0].endswith("]"):
        head = parts[0][1:-1].strip()
        parts = (
            parts[1:]
            if len(parts) > 1 and normalise_name(parts[1]) == normalise_name(head)
            else [head, *parts[1:]]
        )
    return parts


@cache
def default_synonyms() -> dict[str, str]:
    """The shipped vocabulary: benthic terms and genera -> CAAB code."""
    resource = resources.files("quadrat.labels").joinpath("data", "catami_synonyms.csv")
    with resources.as_file(resource) as file:
        return read_vocabulary(file)


def read_vocabulary(path: str | Path) -> dict[str, str]:
    """A vocabulary CSV (``term, caab_code[, note]``): a survey's own words for CATAMI nodes."""
    path = Path(path)
    frame = read_csv_frame(path)
    for column in ("term", "caab_code"):
        if column not in frame.columns:
            raise CsvFormatError(f"missing column {column!r}", path=path)
    return {row.term: _code(row.caab_code) for row in frame.itertuples() if row.term}


def propose_mapping(
    labels: Iterable[SourceLabel | str],
    tree: CatamiTree | None = None,
    *,
    fuzzy_cutoff: float = 0.85,
    synonyms: dict[str, str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> pd.DataFrame:
    """One proposal per distinct label, as the mapping table (see :data:`MAPPING_COLUMNS`).

    ``synonyms`` (term -> CAAB code) replaces the shipped vocabulary; terms whose code is
    not in the tree are ignored.
    """
    if not 0.0 <= fuzzy_cutoff <= 1.0:
        raise InputError("the fuzzy cutoff is a similarity ratio in [0, 1]", value=fuzzy_cutoff)
    tree = tree or default_catami()
    matcher = Matcher(tree, synonyms)
    sources = [s if isinstance(s, SourceLabel) else SourceLabel(str(s)) for s in labels]
    sources = list({s.label: s for s in sources}.values())
    rows = []
    for number, source in enumerate(sources, start=1):
        proposal = matcher.propose(source, fuzzy_cutoff=fuzzy_cutoff)
        rows.append(
            {
                "source_label": source.label,
                "source_name": source.name,
                "caab_code": proposal.code,
                "catami_path": tree.path_str(proposal.code) if proposal.code else "",
                "kind": proposal.kind,
                "score": proposal.score,
                "note": proposal.note,
            }
        )
        if progress is not None and (number % 200 == 0 or number == len(sources)):
            progress("matching labels", number, len(sources))
    return pd.DataFrame(rows, columns=list(MAPPING_COLUMNS))


def unmapped(mapping: pd.DataFrame) -> list[str]:
    """Source labels the table leaves without a CATAMI node."""
    return mapping.loc[mapping["caab_code"].fillna("") == "", "source_label"].tolist()


# -- reading sources -----------------------------------------------------------------
def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """'Short Code', 'Short_Code', 'short code' -> 'short_code' (CoralNet uses all three)."""
    return {re.sub(r"[\s_]+", "_", str(c).strip().casefold()): c for c in frame.columns}


def read_source_labels(path: str | Path, kind: str) -> list[SourceLabel]:
    """Labels of a source: a CoralNet labelset, a Squidle+ export, or plain names.

    ``names`` reads one name a line, or a folder's sub-folder names (class folders).
    """
    path = Path(path)
    if kind not in SOURCE_KINDS:
        raise InputError(f"unknown source kind (choose {', '.join(SOURCE_KINDS)})", value=kind)
    if kind == "names":
        if path.is_dir():
            return [SourceLabel(p.name) for p in sorted(path.iterdir()) if p.is_dir()]
        if path.suffix.lower() == ".csv":  # first column under a header; stray commas ok
            rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))[1:]
            return [SourceLabel(row[0].strip()) for row in rows if row and row[0].strip()]
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return [SourceLabel(line.strip()) for line in lines if line.strip()]
    frame = read_csv_frame(path)
    cols = _columns(frame)
    if kind == "coralnet-labelset":
        need = ("short_code", "name")
        if any(c not in cols for c in need):
            raise CsvFormatError(
                "a CoralNet labelset needs 'Short Code' and 'Name' columns "
                f"(found: {', '.join(map(str, frame.columns))})",
                path=path,
            )
        group = cols.get("functional_group")
        return [
            SourceLabel(
                str(row[cols["short_code"]]).strip(),
                str(row[cols["name"]]).strip(),
                str(row[group]).strip() if group else "",
            )
            for _, row in frame.iterrows()
            if str(row[cols["short_code"]]).strip()
        ]
    lineage = cols.get("label.lineage_names")
    if lineage is None:
        raise CsvFormatError("a Squidle+ export needs a 'label.lineage_names' column", path=path)
    names = frame[cols["label.name"]] if "label.name" in cols else frame[lineage]
    pairs = dict(zip(frame[lineage], names, strict=True))
    return [SourceLabel(str(k).strip(), str(v).strip()) for k, v in pairs.items() if str(k)]


# -- the reviewed table --------------------------------------------------------------
def write_mapping(mapping: pd.DataFrame, path: str | Path) -> Path:
    """Write the table atomically (a reviewer's file is never half-written)."""
    return write_frame_atomic(mapping[list(MAPPING_COLUMNS)], path)


def read_mapping(path: str | Path, tree: CatamiTree | None = None) -> dict[str, str]:
    """A reviewed table -> {source label: CAAB code}; rows with no code are left out.

    Every code must name a node of the tree and every label appear once; the error names
    the line.
    """
    tree = tree or default_catami()
    path = Path(path)
    frame = read_csv_frame(path)
    for column in ("source_label", "caab_code"):
        if column not in frame.columns:
            raise CsvFormatError(f"missing column {column!r}", path=path)
    out: dict[str, str] = {}
    seen: set[str] = set()
    for index, row in frame.iterrows():
        line = int(str(index)) + 2
        label = row["source_label"]
        if label in seen:
            raise CsvFormatError("source label listed twice", path=path, line=line, value=label)
        seen.add(label)
        code = _code(row["caab_code"])
        if not code:
            continue
        if code not in tree:
            raise CsvFormatError(
                f"caab_code {code!r} (for {label!r}) is not a node of the CATAMI tree",
                path=path,
                line=line,
                value=code,
            )
        out[label] = code
    return out


def shipped_mapping(name: str, tree: CatamiTree | None = None) -> dict[str, str]:
    """A reviewed mapping shipped with quadrat (``data/<name>_catami.csv``).

    ``seattle_rov``: the 25 class folders of the Seattle ROV patches, proposed by
    :func:`propose_mapping` and then reviewed by hand (``kind`` 'reviewed' marks the edits).
    """
    resource = resources.files("quadrat.labels").joinpath("data", f"{name}_catami.csv")
    if not resource.is_file():
        raise InputError(f"no shipped mapping named {name!r}", value=name)
    with resources.as_file(resource) as file:
        return read_mapping(file, tree)


# -- annotations ---------------------------------------------------------------------
def apply_mapping(labels: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """CAAB code per annotation ('' where the label is unmapped)."""
    return labels.astype(str).map(mapping).fillna("")


def roll_up_codes(codes: pd.Series, level: int, tree: CatamiTree | None = None) -> pd.Series:
    """Each code's ancestor at ``level`` (head-relative); '' stays ''."""
    tree = tree or default_catami()
    cache_: dict[str, str] = {}
    for code in codes.unique():
        cache_[code] = tree.roll_up(code, level) if code else ""
    return codes.map(cache_)


def covers_per_level(
    images: pd.Series,
    codes: pd.Series,
    levels: Sequence[int],
    tree: CatamiTree | None = None,
) -> pd.DataFrame:
    """Point cover per image, head and CATAMI level.

    A point whose node is shallower than a level is counted at its own node (it cannot be
    refined); unmapped points count as ``(unmapped)`` so each image's covers sum to 1.
    """
    tree = tree or default_catami()
    frame = pd.DataFrame({"image": images.astype(str).to_numpy(), "code": codes.to_numpy()})
    totals = frame.groupby("image").size().rename("image_points")
    parts = []
    for level in levels:
        rolled = frame.assign(level=level, caab_code=roll_up_codes(frame["code"], level, tree))
        parts.append(rolled.groupby(["image", "level", "caab_code"]).size().rename("points"))
    table = pd.concat(parts).reset_index().join(totals, on="image")
    table["cover"] = table["points"] / table["image_points"]
    names = {
        c: (tree.node(c).name, tree.path_str(c), tree.head(c) or "")
        for c in table["caab_code"].unique()
        if c
    }
    table["head"] = table["caab_code"].map(lambda c: names[c][2] if c else "")
    table["name"] = table["caab_code"].map(lambda c: names[c][0] if c else UNMAPPED)
    table["catami_path"] = table["caab_code"].map(lambda c: names[c][1] if c else "")
    columns = ["image", "level", "head", "caab_code", "name", "catami_path", "points", "cover"]
    return table[columns].sort_values(["image", "level", "points"], ascending=[True, True, False])


def read_annotations(
    path: str | Path,
    kind: str,
    *,
    label_column: str | None = None,
    image_column: str | None = None,
) -> pd.DataFrame:
    """(image, label) per point from a CoralNet export, a Squidle+ export or class folders."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return pd.DataFrame(
            {
                "image": [str(p.relative_to(path)) for p in files],
                "label": [p.parent.name for p in files],
            }
        )
    defaults = {
        "coralnet-labelset": ("Label", "Name"),
        "squidle": ("label.lineage_names", "point.media.key"),
        "names": ("label", "image"),
    }
    if kind not in defaults:
        raise InputError(f"unknown source kind (choose {', '.join(defaults)})", value=kind)
    label_col = label_column or defaults[kind][0]
    image_col = image_column or defaults[kind][1]
    frame = read_csv_frame(path)
    for column in (label_col, image_col):
        if column not in frame.columns:
            raise CsvFormatError(
                f"no column {column!r} (found: {', '.join(map(str, frame.columns))}); "
                "name it with --label-column / --image-column",
                path=path,
            )
    return pd.DataFrame({"image": frame[image_col], "label": frame[label_col]})
