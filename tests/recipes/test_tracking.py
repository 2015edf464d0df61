from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from assay.recipes.ablation import AblationResult, run_ablation
from assay.recipes.schema import load_recipe

mlflow = pytest.importorskip("mlflow")


def _toy_recipe(tmp_path, **ablation) -> dict:
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
    return {
        "name": "toy",
        "seed": 3,
        "input": {"source": str(path), "split_column": "split"},
        "ablation": {
            "model": "fast",
            "seeds": 2,
            "bootstrap": 200,
            "permutations": 200,
            "variants": [{"name": "clean", "add": ["clean"]}],
            **ablation,
        },
    }


def _runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return client, client.search_runs([exp.experiment_id], max_results=100)


def test_each_arm_and_seed_is_an_mlflow_run_with_metrics_and_the_report(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    store = tmp_path / "artifacts"
    tracking = {"mlflow": {"uri": uri, "experiment": "sentiment", "artifacts": str(store)}}
    recipe = load_recipe(_toy_recipe(tmp_path, tracking=tracking))
    result = run_ablation(recipe, tmp_path / "out")
    client, runs = _runs(uri, "sentiment")
    parents = [r for r in runs if r.data.tags.get("assay.kind") == "ablation"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2 * 2  # (baseline, clean) x 2 seeds
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    by_cell = {(r.data.params["arm"], r.data.params["seed"]): r for r in children}
    arms = {row["arm"]: row for row in result.report["arms"]}
    for (arm, seed), run in by_cell.items():
        row = arms[arm]
        index = result.report["seeds"].index(int(seed))
        assert run.data.metrics["seed_macro_f1"] == pytest.approx(row["per_seed"][index])
        assert run.data.metrics["score"] == pytest.approx(row["score"])
        assert run.data.metrics["score_low"] <= run.data.metrics["score_high"]
        assert run.data.params["model"] == "fast"
        names = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert names == ["ablation.json"]
    clean = by_cell[("clean", "0")].data.metrics
    assert {"delta", "delta_low", "delta_high", "p_value"} <= set(clean)
    assert "delta" not in by_cell[("baseline", "0")].data.metrics
    parent_files = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"ablation.json", "ablation.csv", "ablation.html"} <= parent_files
    assert len(list(store.rglob("ablation.json"))) == 1 + 4
    # The URI (it may carry credentials) is not written into the report.
    assert uri not in (result.out_dir / "ablation.json").read_text()
    spec = json.loads((result.out_dir / "ablation.json").read_text())["spec"]
    assert spec["tracking"] == {"mlflow": {"experiment": "sentiment", "artifacts": str(store)}}


def test_ablate_command_logs_to_the_mlflow_uri_given(tmp_path, monkeypatch):
    from assay.recipes.cli import main

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact store is ./mlruns

    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_toy_recipe(tmp_path, seeds=1)))
    res = CliRunner().invoke(
        main, ["ablate", str(recipe), "--out", str(tmp_path / "o"), "-q", "--mlflow", uri]
    )
    assert res.exit_code == 0, res.output
    _, runs = _runs(uri, "toy")  # the experiment defaults to the recipe name
    assert sorted(r.info.run_name for r in runs) == ["baseline / seed 0", "clean / seed 0", "toy"]
    assert (tmp_path / "mlruns").is_dir()


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
