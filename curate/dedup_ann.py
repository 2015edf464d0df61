"""Approximate range search over unit embeddings with faiss: an inverted-file (IVF) index.

The vectors are clustered by k-means into `nlist` cells (trained on a seeded sample) and
each row is stored in its cell's list (`IndexIVFFlat`, inner product, the full vectors).
A query scans the `nprobe` cells whose centroids are nearest to it, so it meets almost
every row within the threshold at a fraction of the all-pairs cost. The queries go in
shards (slices of rows): on Ray each shard is one call in an actor pool that receives the
index once per actor; the local engine runs the shards one after the other in-process
(faiss parallelises each shard's queries itself).

Every pair returned has its cosine recomputed in numpy and is kept only when >= the
threshold, so the method can miss pairs (recall, measured in bench/ann.py) but never adds
one. faiss is the optional extra `assay[dedup]`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pyarrow as pa

from assay.engine import get_engine
from assay.errors import InputError, require

log = logging.getLogger(__name__)

NPROBE = 16  # cells scanned per query: recall >= 0.99 at threshold 0.9 (bench/ann.py)
MIN_ROWS = 4096  # below this the exact search is cheap, and a k-means of tiny cells poor
SHARD_ROWS = 16384  # queries per shard (bounds the memory of one shard's results)
TRAIN_PER_CELL = 39  # faiss's k-means warns below 39 training points per centroid
MARGIN = 1e-4  # faiss keeps scores > radius in float32; the exact check decides the rest


def index_options(n: int, nlist: int | None, nprobe: int) -> tuple[int, int]:
    """(nlist, nprobe) for `n` rows: about 4 * sqrt(n) cells by default (a query meets
    nlist centroids and about nprobe * n / nlist rows: at nprobe 16 the two balance
    there), never more cells than k-means has 39 training rows for, nprobe at most nlist."""
    if (nlist is not None and nlist < 1) or nprobe < 1:
        raise InputError(f"nlist and nprobe must be >= 1, got nlist={nlist}, nprobe={nprobe}")
    cells = nlist or max(1, round(4 * math.sqrt(n)))
    cells = min(cells, max(1, n // TRAIN_PER_CELL))
    return cells, min(nprobe, cells)


def build_index(vectors: np.ndarray, rng: np.random.Generator, nlist: int, nprobe: int) -> Any:
    """An `IndexIVFFlat` over `vectors` (unit rows), its k-means seeded from `rng`."""
    faiss = require("faiss", "dedup", "ann neighbours")
    n, dim = vectors.shape
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = int(rng.integers(2**31 - 1))
    size = min(n, TRAIN_PER_CELL * nlist)
    sample = np.sort(rng.choice(n, size=size, replace=False))
    index.train(np.ascontiguousarray(vectors[sample]))
    index.add(vectors)
    index.nprobe = nprobe
    return index


def range_pairs(
    vectors: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    *,
    nlist: int | None = None,
    nprobe: int = NPROBE,
    engine: Any = None,
    shard_rows: int = SHARD_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(a, b, cosine, stats) for the pairs a < b the index finds with cosine >= threshold,
    sorted by (a, b); `vectors` are unit float32 rows."""
    from assay.curate.dedup_minhash import unique_pairs

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    cells, probes = index_options(n, nlist, nprobe)
    index = build_index(vectors, rng, cells, probes)
    rows = pa.table(
        {
            "row": pa.array(np.arange(n, dtype=np.int64)),
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
        }
    )
    engine = get_engine(engine)
    found = engine.map_batches(
        rows, ShardSearch, fn_args=(index, threshold - MARGIN), batch_size=shard_rows
    )
    a, b = unique_pairs(np.asarray(found["a"]), np.asarray(found["b"]))
    score = np.einsum("ij,ij->i", vectors[a], vectors[b]) if len(a) else np.zeros(0, np.float32)
    keep = score >= threshold
    stats = {
        "search": "faiss IVF",
        "nlist": cells,
        "nprobe": probes,
        "shard_rows": shard_rows,
        "candidate_pairs": len(a),
    }
    log.debug("ann neighbours: %s, %d pairs above threshold", stats, keep.sum())
    return a[keep], b[keep], score[keep].astype(np.float32), stats


class ShardSearch:
    """One shard's range search, as an engine's callable class (the index loads once).

    A range search rather than a k-nearest-neighbour search: a row may have any number of
    rows above the threshold (a cluster of many copies), and a fixed k would cut the
    larger clusters short; faiss's IVF `range_search` returns every row scanned whose
    inner product is > the radius, however many there are.
    """

    def __init__(self, index: Any, radius: float) -> None:
        self.index = index
        self.radius = radius

    def __call__(self, batch: pa.Table) -> pa.Table:
        query = batch["vec"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(batch.num_rows, -1)
        rows = np.asarray(batch["row"], dtype=np.int64)
        lims, _, found = self.index.range_search(query, self.radius)
        source = np.repeat(rows, np.diff(lims.astype(np.int64)))
        found = found.astype(np.int64)
        other = found != source
        # A pair may be met from either end (the cells probed are not symmetric): both
        # directions are kept as (low, high) and deduplicated on the driver.
        a = np.minimum(source, found)[other]
        b = np.maximum(source, found)[other]
        return pa.table({"a": pa.array(a), "b": pa.array(b)})
