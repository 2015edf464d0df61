from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import RunContext, from_records
from assay.curate.clean import CleanTransform
from assay.curate.split import SplitStep
from assay.step import check_accounting


def test_clean_normalises_and_records_drops():
    c = from_records(
        ["<p>Great&nbsp;film &amp; cast</p>", "ｆｕｌｌｗｉｄｔｈ text", "a\x00b  c", "x", "<br/>"],
        ["p", "p", "n", "n", "n"],
        ids=["html", "nfkc", "ctrl", "short", "empty"],
    )
    r = CleanTransform(min_chars=2).apply(c)
    check_accounting(c, r)
    out = dict(zip(r.corpus["id"], r.corpus["text"], strict=True))
    assert out["html"] == "Great film & cast"
    assert out["nfkc"] == "fullwidth text"
    assert out["ctrl"] == "a b c"
    assert dict(zip(r.dropped["id"], r.dropped["reason"], strict=True)) == {
        "short": "too_short",
        "empty": "empty_after_cleaning",
    }
    assert r.report.n_modified == 4


def test_clean_word_bounds_and_language_filter():
    pytest.importorskip("py3langid")
    c = from_records(
        [
            "this is a perfectly ordinary english sentence about films",
            "la película es muy buena y los actores hacen un trabajo excelente en cada escena",
            "two words",
        ],
        ["a", "a", "a"],
        ids=["en", "es", "short"],
    )
    r = CleanTransform(min_words=3, lang="en").apply(c)
    assert r.corpus["id"].to_list() == ["en"]
    assert dict(zip(r.dropped["id"], r.dropped["reason"], strict=True)) == {
        "es": "language:es",
        "short": "too_few_words",
    }


def corpus_with_groups(n=400):
    labels = ["a" if i % 4 else "b" for i in range(n)]  # 3:1 imbalance
    groups = [f"g{i // 4}" if i < 80 else None for i in range(n)]
    return from_records(
        [f"text {i}" for i in range(n)], labels, ids=[f"r{i}" for i in range(n)], group=groups
    )


def test_split_is_stratified_seeded_and_group_aware():
    c = corpus_with_groups()
    r1 = SplitStep(dev=0.1, test=0.2).apply(c, RunContext(seed=3).for_step(0, "split"))
    r2 = SplitStep(dev=0.1, test=0.2).apply(c, RunContext(seed=3).for_step(0, "split"))
    r3 = SplitStep(dev=0.1, test=0.2).apply(c, RunContext(seed=4).for_step(0, "split"))
    assert r1.corpus.equals(r2.corpus)
    assert not r1.corpus.equals(r3.corpus)
    out = r1.corpus
    counts = dict(out.group_by("split").len().iter_rows())
    assert abs(counts["test"] - 80) <= 4 and abs(counts["dev"] - 40) <= 4
    share_b = out.group_by("split").agg((pl.col("label") == "b").mean()).to_dict(as_series=False)
    assert all(abs(v - 0.25) < 0.05 for v in share_b["label"])
    straddling = (
        out.filter(pl.col("group").is_not_null()).group_by("group").agg(pl.col("split").n_unique())
    )
    assert straddling["split"].max() == 1


def test_split_keeps_existing_and_puts_unlabelled_aside():
    c = from_records(
        ["a", "b", "c", "d"],
        ["x", None, "x", "y"],
        ids=["1", "2", "3", "4"],
        split=["test", None, None, None],
        group=["g", None, "g", None],
    )
    out = SplitStep(dev=0.0, test=0.0).apply(c).corpus
    assert dict(zip(out["id"], out["split"], strict=True)) == {
        "1": "test",
        "2": "unlabeled",
        "3": "test",
        "4": "train",
    }


def test_split_on_partitions_of_whole_units_assigns_what_the_whole_corpus_does(actors_engine):
    from assay.curate.split import assign_splits

    rng = np.random.default_rng(7)
    n = 300
    c = from_records(
        [f"text {i}" for i in range(n)],
        rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]).tolist(),
        ids=[f"r{i}" for i in range(n)],
        split=rng.choice(["train", "dev", "test", None, None, None, None], n).tolist(),
        group=[f"g{x}" if x < 40 else None for x in rng.integers(0, 80, n)],
    )
    for stratify in (True, False):
        for by_group in (True, False):
            here = assign_splits(c, 0.1, 0.2, RunContext(seed=5), stratify, by_group)
            there = assign_splits(
                c, 0.1, 0.2, RunContext(seed=5), stratify, by_group, actors_engine
            )
            assert here.to_list() == there.to_list()
    # Per setting, the summaries and the assignments each went through a shuffle by unit.
    assert actors_engine.shuffles == ["_unit"] * 8
    # Given splits were kept on the engine too.
    out = c.with_columns(new=there)
    assert out.filter(pl.col("split").is_not_null())["new"].equals(
        out.filter(pl.col("split").is_not_null())["split"], check_names=False
    )
    assert set(out["new"].to_list()) <= {"train", "dev", "test", "unlabeled"}


def test_split_is_an_edit_whose_assignments_are_in_the_lineage():
    c = from_records(
        ["a", "b", "c"], ["x", None, "y"], ids=["1", "2", "3"], split=["test", None, None]
    )
    r = SplitStep(dev=0.0, test=0.0).apply(c)
    assert r.report.kind == "edit" and r.report.n_modified == 2
    rows = {(x["id"], x["field"], x["before"], x["after"]) for x in r.lineage.to_dicts()}
    assert rows == {("2", "split", None, "unlabeled"), ("3", "split", None, "train")}
    assert r.report.summary == {"splits": {"test": 1, "train": 1, "unlabeled": 1}, "assigned": 2}


def test_split_rejects_impossible_fractions():
    with pytest.raises(ValueError, match="below 1"):
        SplitStep(dev=0.6, test=0.5)


def test_language_filter_keeps_texts_it_is_unsure_about():
    pytest.importorskip("py3langid")
    c = from_records(["A taut, intelligent psychological drama."], ["a"], ids=["short_english"])
    assert CleanTransform(lang="en").apply(c).corpus.height == 1
    assert CleanTransform(lang="en", lang_min_confidence=0.0).apply(c).corpus.height == 0


@settings(max_examples=30, deadline=None)
@given(
    copies=st.lists(st.integers(1, 6), min_size=5, max_size=25),
    groups=st.integers(0, 4),
    seed=st.integers(0, 20),
)
def test_split_with_exact_clusters_never_puts_a_cluster_or_group_in_two_splits(
    copies, groups, seed
):
    texts, labels, group = [], [], []
    for k, n in enumerate(copies):
        for j in range(n):
            # copies differ in case and spacing only: one cluster after normalisation
            texts.append(f"Sentence  number {k} here" if j % 2 else f"sentence number {k} here")
            labels.append("pos" if (k + j) % 3 else "neg")
            group.append(f"g{k % groups}" if groups and k % 2 else None)
    corpus = from_records(texts, labels).with_columns(group=pl.Series(group, dtype=pl.String))
    out = SplitStep(dev=0.2, test=0.2, clusters="exact").apply(corpus, RunContext(seed=seed))
    frame = out.corpus.with_columns(
        _key=pl.col("text").str.to_lowercase().str.replace_all(r"\s+", " ")
    )
    for key in ("_key", "group"):
        spread = frame.drop_nulls(key).group_by(key).agg(pl.col("split").n_unique().alias("n"))
        assert spread["n"].max() in (None, 1)
    assert out.corpus["group"].equals(corpus["group"])  # the corpus keeps its own groups


def test_split_with_minhash_clusters_keeps_near_duplicates_together():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(500)]
    base = [" ".join(rng.choice(vocab, 14, replace=False)) for _ in range(40)]
    near = [t.rsplit(" ", 1)[0] + " extra" for t in base]  # last word changed: Jaccard ~0.86
    corpus = from_records(base + near, ["pos" if k % 2 else "neg" for k in range(80)])
    ctx = RunContext(seed=3)
    plain = SplitStep(dev=0.2, test=0.2).apply(corpus, ctx).corpus
    clustered = SplitStep(dev=0.2, test=0.2, clusters="minhash").apply(corpus, ctx).corpus

    def straddling(frame):
        pairs = frame.with_columns(k=pl.int_range(pl.len()) % 40)
        return int((pairs.group_by("k").agg(pl.col("split").n_unique())["split"] > 1).sum())

    assert straddling(plain) > 0  # without clusters, some near-duplicate pairs leak
    assert straddling(clustered) == 0
