"""Semantic near-duplicates: pairs of texts whose sentence embeddings are close.

Embeddings come from sentence-transformers (the packaged MiniLM by default, any model by
name or path). Neighbours are found exactly (blocked matrix products, O(n^2) work in
memory-bounded blocks), through random-hyperplane blocking (SimHash bands: only rows
that share a band signature are compared), or through an approximate range search in a
faiss IVF index (`dedup_ann`, its query shards as engine tasks); the last two scale to
large corpora at a small loss of recall. Every reported pair has a true cosine
similarity >= the threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from assay.errors import InputError, require

log = logging.getLogger(__name__)

Neighbours = Literal["exact", "blocked", "ann"]
BLOCK = 2048
MAX_BUCKET = 256  # larger SimHash buckets are linked as stars
# Texts: above this many, vectors are not kept between steps (1.7 KB each at 384 dimensions).
CACHED_UP_TO = 200_000


def embed(
    texts: Sequence[str], model: str | None = None, batch_size: int = 64, engine: Any = None
) -> np.ndarray:
    """Unit-length float32 embeddings of `texts` (n, dim); on an engine, in its actor pool.

    Each distinct text is embedded once per process (`assay.embedding_cache.shared`): the
    semantic dedup and leakage steps of a run, which read mostly the same texts, share
    their vectors. The cache holds at most `CACHED_UP_TO` of them: a call that would pass
    it starts it afresh, and a larger call goes uncached."""
    from assay import embedding_cache, embeddings

    if not texts or len(texts) > CACHED_UP_TO:
        return embeddings.embed(
            texts, model, batch_size=batch_size, engine=engine, purpose="semantic dedup"
        )
    cache = embedding_cache.shared(model)
    if len(cache) + len(texts) > CACHED_UP_TO:
        cache.forget()
    return cache.embed(texts, engine=engine, purpose="semantic dedup", batch_size=batch_size)


def similar_pairs(
    vectors: np.ndarray,
    threshold: float,
    neighbours: Neighbours = "exact",
    *,
    rng: np.random.Generator | None = None,
    bits: int | None = None,
    tables: int = 8,
    nlist: int | None = None,
    nprobe: int | None = None,
    engine: Any = None,
    stats: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, cosine) for every pair a < b with cosine >= threshold, sorted by (a, b).

    `nlist`, `nprobe` and `engine` are for "ann"; `stats`, when given, receives what the
    search did (for the step's report)."""
    if vectors.ndim != 2:
        raise InputError(f"expected a 2-d array of embeddings, got shape {vectors.shape}")
    vectors = _unit(vectors)
    if neighbours == "exact":
        a, b, s = _exact(vectors, threshold)
    elif neighbours == "blocked":
        if rng is None:
            raise InputError("blocked neighbours need a random generator (ctx.rng(...))")
        a, b, s = _blocked(vectors, threshold, rng, bits, tables)
    elif neighbours == "ann":
        a, b, s, done = _ann(vectors, threshold, rng, nlist, nprobe, engine)
        if stats is not None:
            stats.update(done)
    else:
        raise InputError(f"neighbours must be 'exact', 'blocked' or 'ann', got {neighbours!r}")
    order = np.lexsort((b, a))
    return a[order], b[order], s[order]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _ann(
    vectors: np.ndarray,
    threshold: float,
    rng: np.random.Generator | None,
    nlist: int | None,
    nprobe: int | None,
    engine: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    from assay.curate import dedup_ann

    require("faiss", "dedup", "ann neighbours")  # the same error at any size
    if len(vectors) < dedup_ann.MIN_ROWS:
        return (*_exact(vectors, threshold), {"search": f"exact (n < {dedup_ann.MIN_ROWS})"})
    if rng is None:
        raise InputError("ann neighbours need a random generator (ctx.rng(...))")
    return dedup_ann.range_pairs(
        vectors, threshold, rng, nlist=nlist, nprobe=nprobe or dedup_ann.NPROBE, engine=engine
    )


def _exact(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(vectors)
    out_a, out_b, out_s = [], [], []
    for lo in range(0, n, BLOCK):
        block = vectors[lo : lo + BLOCK] @ vectors[lo:].T
        # only the upper triangle: pairs (i, j) with j > i
        block[np.tril_indices(block.shape[0], k=0, m=block.shape[1])] = -np.inf
        i, j = np.nonzero(block >= threshold)
        out_a.append(i + lo)
        out_b.append(j + lo)
        out_s.append(block[i, j])
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (
        np.concatenate(out_a).astype(np.int64),
        np.concatenate(out_b).astype(np.int64),
        np.concatenate(out_s).astype(np.float32),
    )


def _blocked(
    vectors: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    bits: int | None,
    tables: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from assay.curate.dedup_minhash import pairs_from_buckets

    n, dim = vectors.shape
    # about 16 rows per bucket: candidates stay O(n) and buckets rarely turn into stars
    bits = bits or int(np.clip(np.log2(max(n, 1) / 16), 1, 30))
    rows = np.arange(n, dtype=np.int64)
    weights = (np.uint64(1) << np.arange(bits, dtype=np.uint64)).astype(np.uint64)
    all_rows, all_keys = [], []
    for t in range(tables):
        planes = rng.standard_normal((dim, bits)).astype(np.float32)
        code = ((vectors @ planes) > 0).astype(np.uint64) @ weights
        # spread the small codes over 64 bits (the bucket sort partitions on the top bits)
        key = (code + np.uint64(t) * np.uint64(1 << bits) + np.uint64(1)) * np.uint64(
            0x9E3779B97F4A7C15
        )
        all_rows.append(rows)
        all_keys.append(key)
    a, b = pairs_from_buckets(
        np.concatenate(all_rows), np.concatenate(all_keys), max_bucket=MAX_BUCKET
    )
    if len(a) == 0:
        return a, b, np.zeros(0, np.float32)
    score = np.einsum("ij,ij->i", vectors[a], vectors[b])
    keep = score >= threshold
    log.debug("blocked neighbours: %d candidate pairs, %d above threshold", len(a), keep.sum())
    return a[keep], b[keep], score[keep].astype(np.float32)
