from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assay import RunContext, from_records
from assay.augment.domain_vocab import DomainVocabAugmenter
from assay.augment.guard import GuardConfig, register_guard_model
from assay.errors import StepError
from assay.step import check_accounting


class KeywordModel:
    """A fake classifier with the FastModel interface: 'awful' means neg, else pos."""

    def __init__(self, seed: int = 0) -> None:
        self.classes_: list[str] = []

    def fit(self, texts, labels, weights=None):
        self.classes_ = sorted(set(labels))
        return self

    def predict_proba(self, texts):
        neg = np.array([0.95 if "awful" in t else 0.1 for t in texts])
        return np.stack([neg, 1 - neg], axis=1)  # classes_ = ["neg", "pos"]


register_guard_model("keyword", KeywordModel)


@pytest.fixture
def corpus():
    texts = [
        "a great film with a great cast",
        "great acting and a moving story",
        "the plot is dull",
        "the jokes are stale",
    ]
    return from_records(
        texts, ["pos", "pos", "neg", "neg"], split="train", ids=["p1", "p2", "n1", "n2"]
    )


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "lexicon.yaml"
    # "awful" flips the label of a positive sentence; "superb" keeps it.
    path.write_text("great: [awful, superb]\n")
    return str(path)


def test_guard_drops_the_planted_label_flip_and_records_reason_and_score(corpus, lexicon):
    step = DomainVocabAugmenter(
        lexicon=lexicon, n_per_row=6, p=1.0, guard=GuardConfig(model="keyword")
    )
    result = step.apply(corpus, RunContext(seed=3).for_step(0, "domain_vocab"))
    check_accounting(corpus, result)
    added = result.corpus.filter(pl.col("origin") != "source")
    assert added.height > 0
    assert not added["text"].str.contains("awful").any()
    assert added["domain_vocab__guard_score"].min() >= 0.5
    assert set(result.dropped["reason"]) == {"guard_label"}
    dropped = result.dropped.filter(pl.col("reason") == "guard_label")
    assert dropped.height > 0
    assert dropped["text"].str.contains("awful").all()
    assert set(dropped["parent_id"]) <= {"p1", "p2"}
    assert (dropped["domain_vocab__guard_score"] < 0.5).all()
    assert dropped["id"].str.contains("-guard").all()
    assert dropped["generated"].all()
    assert result.report.summary["guard"]["dropped"] == dropped.height
    assert result.report.drop_reasons["guard_label"] == dropped.height


def test_max_drop_catches_a_fall_in_confidence(corpus, lexicon):
    guard = GuardConfig(model="keyword", min_confidence=0.0, max_drop=0.5)
    step = DomainVocabAugmenter(lexicon=lexicon, n_per_row=6, guard=guard)
    result = step.apply(corpus, RunContext(seed=3).for_step(0, "domain_vocab"))
    assert set(result.dropped["reason"]) == {"guard_confidence_drop"}


def test_guard_with_the_fast_model_drops_a_flipped_sentiment_word(tmp_path):
    pos = ["a wonderful film", "wonderful acting", "truly wonderful and warm", "a wonderful story"]
    neg = ["a terrible film", "terrible acting", "truly terrible and cold", "a terrible story"]
    texts = [f"{t} {k}" for k in range(6) for t in pos + neg]
    labels = (["pos"] * 4 + ["neg"] * 4) * 6
    corpus = from_records(texts, labels, split="train")
    path = tmp_path / "flip.csv"
    path.write_text("term,variant\nwonderful,terrible\n")
    guard = GuardConfig(min_confidence=0.5)
    step = DomainVocabAugmenter(lexicon=str(path), guard=guard)
    result = step.apply(corpus, RunContext(seed=1).for_step(0, "domain_vocab"))
    assert result.report.n_added == 0
    assert result.dropped.height == 24
    assert set(result.dropped["reason"]) == {"guard_label"}


def test_guard_needs_two_labels_to_train(lexicon):
    corpus = from_records(["a great film", "great fun"], ["pos", "pos"], split="train")
    step = DomainVocabAugmenter(lexicon=lexicon, guard=GuardConfig(model="keyword"))
    with pytest.raises(StepError, match="at least 2 labels"):
        step.apply(corpus, RunContext().for_step(0, "domain_vocab"))


def test_guard_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="treshold"):
        GuardConfig(treshold=0.4)


@pytest.mark.integration
@pytest.mark.slow
def test_similarity_guard_drops_a_generated_row_unrelated_to_its_parent(tmp_path):
    pytest.importorskip("sentence_transformers")
    corpus = from_records(
        ["the soup at this restaurant was cold", "the stew at this restaurant was bland"],
        ["neg", "neg"],
        split="train",
        ids=["soup", "stew"],
    )
    path = tmp_path / "lex.yaml"
    # "soup" -> "quarterly tax filing" changes what the text is about; "bland" -> "flavourless"
    # does not
    path.write_text("soup: quarterly tax filing\nbland: flavourless\n")
    guard = GuardConfig(model="none", similarity=0.8)
    step = DomainVocabAugmenter(lexicon=str(path), guard=guard)
    result = step.apply(corpus, RunContext(seed=2).for_step(0, "domain_vocab"))
    added = result.corpus.filter(pl.col("origin") != "source")
    dropped = result.dropped.filter(pl.col("reason") == "guard_similarity")
    assert added["text"].to_list() == ["the stew at this restaurant was flavourless"]
    assert dropped["text"].to_list() == ["the quarterly tax filing at this restaurant was cold"]
    assert dropped["parent_id"].to_list() == ["soup"]
    assert (dropped["domain_vocab__guard_similarity"] < 0.8).all()
    assert (added["domain_vocab__guard_similarity"] >= 0.8).all()


class MemoryModel:
    """A fake that is sure only about texts it was trained on (perfect memorisation)."""

    def __init__(self, seed: int = 0) -> None:
        self.seen: dict[str, str] = {}

    def fit(self, texts, labels, weights=None):
        self.classes_ = sorted(set(labels))
        self.seen = dict(zip(texts, labels, strict=True))
        return self

    def predict_proba(self, texts):
        out = np.full((len(texts), len(self.classes_)), 1 / len(self.classes_))
        for r, t in enumerate(texts):
            if t in self.seen:
                out[r] = [float(c == self.seen[t]) for c in self.classes_]
        return out


register_guard_model("memory", MemoryModel)


def test_cross_fitting_scores_each_parent_with_a_model_that_never_saw_it(corpus, lexicon):
    def run(folds):
        guard = GuardConfig(model="memory", min_confidence=0.0, max_drop=0.3, folds=folds)
        step = DomainVocabAugmenter(lexicon=lexicon, guard=guard)
        return step.apply(corpus, RunContext(seed=3).for_step(0, "domain_vocab"))

    # one model on all originals: the parents are memorised (P=1), their rewrites are not
    memorised = run(1)
    assert memorised.report.n_added == 0
    assert set(memorised.dropped["reason"]) == {"guard_confidence_drop"}
    # two folds: each parent is scored like its rewrites, by a model that never saw it
    assert run(2).report.n_added == 2


@pytest.mark.integration
def test_guard_with_the_probe_drops_a_flipped_sentiment_word(tmp_path):
    pytest.importorskip("sentence_transformers")
    pos = ["a wonderful film", "wonderful acting", "truly wonderful and warm", "a wonderful story"]
    neg = ["a terrible film", "terrible acting", "truly terrible and cold", "a terrible story"]
    texts = [f"{t} {k}" for k in range(6) for t in pos + neg]
    corpus = from_records(texts, (["pos"] * 4 + ["neg"] * 4) * 6, split="train")
    path = tmp_path / "flip.csv"
    path.write_text("term,variant\nwonderful,terrible\n")
    step = DomainVocabAugmenter(lexicon=str(path), guard=GuardConfig(model="probe"))
    result = step.apply(corpus, RunContext(seed=1).for_step(0, "domain_vocab"))
    assert result.report.n_added == 0
    assert set(result.dropped["reason"]) == {"guard_label"} and result.dropped.height == 24
