from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from assay.audits.counterfactual import (
    ALL_PAIRS,
    TermPair,
    combined_swapper,
    counterfactual_report,
    load_terms,
    pair_swapper,
    wilson,
)
from assay.errors import InputError


class HeSheModel:
    """Planted bias: 'pos' exactly when the text says 'he' (and not 'she')."""

    classes_ = ("neg", "pos")

    def predict_proba(self, texts):
        out = []
        for t in texts:
            he = re.search(r"\bhe\b", t, re.IGNORECASE) is not None
            out.append([0.1, 0.9] if he else [0.8, 0.2])
        return np.array(out)


class LengthModel:
    """Unbiased: depends on the number of words only, never on which words."""

    classes_ = ("neg", "pos")

    def predict_proba(self, texts):
        return np.array([[0.3, 0.7] if len(t.split()) > 4 else [0.6, 0.4] for t in texts])


TEXTS = [
    "He said the film was great",
    "she said the film was awful",
    "The king and HIS men rode home",
    "my father met John at the station",
    "nothing gendered in this one at all",
    "he told his mother the news",
]
IDS = [f"t{i}" for i in range(len(TEXTS))]


def rows(report):
    return {r["pair"]: r for r in report.pairs.to_dicts()}


def test_swaps_whole_words_in_both_directions_and_keeps_case():
    swap = pair_swapper(TermPair("he", "she"))
    assert (
        swap("He said she left; the helmet stayed. HE")
        == "She said he left; the helmet stayed. SHE"
    )
    assert swap("hero shed") == "hero shed"
    assert combined_swapper(load_terms())("Mr Smith and his wife") == "Mrs Smith and her husband"


def test_planted_biased_model_flips_on_he_she_only():
    report = counterfactual_report(HeSheModel(), TEXTS, IDS)
    by_pair = rows(report)
    he = by_pair["he/she"]
    assert (he["texts"], he["flips"], he["flip_rate"]) == (3, 3, 1.0)
    assert he["low"] > 0.4 and he["high"] == 1.0
    assert he["mean_abs_delta"] == pytest.approx(0.7)
    others = [r for name, r in by_pair.items() if name != "he/she" and r["texts"] > 0]
    assert {r["pair"] for r in others} >= {"his/her", "king/queen", "father/mother", "john/mary"}
    assert all(r["flips"] == 0 for r in others)
    flipped = report.examples.filter(pl.col("pair") == "he/she")
    assert sorted(flipped["id"].to_list()) == ["t0", "t1", "t5"]
    assert set(report.examples["pair"].to_list()) == {"he/she", ALL_PAIRS}
    assert report.overall["pair"] == ALL_PAIRS
    assert report.overall["texts"] == 5  # every text but the ungendered one
    assert report.overall["flips"] == 3


def test_unbiased_model_never_flips():
    report = counterfactual_report(LengthModel(), TEXTS, IDS)
    affected = report.pairs.filter(pl.col("texts") > 0)
    assert affected.height > 0
    assert affected["flips"].sum() == 0
    assert report.overall["flip_rate"] == 0.0
    assert report.examples.height == 0
    assert affected["mean_abs_delta"].max() == 0.0


def test_pairs_without_texts_have_no_rate():
    report = counterfactual_report(LengthModel(), TEXTS, IDS)
    queen = rows(report)["prince/princess"]
    assert queen["texts"] == 0 and np.isnan(queen["flip_rate"])
    assert all(p["texts"] > 0 for p in report.to_dict()["pairs"])


def test_wilson_interval():
    low, high = wilson(3, 3)
    assert high == 1.0 and low == pytest.approx(0.4385, abs=1e-3)
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)


def test_user_terms_as_mapping_json_and_text(tmp_path):
    assert load_terms({"cat": "dog"}) == [TermPair("cat", "dog")]
    path = tmp_path / "terms.txt"
    path.write_text("# animals\ncat dog\nlion,tiger\n", encoding="utf-8")
    assert [p.name for p in load_terms(path)] == ["cat/dog", "lion/tiger"]
    js = tmp_path / "terms.json"
    js.write_text('{"pets": [["cat", "dog"]]}', encoding="utf-8")
    assert load_terms(js) == [TermPair("cat", "dog", "pets")]
    report = counterfactual_report(LengthModel(), ["my cat sleeps"], terms={"cat": "dog"})
    assert report.pairs["texts"].to_list() == [1]


def test_shipped_list_has_gender_words_and_names():
    pairs = load_terms()
    names = {p.name for p in pairs}
    assert {"he/she", "him/her", "his/her", "man/woman", "mr/mrs", "king/queen"} <= names
    assert {p.group for p in pairs} == {"gender", "names"}


def test_bad_term_lists_fail_in_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("he she they\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        load_terms(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_terms(tmp_path / "missing.json")
    with pytest.raises(InputError, match="itself"):
        load_terms({"he": "he"})
