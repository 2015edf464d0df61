from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay import RunContext, from_records
from assay.augment.eda import EdaAugmenter, SynonymAugmenter
from assay.step import check_accounting, check_eval_protected

TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "the acting is superb and the story moves quickly .",
    "an ugly , tedious film that never finds its rhythm .",
    "the plot drags and the jokes fall flat .",
    "a charming comedy with a warm heart .",
    "dull , lifeless and far too long .",
]
LABELS = ["pos", "pos", "neg", "neg", "pos", "neg"]
SPLITS = ["train", "train", "train", "train", "dev", "test"]
IDS = ["t1", "t2", "t3", "t4", "d1", "x1"]


@pytest.fixture
def corpus():
    return from_records(TEXTS, LABELS, split=SPLITS, ids=IDS)


def ctx(seed: int = 13, name: str = "eda") -> RunContext:
    return RunContext(seed=seed).for_step(0, name)


def test_eda_augments_only_train_originals_and_leaves_them_untouched(corpus, wordnet_synonyms):
    step = EdaAugmenter(p=0.2)
    result = step.apply(corpus, ctx())
    check_accounting(corpus, result)
    check_eval_protected(corpus, result, step, protect=True)
    out = result.corpus
    assert out.head(corpus.height).equals(
        corpus.with_columns(pl.lit(None, pl.String).alias("eda__op"))
    )
    new = out.filter(pl.col("origin") == "augment.eda")
    assert set(new["parent_id"]) <= {"t1", "t2", "t3", "t4"}
    assert set(new["split"]) == {"train"}
    assert new["id"].is_unique().all()
    # ids are "{parent}~{step index}.{op}{k}", the op is recorded, labels are the parent's
    assert all(i.split("~")[1][:4] in {"0.sr", "0.ri", "0.rs", "0.rd"} for i in new["id"])
    assert (new["eda__op"] == new["id"].str.split("~").list.get(1).str.slice(2, 2)).all()
    parents = dict(zip(IDS, LABELS, strict=True))
    assert new["label"].to_list() == [parents[p] for p in new["parent_id"]]


def test_eda_mixes_the_four_operations_evenly(corpus, wordnet_synonyms):
    result = EdaAugmenter(p=0.2, n_per_row=4).apply(corpus, ctx())
    ops = result.corpus["eda__op"].drop_nulls().value_counts()
    assert dict(zip(ops["eda__op"], ops["count"], strict=True)) == {
        "sr": 4,
        "ri": 4,
        "rs": 4,
        "rd": 4,
    }


def test_same_seed_same_rows_other_seed_other_rows(corpus, wordnet_synonyms):
    a = EdaAugmenter(p=0.3).apply(corpus, ctx(1)).corpus
    b = EdaAugmenter(p=0.3).apply(corpus, ctx(1)).corpus
    c = EdaAugmenter(p=0.3).apply(corpus, ctx(2)).corpus
    assert a.equals(b)
    assert not a["text"].equals(c["text"])


@pytest.mark.parametrize(
    ("text", "word", "pos", "tag"),
    [
        ("it is a tedious one .", "tedious", "a", "JJ"),
        ("it is the film .", "film", "n", "NN"),
        ("it bores me .", "bores", "v", "VBZ"),  # the lexicon says NNS; context says VBZ
        ("so quickly .", "quickly", "r", "RB"),
        ("these films .", "films", "n", "NNS"),
    ],
)
def test_synonyms_come_from_wordnet_for_the_tagged_part_of_speech(
    text, word, pos, tag, wordnet_synonyms
):
    from assay.augment.inflect import inflect

    corpus = from_records([text], ["neg"], split="train", ids=["r"])
    step = SynonymAugmenter(p=1.0, n_per_row=6)
    out = step.apply(corpus, ctx(name="synonyms")).corpus.filter(pl.col("parent_id") == "r")
    assert out.height >= 2
    head, tail = text.split(f" {word} ")
    irregular = wordnet_synonyms.irregular
    allowed = {inflect(s, tag, irregular) for s in wordnet_synonyms(word, pos)} - {word}
    other_pos = {s for p in "nvar" if p != pos for s in wordnet_synonyms(word, p)} - allowed
    for new in out["text"]:
        assert new.startswith(head + " ") and new.endswith(" " + tail)
        replacement = new[len(head) + 1 : len(new) - len(tail) - 1]
        assert replacement in allowed
        assert replacement not in other_pos


def test_protected_terms_survive_every_augmentation(corpus, wordnet_synonyms):
    step = EdaAugmenter(p=0.5, n_per_row=8, protected=["witty", "superb"])
    out = step.apply(corpus, ctx()).corpus.filter(pl.col("parent_id").is_in(["t1", "t2"]))
    assert out.height > 0
    assert all(("witty" in t) or ("superb" in t) for t in out["text"])
    assert out.filter(pl.col("parent_id") == "t2")["text"].str.contains("superb").all()


def test_labels_and_max_per_row_select_rows(corpus, wordnet_synonyms):
    out = EdaAugmenter(p=0.2, labels=["neg"], n_per_row=4, max_per_row=2).apply(corpus, ctx())
    new = out.corpus.filter(pl.col("origin") == "augment.eda")
    assert set(new["parent_id"]) == {"t3", "t4"}
    assert new.group_by("parent_id").len()["len"].max() == 2


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                ["good", "bad", "film", "plot", ",", ".", "not", "the", "slow", "great", "very"]
            ),
            min_size=1,
            max_size=12,
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 2**16),
)
def test_invariants_ids_unique_accounting_balances_eval_untouched(words, seed):
    texts = [" ".join(w) for w in words]
    splits = ["train", "dev", "test"] * 3
    corpus = from_records(texts, ["a"] * len(texts), split=splits[: len(texts)])
    step = EdaAugmenter(p=0.3, pos=False)
    step_ctx = ctx(seed)
    result = step.apply(corpus, step_ctx)
    check_accounting(corpus, result)
    check_eval_protected(corpus, result, step, protect=True)
    assert result.corpus["id"].is_unique().all()
    new = result.corpus.filter(pl.col("origin") != "source")
    assert (~new["text"].is_in(corpus["text"].implode())).all()


@pytest.mark.slow
@pytest.mark.integration
def test_own_wordnet_reader_gives_nltk_synonyms_in_nltk_order(wordnet_synonyms):
    from assay.augment.wordnet import WordNetSynonyms

    nltk_synonyms = WordNetSynonyms()
    words = ("films tedious better ran geese best running quickly wolves axes bores left",)
    for word in words[0].split():
        for pos in (None, "n", "v", "a", "r"):
            assert wordnet_synonyms(word, pos) == nltk_synonyms(word, pos), (word, pos)


def test_synonyms_on_real_movie_reviews_change_about_p_of_the_words(shared_data, wordnet_synonyms):
    import difflib
    import re

    frame = pl.read_csv(shared_data / "mr" / "all.csv").head(600)
    corpus = from_records(frame["text"].to_list(), frame["label"].to_list(), split="train")
    result = SynonymAugmenter(p=0.1).apply(corpus, ctx(name="synonyms"))
    new = result.corpus.filter(pl.col("origin") == "augment.synonyms")
    assert new.height >= 590
    parents = dict(zip(corpus["id"], corpus["text"], strict=True))
    words = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
    total = changed = 0
    for parent_id, text in zip(new["parent_id"], new["text"], strict=True):
        a, b = words.findall(parents[parent_id].lower()), words.findall(text.lower())
        kept = sum(m.size for m in difflib.SequenceMatcher(None, a, b).get_matching_blocks())
        total += len(a)
        changed += len(a) - kept
    assert 0.07 <= changed / total <= 0.13
