from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assay.audits.slices import read_predictions, slice_columns, slice_report
from assay.errors import InputError


def predictions() -> pl.DataFrame:
    """120 test rows: the `web` source is always wrong, `news` always right, `books` mostly
    right; a tiny `forum` slice of 3 rows is always wrong."""
    rows = []
    for i in range(120):
        label = "pos" if i % 2 else "neg"
        if i < 40:
            source, pred = "web", ("neg" if label == "pos" else "pos")
        elif i < 80:
            source, pred = "news", label
        elif i < 117:
            source, pred = "books", label if i % 10 else ("neg" if label == "pos" else "pos")
        else:
            source, pred = "forum", ("neg" if label == "pos" else "pos")
        words = 5 if i % 3 else 30
        rows.append(
            {
                "id": f"r{i}",
                "split": "test",
                "text": " ".join(["w"] * words),
                "label": label,
                "pred": pred,
                "lang": "en",
                "origin": "source",
                "source": source,
            }
        )
    dev = [{**rows[0], "id": "dev0", "split": "dev"}]
    return pl.DataFrame(rows + dev)


def test_metrics_per_slice_with_intervals_and_gaps():
    report = slice_report(predictions(), ["source"], rng=np.random.default_rng(0))
    table = {r["value"]: r for r in report.table.to_dicts()}
    assert report.split == "test"
    assert table["web"]["n"] == 40 and table["web"]["accuracy"] == 0.0
    assert table["news"]["accuracy"] == 1.0
    assert table["news"]["accuracy_low"] == table["news"]["accuracy_high"] == 1.0
    overall = report.overall["accuracy"]["estimate"]
    assert overall == pytest.approx((40 + 37 - 4) / 120)
    assert table["web"]["accuracy_gap"] == pytest.approx(-overall)
    low, high = table["books"]["accuracy_low"], table["books"]["accuracy_high"]
    assert low < table["books"]["accuracy"] < high


def test_worst_slices_respect_min_size_and_flag_intervals_below_overall():
    report = slice_report(predictions(), ["source"], rng=np.random.default_rng(0), min_size=20)
    worst = report.worst()
    assert worst["value"].to_list() == ["web", "books", "news"]  # forum has 3 rows only
    assert report.flagged()["value"].to_list() == ["web"]
    summary = report.to_dict()
    assert summary["flagged"] == [{"slice": "source", "value": "web"}]


def test_default_columns_derive_length_buckets_and_skip_single_valued_ones():
    frame = predictions()
    assert slice_columns(frame) == ["length_bucket", "source"]  # lang, origin: one value
    report = slice_report(frame, rng=np.random.default_rng(0))
    buckets = report.table.filter(pl.col("slice") == "length_bucket")
    assert sorted(buckets["n"].to_list()) == [40, 80]


def test_same_seed_same_intervals():
    a = slice_report(predictions(), ["source"], rng=np.random.default_rng(3)).table
    b = slice_report(predictions(), ["source"], rng=np.random.default_rng(3)).table
    assert a.equals(b)


def test_bad_input_fails_in_one_line(tmp_path):
    with pytest.raises(InputError, match="cannot slice by"):
        slice_report(predictions(), ["nope"], rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="split 'train'"):
        slice_report(predictions(), split="train", rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="no predictions"):
        read_predictions(tmp_path)


def test_reads_the_files_assay_train_writes(tmp_path):
    frame = predictions()
    for split in ("dev", "test"):
        frame.filter(pl.col("split") == split).write_parquet(
            tmp_path / f"predictions_{split}.parquet"
        )
    assert read_predictions(tmp_path).height == frame.height


def test_reads_the_predictions_of_train_and_evaluate():
    pytest.importorskip("sklearn")
    from assay import from_records
    from assay.train.evaluate import train_and_evaluate

    texts = [f"{w} film {i}" for i in range(30) for w in ("good", "bad")]
    labels = ["pos" if t.startswith("good") else "neg" for t in texts]
    splits = ["test" if i % 5 == 0 else "train" for i in range(len(texts))]
    origin = ["augment.eda" if i % 10 == 0 else "source" for i in range(len(texts))]
    corpus = from_records(texts, labels, split=splits, origin=origin)
    outcome = train_and_evaluate(corpus, seed=0)
    report = slice_report(outcome.predictions, rng=np.random.default_rng(0), min_size=1)
    assert set(report.table["slice"].to_list()) == {"origin"}
    assert report.table["n"].sum() == 12
    assert report.overall["accuracy"]["estimate"] == 1.0
