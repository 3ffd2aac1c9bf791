"""``quadrat dataset catami ...`` and ``translate`` / ``rollup``: CATAMI labels from the CLI."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from quadrat.cli._common import console, progress_bar, user_errors
from quadrat.errors import InputError

if TYPE_CHECKING:  # the CATAMI modules (and pandas) are imported when a command runs
    from quadrat.labels.catami import CatamiTree

app = typer.Typer()

catami_app = typer.Typer(
    name="catami",
    help="The CATAMI v1.4 scheme: node counts, look up a node, print the tree.",
    invoke_without_command=True,
)
app.add_typer(catami_app, name="catami")

SchemeOption = Annotated[
    Path | None,
    typer.Option(
        "--scheme",
        help="A CATAMI tree file (own CSV, CAAB CSV, tree JSON or '>' paths) "
        "instead of the shipped v1.4.",
    ),
]


class SourceKind(StrEnum):
    coralnet = "coralnet-labelset"
    squidle = "squidle"
    names = "names"


def _tree(scheme: Path | None) -> CatamiTree:
    from quadrat.labels.catami_io import default_catami, load_tree

    if scheme is None:
        return default_catami()
    tree = load_tree(scheme)
    if not len(tree):  # an empty file is a mistake, not an empty scheme to report on
        raise InputError(
            "the scheme file holds no CATAMI nodes (is it empty?)", path=scheme, param="scheme"
        )
    return tree


@catami_app.callback()
@user_errors
def catami(ctx: typer.Context, scheme: SchemeOption = None) -> None:
    """Without a sub-command: node counts per head and depth."""
    if ctx.invoked_subcommand is not None:
        return
    tree = _tree(scheme)
    counts = tree.counts()
    table = Table(title=f"CATAMI nodes ({len(tree)}) per head (rows) and depth (columns)")
    table.add_column("head")
    depths = sorted(counts["depth"].unique())
    for depth in depths:
        table.add_column(str(depth), justify="right")
    table.add_column("total", justify="right")
    for head, group in counts.groupby("head", sort=False):
        by_depth = dict(zip(group["depth"], group["nodes"], strict=True))
        cells = [str(by_depth.get(d, "")) for d in depths]
        table.add_row(str(head) or "(none)", *cells, str(group["nodes"].sum()))
    console.print(table)


@catami_app.command("show")
@user_errors
def show(
    query: Annotated[str, typer.Argument(help="CAAB code, path ('A > B' or 'A: B'), name or CPC.")],
    tree_view: Annotated[bool, typer.Option("--tree", help="Also print the subtree.")] = False,
    depth: Annotated[int, typer.Option(help="Levels of subtree to print.")] = 3,
    scheme: SchemeOption = None,
) -> None:
    """One node: code, CPC code, head, depth, ancestors and children."""
    tree = _tree(scheme)
    code = tree.find(query)
    node = tree.node(code)
    console.print(f"[bold]{node.name}[/]  caab {code}  cpc {node.cpc_code or '-'}", highlight=False)
    console.print(f"path: {tree.path_str(code)}", highlight=False)
    console.print(f"head: {tree.head(code) or '-'}   depth: {tree.depth(code)}", highlight=False)
    for ancestor in tree.ancestors(code):
        a = tree.node(ancestor)
        console.print(
            f"  ancestor {a.code}  {a.name}  (depth {tree.depth(ancestor)})", highlight=False
        )
    children = tree.children(code)
    console.print(f"children: {len(children)}", highlight=False)
    if tree_view:
        console.print(_rich_tree(tree, code, depth))
    else:
        for child in children:
            console.print(f"  {child}  {tree.node(child).name}", highlight=False)


@catami_app.command("tree")
@user_errors
def tree_command(
    query: Annotated[str | None, typer.Argument(help="Start here (default: every root).")] = None,
    depth: Annotated[int, typer.Option(help="Levels to print.")] = 2,
    scheme: SchemeOption = None,
) -> None:
    """The scheme (or a subtree) as a rich tree."""
    tree = _tree(scheme)
    starts = [tree.find(query)] if query else tree.roots
    for start in starts:
        console.print(_rich_tree(tree, start, depth))


@catami_app.command("build")
@user_errors
def build(
    caab_csv: Annotated[Path, typer.Argument(help="Published catami-caab-codes_1.4.csv.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the project's own CSV.")],
) -> None:
    """Regenerate the project's own table from the published CAAB-code CSV."""
    from quadrat.labels.catami_io import build_default

    tree = build_default(caab_csv, out)
    console.print(f"wrote {len(tree)} nodes to {out}", highlight=False)


def _rich_tree(tree: CatamiTree, code: str, depth: int) -> Tree:
    node = tree.node(code)
    root = Tree(f"[bold]{node.name}[/] [dim]{code} {node.cpc_code}[/]")
    stack = [(root, code, 0)]
    while stack:
        branch, current, level = stack.pop()
        if level >= depth:
            continue
        for child in tree.children(current):
            c = tree.node(child)
            sub = branch.add(f"{c.name} [dim]{child} {c.cpc_code}[/]")
            stack.append((sub, child, level + 1))
    return root


@app.command("translate")
@user_errors
def translate(
    labels: Annotated[
        Path, typer.Argument(help="Labelset CSV, Squidle+ export, names file or class folder.")
    ],
    source: Annotated[SourceKind, typer.Option("--format", "-f", help="What LABELS is.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Mapping CSV to write (review and edit it).")
    ],
    fuzzy_cutoff: Annotated[float, typer.Option(help="difflib ratio a fuzzy match needs.")] = 0.85,
    vocabulary: Annotated[
        Path | None,
        typer.Option(help="CSV 'term,caab_code' used instead of the shipped vocabulary."),
    ] = None,
    scheme: SchemeOption = None,
) -> None:
    """Propose a CATAMI node for every label of a source; list what stayed unmapped."""
    from quadrat.labels.translate import MATCH_KINDS, propose_mapping, unmapped
    from quadrat.labels.translate_io import read_source_labels, read_vocabulary, write_mapping

    tree = _tree(scheme)
    sources = read_source_labels(labels, source.value)
    synonyms = read_vocabulary(vocabulary) if vocabulary is not None else None
    with progress_bar() as progress:
        mapping = propose_mapping(
            sources, tree, fuzzy_cutoff=fuzzy_cutoff, synonyms=synonyms, progress=progress
        )
    write_mapping(mapping, out)
    counts = mapping["kind"].value_counts()
    console.print(f"wrote {out}", highlight=False, soft_wrap=True)
    table = Table(title=f"{len(mapping)} labels -> CATAMI")
    table.add_column("match kind")
    table.add_column("labels", justify="right")
    for kind in MATCH_KINDS:
        if kind in counts:
            table.add_row(kind, str(counts[kind]))
    console.print(table)
    missing = unmapped(mapping)
    if missing:
        shown = ", ".join(missing[:30]) + (
            f", ... ({len(missing) - 30} more)" if len(missing) > 30 else ""
        )
        console.print(f"unmapped ({len(missing)}): {shown}", highlight=False, soft_wrap=True)


@app.command("rollup")
@user_errors
def rollup(
    annotations: Annotated[
        Path, typer.Argument(help="CoralNet or Squidle+ annotation CSV, or a class folder.")
    ],
    mapping: Annotated[Path, typer.Option(help="Reviewed mapping CSV from 'translate'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Covers CSV to write.")],
    level: Annotated[
        list[int] | None,
        typer.Option("--depth", help="CATAMI depth(s) to roll up to (repeatable)."),
    ] = None,
    source: Annotated[SourceKind, typer.Option("--format", "-f", help="Annotation format.")] = (
        SourceKind.coralnet
    ),
    label_column: Annotated[str | None, typer.Option(help="Column holding labels.")] = None,
    image_column: Annotated[str | None, typer.Option(help="Column naming images.")] = None,
    scheme: SchemeOption = None,
) -> None:
    """Translate annotations, roll them up to CATAMI level(s), write cover per image."""
    from quadrat.labels.catami_io import write_frame_atomic
    from quadrat.labels.rollup import apply_mapping, covers_per_level
    from quadrat.labels.translate_io import read_annotations, read_mapping

    tree = _tree(scheme)
    levels = level or [1]
    if min(levels) < 0:
        raise InputError("a roll-up level must be 0 or more", value=min(levels))
    table_in = read_annotations(
        annotations, source.value, label_column=label_column, image_column=image_column
    )
    codes = apply_mapping(table_in["label"], read_mapping(mapping, tree))
    covers = covers_per_level(table_in["image"], codes, levels, tree)
    write_frame_atomic(covers, out)
    mapped = int((codes != "").sum())
    console.print(
        f"{len(table_in)} points on {table_in['image'].nunique()} images; "
        f"{mapped} mapped ({mapped / max(len(table_in), 1):.1%}); wrote {out}",
        highlight=False,
    )
    covers_named = covers.assign(
        node=covers["catami_path"].where(covers["caab_code"] != "", covers["name"])
    )
    overall = covers_named.groupby(["level", "node"], sort=False)["points"].sum().reset_index()
    summary = Table(title="points per CATAMI node (all images)")
    for column in ("level", "node", "points", "share"):
        summary.add_column(column, justify="right" if column != "node" else "left")
    for lvl, group in overall.groupby("level"):
        group = group.sort_values("points", ascending=False)
        for row in group.head(8).itertuples():
            summary.add_row(
                str(lvl), str(row.node), str(row.points), f"{row.points / len(table_in):.1%}"
            )
    console.print(summary)
