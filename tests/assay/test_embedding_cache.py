from __future__ import annotations

import numpy as np
import pytest

from assay import embedding_cache
from assay.embedding_cache import EmbeddingCache


@pytest.fixture
def calls(monkeypatch) -> list[list[str]]:
    """The texts each encoder call received; vectors are (length, 1)."""
    seen: list[list[str]] = []

    def fake_embed(texts, model=None, *, batch_size=64, engine=None, purpose=""):
        seen.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    monkeypatch.setattr("assay.embeddings.embed", fake_embed)
    return seen


def test_embedding_cache_embeds_each_text_once_across_instances(tmp_path, calls):
    cache = EmbeddingCache(tmp_path)
    first = cache.embed(["aa", "b", "aa"])
    assert first[:, 0].tolist() == [2, 1, 2]
    assert cache.embedded == 2
    again = EmbeddingCache(tmp_path)
    assert again.embed(["b", "ccc"])[:, 0].tolist() == [1, 3]
    assert again.embedded == 1
    assert calls == [["aa", "b"], ["ccc"]]


def test_embedding_cache_writes_only_new_vectors_per_shard(tmp_path, calls):
    cache = EmbeddingCache(tmp_path, "some/encoder")
    cache.embed(["a", "bb"])
    cache.embed(["a", "bb", "ccc"])
    cache.embed(["a"])  # nothing new: no shard
    shards = sorted(
        (tmp_path / f"embeddings-{embedding_cache.encoder_tag('some/encoder')}").glob("*.npz")
    )
    sizes = sorted(len(np.load(p)["keys"]) for p in shards)
    assert sizes == [1, 2]
    assert len(EmbeddingCache(tmp_path, "some/encoder").embed(["ccc"])) == 1
    assert len(calls) == 2


def test_embedding_cache_merges_many_shards_on_load(tmp_path, calls, monkeypatch):
    monkeypatch.setattr(embedding_cache, "MAX_SHARDS", 3)
    cache = EmbeddingCache(tmp_path)
    for i in range(5):
        cache.embed([f"text {i}"])
    folder = tmp_path / f"embeddings-{embedding_cache.encoder_tag(None)}"
    assert len(list(folder.glob("*.npz"))) == 5
    fresh = EmbeddingCache(tmp_path)
    fresh.embed(["text 0"])
    assert len(list(folder.glob("*.npz"))) == 1
    assert len(fresh) == 5 and fresh.embedded == 0


def test_embedding_cache_ignores_a_damaged_shard(tmp_path, calls):
    EmbeddingCache(tmp_path).embed(["a"])
    folder = tmp_path / f"embeddings-{embedding_cache.encoder_tag(None)}"
    next(folder.glob("*.npz")).write_bytes(b"not a zip")
    again = EmbeddingCache(tmp_path)
    assert again.embed(["a"])[:, 0].tolist() == [1]
    assert again.embedded == 1


def test_minilm_aliases_share_one_cache(tmp_path, calls):
    embedding_cache.clear_shared()
    try:
        shared = embedding_cache.shared(None)
        assert embedding_cache.shared("minilm") is shared
        assert embedding_cache.shared("all-MiniLM-L6-v2") is shared
        assert embedding_cache.shared(None, tmp_path) is not shared
        assert embedding_cache.shared("other") is not shared
        assert embedding_cache.encoder_tag("minilm") == embedding_cache.encoder_tag(None)
    finally:
        embedding_cache.clear_shared()


def test_embedding_cache_of_no_texts_is_empty(calls):
    assert EmbeddingCache().embed([]).shape == (0, 0)
    assert calls == []


def test_embedding_cache_reads_the_earlier_single_file(tmp_path, calls):
    legacy = tmp_path / f"embeddings-{embedding_cache.encoder_tag(None)}.npz"
    np.savez(legacy, keys=np.array([embedding_cache.text_key("old")]), vectors=np.ones((1, 2)))
    cache = EmbeddingCache(tmp_path)
    assert cache.embed(["old"]).tolist() == [[1.0, 1.0]]
    assert calls == []


def test_the_semantic_steps_of_a_run_embed_each_text_once(calls, monkeypatch):
    from assay.curate import dedup_semantic

    embedding_cache.clear_shared()
    try:
        leakage = dedup_semantic.embed(["a plot", "a cast", "a plot"])
        dedup = dedup_semantic.embed(["a cast", "a score"], batch_size=8)
        assert calls == [["a plot", "a cast"], ["a score"]]
        assert leakage[:, 0].tolist() == [6, 6, 6] and dedup[:, 0].tolist() == [6, 7]
        # The cache holds at most CACHED_UP_TO vectors: a call past it starts it afresh,
        # a larger call goes uncached.
        monkeypatch.setattr(dedup_semantic, "CACHED_UP_TO", 4)
        dedup_semantic.embed(["a plot", "the end"])
        assert calls[-1] == ["a plot", "the end"]
        assert len(embedding_cache.shared()) == 2
        dedup_semantic.embed(["a plot", "a cast", "a score", "the end", "a shot"])
        assert calls[-1] == ["a plot", "a cast", "a score", "the end", "a shot"]
        assert len(embedding_cache.shared()) == 2
    finally:
        embedding_cache.clear_shared()
