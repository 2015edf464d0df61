from __future__ import annotations

import json

import pytest

pytest.importorskip("sklearn")

from assay.corpus import from_records
from assay.train.evaluate import train_and_evaluate


def corpus():
    # Planted: two dev rows are unlearnable ("meh" appears nowhere in training), so dev
    # accuracy is 0.75 and its interval must be wide; test is perfect.
    texts = ["great fun", "dull mess"] * 15 + ["great", "dull", "meh", "meh", "fun", "mess",
             "great fun", "dull mess"]  # fmt: skip
    labels = ["pos", "neg"] * 15 + ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"]
    split = ["train"] * 30 + ["dev"] * 4 + ["test"] * 4
    return from_records(texts, labels, split=split)


def test_metrics_json_written_by_the_library_carries_intervals(tmp_path):
    outcome = train_and_evaluate(corpus(), model="fast", seed=3, out_dir=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["intervals"] == outcome.intervals
    assert set(saved["intervals"]) == {"dev", "test"}
    for split in ("dev", "test"):
        for metric in ("accuracy", "macro_f1"):
            ci = saved["intervals"][split][metric]
            assert ci["low"] <= ci["estimate"] <= ci["high"]
            assert ci["estimate"] == pytest.approx(saved["metrics"][split][metric])
    assert saved["intervals"]["test"]["accuracy"]["low"] == 1.0
    assert (
        saved["intervals"]["dev"]["accuracy"]["high"] - saved["intervals"]["dev"]["accuracy"]["low"]
        > 0.2
    )


def test_intervals_are_seeded_and_skipped_when_nothing_is_written():
    assert train_and_evaluate(corpus()).intervals == {}
    a = train_and_evaluate(corpus(), seed=1, intervals=True).intervals
    b = train_and_evaluate(corpus(), seed=1, intervals=True).intervals
    assert a == b and set(a) == {"dev", "test"}


def leaky_corpus(n_train: int = 120, n_leaked: int = 40, n_clean: int = 40):
    """Train rows of unique nonsense words with random labels: nothing generalises. The
    first `n_leaked` test rows are verbatim train rows (the model memorised them); the
    other test rows are unseen, so the model can only guess there."""
    import numpy as np

    rng = np.random.default_rng(7)
    labels = [str(x) for x in rng.choice(["pos", "neg"], n_train + n_clean)]
    texts = [f"w{i}a w{i}b w{i}c" for i in range(n_train + n_clean)]
    test_texts = texts[:n_leaked] + texts[n_train:]
    test_labels = labels[:n_leaked] + labels[n_train:]
    return from_records(
        texts[:n_train] + test_texts,
        labels[:n_train] + test_labels,
        split=["train"] * n_train + ["test"] * len(test_texts),
    )


def test_clean_subset_metrics_show_what_a_marked_leak_was_worth(tmp_path):
    import assay

    marked = assay.run(
        {"name": "leaky", "steps": [{"leakage": {"methods": ["exact"], "action": "mark_eval"}}]},
        tmp_path / "run",
        corpus=assay.from_frame(leaky_corpus(), split="split"),
    ).pipeline.corpus
    assert marked["leakage__leaked"].sum() == 40
    outcome = train_and_evaluate(marked, model="fast", seed=0, intervals=True)
    test = outcome.metrics["test"]
    clean = test["clean"]
    assert clean["n"] == 40 and clean["n_leaked"] == 40
    # Memorised rows are right, unseen ones a coin flip: the full score overstates the model.
    assert test["accuracy"] > clean["accuracy"] + 0.2
    assert set(outcome.intervals) == {"test", "test:clean"}
    assert outcome.intervals["test:clean"]["accuracy"]["estimate"] == pytest.approx(
        clean["accuracy"]
    )
    # Without marks there is no clean subset.
    plain = train_and_evaluate(leaky_corpus(), model="fast", seed=0, intervals=True)
    assert "clean" not in plain.metrics["test"] and set(plain.intervals) == {"test"}
