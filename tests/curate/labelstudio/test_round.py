"""Active-learning push and rounds: the planted uncertain rows are chosen, with the reason."""

from __future__ import annotations

import json
import time

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from assay.context import RunContext
from assay.corpus import from_records
from assay.curate.labelstudio import round as round_mod
from assay.curate.labelstudio.client import Connection
from assay.curate.labelstudio.config import init_project
from assay.curate.labelstudio.steps import LabelStudioPush
from assay.step import check_accounting

POS = ["great", "good", "lovely", "superb", "wonderful"]
NEG = ["awful", "bad", "boring", "dreadful", "terrible"]
PLANTED = ["planted0", "planted1", "planted2"]  # one word of each side: the model is unsure


def clear(i: int, words: list[str]) -> str:
    return " ".join(words[(i + k) % 5] for k in range(3))


def al_corpus(n_pool: int = 30, n_dev: int = 10) -> pl.DataFrame:
    texts, labels, ids, splits = [], [], [], []
    for i in range(20):
        texts += [clear(i, POS), clear(i, NEG)]
        labels += ["pos", "neg"]
        ids += [f"tp{i:02d}", f"tn{i:02d}"]
        splits += ["train", "train"]
    for i in range(n_pool):
        texts.append(clear(i, POS if i % 2 else NEG) + f" film {i}")
        labels.append(None)
        ids.append(f"u{i:02d}")
        splits.append("unlabeled")
    for j, text in enumerate(["great awful", "good bad", "lovely boring"]):
        texts.append(text)
        labels.append(None)
        ids.append(PLANTED[j])
        splits.append("unlabeled")
    for i in range(n_dev):
        texts.append(clear(i + 1, POS if i % 2 else NEG) + " dev")
        labels.append("pos" if i % 2 else "neg")
        ids.append(f"d{i:02d}")
        splits.append("dev")
    return from_records(texts, labels, ids=ids, split=splits)


def test_uncertainty_batch_is_the_planted_rows_with_predictions_and_reasons():
    batch = round_mod.select_batch(
        al_corpus(), 3, "uncertainty", np.random.default_rng(0), round_no=2
    )
    assert sorted(batch.selection.ids) == PLANTED
    reasons = batch.reasons.to_dicts()
    assert [r["assay_rank"] for r in reasons] == [1, 2, 3]
    assert {r["assay_strategy"] for r in reasons} == {"uncertainty"}
    assert all(r["assay_score"] > 0.6 for r in reasons)  # entropy near log 2
    assert set(batch.predictions["model_version"]) == {"fast-r2-n40"}
    assert batch.predictions["score"].max() < 0.6


def test_the_pool_leaves_out_labelled_rows_and_existing_tasks():
    corpus = al_corpus()
    pool = round_mod.pool(corpus, exclude={"planted0", "u00"})
    assert "planted0" not in pool["id"] and "u00" not in pool["id"]
    assert pool.height == 30 + 3 - 2
    assert pool["label"].null_count() == pool.height


def test_fold_in_moves_newly_labelled_rows_to_train_and_leaves_dev_alone():
    corpus = al_corpus()
    consensus = pl.DataFrame(
        {
            "id": ["planted0", "d00"],
            "label": ["pos", "pos"],
            "n_annotations": [1, 1],
            "agreement": [1.0, 1.0],
            "status": ["single", "single"],
        }
    )
    out = round_mod.fold_in(corpus, consensus, prefix="r")
    rows = {r["id"]: r for r in out.to_dicts()}
    assert (rows["planted0"]["label"], rows["planted0"]["split"]) == ("pos", "train")
    assert (rows["d00"]["label"], rows["d00"]["split"]) == ("neg", "dev")


@pytest.mark.slow
@pytest.mark.integration
def test_active_push_sends_the_planted_uncertain_rows_and_records_why(
    ls_env, project_title, tmp_path
):
    corpus = al_corpus()
    step = LabelStudioPush(
        project=project_title, only_unlabeled=True, strategy="uncertainty", batch=3, overlap=1
    )
    pushed = step.apply(corpus, RunContext(run_dir=tmp_path))
    check_accounting(corpus, pushed)
    assert pushed.report.summary["n_created"] == 3
    assert pushed.report.summary["n_overlap"] == 1
    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, ["neg", "pos"])
    tasks = list(client.tasks(project.id, include="id,data,overlap"))
    assert sorted(t["data"]["assay_id"] for t in tasks) == PLANTED
    for t in tasks:
        data = t["data"]
        assert data["assay_strategy"] == "uncertainty"
        assert data["assay_rank"] in (1, 2, 3) and data["assay_score"] > 0.6
        preds = client.sdk.predictions.list(task=t["id"])
        assert len(preds) == 1 and preds[0].model_version == "fast-n40"
    first = next(t for t in tasks if t["data"]["assay_rank"] == 1)
    assert (first["data"]["assay_annotators"], first["overlap"]) == (2, 2)


@pytest.mark.slow
@pytest.mark.integration
def test_rounds_pull_only_new_annotations_and_keep_their_history(ls_env, project_title, tmp_path):
    from assay.recipes.cli import main

    corpus = al_corpus()
    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, ["neg", "pos"])
    first = round_mod.run_round(
        client, project, corpus, tmp_path, strategy="uncertainty", batch=3, seed=1
    )
    assert (first.round, first.n_new_annotations, first.n_labels) == (1, 0, 40)
    assert first.push["n_created"] == 3
    assert first.metric["metric"] == "macro_f1"
    assert first.metric["low"] <= first.metric["estimate"] <= first.metric["high"]
    ids = {t["data"]["assay_id"]: t["id"] for t in client.tasks(project.id)}
    assert sorted(ids) == PLANTED
    for example in PLANTED:
        client.sdk.annotations.create(id=ids[example], result=project.config.result("pos"))
    time.sleep(2.2)  # past the pull's safety margin (the server clock counts whole seconds)

    second = round_mod.run_round(
        client, project, corpus, tmp_path, strategy="uncertainty", batch=3, seed=1
    )
    assert (second.n_new_annotations, second.n_labels) == (3, 43)
    ids = {t["data"]["assay_id"]: t["id"] for t in client.tasks(project.id)}
    assert len(ids) == 6
    new = sorted(set(ids) - set(PLANTED))
    client.sdk.annotations.create(id=ids[new[0]], result=project.config.result("neg"))

    corpus_path = tmp_path / "corpus.parquet"
    corpus.write_parquet(corpus_path)
    common = ["-p", project_title, "--dir", str(tmp_path), "--quiet"]
    out = CliRunner().invoke(
        main,
        ["ls", "round", *common, "--corpus", str(corpus_path), "--strategy", "random",
         "--batch", "3", "--out", str(tmp_path / "labelled.parquet")],
        catch_exceptions=False,
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "round 3: 1 new annotations, 44 labels; pushed 3 tasks" in out.output
    assert "dev macro_f1" in out.output
    labelled = pl.read_parquet(tmp_path / "labelled.parquet")
    assert (
        labelled.filter(pl.col("label").is_not_null() & (pl.col("split") == "train")).height == 44
    )
    history = round_mod.history(tmp_path)
    assert [(h["round"], h["n_labels"], h["strategy"]) for h in history] == [
        (1, 40, "uncertainty"),
        (2, 43, "uncertainty"),
        (3, 44, "random"),
    ]
    out = CliRunner().invoke(main, ["ls", "status", *common, "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert [r["n_labels"] for r in info["rounds"]] == [40, 43, 44]
    out = CliRunner().invoke(main, ["ls", "status", *common], catch_exceptions=False)
    assert "rounds" in out.output and "uncertainty" in out.output


def test_push_config_rejects_an_unknown_strategy():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="strategy must be one of"):
        LabelStudioPush.Config(project="p", strategy="greedy")
