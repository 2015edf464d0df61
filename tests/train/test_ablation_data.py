from __future__ import annotations

import polars as pl

from assay.corpus import from_records
from assay.train.ablation_data import duplicate_control, subsample_train


def test_duplicate_control_matches_rows_per_parent_and_label():
    base = from_records(
        ["good one", "bad one", "held out"],
        ["pos", "neg", "pos"],
        ids=["a", "b", "t"],
        split=["train", "train", "test"],
    )
    added = from_records(
        ["good one!", "good one?", "bad one!"],
        ["pos", "pos", "neg"],
        ids=["a~eda0", "a~eda1", "b~eda0"],
        split="train",
        parent_id=["a", "a", "b"],
        origin="augment.eda",
    )
    variant = pl.concat([base, added])
    control, replaced = duplicate_control(variant, base)
    assert replaced == 3
    twins = control.filter(pl.col("origin") == "ablation.dup").sort("id")
    assert twins["id"].to_list() == ["a~dup0", "a~dup1", "b~dup0"]
    assert twins["text"].to_list() == ["good one", "good one", "bad one"]
    assert twins["label"].to_list() == ["pos", "pos", "neg"]
    assert control.height == variant.height
    assert control.filter(pl.col("split") == "test")["id"].to_list() == ["t"]


def test_subsample_keeps_label_shares_and_eval_rows():
    n = 100
    labels = ["pos"] * 80 + ["neg"] * 20
    corpus = from_records(
        [f"text {i}" for i in range(n + 10)],
        [*labels, *["pos"] * 10],
        split=["train"] * n + ["test"] * 10,
    )
    small = subsample_train(corpus, 10, seed=1)
    train = small.filter(pl.col("split") == "train")
    assert train.height == 10
    assert train["label"].value_counts().sort("label")["count"].to_list() == [2, 8]
    assert small.filter(pl.col("split") == "test").height == 10
    assert subsample_train(corpus, 10, seed=1).equals(small)
