"""Every `assay` command and subcommand shows at least one example in its `--help`, and
each example names the command itself and only options it has."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from assay.recipes.cli import main


def _tree(
    command: click.Command, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            found += _tree(sub, (*path, name))
    return found


COMMANDS = _tree(main, ())


def _examples(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith("assay ")]


def test_the_tree_holds_every_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "steps show", "data get", "audit model", "ls review", "cache prune"} <= names
    assert len(names) >= 29


@pytest.mark.parametrize(
    "path, command", COMMANDS, ids=[" ".join(p) or "assay" for p, _ in COMMANDS]
)
def test_help_shows_an_example_of_the_command(path, command):
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="assay")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    examples = _examples(result.output.split("Example", 1)[1])
    prefix = " ".join(("assay", *path))
    assert examples and all(e.startswith(prefix) for e in examples), examples
    for example in examples:
        _check_options(example)


def _check_options(example: str) -> None:
    """Each option in the example belongs to the command it reaches."""
    words = shlex.split(example)[1:]
    command: click.Command = main
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    assert not isinstance(command, click.Group) or not words, example
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for word in words:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in known, f"{example}: {word} is not an option"
