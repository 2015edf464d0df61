from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from assay.errors import InputError
from assay.train.metrics import (
    classification_report,
    expected_calibration_error,
    length_bucket,
    slice_metrics,
)

CLASSES = ["a", "b", "c"]


def test_report_matches_sklearn_on_random_predictions():
    rng = np.random.default_rng(0)
    y = rng.choice(CLASSES, 300).tolist()
    p = rng.choice(CLASSES, 300).tolist()
    rep = classification_report(y, p, CLASSES)
    assert rep["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert rep["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert rep["confusion"]["matrix"] == confusion_matrix(y, p, labels=CLASSES).tolist()
    per = f1_score(y, p, average=None, labels=CLASSES)
    assert [rep["per_class"][c]["f1"] for c in CLASSES] == pytest.approx(per.tolist())


def test_multilabel_report_gives_subset_accuracy_and_macro_f1():
    y = [["a"], ["a", "b"], [], ["c"]]
    p = [["a"], ["a"], [], ["b"]]
    rep = classification_report(y, p, CLASSES)
    assert rep["accuracy"] == pytest.approx(0.5)
    # a: tp 2 -> f1 1.0; b: fn 1, fp 1 -> 0; c: fn 1 -> 0
    assert rep["macro_f1"] == pytest.approx(1 / 3)


def test_ece_is_zero_when_calibrated_and_large_when_overconfident():
    correct = np.array([1, 1, 0, 0] * 25, dtype=float)
    half = np.tile([[0.5, 0.5]], (100, 1))
    sure = np.tile([[0.99, 0.01]], (100, 1))
    assert expected_calibration_error(half, correct) == pytest.approx(0.0)
    assert expected_calibration_error(sure, correct) == pytest.approx(0.49)


def test_unknown_eval_label_is_a_clear_error():
    with pytest.raises(InputError, match="never saw"):
        classification_report(["a", "z"], ["a", "a"], CLASSES)


def test_slices_by_column_and_length_bucket():
    frame = pl.DataFrame(
        {
            "text": ["one two", "w " * 30, "three", "w " * 12],
            "label": ["a", "b", "a", "b"],
            "pred": ["a", "a", "a", "b"],
            "lang": ["en", "en", "de", "de"],
        }
    )
    by_lang = slice_metrics(frame, "lang", CLASSES)
    assert dict(zip(by_lang["value"], by_lang["accuracy"], strict=True)) == {"de": 1.0, "en": 0.5}
    by_len = slice_metrics(frame, "length_bucket", CLASSES)
    assert by_len["n"].sum() == 4
    assert length_bucket(frame["text"]).to_list()[0].startswith("short")


def test_train_and_evaluate_reports_slices_and_saves_predictions(tmp_path):
    from assay.corpus import from_records
    from assay.train.evaluate import train_and_evaluate

    pos, neg = ["great fun", "lovely and great"], ["dull mess", "awful and dull"]
    texts = pos * 10 + neg * 10 + ["great", "dull", "lovely fun", "awful mess"]
    labels = ["pos"] * 20 + ["neg"] * 20 + ["pos", "neg", "pos", "neg"]
    split = ["train"] * 40 + ["test"] * 4
    lang = ["en"] * 40 + ["en", "en", "de", "de"]
    source = ["a", "b"] * 22
    corpus = from_records(texts, labels, split=split, lang=lang, source=source)
    out = train_and_evaluate(corpus, model="fast", out_dir=tmp_path, slice_by=["source"])
    test = out.metrics["test"]
    assert test["accuracy"] == 1.0 and test["n"] == 4
    assert {r["value"] for r in test["slices"]["lang"]} == {"de", "en"}
    assert "origin" not in test["slices"]  # one value only
    assert [r["n"] for r in test["slices"]["source"]] == [2, 2]
    saved = pl.read_parquet(tmp_path / "predictions_test.parquet")
    assert saved.columns[:5] == ["id", "split", "text", "label", "lang"]
    assert saved["pred"].to_list() == ["pos", "neg", "pos", "neg"]
    assert (tmp_path / "metrics.json").exists()


def test_eval_class_missing_from_training_is_scored_not_an_error():
    from assay.corpus import from_records
    from assay.train.evaluate import train_and_evaluate

    texts = ["great fun", "dull mess"] * 10 + ["great", "meh"]
    labels = ["pos", "neg"] * 10 + ["pos", "neutral"]
    corpus = from_records(texts, labels, split=["train"] * 20 + ["test"] * 2)
    test = train_and_evaluate(corpus).metrics["test"]
    assert test["accuracy"] == 0.5
    assert test["per_class"]["neutral"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
    }
