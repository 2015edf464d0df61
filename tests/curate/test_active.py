from __future__ import annotations

import numpy as np
import pytest

from assay.curate import active
from assay.errors import InputError

LABELS = ["a", "b"] * 15  # 30 labels, 15 per class: past the cold start


def planted_proba(n: int = 200, planted=(17, 42, 99, 150, 3)) -> tuple[np.ndarray, list[int]]:
    """Confident rows, except the planted ones, from most to least uncertain."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.9, 0.99, n)
    for rank, i in enumerate(planted):
        p[i] = 0.5 + 0.02 * rank  # row 17 is the most uncertain
    return np.column_stack([p, 1 - p]), list(planted)


def clusters(per: int = 30, centres: int = 5, dim: int = 8, seed: int = 1):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 10, (centres, dim))
    x = np.concatenate([m + rng.normal(0, 0.1, (per, dim)) for m in means])
    return x, np.repeat(np.arange(centres), per)


@pytest.mark.parametrize("measure", active.MEASURES)
def test_uncertainty_picks_the_planted_most_uncertain_rows_in_order(measure):
    proba, planted = planted_proba()
    ids = [f"r{i}" for i in range(len(proba))]
    sel = active.select(
        ids, 5, "uncertainty", np.random.default_rng(3), labels=LABELS, proba=proba, measure=measure
    )
    assert sel.ids == [f"r{i}" for i in planted]
    assert sel.strategy == "uncertainty" and not sel.cold_start
    frame = sel.to_frame()
    assert frame["rank"].to_list() == [1, 2, 3, 4, 5]
    assert frame["score"].is_sorted(descending=True)


def test_uncertainty_measures_agree_on_a_known_example():
    p = np.array([[0.5, 0.5, 0.0], [0.8, 0.1, 0.1]])
    assert active.uncertainty(p, "least_confidence") == pytest.approx([0.5, 0.2])
    assert active.uncertainty(p, "margin") == pytest.approx([1.0, 0.3])
    assert active.uncertainty(p, "entropy")[0] == pytest.approx(np.log(2))


def test_k_center_covers_every_planted_cluster():
    x, cluster = clusters()
    chosen, dist = active.k_center_greedy(x, 5, rng=np.random.default_rng(0))
    assert sorted(cluster[chosen]) == [0, 1, 2, 3, 4]
    assert np.isnan(dist[0]) and np.all(np.diff(dist[1:]) <= 1e-6)


def test_k_center_starts_from_the_labelled_centres():
    x, cluster = clusters()
    labelled = x[cluster < 3][::10]  # clusters 0-2 are already covered
    chosen, _ = active.k_center_greedy(x, 2, centers=labelled)
    assert sorted(cluster[chosen]) == [3, 4]


def test_hybrid_takes_diverse_rows_among_the_uncertain_ones():
    x, cluster = clusters(per=20, centres=4)
    n = len(x)
    p = np.full(n, 0.95)
    uncertain = np.flatnonzero(cluster < 2)  # clusters 0 and 1 are uncertain
    p[uncertain] = 0.55
    proba = np.column_stack([p, 1 - p])
    ids = [str(i) for i in range(n)]
    sel = active.select(
        ids,
        2,
        "hybrid",
        np.random.default_rng(0),
        labels=LABELS,
        proba=proba,
        pool_vectors=x,
        candidates=len(uncertain),
    )
    chosen = [int(i) for i in sel.ids]
    assert set(cluster[chosen]) == {0, 1}


def test_same_seed_same_selection_and_another_seed_another_random_batch():
    ids = [f"r{i}" for i in range(500)]
    x, _ = clusters(per=100)
    for strategy in ("random", "diversity"):
        a = active.select(ids, 20, strategy, np.random.default_rng(7), pool_vectors=x)
        b = active.select(ids, 20, strategy, np.random.default_rng(7), pool_vectors=x)
        assert a.ids == b.ids
    a = active.select(ids, 20, "random", np.random.default_rng(7))
    c = active.select(ids, 20, "random", np.random.default_rng(8))
    assert c.ids != a.ids and len(set(c.ids)) == 20


def test_cold_start_falls_back_to_diversity_or_random():
    proba, _ = planted_proba()
    ids = [str(i) for i in range(200)]
    x, _ = clusters(per=40)
    few = ["a", "b", "a"]
    sel = active.select(
        ids, 5, "uncertainty", np.random.default_rng(0), labels=few, proba=proba, pool_vectors=x
    )
    assert (sel.strategy, sel.requested, sel.cold_start) == ("random", "uncertainty", True)
    sel = active.select(
        ids,
        5,
        "uncertainty",
        np.random.default_rng(0),
        labels=few,
        proba=proba,
        pool_vectors=x,
        cold_strategy="diversity",
    )
    assert (sel.strategy, sel.requested, sel.cold_start) == ("diversity", "uncertainty", True)
    sel = active.select(ids, 5, "hybrid", np.random.default_rng(0), labels=few, proba=proba)
    assert sel.strategy == "random"
    # One class with a single label is a cold start however many labels there are.
    assert active.cold_start(["a"] * 40 + ["b"], ["a", "b"])
    assert not active.cold_start(["a"] * 20 + ["b"] * 2, ["a", "b"])


def test_overlap_marks_the_most_uncertain_chosen_rows():
    proba, planted = planted_proba()
    ids = [f"r{i}" for i in range(len(proba))]
    sel = active.select(
        ids, 5, "uncertainty", np.random.default_rng(0), labels=LABELS, proba=proba, overlap=2
    )
    frame = sel.to_frame()
    assert frame.filter("overlap")["id"].to_list() == [f"r{planted[0]}", f"r{planted[1]}"]


def test_bad_inputs_are_one_clear_error():
    with pytest.raises(InputError, match="unknown selection strategy"):
        active.select(["a"], 1, "greedy", np.random.default_rng(0))
    with pytest.raises(InputError, match="needs the model's probabilities"):
        active.select(["a"] * 3, 1, "uncertainty", np.random.default_rng(0), labels=LABELS)
    with pytest.raises(InputError, match="proba has 2 rows but the pool has 3"):
        active.select(["a", "b", "c"], 1, "random", np.random.default_rng(0), proba=np.ones((2, 2)))


def test_pool_probabilities_from_the_probe(tmp_path):
    pytest.importorskip("sentence_transformers")
    from assay.testing import tiny_bert
    from assay.train.probe import ProbeModel

    encoder = str(tiny_bert(tmp_path / "encoder", ["good", "bad", "film"], classifier=False))
    proba, classes, est = active.pool_probabilities(
        ["good film", "bad film"] * 5,
        ["pos", "neg"] * 5,
        ["good", "bad", "film"],
        model="probe",
        options={"encoder": encoder},
    )
    assert isinstance(est, ProbeModel) and classes == ["neg", "pos"]
    assert proba.shape == (3, 2)
