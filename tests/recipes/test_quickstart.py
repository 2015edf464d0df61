"""The README's first command on real data: the whole loop ends on the ablation table and
the report's path, and a second run comes from the cache."""

from __future__ import annotations

import json

import polars as pl
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_quickstart_ends_on_the_ablation_table_and_the_report_path(quickstart_runs):
    run_dir = quickstart_runs["run_dir"]
    # the report's path on stdout, the tables on stderr
    assert quickstart_runs["first"]["stdout"].strip() == str(run_dir / "report.html")
    out = quickstart_runs["first"]["stderr"]
    for arm in ("baseline", "+synonyms", "+synonyms [duplicate control]", "+back_translation",
                "+back_translation [duplicate control]", "+label_noise drop", "+reweight"):  # fmt: skip
        assert f" {arm} " in out
    report = json.loads((run_dir / "ablation.json").read_text())
    assert report["seeds"] == [0, 1, 2] and len(report["arms"]) == 7
    for arm in report["arms"]:
        assert 0.5 < arm["score"] < 1  # a real sentiment model, not chance
        if arm["kind"] != "baseline":
            assert arm["delta_low"] <= arm["delta"] <= arm["delta_high"]


def test_quickstart_corpus_accounts_for_every_row_and_every_synthetic_row(quickstart_runs):
    run_dir = quickstart_runs["run_dir"]
    corpus = pl.read_parquet(run_dir / "corpus.parquet")
    dropped = pl.read_parquet(run_dir / "dropped.parquet")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    books = manifest["accounting"]
    real = corpus.filter(pl.col("parent_id").is_null())
    lost = dropped.filter(~pl.col("generated"))
    assert real.height + lost.height == books["rows_read"] == 10_605
    synthetic = corpus.filter(pl.col("parent_id").is_not_null())
    assert synthetic.height == books["added"] > 10_000
    # generated rows the augmenters rejected are in dropped.parquet too, with their reason
    rejected = dropped.filter(pl.col("generated"))
    assert rejected.height == books["generated_rejected"] > 0
    assert set(rejected["step"].unique().to_list()) <= {"synonyms", "back_translation"}
    assert synthetic["split"].unique().to_list() == ["train"]
    assert synthetic["parent_id"].is_in(real["id"]).all()
    origins = set(synthetic["origin"].str.split(":").list.first().unique().to_list())
    assert origins == {"augment.synonyms", "augment.back_translation"}


def test_quickstart_rerun_comes_from_the_cache(quickstart_runs):
    first, second = quickstart_runs["first"]["seconds"], quickstart_runs["second"]["seconds"]
    assert second < 0.5 * first, (first, second)
    assert second < 60
