"""Review batches: rows in doubt go to reviewers; their decisions come back as relabels."""

from __future__ import annotations

import polars as pl
import pytest

from assay.context import RunContext
from assay.corpus import from_records
from assay.curate.labelstudio import review
from assay.curate.labelstudio.client import Connection
from assay.curate.labelstudio.config import REJECT, init_project, review_config_xml
from assay.curate.labelstudio.steps import LabelStudioReview, LabelStudioReviewPull
from assay.errors import InputError
from assay.step import check_accounting

LABELS = ["neg", "neu", "pos"]
TRUTH = {f"ex{i:02d}": LABELS[i % 3] for i in range(12)}
# Planted: two wrong labels (the suggestion is right), one right label flagged by mistake,
# one example the reviewer rejects.
WRONG = {"ex01": "pos", "ex05": "neg"}
FLAGGED = ["ex01", "ex05", "ex06", "ex10"]


def noisy_corpus() -> pl.DataFrame:
    ids = list(TRUTH)
    given = [WRONG.get(i, TRUTH[i]) for i in ids]
    corpus = from_records(
        [f"example sentence number {i}" for i in range(12)], given, ids=ids, split="train"
    )
    return corpus.with_columns(
        label_noise__review=pl.col("id").is_in(FLAGGED),
        label_noise__is_issue=pl.col("id").is_in(FLAGGED),
        label_noise__suggested=pl.col("id").replace_strict(TRUTH, default=None),
        label_noise__score=pl.when(pl.col("id").is_in(FLAGGED)).then(0.1).otherwise(0.9),
    )


def test_review_rows_come_from_label_noise_columns_with_given_and_suggested_labels():
    rows = review.review_rows(noisy_corpus())
    assert rows["id"].to_list() == FLAGGED
    got = {r["id"]: (r["given"], r["suggested"], r["reason"]) for r in rows.to_dicts()}
    assert got["ex01"] == ("pos", "neu", "label_noise")
    assert got["ex06"] == ("neg", "neg", "label_noise")


def test_review_rows_from_a_named_column_and_from_disagreements():
    corpus = noisy_corpus().with_columns(doubt=pl.col("id").is_in(["ex03"]))
    assert review.review_rows(corpus, "doubt")["id"].to_list() == ["ex03"]
    table = pl.DataFrame({"id": ["ex07", "ex02"], "consensus": ["neu", None]})
    rows = review.review_rows(corpus, "disagreement", disagreements=table)
    assert sorted(zip(rows["id"], rows["suggested"], strict=True)) == [
        ("ex02", None),
        ("ex07", "neu"),
    ]
    with pytest.raises(InputError, match="no label_noise__review or label_noise__is_issue"):
        review.review_rows(corpus.drop("label_noise__review", "label_noise__is_issue"))
    with pytest.raises(InputError, match="pull first"):
        review.review_rows(corpus, "disagreement")


def test_decisions_keep_relabel_or_reject_and_name_the_reviewers():
    corpus = noisy_corpus()
    consensus = pl.DataFrame(
        {"id": ["ex01", "ex06", "ex10", "ex05"], "label": ["neu", "neg", REJECT, None]}
    )
    annotations = pl.DataFrame(
        {
            "id": ["ex01", "ex06", "ex10", "ex05"],
            "annotator": ["r@x", "r@x", "s@x", "r@x"],
            "label": ["neu", "neg", REJECT, None],
            "skipped": [False, False, False, True],
            "created_at": ["2026-01-01T00:00:00.0Z"] * 4,
            "updated_at": ["2026-01-02T00:00:00.0Z"] * 4,
        }
    )
    got = review.decisions(corpus, consensus, annotations)
    assert got.select("id", "decision", "old_label", "new_label").rows() == [
        ("ex01", "relabel", "pos", "neu"),
        ("ex06", "keep", "neg", "neg"),
        ("ex10", "reject", "neu", None),
    ]
    assert got["reviewers"].to_list() == ["r@x", "r@x", "s@x"]
    columns, keep = review.apply_decisions(corpus, got, "rv")
    labels = dict(zip(columns["id"], columns["label"], strict=True))
    assert labels["ex01"] == "neu" and labels["ex05"] == "neg"
    assert corpus.filter(~keep)["id"].to_list() == ["ex10"]


def test_review_config_shows_the_given_label_and_a_reject_choice():
    xml = review_config_xml(LABELS)
    assert "$assay_given_label" in xml and f'"{REJECT}"' in xml
    with pytest.raises(InputError, match="reserved"):
        review_config_xml([*LABELS, REJECT])


@pytest.mark.slow
@pytest.mark.integration
def test_review_round_trip_corrects_planted_labels_in_the_lineage(ls_env, project_title, tmp_path):
    corpus = noisy_corpus()
    ctx = RunContext(run_dir=tmp_path)
    step = LabelStudioReview(project=project_title, model_version="noise-v1")
    pushed = step.apply(corpus, ctx)
    check_accounting(corpus, pushed)
    assert pushed.report.summary["n_created"] == 4
    again = step.apply(corpus, ctx)
    assert (again.report.summary["n_created"], again.report.summary["n_unchanged"]) == (0, 4)

    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS, review=True)
    tasks = {
        t["data"]["assay_id"]: t for t in client.tasks(project.id, include="id,data,predictions")
    }
    assert sorted(tasks) == FLAGGED
    data = tasks["ex01"]["data"]
    assert (data["assay_given_label"], data["assay_suggested_label"]) == ("pos", "neu")
    pred = client.sdk.predictions.list(task=tasks["ex01"]["id"])[0]
    assert (pred.model_version, pred.score) == ("noise-v1", pytest.approx(0.1))
    # The simulated reviewer: fixes the two wrong labels, confirms one, rejects one.
    decided = {"ex01": "neu", "ex05": "pos", "ex06": "neg", "ex10": REJECT}
    for example, label in decided.items():
        client.sdk.annotations.create(
            id=tasks[example]["id"], result=project.config.result(label), lead_time=1.0
        )

    pulled = LabelStudioReviewPull(project=project_title).apply(corpus, ctx)
    check_accounting(corpus, pulled)
    lineage = pulled.lineage.filter(pl.col("field") == "label").sort("id")
    assert lineage.select("id", "before", "after").rows() == [
        ("ex01", "pos", "neu"),
        ("ex05", "neg", "pos"),
    ]
    assert pulled.dropped.select("id", "reason").rows() == [("ex10", "review_rejected")]
    rows = {r["id"]: r for r in pulled.corpus.to_dicts()}
    assert rows["ex01"]["labelstudio_review_pull__reviewers"] == ls_env.username
    assert rows["ex06"]["labelstudio_review_pull__decision"] == "keep"
    assert rows["ex02"]["labelstudio_review_pull__decision"] is None
    assert {k: r["label"] for k, r in rows.items()} == {
        k: v for k, v in TRUTH.items() if k != "ex10"
    }


def test_review_command_pushes_once_and_pull_writes_the_corrections(
    ls_env, project_title, tmp_path
):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    source = tmp_path / "noisy.parquet"
    noisy_corpus().write_parquet(source)
    common = ["-p", project_title, "--dir", str(tmp_path / "sync"), "--quiet"]
    push = ["ls", "review", *common, "--corpus", str(source), "--out", str(tmp_path / "push")]
    first = CliRunner().invoke(main, push, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "4 review tasks created, 0 already there" in first.output
    again = CliRunner().invoke(main, push, catch_exceptions=False)
    assert "0 review tasks created, 4 already there" in again.output

    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS, review=True)
    tasks = {t["data"]["assay_id"]: t["id"] for t in client.tasks(project.id, include="id,data")}
    for example, label in {"ex01": "neu", "ex05": "pos", "ex06": "neg", "ex10": REJECT}.items():
        client.sdk.annotations.create(
            id=tasks[example], result=project.config.result(label), lead_time=1.0
        )

    run_dir = tmp_path / "pulled"
    pull = ["ls", "review", *common, "--corpus", str(source), "--pull", "--out", str(run_dir)]
    out = CliRunner().invoke(main, pull, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "4 rows reviewed: 1 kept, 2 relabelled, 1 rejected" in out.output
    lineage = pl.read_parquet(run_dir / "lineage.parquet").filter(pl.col("field") == "label")
    assert sorted(lineage.select("id", "before", "after").rows()) == [
        ("ex01", "pos", "neu"),
        ("ex05", "neg", "pos"),
    ]
    dropped = pl.read_parquet(run_dir / "dropped.parquet")
    assert dropped.select("id", "reason").rows() == [("ex10", "review_rejected")]
    assert pl.read_parquet(run_dir / "corpus.parquet").height == 11
    assert ls_env.token not in out.output + first.output
