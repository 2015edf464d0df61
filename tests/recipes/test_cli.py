from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from assay.recipes.cli import main


@pytest.fixture
def runner():
    return CliRunner()


def test_every_command_has_help_text():
    def walk(cmd, path):
        assert cmd.help, f"{path} has no help"
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(main, "assay")


def test_run_validate_and_errors(runner, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(
        "text,label\n"
        + "\n".join(f"row number {i},{'a' if i % 2 else 'b'}" for i in range(20))
        + "\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: cli\ninput: {{source: {data}}}\nsteps:\n  - clean\n  - split\n")
    result = runner.invoke(main, ["validate", str(recipe)])
    assert result.exit_code == 0 and "2 steps" in result.output
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["accounting"]["balanced"]

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"input: {{source: {data}}}\nsteps:\n  - clean: {{min_chrs: 2}}\n")
    result = runner.invoke(main, ["run", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "did you mean 'min_chars'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"words,label\na,b\n", "found only ['words', 'label']"),
        (b"text,label\nok,a\n\xff\xfe,b\n", "line 3"),
        (b"", "empty"),
    ],
)
def test_bad_input_is_one_clear_line(runner, tmp_path, content, message):
    data = tmp_path / "d.csv"
    data.write_bytes(content)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"input: {{source: {data}}}\n")
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_steps_list_and_show(runner):
    result = runner.invoke(main, ["steps", "list"])
    assert result.exit_code == 0 and "clean" in result.output and "split" in result.output
    result = runner.invoke(main, ["steps", "show", "clean"])
    assert result.exit_code == 0 and "min_chars" in result.output
    result = runner.invoke(main, ["steps", "show", "split", "--json"])
    assert json.loads(result.output)["config_schema"]["properties"]["dev"]["default"] == 0.1
    result = runner.invoke(main, ["steps", "show", "clen"])
    assert result.exit_code == 2 and "did you mean 'clean'" in result.output


def test_data_list_recipe_schema_and_doctor(runner, tmp_path):
    result = runner.invoke(main, ["data", "list"])
    assert result.exit_code == 0 and "vader-movies" in result.output and "10,605" in result.output
    result = runner.invoke(main, ["data", "get", "nope"])
    assert result.exit_code == 1 and "unknown dataset" in result.output
    out = tmp_path / "schema.json"
    result = runner.invoke(main, ["recipe", "schema", "--out", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text())["title"] == "assay recipe"
    result = runner.invoke(main, ["doctor"])
    assert result.exit_code == 0 and "WordNet" in result.output


def test_train_reports_metrics_with_intervals(runner, tmp_path):
    pytest.importorskip("sklearn")
    from assay import from_records
    from assay.atomic import write_parquet

    words = {"pos": ["great", "superb", "lovely"], "neg": ["awful", "dull", "boring"]}
    texts, labels, splits = [], [], []
    for i in range(120):
        label = "pos" if i % 2 else "neg"
        texts.append(f"a {words[label][i % 3]} film number {i}")
        labels.append(label)
        splits.append("test" if i % 5 == 0 else "dev" if i % 5 == 1 else "train")
    run = tmp_path / "run"
    write_parquet(run / "corpus.parquet", from_records(texts, labels, split=splits))
    result = runner.invoke(main, ["train", str(run), "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "train-fast" / "metrics.json").read_text())
    ci = metrics["intervals"]["test"]["accuracy"]
    assert ci["estimate"] == 1.0 and ci["low"] <= ci["estimate"] <= ci["high"]
    assert (run / "train-fast" / "predictions_test.parquet").exists()
    result = runner.invoke(main, ["train", str(tmp_path)])
    assert result.exit_code == 1 and "neither a corpus parquet" in result.output


def _small_recipe(tmp_path, extra=""):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "\n".join(f"row number {i},{'ab'[i % 2]}" for i in range(20)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"input: {{source: {data}}}\n{extra}")
    return recipe


def test_negative_seed_is_refused_by_validate_and_run(runner, tmp_path):
    recipe = _small_recipe(tmp_path, "seed: -1\n")
    result = runner.invoke(main, ["validate", str(recipe)])
    assert result.exit_code == 2 and "seed" in result.output
    result = runner.invoke(main, ["run", str(_small_recipe(tmp_path)), "--seed", "-5", "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_out_under_a_file_is_one_line(runner, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(
        main, ["run", str(_small_recipe(tmp_path)), "--out", str(tmp_path / "afile/run"), "-q"]
    )
    assert result.exit_code == 1 and "is a file, not a folder" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_relative_path_is_one_line_and_quick(runner, tmp_path, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("input: {source: data/nothere}\n")
    started = time.perf_counter()
    result = runner.invoke(main, ["run", str(recipe), "-q"])
    assert time.perf_counter() - started < 5
    assert result.exit_code == 1 and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_hf_output_runs_from_the_cli(runner, tmp_path):
    pytest.importorskip("datasets")
    recipe = _small_recipe(tmp_path, "steps: [split]\noutput: {formats: [hf]}\n")
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "corpus_hf" in manifest["outputs"]
