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
