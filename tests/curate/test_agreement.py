from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.curate import agreement as ag
from assay.errors import InputError

LABELS = ["neg", "neu", "pos"]


def table(rows, multilabel: bool = False) -> pl.DataFrame:
    """rows: (id, annotator, label or None, skipped)."""
    return pl.DataFrame(
        [{"id": i, "annotator": a, "label": lab, "skipped": s} for i, a, lab, s in rows],
        schema={
            "id": pl.String,
            "annotator": pl.String,
            "label": pl.List(pl.String) if multilabel else pl.String,
            "skipped": pl.Boolean,
        },
    )


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 categories.
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert ag.fleiss_kappa(counts) == pytest.approx(0.210, abs=1e-3)


def test_krippendorff_alpha_matches_the_reference_example_with_missing_ratings():
    # Krippendorff's nominal example: 4 coders, 12 units, ratings missing; alpha = 0.743.
    m = -1
    coders = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, m, m, m],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, m, 3],
            [m, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, m],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, m],
        ]
    ).T
    matrix = np.where(coders >= 0, coders - 1, -1)
    alpha = ag.krippendorff_alpha(ag.category_counts(matrix, 5))
    assert alpha == pytest.approx(0.743, abs=1e-3)


def test_cohen_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 3, 200))
    assert ag.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_majority_consensus_resolves_majorities_and_leaves_ties_open():
    rows = [
        ("e1", "ann", "pos", False),
        ("e1", "bob", "pos", False),
        ("e1", "cat", "neg", False),  # planted: 2 vs 1
        ("e2", "ann", "neg", False),
        ("e2", "bob", "pos", False),  # planted: tie
        ("e3", "ann", "neu", False),
        ("e3", "bob", "neu", False),
        ("e4", "ann", "pos", False),
        ("e4", "bob", None, True),  # skipped: not a vote
    ]
    cons = ag.consensus(table(rows), LABELS)
    by_id = {r["id"]: r for r in cons.to_dicts()}
    assert by_id["e1"]["label"] == "pos" and by_id["e1"]["status"] == "majority"
    assert by_id["e1"]["agreement"] == pytest.approx(2 / 3)
    assert by_id["e2"]["label"] is None and by_id["e2"]["status"] == "tie"
    assert by_id["e3"]["label"] == "neu" and by_id["e3"]["status"] == "agreed"
    assert by_id["e4"]["label"] == "pos" and by_id["e4"]["status"] == "single"
    assert by_id["e4"]["n_annotations"] == 1


def test_model_probabilities_break_a_majority_tie():
    rows = [("e2", "ann", "neg", False), ("e2", "bob", "pos", False)]
    probs = pl.DataFrame({"id": ["e2"], "neg": [0.2], "neu": [0.1], "pos": [0.7]})
    cons = ag.consensus(table(rows), LABELS, pred_probs=probs)
    assert cons.row(0, named=True)["label"] == "pos"


def test_agreement_lists_exactly_the_planted_disagreements():
    truth = {f"e{i}": LABELS[i % 3] for i in range(12)}
    flips = {"e4": "pos", "e9": "neu"}  # planted: bob disagrees on these two
    rows = []
    for i, lab in truth.items():
        rows.append((i, "ann", lab, False))
        rows.append((i, "bob", flips.get(i, lab), False))
    rows.append(("e11", "bob", None, True))  # a skip replaces nothing; ann's label stands
    report = ag.agreement(table(rows), LABELS)
    assert report.disagreements["id"].to_list() == ["e4", "e9"]
    assert report.overall["n_disagreements"] == 2
    assert report.overall["n_examples"] == 12
    # Cohen on the 12 pairs: 10 agree; labels balanced.
    from sklearn.metrics import cohen_kappa_score

    a = [truth[i] for i in sorted(truth)]
    b = [flips.get(i, truth[i]) for i in sorted(truth)]
    assert report.overall["cohen_kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
    per_label = {r["label"]: r for r in report.per_label.to_dicts()}
    assert set(per_label) == set(LABELS)
    # "neu" is in both planted disagreements, "neg" and "pos" in one each.
    alpha = {k: v["krippendorff_alpha"] for k, v in per_label.items()}
    assert alpha["neu"] < min(alpha["neg"], alpha["pos"]) < 1.0
    annotators = {r["annotator"]: r for r in report.per_annotator.to_dicts()}
    assert annotators["ann"]["n_annotations"] == 12


def test_per_annotator_agreement_singles_out_the_careless_annotator():
    rows = []
    for i in range(10):
        lab = LABELS[i % 3]
        rows += [(f"e{i}", "ann", lab, False), (f"e{i}", "bob", lab, False)]
        careless = lab if i < 4 else LABELS[(i + 1) % 3]
        rows.append((f"e{i}", "zed", careless, False))
    stats = {r["annotator"]: r for r in ag.agreement(table(rows), LABELS).per_annotator.to_dicts()}
    assert stats["ann"]["agreement_with_consensus"] == 1.0
    assert stats["zed"]["agreement_with_consensus"] == pytest.approx(0.4)


def test_latest_annotation_of_an_annotator_wins():
    frame = pl.DataFrame(
        {
            "id": ["e1", "e1"],
            "annotator": ["ann", "ann"],
            "label": ["neg", "pos"],
            "skipped": [False, False],
            "updated_at": ["2026-01-01T00:00:00.000000Z", "2026-01-02T00:00:00.000000Z"],
        }
    )
    assert ag.usable(frame)["label"].to_list() == ["pos"]


def test_multilabel_agreement_and_consensus():
    rows = [
        ("e1", "ann", ["a", "b"], False),
        ("e1", "bob", ["b", "a"], False),
        ("e2", "ann", ["a"], False),
        ("e2", "bob", ["a", "c"], False),  # planted disagreement on c
        ("e2", "cat", ["a"], False),
        ("e3", "ann", ["c"], False),
        ("e3", "bob", ["c"], False),
    ]
    report = ag.agreement(table(rows, multilabel=True), ["a", "b", "c"])
    assert report.disagreements["id"].to_list() == ["e2"]
    cons = {r["id"]: r["label"] for r in report.consensus.to_dicts()}
    assert cons == {"e1": ["a", "b"], "e2": ["a"], "e3": ["c"]}
    per_label = {r["label"]: r for r in report.per_label.to_dicts()}
    assert per_label["b"]["krippendorff_alpha"] == pytest.approx(1.0)
    assert per_label["c"]["krippendorff_alpha"] < 1.0


def test_unknown_labels_are_an_error_not_a_new_class():
    rows = [("e1", "ann", "pos", False), ("e1", "bob", "bogus", False)]
    with pytest.raises(InputError, match="bogus"):
        ag.agreement(table(rows), LABELS)


def test_crowdlab_consensus_uses_model_probabilities():
    pytest.importorskip("cleanlab")
    rng = np.random.default_rng(1)
    ids = [f"e{i:02d}" for i in range(30)]
    truth = [LABELS[i % 3] for i in range(30)]
    rows = []
    for i, t in zip(ids, truth, strict=True):
        rows.append((i, "ann", t, False))
        rows.append((i, "bob", t if rng.random() < 0.8 else LABELS[0], False))
        rows.append((i, "cat", t if rng.random() < 0.6 else LABELS[1], False))
    probs = pl.DataFrame(
        {
            "id": ids,
            **{lab: [0.8 if t == lab else 0.1 for t in truth] for lab in LABELS},
        }
    )
    cons = ag.consensus(table(rows), LABELS, method="crowdlab", pred_probs=probs)
    assert cons["id"].to_list() == ids
    assert cons["label"].to_list() == truth
    assert cons["quality"].is_not_null().all()


def test_crowdlab_without_probabilities_says_what_to_pass():
    with pytest.raises(InputError, match="pred_probs"):
        ag.consensus(table([("e1", "ann", "pos", False)]), LABELS, method="crowdlab")


def test_undefined_statistics_are_none_not_nan():
    # One annotator only: nothing to agree with.
    report = ag.agreement(table([("e1", "ann", "pos", False)]), LABELS)
    assert report.overall["cohen_kappa"] is None
    assert report.overall["krippendorff_alpha"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in report.overall.values())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    votes=st.lists(
        st.tuples(
            st.integers(0, 7), st.sampled_from(["ann", "bob", "cat"]), st.sampled_from(LABELS)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_agreement_invariants(votes):
    frame = table([(f"e{i}", a, lab, False) for i, a, lab in votes])
    report = ag.agreement(frame, LABELS)
    usable = ag.usable(frame)
    # One consensus row per annotated example; resolved labels come from the votes.
    assert sorted(report.consensus["id"]) == sorted(usable["id"].unique())
    for row in report.consensus.iter_rows(named=True):
        chosen = set(usable.filter(pl.col("id") == row["id"])["label"])
        assert row["label"] is None or row["label"] in chosen
        assert (row["status"] == "agreed") == (len(chosen) == 1 and row["n_annotations"] > 1)
    # Disagreements are exactly the examples with more than one distinct label.
    split = {
        i for i in usable["id"].unique() if usable.filter(pl.col("id") == i)["label"].n_unique() > 1
    }
    assert set(report.disagreements["id"]) == split
    for key in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha"):
        value = report.overall[key]
        assert value is None or (math.isfinite(value) and value <= 1.0 + 1e-9)


def test_identical_annotators_agree_perfectly():
    rows = [(f"e{i}", a, LABELS[i % 3], False) for i in range(9) for a in ("ann", "bob")]
    overall = ag.agreement(table(rows), LABELS).overall
    assert overall["cohen_kappa"] == overall["fleiss_kappa"] == overall["krippendorff_alpha"] == 1.0
