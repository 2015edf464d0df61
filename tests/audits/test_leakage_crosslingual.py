from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assay import from_records, resources
from assay.audits.leakage import LeakageConfig, active_methods, find_leaks, summarize
from assay.augment.translate import ApertiumTranslator
from assay.errors import RecipeError
from assay.recipes.schema import parse_step

TEST_ROWS = {
    "te_leak": "the actors are wonderful and the story moved me to tears",
    "te_copy": "a dull and lifeless remake of a much better film",
    "te_clean": "the soundtrack is loud and the editing is far too fast",
}
TRAIN_ROWS = {
    "tr_copy": "a dull and lifeless remake of a much better film",  # same language: exact
    "tr_other": "my neighbour repaired the old bicycle in the garage",
    "tr_more": "prices at the market went up again this winter",
}


def corpus(leak_text: str) -> pl.DataFrame:
    ids = [*TRAIN_ROWS, "tr_leak", *TEST_ROWS]
    texts = [*TRAIN_ROWS.values(), leak_text, *TEST_ROWS.values()]
    n_train = len(TRAIN_ROWS) + 1
    return from_records(
        texts,
        ["neg", "neg", "pos", "pos", "pos", "neg", "neg"],
        ids=ids,
        split=["train"] * n_train + ["test"] * len(TEST_ROWS),
        lang=["en"] * len(TRAIN_ROWS) + ["es"] + ["en"] * len(TEST_ROWS),
    )


def pairs(findings: pl.DataFrame, method: str) -> set[tuple[str, str]]:
    hits = findings.filter(pl.col("method") == method)
    return set(zip(hits["eval_id"].to_list(), hits["other_id"].to_list(), strict=True))


class TableEncoder:
    """A stand-in for the multilingual encoder: texts listed as translations of each other
    share one direction, every other text gets its own."""

    def __init__(self, same: dict[str, str]) -> None:
        self.same = same

    def encode(self, texts):
        keys = sorted({self.same.get(t, t) for t in texts})
        out = np.zeros((len(texts), 512), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, keys.index(self.same.get(t, t))] = 1.0
        return out


SPANISH = "los actores son maravillosos y la historia me conmovió hasta las lágrimas"


@pytest.fixture
def table_encoder(monkeypatch):
    encoder = TableEncoder({SPANISH: TEST_ROWS["te_leak"]})
    monkeypatch.setattr(resources, "multilingual_encoder", lambda: encoder)
    return encoder


def test_runs_by_default_when_the_corpus_has_several_languages(table_encoder, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    findings = find_leaks(corpus(SPANISH))
    assert pairs(findings, "crosslingual") == {("te_leak", "tr_leak")}
    row = findings.filter(pl.col("method") == "crosslingual").row(0, named=True)
    assert row["span"] == "es -> en"
    assert row["pair"] == "train x test"
    assert row["score"] == pytest.approx(1.0)
    # the same-language copy is exact's, never crosslingual's
    assert ("te_copy", "tr_copy") in pairs(findings, "exact")


def test_off_for_one_language_or_when_switched_off(table_encoder):
    one_language = corpus(SPANISH).with_columns(lang=pl.lit("en"))
    assert "crosslingual" not in active_methods(one_language, LeakageConfig())
    assert "crosslingual" not in active_methods(corpus(SPANISH), LeakageConfig(crosslingual=False))
    assert "crosslingual" in active_methods(one_language, LeakageConfig(crosslingual=True))
    listed = LeakageConfig(methods=["exact", "crosslingual"])
    assert active_methods(one_language, listed) == ["exact", "crosslingual"]
    # forced on a one-language corpus: nothing to compare, no finding
    assert find_leaks(one_language, LeakageConfig(methods=["crosslingual"])).is_empty()


def test_summary_has_a_crosslingual_row_per_split_pair(table_encoder):
    cfg = LeakageConfig(crosslingual=True)
    frame = corpus(SPANISH)
    findings = find_leaks(frame, cfg)
    table = summarize(frame, findings, active_methods(frame, cfg))
    row = table.filter(pl.col("method") == "crosslingual").row(0, named=True)
    assert row == {
        "pair": "train x test",
        "method": "crosslingual",
        "eval_rows": 3,
        "affected": 1,
        "share": pytest.approx(1 / 3),
    }


def test_bad_configuration_is_one_clear_error():
    with pytest.raises(RecipeError, match="crosslingual is false"):
        parse_step({"leakage": {"methods": ["crosslingual"], "crosslingual": False}}, "steps[0]")
    with pytest.raises(RecipeError, match="crosslingual_threshold"):
        parse_step({"leakage": {"crosslingual_threshold": 1.5}}, "steps[0]")


@pytest.mark.slow
def test_planted_apertium_translation_of_a_test_row_is_found_only_by_crosslingual(tmp_path):
    translated = ApertiumTranslator(cache_root=tmp_path).translate(
        [TEST_ROWS["te_leak"]], "eng", "spa"
    )[0]
    assert translated != TEST_ROWS["te_leak"]
    findings = find_leaks(corpus(translated), LeakageConfig(crosslingual=True))
    assert pairs(findings, "crosslingual") == {("te_leak", "tr_leak")}
    others = findings.filter(pl.col("method").is_in(["exact", "normalized", "ngram", "minhash"]))
    assert "tr_leak" not in others["other_id"].to_list()
    assert "te_leak" not in others["eval_id"].to_list()
    assert ("te_copy", "tr_copy") in pairs(findings, "exact")
    assert findings.filter(pl.col("method") == "crosslingual")["score"][0] >= 0.7
