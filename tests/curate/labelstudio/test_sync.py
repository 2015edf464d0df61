"""Round trips against a real Label Studio server (the session fixture in conftest.py)."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest
from click.testing import CliRunner

from assay.context import RunContext
from assay.corpus import from_records
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.client import Connection
from assay.curate.labelstudio.config import init_project
from assay.curate.labelstudio.steps import LabelStudioPull, LabelStudioPush
from assay.errors import InputError, RemoteError
from assay.step import check_accounting

pytestmark = pytest.mark.integration

LABELS = ["neg", "neu", "pos"]


def make_corpus(n: int, split: str = "unlabeled", labelled: bool = False) -> pl.DataFrame:
    return from_records(
        [f"example sentence number {i}" for i in range(n)],
        [LABELS[i % 3] for i in range(n)] if labelled else None,
        ids=[f"ex{i:02d}" for i in range(n)],
        split=split,
    )


def annotator(server):
    from label_studio_sdk.client import LabelStudio

    return LabelStudio(base_url=server.url, api_key=server.annotator_token)


def task_ids(client, project_id: int) -> dict[str, int]:
    return {t["data"]["assay_id"]: t["id"] for t in client.tasks(project_id)}


def annotate(sdk, task_id: int, project, label=None, lead_time: float = 2.5):
    """label None = skip (cancel) the task."""
    if label is None:
        return sdk.annotations.create(id=task_id, result=[], was_cancelled=True)
    return sdk.annotations.create(
        id=task_id, result=project.config.result(label), lead_time=lead_time
    )


def test_round_trip_with_two_annotators_finds_the_planted_disagreements(
    ls_env, project_title, tmp_path
):
    client = Connection(ls_env.url).client()
    corpus = make_corpus(12)
    project = init_project(client, project_title, LABELS)
    assert project.created
    report = ls_sync.push(client, project, corpus, state_dir=tmp_path)
    assert report.n_created == 12
    ids = task_ids(client, project.id)
    truth = {f"ex{i:02d}": LABELS[i % 3] for i in range(12)}
    planted = {"ex04": "pos", "ex09": "neu"}  # annotator2 disagrees here
    second = annotator(ls_env)
    for example, label in truth.items():
        annotate(client.sdk, ids[example], project, label, lead_time=1.5)
        if example == "ex11":
            annotate(second, ids[example], project, None)  # planted skip
        else:
            annotate(second, ids[example], project, planted.get(example, label))

    result = ls_sync.pull(client, project, tmp_path)

    ann = result.annotations
    assert ann.height == 24
    assert set(ann["annotator"]) == {ls_env.username, ls_env.annotator}
    skipped = ann.filter(pl.col("skipped"))
    assert skipped.select("id", "annotator", "label").rows() == [("ex11", ls_env.annotator, None)]
    assert ann.filter(pl.col("annotator") == ls_env.username)["lead_time"].to_list() == [1.5] * 12
    assert result.agreement.disagreements["id"].to_list() == ["ex04", "ex09"]
    cons = {r["id"]: r for r in result.consensus.to_dicts()}
    assert cons["ex04"]["label"] is None and cons["ex04"]["status"] == "tie"
    assert cons["ex11"]["label"] == truth["ex11"] and cons["ex11"]["status"] == "single"
    resolved = {k: v["label"] for k, v in cons.items() if k not in planted}
    assert resolved == {k: v for k, v in truth.items() if k not in planted}
    from sklearn.metrics import cohen_kappa_score

    common = [e for e in truth if e != "ex11"]
    expected = cohen_kappa_score(
        [truth[e] for e in common], [planted.get(e, truth[e]) for e in common]
    )
    assert result.agreement.overall["cohen_kappa"] == pytest.approx(expected, abs=1e-6)
    assert result.agreement.overall["krippendorff_alpha"] is not None
    per_annotator = {r["annotator"]: r for r in result.agreement.per_annotator.to_dicts()}
    assert per_annotator[ls_env.annotator]["n_annotations"] == 11
    for name in ("annotations.parquet", "consensus.parquet", "disagreements.parquet"):
        assert (tmp_path / name).exists()
    # The token is never written anywhere in the sync directory.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert ls_env.token.encode() not in path.read_bytes()


def test_repush_creates_nothing_updates_changed_text_and_adds_new_rows(
    ls_env, project_title, tmp_path
):
    client = Connection(ls_env.url).client()
    corpus = make_corpus(10, labelled=True)
    project = init_project(client, project_title, LABELS)
    assert ls_sync.push(client, project, corpus).n_created == 10
    again = ls_sync.push(client, project, corpus)
    assert (again.n_created, again.n_updated, again.n_unchanged) == (0, 0, 10)

    edited = corpus.with_columns(
        text=pl.when(pl.col("id") == "ex03").then(pl.lit("a rewritten text")).otherwise("text")
    )
    grown = pl.concat([edited, make_corpus(12, labelled=True).tail(2)])
    third = ls_sync.push(client, project, grown, state_dir=tmp_path)
    assert (third.n_created, third.n_updated, third.n_unchanged) == (2, 1, 9)

    tasks = list(client.tasks(project.id))
    ids = [t["data"]["assay_id"] for t in tasks]
    assert sorted(ids) == sorted(grown["id"].to_list())  # exactly one task per example
    text = {t["data"]["assay_id"]: t["data"]["text"] for t in tasks}
    assert text["ex03"] == "a rewritten text"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["project"] == project.id and state["last_push"]["n_created"] == 2


def test_incremental_pull_fetches_only_tasks_updated_since_the_last_pull(
    ls_env, project_title, tmp_path
):
    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    ls_sync.push(client, project, make_corpus(10))
    ids = task_ids(client, project.id)
    first = [annotate(client.sdk, ids[f"ex0{i}"], project, "pos") for i in range(4)]
    time.sleep(2.2)  # beyond the pull's safety margin, so these count as already synced
    full = ls_sync.pull(client, project, tmp_path)
    assert full.n_tasks_pulled == 10 and full.annotations.height == 4

    annotate(client.sdk, ids["ex05"], project, "neg")
    annotate(client.sdk, ids["ex06"], project, "neu")
    client.sdk.annotations.update(id=first[0].id, result=project.config.result("neg"))
    incremental = ls_sync.pull(client, project, tmp_path)

    assert incremental.n_tasks_pulled == 3
    assert incremental.since == full.synced_at
    ann = incremental.annotations
    assert ann.height == 6 and ann["annotation_id"].is_unique().all()
    labels = dict(zip(ann["id"], ann["label"], strict=True))
    assert labels == {"ex00": "neg", "ex01": "pos", "ex02": "pos", "ex03": "pos",
                      "ex05": "neg", "ex06": "neu"}  # fmt: skip
    info = ls_sync.status(client, project, tmp_path)
    assert (info["n_tasks"], info["n_annotated"]) == (10, 6)
    assert info["last_pull"] == incremental.synced_at


def test_annotation_label_outside_the_label_set_is_reported_not_added(
    ls_env, project_title, tmp_path
):
    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    ls_sync.push(client, project, make_corpus(3))
    ids = task_ids(client, project.id)
    annotate(client.sdk, ids["ex00"], project, "pos")
    annotate(annotator(ls_env), ids["ex01"], project, "sarcastic")  # planted unknown label
    result = ls_sync.pull(client, project, tmp_path)
    assert result.unknown_labels.select("id", "unknown_labels").rows() == [("ex01", ["sarcastic"])]
    assert "sarcastic" not in result.consensus["label"].drop_nulls().to_list()
    assert result.consensus["id"].to_list() == ["ex00"]


def test_pre_annotations_carry_label_score_and_model_version(ls_env, project_title):
    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    corpus = make_corpus(4)
    predictions = pl.DataFrame(
        {"id": ["ex00", "ex02"], "label": ["pos", "neg"], "score": [0.9, 0.6]}
    )
    report = ls_sync.push(client, project, corpus, predictions=predictions, model_version="fast-v1")
    assert report.n_predictions == 2
    tasks = {t["data"]["assay_id"]: t for t in client.tasks(project.id, include=None, fields="all")}
    pred = tasks["ex00"]["predictions"][0]
    assert pred["model_version"] == "fast-v1" and pred["score"] == pytest.approx(0.9)
    assert pred["result"][0]["value"]["choices"] == ["pos"]
    assert tasks["ex01"]["predictions"] == []
    # Existing tasks get predictions of a new model version once; repeats add nothing.
    later = pl.DataFrame({"id": ["ex00", "ex01"], "label": ["neu", "neu"]})
    assert (
        ls_sync.push(client, project, corpus, predictions=later, model_version="v2").n_predictions
        == 2
    )
    assert (
        ls_sync.push(client, project, corpus, predictions=later, model_version="v2").n_predictions
        == 0
    )
    tasks = {t["data"]["assay_id"]: t for t in client.tasks(project.id, include=None, fields="all")}
    assert sorted(p["model_version"] for p in tasks["ex00"]["predictions"]) == ["fast-v1", "v2"]
    with pytest.raises(InputError, match="bogus"):
        bad = pl.DataFrame({"id": ["ex01"], "label": ["bogus"]})
        ls_sync.push(client, project, corpus, predictions=bad)


def test_multilabel_project_round_trip(ls_env, project_title, tmp_path):
    client = Connection(ls_env.url).client()
    corpus = from_records(
        ["first text", "second text"], [["a", "b"], ["c"]], ids=["m1", "m2"], split="train"
    )
    project = init_project(client, project_title, ["a", "b", "c"], multilabel=True)
    assert project.config.multilabel
    ls_sync.push(client, project, corpus)
    ids = task_ids(client, project.id)
    annotate(client.sdk, ids["m1"], project, ["a", "b"])
    annotate(annotator(ls_env), ids["m1"], project, ["b"])
    result = ls_sync.pull(client, project, tmp_path)
    assert result.agreement.disagreements["id"].to_list() == ["m1"]
    # "a" has one vote of two: a tie, so the corpus keeps its label and says why.
    labelled = ls_sync.apply_labels(corpus, result.consensus).filter(pl.col("id") == "m1")
    assert labelled["label"].to_list() == [["a", "b"]]
    assert labelled["labelstudio_pull__status"].to_list() == ["tie"]


def test_attaching_to_a_project_with_other_labels_is_refused(ls_env, project_title):
    client = Connection(ls_env.url).client()
    init_project(client, project_title, ["neg", "pos"])
    assert not init_project(client, project_title, ["neg"]).created  # a subset is fine
    with pytest.raises(InputError, match=r"\['neu'\]"):
        init_project(client, project_title, ["neg", "neu"])
    with pytest.raises(InputError, match="multiple"):
        init_project(client, project_title, ["neg", "pos"], multilabel=True)


def test_bad_token_is_one_clear_error_and_nothing_is_recorded(
    ls_env, project_title, tmp_path, monkeypatch
):
    monkeypatch.setenv("ASSAY_LS_TOKEN", "0" * 40)
    client = Connection(ls_env.url).client()
    with pytest.raises(RemoteError, match="rejected the token"):
        ls_sync.push(client, 1, make_corpus(2), state_dir=tmp_path)
    with pytest.raises(RemoteError, match="rejected the token"):
        ls_sync.pull(client, 1, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing recorded as synced

    from assay.recipes.cli.labelstudio import ls

    corpus_path = tmp_path / "corpus.parquet"
    make_corpus(2).write_parquet(corpus_path)
    out = CliRunner().invoke(ls, ["push", str(corpus_path), "-p", "1", "--dir", str(tmp_path)])
    assert out.exit_code == 1
    assert "rejected the token" in out.output and "Traceback" not in out.output
    assert "0" * 40 not in out.output


def test_cli_init_push_pull_status(ls_env, project_title, tmp_path):
    from assay.recipes.cli.labelstudio import ls

    runner = CliRunner()
    corpus_path = tmp_path / "corpus.parquet"
    make_corpus(6, split="train", labelled=True).write_parquet(corpus_path)
    sync = tmp_path / "sync"
    common = ["-p", project_title, "--dir", str(sync), "-q"]

    out = runner.invoke(ls, ["init", str(corpus_path), *common])
    assert out.exit_code == 0, out.output
    assert "created project" in out.output
    out = runner.invoke(ls, ["push", str(corpus_path), *common])
    assert out.exit_code == 0, out.output
    assert "6 created" in out.output
    out = runner.invoke(ls, ["push", str(corpus_path), *common])
    assert "0 created, 0 updated, 6 unchanged" in out.output

    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    ids = task_ids(client, project.id)
    annotate(client.sdk, ids["ex00"], project, "neu")
    annotate(annotator(ls_env), ids["ex00"], project, "pos")
    annotate(client.sdk, ids["ex01"], project, "pos")
    labelled = tmp_path / "labelled.parquet"
    out = runner.invoke(ls, ["pull", *common, "--corpus", str(corpus_path), "--out", str(labelled)])
    assert out.exit_code == 0, out.output
    assert "1 disagreements" in out.output
    frame = pl.read_parquet(labelled)
    assert dict(zip(frame["id"], frame["label"], strict=True))["ex01"] == "pos"

    out = runner.invoke(ls, ["status", *common, "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert (info["n_tasks"], info["n_annotated"], info["n_disagreements"]) == (6, 2, 1)
    assert ls_env.token not in out.output


def test_recipe_steps_push_then_pull_relabel_the_corpus(ls_env, project_title, tmp_path):
    corpus = pl.concat(
        [make_corpus(4, split="unlabeled"), make_corpus(6, split="test", labelled=True).tail(2)]
    )
    ctx = RunContext(run_dir=tmp_path)
    push = LabelStudioPush(project=project_title, labels=LABELS, only_unlabeled=True)
    pushed = push.apply(corpus, ctx)
    check_accounting(corpus, pushed)
    assert pushed.report.summary["n_created"] == 4
    assert pushed.corpus["labelstudio_push__pushed"].sum() == 4

    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    ids = task_ids(client, project.id)
    annotate(client.sdk, ids["ex00"], project, "pos")
    annotate(client.sdk, ids["ex01"], project, "neg")
    annotate(annotator(ls_env), ids["ex01"], project, "neg")

    pull = LabelStudioPull(project=project_title)
    pulled = pull.apply(pushed.corpus, ctx)
    check_accounting(pushed.corpus, pulled)
    rows = {r["id"]: r for r in pulled.corpus.to_dicts()}
    assert (rows["ex00"]["label"], rows["ex00"]["split"]) == ("pos", "train")
    assert (rows["ex01"]["label"], rows["ex01"]["labelstudio_pull__status"]) == ("neg", "agreed")
    assert rows["ex02"]["label"] is None and rows["ex02"]["split"] == "unlabeled"
    assert rows["ex04"]["split"] == "test"
    assert pulled.report.n_modified == 2
    assert (tmp_path / "labelstudio" / "annotations.parquet").exists()


def test_recipe_with_push_and_pull_runs_and_reruns_incrementally(ls_env, project_title, tmp_path):
    from assay.recipes.runner import run_recipe

    data = tmp_path / "reviews.csv"
    pl.DataFrame(
        {
            "id": ["r1", "r2", "r3"],
            "text": ["loved it", "hated it", "it was a film"],
            "label": ["pos", "neg", None],
        }
    ).write_csv(data)
    recipe = tmp_path / "sync.yaml"
    recipe.write_text(
        f"""
name: sync
input:
  source: {data}
  id_column: id
  labels: [neg, neu, pos]
steps:
  - labelstudio_push:
      project: {project_title}
      labels: [neg, neu, pos]
      only_unlabeled: true
  - labelstudio_pull:
      project: {project_title}
"""
    )
    run_dir = tmp_path / "run"
    first = run_recipe(recipe, run_dir)
    push_report = first.manifest["steps"][0]
    assert push_report["summary"]["n_created"] == 1
    assert ls_env.token not in (run_dir / "manifest.json").read_text()

    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    annotate(client.sdk, task_ids(client, project.id)["r3"], project, "neu")
    run_recipe(recipe, run_dir)
    corpus = pl.read_parquet(run_dir / "corpus.parquet")
    assert dict(zip(corpus["id"], corpus["label"], strict=True)) == {
        "r1": "pos",
        "r2": "neg",
        "r3": "neu",
    }
    state = json.loads((run_dir / "labelstudio" / "state.json").read_text())
    assert state["last_pull_summary"]["n_tasks_pulled"] == 1
