from __future__ import annotations

import polars as pl
import pytest

from assay import RunContext, from_records
from assay.augment.domain_vocab import DomainVocabAugmenter, load_lexicon
from assay.augment.term_mining import TERMS_FILE, DomainTermsAudit, MineConfig, mine_terms
from assay.errors import InputError


def ctx(tmp_path=None, seed: int = 5) -> RunContext:
    return RunContext(seed=seed, run_dir=tmp_path).for_step(0, "domain_vocab")


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "heart attack: [myocardial infarction, MI]\nhigh blood pressure: hypertension\n"
    )
    return str(path)


def test_lexicon_substitution_respects_the_cap_per_term(lexicon):
    texts = [f"patient {k} had a heart attack last year" for k in range(10)]
    texts += [f"record {k} shows high blood pressure" for k in range(10)]
    corpus = from_records(texts, ["cardio"] * 20, split="train")
    step = DomainVocabAugmenter(lexicon=lexicon, max_per_term=3, n_per_row=2)
    result = step.apply(corpus, ctx())
    added = result.corpus.filter(pl.col("origin") == "augment.domain_vocab")
    uses = result.report.summary["term_uses"]
    assert uses == {"MI": 3, "hypertension": 3, "myocardial infarction": 3}
    assert added.height == 9
    assert added["text"].str.contains("myocardial infarction").sum() == 3
    assert added["text"].str.contains(r"\bMI\b").sum() == 3
    assert added["text"].str.contains("hypertension").sum() == 3
    assert not added["text"].str.contains("heart attack").any()
    assert (added["domain_vocab__op"] == "dvs").all()


def test_insert_mode_keeps_the_term_and_adds_a_variant(lexicon):
    corpus = from_records(["she had a heart attack in may"], ["cardio"], split="train", ids=["a"])
    step = DomainVocabAugmenter(lexicon=lexicon, mode="insert", n_per_row=3)
    added = step.apply(corpus, ctx()).corpus.filter(pl.col("parent_id") == "a")
    assert added.height >= 1
    for text in added["text"]:
        assert "heart attack" in text
        assert ("myocardial infarction" in text) or (" MI" in f" {text}")
        assert len(text.split()) > 7


def test_matching_is_whole_word_and_case_insensitive(lexicon):
    corpus = from_records(
        ["Heart attack risk", "heart attacker at large"], ["a", "b"], split="train", ids=["x", "y"]
    )
    out = DomainVocabAugmenter(lexicon=lexicon, n_per_row=4).apply(corpus, ctx()).corpus
    added = out.filter(pl.col("origin") != "source")
    assert set(added["parent_id"]) == {"x"}
    assert all(t.split()[0][0].isupper() for t in added["text"])


def test_csv_and_yaml_lexicons_load_and_bad_ones_say_why(tmp_path):
    csv_path = tmp_path / "lex.csv"
    csv_path.write_text("term,variant\nfever,pyrexia\nfever,febrile state\n")
    assert load_lexicon(csv_path) == {"fever": ["pyrexia", "febrile state"]}
    bad = tmp_path / "lex.txt"
    bad.write_text("x")
    with pytest.raises(InputError, match=r"expected a \.yaml"):
        load_lexicon(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_lexicon(tmp_path / "missing.yaml")


def test_mining_finds_the_planted_domain_terms(general_english, plant):
    planted = ["angioplasty", "troponin", "stent"]
    texts = plant(general_english(400), planted, 8)
    mined = mine_terms(texts, MineConfig(tokenizer="none", min_count=5))
    assert set(mined.filter(pl.col("chosen"))["term"]) == set(planted)


def test_mined_terms_reach_the_summary_and_the_work_dir(tmp_path, general_english, plant):
    texts = plant(general_english(300, seed=1), ["troponin", "angioplasty"], 6)
    splits = ["train"] * len(texts)
    # a term found only in the test split must not be mined (it would leak)
    texts += ["echocardiogram findings were normal"] * 6
    splits += ["test"] * 6
    corpus = from_records(texts, ["x"] * len(texts), split=splits)
    step = DomainTermsAudit(tokenizer="none")
    run = RunContext(seed=5, run_dir=tmp_path).for_step(0, "domain_terms")
    result = step.apply(corpus, run)
    terms = result.report.summary["domain_terms__terms"]
    assert set(terms) == {"troponin", "angioplasty"}
    written = (tmp_path / "work" / "domain_terms" / TERMS_FILE).read_text().split()
    assert written == terms
    assert result.report.n_added == 0
    assert result.corpus.equals(corpus)
    assert set(result.findings.columns) >= {"term", "count", "ref_count", "log_ratio", "chosen"}


@pytest.mark.integration
def test_fertility_uses_the_model_tokenizer(general_english, plant):
    texts = plant(general_english(300), ["troponin", "angioplasty"], 6)
    mined = mine_terms(texts, MineConfig(min_pieces=2))
    pieces = dict(zip(mined["term"], mined["pieces"], strict=True))
    assert pieces["troponin"] >= 2 and pieces["angioplasty"] >= 2


def test_editing_the_lexicon_file_changes_the_cache_key(lexicon):
    from pathlib import Path

    step = DomainVocabAugmenter(lexicon=lexicon)
    before = step.params["lexicon_sha256"]
    Path(lexicon).write_text("heart attack: [cardiac arrest]\n")
    assert DomainVocabAugmenter(lexicon=lexicon).params["lexicon_sha256"] != before


def test_symmetric_lexicon_makes_every_variant_interchangeable(tmp_path):
    path = tmp_path / "sets.yaml"
    path.write_text("heart attack: [myocardial infarction, MI]\n")
    corpus = from_records(["an MI was ruled out"], ["cardio"], split="train", ids=["m"])
    one_way = DomainVocabAugmenter(lexicon=str(path), n_per_row=4).apply(corpus, ctx())
    assert one_way.report.n_added == 0  # "MI" is only a variant
    both = DomainVocabAugmenter(lexicon=str(path), symmetric=True, n_per_row=4)
    added = both.apply(corpus, ctx()).corpus.filter(pl.col("parent_id") == "m")["text"]
    assert set(added) == {"an heart attack was ruled out", "an myocardial infarction was ruled out"}
