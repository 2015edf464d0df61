from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assay.audits.error_analysis import (
    confident_mistakes,
    confusion_pairs,
    error_report,
    fast_model_features,
    occlusion,
)
from assay.errors import InputError

CLASSES = ["neg", "neu", "pos"]


def predictions() -> pl.DataFrame:
    rows = [
        ("ok1", "fine", "pos", "pos", [0.1, 0.1, 0.8]),
        ("ok2", "fine", "neg", "neg", [0.7, 0.2, 0.1]),
        ("sure", "great plot, awful acting", "neg", "pos", [0.02, 0.03, 0.95]),
        ("mild", "meh", "neu", "pos", [0.3, 0.2, 0.5]),
        ("mid", "so so", "neu", "neg", [0.6, 0.3, 0.1]),
        ("twice", "not bad at all", "neg", "pos", [0.2, 0.1, 0.7]),
    ]
    return pl.DataFrame(
        rows,
        schema={
            "id": pl.String,
            "text": pl.String,
            "label": pl.String,
            "pred": pl.String,
            "proba": pl.List(pl.Float32),
        },
        orient="row",
    )


def test_confident_mistakes_come_first():
    found = confident_mistakes(predictions(), CLASSES, k=3)
    assert found["id"].to_list() == ["sure", "twice", "mid"]
    assert found["confidence"][0] == pytest.approx(0.95)
    assert found["true_proba"][0] == pytest.approx(0.02)


def test_confusion_pairs_ranked_with_shares():
    found = confusion_pairs(predictions())
    assert found.rows()[0] == ("neg", "pos", 2, pytest.approx(2 / 3))
    assert {(r[0], r[1]) for r in found.rows()} == {("neg", "pos"), ("neu", "neg"), ("neu", "pos")}


def test_multilabel_mistakes_and_confusion():
    frame = pl.DataFrame(
        {
            "id": ["a", "b"],
            "text": ["x", "y"],
            "label": [["red"], ["red", "blue"]],
            "pred": [["red"], ["red"]],
            "proba": [[0.1, 0.9], [0.2, 0.8]],
        }
    )
    found = confident_mistakes(frame, ["blue", "red"])
    assert found["id"].to_list() == ["b"]
    assert found["confidence"][0] == pytest.approx(0.8)  # 1 - p(blue)
    assert confusion_pairs(frame).rows() == [("blue|red", "red", 1, 1.0)]


def fit_fast():
    pytest.importorskip("sklearn")
    from assay.train.fast import FastModel

    texts, labels = [], []
    for i in range(30):
        texts.append(f"an excellent film number {i}")
        labels.append("pos")
        texts.append(f"a terrible film number {i}")
        labels.append("neg")
        texts.append(f"a film shown on day {i}")
        labels.append("neu")
    return FastModel(seed=0).fit(texts, labels), texts


def test_fast_model_features_name_the_planted_words():
    model, texts = fit_fast()
    found = fast_model_features(model, texts, k=3)
    top = {c: found.filter(pl.col("class") == c)["feature"].to_list() for c in CLASSES}
    assert "excellent" in top["pos"]
    assert "terrible" in top["neg"]
    assert all(w > 0 for w in found["weight"].to_list())


def test_fast_model_features_binary():
    pytest.importorskip("sklearn")
    from assay.train.fast import FastModel

    texts = [f"good movie {i}" for i in range(20)] + [f"bad movie {i}" for i in range(20)]
    model = FastModel(seed=0).fit(texts, ["pos"] * 20 + ["neg"] * 20)
    found = fast_model_features(model, texts, k=2)
    assert found.filter(pl.col("class") == "pos")["feature"][0] == "good"
    assert found.filter(pl.col("class") == "neg")["feature"][0] == "bad"


class GreatModel:
    """p(pos) is high exactly when the text holds 'great'."""

    classes_ = ("neg", "neu", "pos")

    def predict_proba(self, texts):
        return np.array(
            [[0.1, 0.1, 0.8] if "great" in t.split() else [0.4, 0.3, 0.3] for t in texts]
        )


def test_occlusion_finds_the_word_the_mistake_rests_on():
    mistakes = confident_mistakes(
        predictions().with_columns(text=pl.lit("a great plot , awful acting")), CLASSES
    )
    found = occlusion(GreatModel(), mistakes, rng=np.random.default_rng(0), sample=2)
    assert found["id"].n_unique() == 2
    first = found.filter(pl.col("pred") == "pos").group_by("id").first()
    assert set(first["word"].to_list()) == {"great"}
    assert first["drop"].to_list()[0] == pytest.approx(0.5)


def test_error_report_picks_features_for_the_fast_model_and_occlusion_otherwise():
    model, texts = fit_fast()
    frame = predictions()
    fast = error_report(frame, CLASSES, model=model, train_texts=texts)
    assert fast.features is not None and fast.occlusion is None
    other = error_report(frame, CLASSES, model=GreatModel(), rng=np.random.default_rng(0))
    assert other.features is None and other.occlusion is not None
    assert set(other.to_dict()) == {"mistakes", "confusion", "occlusion"}
    with pytest.raises(InputError, match="rng"):
        error_report(frame, CLASSES, model=GreatModel())
    with pytest.raises(InputError, match="attribution"):
        error_report(frame, CLASSES, attribution="lime")
    with pytest.raises(InputError, match="proba"):
        error_report(frame.drop("proba"), CLASSES)


def test_fast_model_features_multilabel_name_each_labels_words():
    pytest.importorskip("sklearn")
    from assay.train.fast import FastModel

    texts = [f"funny scene {i}" for i in range(15)] + [f"scary scene {i}" for i in range(15)]
    texts += [f"funny scary scene {i}" for i in range(15)]
    labels = [["comedy"]] * 15 + [["horror"]] * 15 + [["comedy", "horror"]] * 15
    model = FastModel(seed=0).fit(texts, labels)
    block, weights = model.word_weights()
    assert weights.shape == (2, len(block.vocabulary_))  # the word block's columns only
    found = fast_model_features(model, texts, k=3)
    comedy = found.filter(pl.col("class") == "comedy")["feature"].to_list()
    horror = found.filter(pl.col("class") == "horror")["feature"].to_list()
    assert "funny" in comedy and "scary" not in comedy
    assert "scary" in horror and "funny" not in horror
