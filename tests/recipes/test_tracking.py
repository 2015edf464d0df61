from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from assay import corpus as corpus_mod
from assay.hashing import frame_hash
from assay.recipes.ablation import AblationResult, run_ablation
from assay.recipes.runner import run_recipe
from assay.recipes.schema import load_recipe

mlflow = pytest.importorskip("mlflow")


def _toy_recipe(tmp_path, *, top=None, **ablation) -> dict:
    """A 200-row toy recipe; `top` is its `tracking:` (the run), `ablation` its keys."""
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"]}
    texts, labels, splits = [], [], []
    for i in range(200):
        lab = "pos" if i % 2 else "neg"
        texts.append(f"{rng.choice(words[lab])} movie number {i}")
        labels.append(lab)
        splits.append("train" if i < 140 else "test" if i < 180 else "dev")
    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": texts, "label": labels, "split": splits}).write_csv(path)
    recipe = {
        "name": "toy",
        "seed": 3,
        "input": {"source": str(path), "split_column": "split"},
        "steps": [{"clean": {"min_chars": 3}}],
        "ablation": {
            "model": "fast",
            "seeds": 2,
            "bootstrap": 200,
            "permutations": 200,
            "variants": [{"name": "dedup", "add": ["dedup"]}],
            **ablation,
        },
    }
    if top is not None:
        recipe["tracking"] = top
    return recipe


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (each test its own experiment): creating the
    store's tables is the slow part."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlruns.db'}", root / "artifacts"


def _runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return client, client.search_runs([exp.experiment_id], max_results=100)


def _settings(store, experiment: str) -> dict:
    uri, artifacts = store
    return {"mlflow": {"uri": uri, "experiment": experiment, "artifacts": str(artifacts)}}


def _split_digests(corpus: pl.DataFrame) -> dict[str, str]:
    columns = [c for c in corpus_mod.REQUIRED if c in corpus.columns]
    return {
        split: frame_hash(corpus.filter(pl.col("split") == split).select(columns))
        for split in ("train", "dev", "test")
    }


def _inputs(run) -> dict[str, str]:
    """context -> digest of the run's dataset inputs."""
    out = {}
    for item in run.inputs.dataset_inputs:
        context = {t.key: t.value for t in item.tags}["mlflow.data.context"]
        out[context] = item.dataset.digest
    return out


@pytest.mark.slow
def test_an_ablation_is_a_run_with_a_run_per_arm_and_per_seed_under_it(tmp_path, store):
    uri, _ = store
    # The ablation's own `tracking:` (the recipe has none).
    recipe = load_recipe(_toy_recipe(tmp_path, **{"tracking": _settings(store, "arms")}))
    result = run_ablation(recipe, tmp_path / "out")
    client, runs = _runs(uri, "arms")
    kinds = {}
    for r in runs:
        kinds.setdefault(r.data.tags["assay.kind"], []).append(r)
    assert sorted(kinds) == ["ablation", "baseline", "seed", "variant"]
    (parent,) = kinds["ablation"]
    arms = {r.data.tags["assay.arm"]: r for r in kinds["baseline"] + kinds["variant"]}
    assert sorted(arms) == ["baseline", "dedup"]
    assert {r.data.tags["mlflow.parentRunId"] for r in arms.values()} == {parent.info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)
    rows = {row["arm"]: row for row in result.report["arms"]}
    # The arm's numbers live on the arm's run, once.
    for arm, run in arms.items():
        assert run.data.metrics["score"] == pytest.approx(rows[arm]["score"])
        assert run.data.metrics["score_low"] <= run.data.metrics["score_high"]
        assert run.data.params["model"] == "fast"
    assert {"delta", "delta_low", "delta_high", "p_value"} <= set(arms["dedup"].data.metrics)
    assert "delta" not in arms["baseline"].data.metrics
    # Each seed's run holds that seed's score and nothing of the arm's.
    assert len(kinds["seed"]) == 2 * 2
    for run in kinds["seed"]:
        arm = run.data.tags["assay.arm"]
        assert run.data.tags["mlflow.parentRunId"] == arms[arm].info.run_id
        index = result.report["seeds"].index(int(run.data.params["seed"]))
        assert run.data.metrics == {"macro_f1": pytest.approx(rows[arm]["per_seed"][index])}
        assert run.info.run_name == f"{arm} / seed {run.data.params['seed']}"
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"ablation.json", "ablation.csv", "ablation.html", "forest.svg", "recipe.yaml",
            "report.html", "report.md"} <= files  # fmt: skip
    logged = client.download_artifacts(parent.info.run_id, "recipe.yaml", str(tmp_path))
    assert yaml.safe_load(Path(logged).read_text())["ablation"]["variants"][0]["name"] == "dedup"
    # The baseline's splits, their digests the content hashes of the splits.
    baseline = run_recipe(recipe.model_copy(update={"tracking": None}), tmp_path / "base")
    assert _inputs(parent) == _split_digests(baseline.pipeline.corpus)
    # The URI (it may carry credentials) is not written into the report.
    assert uri not in (result.out_dir / "ablation.json").read_text()
    spec = json.loads((result.out_dir / "ablation.json").read_text())["spec"]
    assert "uri" not in json.dumps(spec["tracking"])


@pytest.mark.slow
def test_a_run_without_an_ablation_is_logged_with_its_books_files_and_datasets(tmp_path, store):
    uri, _ = store
    data = _toy_recipe(tmp_path, top=_settings(store, "runs"))
    del data["ablation"]
    # --seed rebuilds the recipe: its tracking (the URI is left out of dumps) comes along.
    result = run_recipe(load_recipe(data), tmp_path / "run", seed=3)
    client, runs = _runs(uri, "runs")
    (run,) = runs
    assert run.data.tags["assay.kind"] == "run" and run.info.status == "FINISHED"
    acc = result.manifest["accounting"]
    metrics = run.data.metrics
    assert metrics["rows_read"] == acc["rows_read"] == 200
    assert metrics["rows_out"] == acc["rows_out"]
    assert metrics["dropped"] == acc["dropped_at_load"] + acc["dropped_by_steps"]
    assert metrics["rows_train"] == 140 and metrics["rows_test"] == 40
    assert metrics["steps/00_clean/seconds"] == pytest.approx(
        result.manifest["steps"][0]["seconds"]
    )
    assert metrics["steps/00_clean/n_out"] == acc["rows_out"]
    assert run.data.params["steps"] == "clean" and run.data.params["seed"] == "3"
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"recipe.yaml", "manifest.json", "report.html", "report.md"} <= files
    inputs = _inputs(run)
    corpus = pl.read_parquet(tmp_path / "run" / "corpus.parquet")
    assert inputs.pop("source") == result.manifest["inputs"][0]["hash"]
    assert inputs == _split_digests(corpus)


def test_assay_run_with_an_ablation_nests_the_ablation_under_the_run(tmp_path, store):
    from assay.recipes.cli import main

    uri, _ = store
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_toy_recipe(tmp_path, seeds=1)))
    res = CliRunner().invoke(main, ["run", str(recipe), "--out", str(tmp_path / "o"), "-q",
                                    "--mlflow", uri, "--mlflow-experiment", "nested"])  # fmt: skip
    assert res.exit_code == 0, res.output
    _, runs = _runs(uri, "nested")
    by_kind = {r.data.tags["assay.kind"]: r for r in runs}
    assert by_kind["ablation"].data.tags["mlflow.parentRunId"] == by_kind["run"].info.run_id
    assert by_kind["baseline"].data.tags["mlflow.parentRunId"] == by_kind["ablation"].info.run_id


def test_ablate_command_logs_to_the_mlflow_uri_given(tmp_path, monkeypatch, store):
    from assay.recipes.cli import main

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact store is a relative folder
    uri, _ = store
    recipe = tmp_path / "r.yaml"
    data = _toy_recipe(tmp_path, seeds=1)
    data["name"] = "cli-ablate"
    recipe.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(
        main, ["ablate", str(recipe), "--out", str(tmp_path / "o"), "-q", "--mlflow", uri]
    )
    assert res.exit_code == 0, res.output
    client, runs = _runs(uri, "cli-ablate")  # the experiment defaults to the recipe name
    assert sorted(r.info.run_name for r in runs) == [
        "baseline", "baseline / seed 0", "cli-ablate", "dedup", "dedup / seed 0"
    ]  # fmt: skip
    # The files beside the table reach the default artifact store.
    ablation = next(r for r in runs if r.data.tags["assay.kind"] == "ablation")
    assert "ablation.json" in {a.path for a in client.list_artifacts(ablation.info.run_id)}


def test_a_file_store_is_used_as_named_and_the_switch_left_as_it_was(tmp_path, monkeypatch):
    import os

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "fs").as_uri()  # file:///...
    data = _toy_recipe(tmp_path, top={"mlflow": {"uri": uri, "experiment": "fs"}})
    del data["ablation"]
    run_recipe(load_recipe(data), tmp_path / "run")
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading a file store back
    _, runs = _runs(uri, "fs")
    assert [r.data.tags["assay.kind"] for r in runs] == ["run"]


def test_a_store_that_fails_costs_one_warning_and_keeps_the_results(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")  # the user's word: no file store
    tracking = {"mlflow": {"uri": f"file:{tmp_path / 'fs'}"}}
    recipe = load_recipe(_toy_recipe(tmp_path, seeds=1, top=tracking))
    with caplog.at_level(logging.WARNING):
        result = run_ablation(recipe, tmp_path / "out")
    assert isinstance(result, AblationResult) and result.report["arms"]
    assert (tmp_path / "out" / "ablation.json").exists()
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1, warned
    assert "MLflow did not take the ablation" in warned[0]
    assert "sqlite:///mlruns.db" in warned[0] and "MLFLOW_ALLOW_FILE_STORE=true" in warned[0]
    assert str(tmp_path / "out") in warned[0]


def test_the_cli_exits_0_with_one_warning_when_tracking_fails(tmp_path, caplog):
    from assay.recipes.cli import main

    (tmp_path / "not-a-folder").write_text("")
    uri = f"sqlite:///{tmp_path / 'not-a-folder' / 'mlruns.db'}"  # cannot be created
    recipe = tmp_path / "r.yaml"
    data = _toy_recipe(tmp_path)
    del data["ablation"]
    recipe.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING):
        res = CliRunner().invoke(
            main, ["run", str(recipe), "--out", str(tmp_path / "o"), "-q", "--mlflow", uri]
        )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "corpus.parquet").exists()
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith("MLflow did not take the run")
    assert str(tmp_path / "not-a-folder") not in res.stdout


@pytest.mark.slow
def test_mlflow_prints_nothing_of_its_own_in_the_library(tmp_path, capfd):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"  # a new store: MLflow logs its table creation
    data = _toy_recipe(tmp_path, top={"mlflow": {"uri": uri}})
    del data["ablation"]
    level = logging.getLogger("mlflow").level
    capfd.readouterr()
    run_recipe(load_recipe(data), tmp_path / "run")
    out, err = capfd.readouterr()
    assert "mlflow" not in (out + err).lower(), err
    assert logging.getLogger("mlflow").level == level  # silenced for the log only
    _, runs = _runs(uri, "toy")
    assert len(runs) == 1


def test_tracking_without_mlflow_installed_fails_before_the_work(tmp_path, monkeypatch):
    import sys

    from assay.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    recipe = load_recipe(_toy_recipe(tmp_path, top={"mlflow": {"uri": "sqlite:///x.db"}}))
    with pytest.raises(MissingDependencyError, match=r"assay\[track\]"):
        run_recipe(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_ablation_result_renders_its_arms_in_a_notebook(tmp_path):
    report = {
        "name": "toy", "metric": "macro_f1", "eval_split": "test", "model": "fast",
        "seeds": [0, 1],
        "arms": [
            {"arm": "baseline", "kind": "baseline", "train_rows": 140.0, "score": 0.81234},
            {"arm": "eda", "kind": "variant", "train_rows": 280.0, "score": 0.8, "delta": -0.0123,
             "delta_low": -0.03, "delta_high": 0.01, "p_value": 0.2,
             "verdict": "no detectable change"},
        ],
    }  # fmt: skip
    result = AblationResult(tmp_path, report, pl.DataFrame(), ["arms differ"])
    html = result._repr_html_()
    assert "toy: macro_f1 on test (fast, seeds [0, 1])" in html
    assert "<td>eda</td><td>variant</td><td>280</td><td>0.8</td>" in html
    assert "<td>-0.0123</td>" in html and "<i>arms differ</i>" in html
