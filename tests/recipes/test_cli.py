from __future__ import annotations

import json
import os
import re
import time

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
    assert result.exit_code == 2  # bad input
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
    assert result.exit_code == 2 and "unknown dataset" in result.output
    out = tmp_path / "schema.json"
    result = runner.invoke(main, ["recipe", "schema", "--out", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text())["title"] == "assay recipe"
    result = runner.invoke(main, ["doctor"])
    assert result.exit_code == 0
    from assay import resources

    installed = (resources.WORDNET_SOURCE / "data.noun").exists()
    mark = re.search(r"^(ok|miss)\s+WordNet\s", result.output, re.M)
    assert mark is not None and mark.group(1) == ("ok" if installed else "miss")
    assert (str(resources.WORDNET_SOURCE) in result.output) == installed


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
    assert result.exit_code == 2 and "neither a corpus parquet" in result.output


def test_shared_options_have_one_help_text_everywhere():
    helps: dict[str, set[str]] = {}

    def walk(cmd):
        for param in cmd.params:
            if isinstance(param, click.Option):
                for flag in ("--quiet", "--no-cache", "--model", "--json"):
                    if flag in param.opts:
                        helps.setdefault(flag, set()).add(param.help.split(";")[0].rstrip("."))
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                walk(sub)

    walk(main)
    assert set(helps) == {"--quiet", "--no-cache", "--model", "--json"}
    assert all(len(texts) == 1 for texts in helps.values()), helps


def test_cache_info_and_prune(runner, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(cache_dir))
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "\n".join(f"row {i},{'ab'[i % 2]}" for i in range(20)) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: c\ninput: {{source: {data}}}\nsteps:\n  - clean\n  - split\n")
    assert (
        runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "-q"]).exit_code
        == 0
    )

    result = runner.invoke(main, ["cache", "info", "--json"])
    info = json.loads(result.output)
    assert info["root"] == str(cache_dir) and info["entries"] == 2 and info["size"] > 0
    result = runner.invoke(main, ["cache", "info"])
    assert (
        result.exit_code == 0 and "entries  2" in result.output and str(cache_dir) in result.output
    )

    old = time.time() - 40 * 86400
    first = sorted(cache_dir.glob("*/*/report.json"))[0]
    os.utime(first, (old, old))
    result = runner.invoke(main, ["cache", "prune", "--older-than", "30d"])
    assert result.exit_code == 0 and "removed 1 entries" in result.output
    assert json.loads(runner.invoke(main, ["cache", "info", "--json"]).output)["entries"] == 1
    # the run still works and recomputes only what was pruned
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run2"), "-q"])
    assert result.exit_code == 0
    cached = json.loads((tmp_path / "run2" / "manifest.json").read_text())["cached_steps"]
    assert len(cached) <= 1

    for args, message in [
        (["cache", "prune"], "--older-than AGE"),
        (["cache", "prune", "--all", "--older-than", "1d"], "--older-than AGE"),
        (["cache", "prune", "--older-than", "3y"], "12h, 30d or 2w"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(main, ["cache", "prune", "--all"])
    assert result.exit_code == 0 and "removed 2 entries" in result.output
    assert json.loads(runner.invoke(main, ["cache", "info", "--json"]).output)["entries"] == 0


def test_train_reads_a_corpus_file_as_well_as_a_run_directory(runner, tmp_path):
    pytest.importorskip("sklearn")
    from assay import from_records
    from assay.atomic import write_parquet

    texts = [f"{'good' if i % 2 else 'bad'} film {i}" for i in range(60)]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    splits = ["test" if i % 3 == 0 else "train" for i in range(60)]
    path = tmp_path / "mine.parquet"
    write_parquet(path, from_records(texts, labels, split=splits))
    result = runner.invoke(main, ["train", str(path), "-q", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert set(metrics["intervals"]) == {"test"}


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
    assert result.exit_code == 2 and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_hf_output_runs_from_the_cli(runner, tmp_path):
    pytest.importorskip("datasets")
    recipe = _small_recipe(tmp_path, "steps: [split]\noutput: {formats: [hf]}\n")
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "corpus_hf" in manifest["outputs"]
    # -q is quiet: datasets' "Casting/Saving the dataset" bars printed here, one per split.
    assert result.output.strip() == str(tmp_path / "run" / "report.html")


def test_quiet_and_verbose_are_accepted_before_the_command(runner, tmp_path):
    # `assay -q run ...` was "No such option: -q".
    recipe = _small_recipe(tmp_path, "steps: [split]\n")
    result = runner.invoke(main, ["-q", "run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "run" / "report.html")
    loud = runner.invoke(main, ["-v", "run", str(recipe), "--out", str(tmp_path / "run")])
    assert loud.exit_code == 0 and "split" in loud.output  # the summary table


@pytest.mark.slow
@pytest.mark.integration
def test_train_takes_the_probe_model(runner, tmp_path):
    pytest.importorskip("sentence_transformers")
    from assay import from_records
    from assay.atomic import write_parquet

    words = {"pos": ["wonderful", "superb", "lovely"], "neg": ["awful", "dull", "boring"]}
    texts = [f"a {words['pos' if i % 2 else 'neg'][i % 3]} film, take {i}" for i in range(60)]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    splits = ["test" if i % 3 == 0 else "train" for i in range(60)]
    run = tmp_path / "run"
    write_parquet(run / "corpus.parquet", from_records(texts, labels, split=splits))
    result = runner.invoke(main, ["train", str(run), "-q", "--model", "probe"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "train-probe" / "metrics.json").read_text())
    assert metrics["model"] == "probe" and metrics["metrics"]["test"]["accuracy"] > 0.9


def test_a_recipe_name_cannot_lead_the_run_outside_runs(runner, tmp_path, monkeypatch):
    # runs/../../escape used to be written two folders up from runs/.
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    recipe = _small_recipe(work, "name: ../../escape\n")
    result = runner.invoke(main, ["run", str(recipe), "-q"])
    assert result.exit_code == 0, result.output
    assert (work / "runs" / "escape" / "manifest.json").is_file()
    assert not (tmp_path / "a" / "escape").exists()
    assert [p.name for p in (work / "runs").iterdir()] == ["escape"]


@pytest.mark.parametrize(
    ("name", "folder"),
    [("../../escape", "escape"), ("/etc/passwd", "etc-passwd"), ("..", "run"), ("~", "run"),
     ("sentiment/v2", "sentiment-v2"), (".hidden", "hidden"), ("quickstart", "quickstart")],
)  # fmt: skip
def test_default_run_dir_is_one_folder_inside_runs(name, folder):
    from assay.rundir import RUNS, default_run_dir

    assert default_run_dir(name) == RUNS / folder
    assert default_run_dir(name, "-ablation").parent == RUNS


def test_run_prints_label_noises_evidence_and_its_refusal(runner, tmp_path):
    rng = __import__("numpy").random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    data = tmp_path / "d.csv"
    data.write_text(
        "text,label,split\n"
        + "\n".join(
            f"{' '.join(rng.choice(words, 6))} {i},{rng.choice(['a', 'b'])},train"
            for i in range(120)
        )
        + "\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: cli\ninput: {{source: {data}, split_column: split}}\ncache: false\n"
        "steps:\n  - label_noise: {action: drop}\n"
    )
    result = runner.invoke(main, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("label_noise: out-of-fold"))
    assert "estimated label errors" in line and "none dropped" in line
