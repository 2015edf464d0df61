from __future__ import annotations

import json

import polars as pl
import pytest

from assay import from_records
from assay.audits.quality import (
    QualityAudit,
    QualityConfig,
    quality_card,
    render_html,
    render_markdown,
)
from assay.context import RunContext
from assay.errors import InputError, RecipeError
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

# (id, text, label, split): every count of the card below is planted here.
ROWS = [
    ("a1", "the cat sat on the warm mat today", "pos", "train"),
    ("a2", "the cat sat on the warm mat today", "pos", "train"),  # exact copy within train
    ("a3", "The cat, sat on the WARM mat today!", "pos", "train"),  # normalised copy
    ("a4", "a happy sunny cat purrs on the sofa", "pos", "train"),
    ("a5", "happy cat happy day happy smile", "pos", "train"),
    ("a6", "", "neg", "train"),  # empty
    ("a7", "12345 !!! 678", "neg", "train"),  # symbols only (and short)
    ("a8", "awful", "neg", "train"),  # short
    ("a9", " ".join(["bad"] * 40), "neg", "train"),  # long (max_words 30)
    ("a10", "the dog barked at the awful rain all night", "neg", "train"),
    ("a11", "a sad grey dog in the cold rain", "neg", "train"),
    ("a12", "der Hund bellt die ganze Nacht und will nicht schlafen", "neg", "train"),
    ("t1", "the dog barked at the awful rain all night", "neg", "test"),  # exact across
    ("t2", "A happy sunny cat purrs on the sofa.", "pos", "test"),  # normalised across
    ("t3", "rain and cold make a sad dog", "neg", "test"),
    ("d1", "sunny mornings and a happy cat", "pos", "dev"),
]


def corpus(**extra):
    ids, texts, labels, splits = zip(*ROWS, strict=True)
    return from_records(texts, labels, ids=list(ids), split=list(splits), **extra)


CFG = QualityConfig(min_words=3, max_words=30, check_language=False)


def test_counts_and_imbalance_per_split():
    card = quality_card(corpus(), CFG).to_dict()
    splits = {s["split"]: s for s in card["splits"]}
    assert list(splits) == ["train", "dev", "test"]
    assert splits["train"]["labels"] == {"neg": 7, "pos": 5}
    assert splits["train"]["imbalance_ratio"] == pytest.approx(1.4)
    assert splits["test"]["labels"] == {"neg": 2, "pos": 1}
    assert splits["test"]["imbalance_ratio"] == pytest.approx(2.0)
    assert splits["dev"]["missing_labels"] == ["neg"]
    assert splits["dev"]["imbalance_ratio"] is None


def test_lengths_per_label_in_chars_and_words():
    lengths = quality_card(corpus(), CFG).to_dict()["lengths"]
    neg_words = next(x for x in lengths if x["label"] == "neg" and x["unit"] == "words")
    assert neg_words["rows"] == 9
    assert (neg_words["min"], neg_words["max"]) == (0, 40)
    pos_chars = next(x for x in lengths if x["label"] == "pos" and x["unit"] == "chars")
    assert pos_chars["max"] == max(len(t) for _, t, label, _ in ROWS if label == "pos")
    assert pos_chars["min"] == len("sunny mornings and a happy cat")


def test_duplicates_within_and_across_splits():
    card = quality_card(corpus(), CFG)
    dups = {d["split"]: d for d in card.to_dict()["duplicates"]}
    assert dups["train"]["exact_within"] == 1
    assert dups["train"]["normalized_within"] == 2  # includes the exact copy
    assert dups["train"]["exact_across"] == 1  # a10, also in test
    assert dups["train"]["normalized_across"] == 2  # a10 and a4
    assert dups["test"]["exact_across"] == 1
    assert dups["test"]["normalized_across"] == 2
    assert dups["dev"] == {
        "split": "dev",
        "exact_within": 0,
        "exact_across": 0,
        "normalized_within": 0,
        "normalized_across": 0,
    }
    found = card.findings
    exact = found.filter(pl.col("issue") == "exact_duplicate")
    assert sorted(exact["id"].to_list()) == ["a2", "t1"]
    assert exact.filter(pl.col("id") == "t1")["detail"].item() == "copy of a10 (train)"
    normalized = found.filter(pl.col("issue") == "normalized_duplicate")
    assert sorted(normalized["id"].to_list()) == ["a3", "t2"]


def test_flags_exactly_the_planted_rows():
    card = quality_card(corpus(), CFG)
    found = card.findings

    def ids(issue):
        return sorted(found.filter(pl.col("issue") == issue)["id"].to_list())

    assert ids("empty") == ["a6"]
    assert ids("symbols_only") == ["a7"]
    assert ids("short") == ["a8"]  # "12345 !!! 678" has three words
    assert ids("long") == ["a9"]
    assert ids("other_language") == []
    flags = card.to_dict()["flags"]
    assert (flags["empty"], flags["short"], flags["long"], flags["symbols_only"]) == (1, 1, 1, 1)
    assert flags["language_checked"] is False


def test_other_language_rows_by_langid():
    pytest.importorskip("py3langid")
    card = quality_card(corpus(), QualityConfig(min_words=3, max_words=30))
    found = card.findings.filter(pl.col("issue") == "other_language")
    assert found["id"].to_list() == ["a12"]
    assert found["detail"].item().startswith("de ")
    assert card.to_dict()["flags"]["language_checked"] is True


def test_flags_in_batches_on_an_engine_give_the_same_card(actors_engine):
    pytest.importorskip("py3langid")
    cfg = QualityConfig(min_words=3, max_words=30)
    local = quality_card(corpus(), cfg)
    actors_engine.map_batches = _in_batches_of(actors_engine, 5)
    remote = quality_card(corpus(), cfg, engine=actors_engine)
    assert actors_engine.batches == [5, 5, 5, 1]  # the flags ran batch by batch
    assert remote.findings.equals(local.findings)
    assert remote.to_dict() == local.to_dict()
    found = remote.findings.filter(pl.col("issue").is_in(["other_language", "long"]))
    assert sorted(found["id"].to_list()) == ["a12", "a9"]


def _in_batches_of(engine, size):
    plain = engine.map_batches

    def map_batches(table, fn, **kw):
        return plain(table, fn, **{**kw, "batch_size": size})

    return map_batches


def test_vocabulary_and_typical_words_per_label():
    vocab = quality_card(corpus(), CFG).to_dict()["vocabulary"]
    assert vocab["tokens"] > vocab["types"] > 0
    assert vocab["ttr"] == pytest.approx(vocab["types"] / vocab["tokens"], abs=1e-4)
    typical = vocab["typical_words"]
    pos_words = [x["word"] for x in typical if x["label"] == "pos"]
    neg_words = [x["word"] for x in typical if x["label"] == "neg"]
    assert pos_words[0] in {"happy", "cat"}
    assert "happy" in pos_words and "happy" not in neg_words
    assert neg_words[0] == "bad"
    assert all(x["z"] > 0 for x in typical)


def test_label_noise_summary_when_the_columns_are_present():
    n = len(ROWS)
    flagged = [i in (0, 9) for i in range(n)]
    suggested = ["neg" if i == 0 else "pos" if i == 9 else None for i in range(n)]
    frame = corpus().with_columns(
        label_noise__is_issue=pl.Series(flagged),
        label_noise__suggested=pl.Series(suggested, dtype=pl.String),
        label_noise__score=pl.Series([0.5] * n),
    )
    noise = quality_card(frame, CFG).to_dict()["label_noise"]
    assert (noise["scored"], noise["flagged"]) == (n, 2)
    pairs = {(p["given"], p["suggested"]): p["rows"] for p in noise["suggested_pairs"]}
    assert pairs == {("pos", "neg"): 1, ("neg", "pos"): 1}
    assert quality_card(corpus(), CFG).to_dict()["label_noise"] is None


def test_multilabel_rows_count_for_each_label():
    frame = from_records(
        ["red and blue things", "only red here now", "blue sky all day"],
        [["red", "blue"], ["red"], ["blue"]],
        ids=["m1", "m2", "m3"],
        split="train",
    )
    card = quality_card(frame, CFG).to_dict()
    assert card["splits"][0]["labels"] == {"blue": 2, "red": 2}
    assert card["vocabulary"]["tokens"] == 12


def test_step_attaches_issue_columns_and_is_deterministic():
    step = QualityAudit(min_words=3, max_words=30, check_language=False)
    valid = corpus().filter(pl.col("id") != "a6")  # a corpus has no empty texts
    first = run_steps(valid, [step], RunContext(seed=7))
    second = run_steps(valid, [step], RunContext(seed=7))
    assert first.corpus.equals(second.corpus)
    out = first.corpus.sort("id")
    issues = dict(zip(out["id"].to_list(), out["quality__issues"].to_list(), strict=True))
    assert issues["a7"] == "symbols_only"
    assert issues["a2"] == "exact_duplicate"
    assert issues["a1"] is None
    assert out.height == len(ROWS) - 1
    assert "symbols_only" in first.findings["00_quality"]["issue"].to_list()


def test_renderers_give_html_and_markdown_without_external_assets():
    card = quality_card(corpus(), CFG)
    fragment = render_html(card.findings, card.to_dict())
    assert "<table>" in fragment and "<svg" in fragment
    assert "http://" not in fragment and "https://" not in fragment
    assert "a6" in fragment  # an example of the empty rows
    assert "| split |" in render_markdown(card.findings, card.to_dict())
    assert card._repr_html_() == fragment


def test_bad_config_and_bad_input_fail_in_one_line():
    with pytest.raises(RecipeError, match="min_words"):
        parse_step({"quality": {"min_words": 0}}, "steps[0]")
    with pytest.raises(InputError, match="split"):
        quality_card(pl.DataFrame({"id": ["x"], "text": ["y"], "label": ["z"]}))


def test_cli_prints_the_card_and_json(tmp_path):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    path = tmp_path / "corpus.parquet"
    corpus().write_parquet(path)
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "quality", str(path), "--json", "--max-words", "30"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["flags"]["long"] == 1
    findings = tmp_path / "flagged.parquet"
    result = runner.invoke(main, ["audit", "quality", str(path), "--findings", str(findings)])
    assert result.exit_code == 0, result.output
    assert "duplicates" in result.output
    assert pl.read_parquet(findings).height > 0
