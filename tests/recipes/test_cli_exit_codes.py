"""The exit codes of `assay`, run as real commands: 0 success, 1 the work failed, 2 what was
given is wrong (usage, recipe, input data), as `assay --help` and docs/cli.md say."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from assay import errors
from assay.recipes.cli import main

ROWS = "\n".join(f"row number {i} of the table,{'ab'[i % 2]}" for i in range(20))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _recipe(tmp_path, body: str):
    path = tmp_path / "r.yaml"
    path.write_text(body)
    return path


def _data(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + ROWS + "\n")
    return path


def _one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_success_exits_0(runner, tmp_path):
    recipe = _recipe(tmp_path, f"input: {{source: {_data(tmp_path)}}}\nsteps: [clean, split]\n")
    result = runner.invoke(main, ["validate", str(recipe)])
    assert result.exit_code == 0 and result.output.startswith(f"ok: {recipe} (2 steps")
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", str(recipe), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "report.html")


def test_a_broken_yaml_recipe_exits_2(runner, tmp_path):
    recipe = _recipe(tmp_path, "name: x\nsteps: [\n  - clean\n")
    for command in ("validate", "run"):
        result = runner.invoke(main, [command, str(recipe)])
        assert result.exit_code == 2
        assert "broken YAML at line 3" in _one_error_line(result)


def test_an_unknown_step_in_a_recipe_exits_2(runner, tmp_path):
    recipe = _recipe(tmp_path, f"input: {{source: {_data(tmp_path)}}}\nsteps: [claen]\n")
    result = runner.invoke(main, ["validate", str(recipe)])
    assert result.exit_code == 2 and "did you mean 'clean'" in _one_error_line(result)


def test_a_missing_input_file_exits_2(runner, tmp_path):
    # named in a recipe: assay's InputError
    recipe = _recipe(tmp_path, f"input: {{source: {tmp_path / 'gone.csv'}}}\n")
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2
    assert "input file" in _one_error_line(result) and "gone.csv' does not exist" in result.output
    assert not (tmp_path / "run").exists()
    # named on the command line: click's check of the path
    result = runner.invoke(main, ["train", str(tmp_path / "gone.parquet")])
    assert result.exit_code == 2 and "gone.parquet' does not exist" in result.output
    # a missing recipe
    result = runner.invoke(main, ["run", str(tmp_path / "gone.yaml")])
    assert result.exit_code == 2 and "gone.yaml' does not exist" in _one_error_line(result)


def test_unreadable_input_data_exits_2(runner, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("words,label\na,b\n")
    recipe = _recipe(tmp_path, f"input: {{source: {data}}}\n")
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and "found only ['words', 'label']" in _one_error_line(result)


@pytest.mark.parametrize(
    "args, message",
    [
        (["validate", "--bogus", "r.yaml"], "No such option '--bogus'"),
        (["run"], "Missing argument 'RECIPE'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["run", "r.yaml", "--seed", "-1"], "-1 is not in the range x>=0"),
        (["data", "get", "vader-movie"], "did you mean 'vader-movies'?"),
        (["cache", "prune"], "give one of --older-than AGE"),
    ],
)
def test_usage_errors_exit_2(runner, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_work_that_cannot_be_done_exits_1(runner, tmp_path):
    # the output folder cannot be made: a file is in the way
    (tmp_path / "afile").write_text("x")
    recipe = _recipe(tmp_path, f"input: {{source: {_data(tmp_path)}}}\n")
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "afile/run"), "-q"])
    assert result.exit_code == 1 and "is a file, not a folder" in _one_error_line(result)


def test_each_error_class_exits_by_the_one_rule():
    bad_input = {errors.RecipeError, errors.InputError, errors.SchemaError}
    failed = {
        errors.StepError,
        errors.ResourceError,
        errors.MissingDependencyError,
        errors.OutputError,
        errors.RemoteError,
    }
    assert {cls.exit_code for cls in bad_input} == {errors.EXIT_BAD_INPUT} == {2}
    assert {cls.exit_code for cls in failed} == {errors.EXIT_FAILED} == {1}


def test_main_help_lists_the_exit_codes(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines()]
    assert "Exit codes:" in lines
    assert "0  success" in lines
    assert any(line.startswith("1  the work failed") for line in lines)
    assert any(line.startswith("2  what was given is wrong") for line in lines)
