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

A reviewer who changes a row may set its kind to ``reviewed``;
:func:`~quadrat.labels.translate_io.read_mapping` reads only ``source_label`` and
``caab_code``. Reading sources and the mapping table is :mod:`quadrat.labels.translate_io`'s;
applying a mapping to annotations (roll-up, covers per level) is
:mod:`quadrat.labels.rollup`'s. This module is the matching alone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quadrat.errors import InputError
from quadrat.labels.catami import PARENTHETICAL, CatamiTree, name_keys, normalise_name, singular
from quadrat.labels.catami_io import default_catami
from quadrat.labels.translate_io import MAPPING_COLUMNS, SourceLabel, default_synonyms

if TYPE_CHECKING:
    import pandas as pd

MATCH_KINDS: tuple[str, ...] = (
    "normalised-path",
    "exact-name",
    "synonym",
    "fuzzy",
    "cpc-code",
    "functional-group",
    "unmapped",
)

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
# Looser than catami.split_path on purpose: source labels also join levels with ';' and
# ':' without a space ('SI:kelp'), which CATAMI names never contain.
_SOURCE_SPLIT = re.compile(r"\s+>\s+|\s*[:;]\s*")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


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
            singular(normalise_name(term)): code
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
        wanted = [
            singular(normalise_name(PARENTHETICAL.sub(" ", p))) or normalise_name(p) for p in parts
        ]
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
        bare = PARENTHETICAL.sub(" ", text)
        inside = " ".join(PARENTHETICAL.findall(text)).strip("() ")
        for whole_text in dict.fromkeys((text, bare, inside)):
            whole = singular(" ".join(tokens(whole_text)))
            if whole in self.synonyms:
                code = self._refine(self.synonyms[whole], colour)
                return code, 0.9, f"vocabulary term {whole!r}"
        words = tokens(bare) or tokens(text)
        hits: list[tuple[str, str]] = []
        index = 0
        while index < len(words):
            two = singular(" ".join(words[index : index + 2]))
            one = singular(words[index])
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
        key = singular(normalise_name(PARENTHETICAL.sub(" ", text)))
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
    import pandas as pd

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


__all__ = [
    "COLOURS",
    "FUNCTIONAL_GROUPS",
    "MATCH_KINDS",
    "Matcher",
    "Proposal",
    "propose_mapping",
    "tokens",
    "unmapped",
]
