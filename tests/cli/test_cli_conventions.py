"""The CLI's conventions (docs/cli.md): one spelling per idea, flags as flags, exit statuses,
a light start-up (what ``--help`` imports, not how long it takes: that is
``benchmarks/cli_startup.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperGroup
from typer.testing import CliRunner

import quadrat
from quadrat.cli import _accept_deprecated, app
from quadrat.cli._common import (
    EXIT_LIMIT,
    EXIT_NOT_FOUND,
    EXIT_NOTHING_TO_DO,
    EXIT_USAGE,
    flag_for,
    nothing_to_do,
    user_errors,
)
from quadrat.errors import InputError, LimitError

runner = CliRunner()

#: Modules that ``import quadrat.cli`` and any ``--help`` must not load.
HEAVY = (
    "torch",
    "timm",
    "sklearn",
    "scipy",
    "matplotlib",
    "pandas",
    "sqlalchemy",
    "lightning",
    "openvino",
    "ray",
)


def commands(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every (sub)command below the root, as ("dataset catami show", click command)."""
    command = command or typer.main.get_command(app)
    if path:
        yield " ".join(path), command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))


def options(command: Any) -> list[Any]:
    return [p for p in command.params if not isinstance(p, TyperArgument) and p.name != "help"]


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


HELP_SCRIPT = """
import json, sys
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner
import quadrat.cli

def walk(command, path):
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from walk(sub, path + [name])

runner = CliRunner()
codes = {}
for path in walk(typer.main.get_command(quadrat.cli.app), []):
    result = runner.invoke(quadrat.cli.app, [*path, "--help"])
    codes[" ".join(path)] = result.exit_code
codes["--version"] = runner.invoke(quadrat.cli.app, ["--version"]).exit_code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_of_every_command_imports_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, *HEAVY],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["codes"]) > 15, report
    assert all(code == 0 for code in report["codes"].values()), report["codes"]
    assert report["heavy"] == [], "imported by --help: " + ", ".join(report["heavy"])


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"quadrat {quadrat.__version__}"


def test_unknown_option_is_a_usage_error() -> None:
    result = invoke("report", "--no-such-option")
    assert result.exit_code == EXIT_USAGE
    assert "--no-such-option" in result.output


def test_missing_project_exits_4(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = invoke("report", "-p", str(missing))
    assert result.exit_code == EXIT_NOT_FOUND, result.output
    assert "error:" in result.output and "nope.db" in result.output
    assert "Traceback" not in result.output
    assert not missing.exists()  # opening never creates


def test_init_takes_the_project_as_p(tmp_path: Path) -> None:
    db = tmp_path / "survey.db"
    result = invoke("init", "-p", str(db), "-s", "reef")
    assert result.exit_code == 0, result.output
    assert db.exists()
    result = invoke("init", "--project", str(db), "--source", "lagoon")
    assert result.exit_code == 0, result.output
    with quadrat.Project.open(db) as project:
        assert sorted(s.name for s in project.sources) == ["lagoon", "reef"]


def test_error_names_the_flag_of_its_parameter() -> None:
    demo = typer.Typer()

    @demo.command()
    @user_errors
    def score(min_score: float = 0.5, limit: bool = False) -> None:
        if limit:
            raise LimitError("too many rows (limit 10)", param="max_rows")
        raise InputError(f"min_score must be in [0, 1], not {min_score}", param="min_score")

    @demo.command()
    @user_errors
    def idle(allow_nothing: bool = False) -> None:
        nothing_to_do("no new images", allow=allow_nothing)

    result = runner.invoke(demo, ["score", "--min-score", "2"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert text.startswith("error: min_score must be in [0, 1], not 2.0 (see --min-score)")
    result = runner.invoke(demo, ["score", "--limit"])
    assert result.exit_code == EXIT_LIMIT
    assert "(see" not in result.output  # no --max-rows here: no hint rather than a wrong one
    result = runner.invoke(demo, ["idle"])
    assert result.exit_code == EXIT_NOTHING_TO_DO and "no new images" in result.output
    assert runner.invoke(demo, ["idle", "--allow-nothing"]).exit_code == 0
    assert flag_for("force") == "--force"
    assert flag_for("project") == "--project/-p"
    assert flag_for("random_weights") == "--random-weights"


def test_library_errors_point_at_the_flag_the_user_typed(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    assert invoke("init", "-p", db).exit_code == 0
    for args in (["classify", "--threshold", "2"], ["init", "-s", "b", "--threshold", "1.5"]):
        result = invoke(*args, "-p", db)
        assert result.exit_code == 1, result.output
        assert "(see --threshold)" in " ".join(result.output.split())


@pytest.mark.parametrize("path", [path for path, _ in commands()])
def test_help_shows_flags_as_flags(path: str) -> None:
    result = invoke(*path.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output


def test_no_help_text_is_lost_to_rich_markup() -> None:
    """Rich reads ``[default: 100]`` or ``[bold]`` in a help text as markup and drops it
    (the help then says "Images in one request ."); write defaults in parentheses."""
    import re

    markup = re.compile(r"\[/?[a-z][^\]]*\]")
    found = [
        f"{path} {option.opts[0]}: {option.help}"
        for path, command in commands()
        for option in options(command)
        if option.help and markup.search(option.help)
    ]
    assert found == []


def test_help_shows_a_flag_without_a_value() -> None:
    result = invoke("train", "--help")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "--force" in line)
    assert "--no-force" not in line and "<" not in line


def test_every_command_turns_errors_into_exit_statuses() -> None:
    unwrapped = [
        path
        for path, command in commands()
        if command.callback is not None
        and not getattr(command.callback, "__quadrat_user_errors__", False)
    ]
    assert unwrapped == []


def test_one_spelling_per_idea() -> None:
    """The conventions of docs/cli.md, command by command."""
    problems = []
    for path, command in commands():
        for option in options(command):
            opts = set(option.opts)
            for long, short in (("--project", "-p"), ("--source", "-s"), ("--out", "-o")):
                if long in opts and short not in opts:
                    problems.append(f"{path}: {long} without {short}")
            if opts & {"--from", "--output", "--threads-decode", "--outdir"}:
                problems.append(f"{path}: {sorted(opts)} (see docs/cli.md)")
            if option.is_flag and not option.default and option.secondary_opts:
                problems.append(f"{path}: {option.opts[0]} off by default needs no --no- form")
            if option.name == "strict" and not option.is_flag:
                problems.append(f"{path}: --strict is a flag (fail on the first problem)")
        for argument in command.params:
            output = argument.name in ("out", "table_out", "output", "path")
            if isinstance(argument, TyperArgument) and output and not argument.hidden:
                problems.append(f"{path}: the output is -o/--out, not an argument")
        if path == "init" and not any("--project" in o.opts for o in options(command)):
            problems.append("init: takes the project as -p/--project")
    assert problems == []


def test_old_spellings_still_work(tmp_path: Path) -> None:
    pretrain = dict(commands())["pretrain"]
    args = ["--data", "shards", "--kind=folder", "--accelerator", "cpu", "--", "--kind"]
    assert _accept_deprecated("pretrain", pretrain, args) == [
        "shards",
        "--format=folder",
        "--device",
        "cpu",
        "--",
        "--kind",
    ]
    # a spelling the command still has is left alone
    assert _accept_deprecated("pretrain", pretrain, ["--out", "x"]) == ["--out", "x"]
    # a flag that restated the default is dropped
    train = dict(commands())["train"]
    assert _accept_deprecated("train", train, ["--no-force", "-p", "x"]) == ["-p", "x"]
    db = tmp_path / "old.db"
    result = invoke("init", str(db))
    assert result.exit_code == 0, result.output
    assert db.exists()
