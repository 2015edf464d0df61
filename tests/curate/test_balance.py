from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from assay import from_records
from assay.context import RunContext
from assay.curate.balance import BalanceEdit
from assay.errors import RecipeError, StepError
from assay.recipes.catalog import load_steps
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

load_steps()  # the augmenters augment_to asks for, by registry name

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "zeta"]


def imbalanced(n_major: int = 60, n_minor: int = 10, n_mid: int = 0, seed: int = 0):
    """Train rows 'maj' x n_major, 'min' x n_minor (and 'mid'), plus dev/test of both."""
    rng = np.random.default_rng(seed)
    texts, labels, splits = [], [], []
    plan = [("maj", n_major, "train"), ("min", n_minor, "train"), ("mid", n_mid, "train")]
    plan += [("maj", 5, "dev"), ("min", 5, "test")]
    for label, n, split in plan:
        for _ in range(n):
            texts.append(" ".join(rng.choice(WORDS, 6)) + f" {len(texts)}")
            labels.append(label)
            splits.append(split)
    ids = [f"r{i}" for i in range(len(texts))]
    return from_records(texts, labels, ids=ids, split=splits)


def run(corpus, **params):
    return run_steps(corpus, [BalanceEdit(**params)], RunContext(seed=5))


def train_counts(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame.filter(pl.col("split") == "train")["label"].value_counts()
    return dict(zip(counts["label"].to_list(), counts["count"].to_list(), strict=True))


def weight_totals(frame: pl.DataFrame) -> dict[str, float]:
    sums = frame.filter(pl.col("split") == "train").group_by("label").agg(pl.col("weight").sum())
    return dict(zip(sums["label"].to_list(), sums["weight"].to_list(), strict=True))


def test_report_gives_distribution_and_imbalance_ratio():
    res = run(imbalanced(n_mid=20))
    summary = res.reports[0].summary
    assert summary["distribution_before"] == {"maj": 60, "mid": 20, "min": 10}
    assert summary["imbalance_before"] == 6.0
    assert res.corpus.equals(imbalanced(n_mid=20))


def test_inverse_reweight_gives_every_class_equal_total_weight():
    corpus = imbalanced(n_mid=20)
    out = run(corpus, strategy="reweight").corpus
    totals = weight_totals(out)
    assert totals == pytest.approx({"maj": 30.0, "mid": 30.0, "min": 30.0}, rel=1e-5)
    train = out.filter(pl.col("split") == "train")
    assert train["weight"].mean() == pytest.approx(1.0, rel=1e-5)
    assert (out.filter(pl.col("split") != "train")["weight"] == 1.0).all()


def test_effective_number_weights_match_the_formula():
    corpus = imbalanced(n_mid=20)
    out = run(corpus, strategy="reweight", weighting="effective", beta=0.9).corpus
    raw = {c: (1 - 0.9) / (1 - 0.9**n) for c, n in {"maj": 60, "mid": 20, "min": 10}.items()}
    scale = 90 / sum(raw[c] * n for c, n in {"maj": 60, "mid": 20, "min": 10}.items())
    got = out.filter(pl.col("split") == "train").group_by("label").agg(pl.col("weight").first())
    got = dict(zip(got["label"].to_list(), got["weight"].to_list(), strict=True))
    assert got == pytest.approx({c: w * scale for c, w in raw.items()}, rel=1e-5)
    assert got["min"] > got["mid"] > got["maj"]


def test_given_weights_are_written_as_given_and_lineage_kept():
    res = run(imbalanced(), strategy="reweight", weighting="given", weights={"maj": 1, "min": 4})
    out = res.corpus.filter(pl.col("split") == "train")
    assert set(out.filter(pl.col("label") == "min")["weight"].to_list()) == {4.0}
    assert set(out.filter(pl.col("label") == "maj")["weight"].to_list()) == {1.0}
    assert res.lineage.filter(pl.col("field") == "weight").height == 10


def test_multilabel_reweight_averages_the_labels_weights():
    corpus = from_records(
        ["a1", "a2", "a3", "ab"], [["a"], ["a"], ["a"], ["a", "b"]], ids=list("1234"), split="train"
    )
    out = run(corpus, strategy="reweight").corpus.sort("id")
    # n_a = 4, n_b = 1: w_a = 1/4, w_b = 1; row 4 = mean = 0.625; scaled to mean 1.
    raw = np.array([0.25, 0.25, 0.25, 0.625])
    assert out["weight"].to_numpy() == pytest.approx(raw * 4 / raw.sum(), rel=1e-5)
    with pytest.raises(StepError, match="multi-label"):
        run(corpus, strategy="undersample")


def test_undersample_drops_majority_rows_to_the_ratio_and_says_why():
    corpus = imbalanced()
    res = run(corpus, strategy="undersample", ratio=2.0)
    assert train_counts(res.corpus) == {"maj": 20, "min": 10}
    assert set(res.dropped["reason"].to_list()) == {"undersampled"}
    assert set(res.dropped["label"].to_list()) == {"maj"}
    assert set(res.dropped["split"].to_list()) == {"train"}
    assert res.reports[0].summary["imbalance_after"] == 2.0


def test_oversample_adds_copies_with_ids_derived_from_their_parents():
    corpus = imbalanced()
    res = run(corpus, strategy="oversample")
    assert train_counts(res.corpus) == {"maj": 60, "min": 60}
    assert res.reports[0].summary["n_copies"] == 50
    copies = res.corpus.filter(~pl.col("id").is_in(corpus["id"].implode()))
    assert copies.height == 50 and copies["id"].is_unique().all()
    minority = corpus.filter(pl.col("label") == "min")
    assert set(copies["parent_id"].to_list()) <= set(minority["id"].to_list())
    assert all(i.startswith(f"{p}~0.os") for i, p in copies.select("id", "parent_id").iter_rows())
    texts = dict(minority.select("id", "text").iter_rows())
    assert all(texts[p] == t for p, t in copies.select("parent_id", "text").iter_rows())
    assert (copies["label"] == "min").all() and (copies["split"] == "train").all()
    # the originals are untouched: nothing in the lineage, weights as they were
    assert res.lineage.height == 0
    assert weight_totals(res.corpus) == pytest.approx({"maj": 60.0, "min": 60.0})


@pytest.mark.parametrize("augmenter", ["shuffle", "synonyms"])
def test_augment_to_reaches_the_target_distribution(augmenter):
    if augmenter == "synonyms":
        pytest.importorskip("nltk")
        corpus = from_records(
            [f"a good film about a happy dog number {i}" for i in range(8)]
            + [f"the bad movie had a sad ending part {i}" for i in range(24)],
            ["min"] * 8 + ["maj"] * 24,
            ids=[f"r{i}" for i in range(32)],
            split="train",
        )
        target = None
    else:
        corpus = imbalanced(n_mid=20)
        target = {"maj": 2, "mid": 1, "min": 1}
    res = run(corpus, strategy="augment_to", augmenter=augmenter, target=target)
    counts = train_counts(res.corpus)
    want = {"maj": 24, "min": 24} if target is None else {"maj": 60, "mid": 30, "min": 30}
    assert all(abs(counts[c] - want[c]) <= 1 for c in want), counts
    added = res.corpus.filter(~pl.col("id").is_in(corpus["id"].implode()))
    assert added["id"].is_unique().all()
    assert all(
        i.startswith(f"{p}~0.") for i, p in zip(added["id"], added["parent_id"], strict=True)
    )
    assert set(added["split"].to_list()) == {"train"}


def test_same_seed_same_output():
    corpus = imbalanced(n_mid=20)
    for params in ({"strategy": "undersample"}, {"strategy": "oversample"}):
        assert run(corpus, **params).corpus.equals(run(corpus, **params).corpus)
    a = run(corpus, strategy="augment_to", augmenter="shuffle").corpus
    assert a.equals(run(corpus, strategy="augment_to", augmenter="shuffle").corpus)


def test_bad_options_are_one_clear_error():
    load_steps()
    with pytest.raises(RecipeError, match="strategy"):
        parse_step({"balance": {"strategy": "smote"}}, "steps[0]")
    with pytest.raises(ValidationError, match="needs weights"):
        BalanceEdit.Config(strategy="reweight", weighting="given")
    with pytest.raises(StepError, match="augmenter step"):
        run(imbalanced(), strategy="augment_to", augmenter="split")
    with pytest.raises(StepError, match="every label"):
        run(imbalanced(), strategy="augment_to", augmenter="shuffle", target={"min": 1})
