from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from assay.curate import dedup_minhash
from assay.curate.dedup_clusters import components
from assay.curate.dedup_minhash import MinHashParams, optimal_param


def texts(n: int = 400, seed: int = 5) -> pa.Array:
    rng = np.random.default_rng(seed)
    vocab = [f"t{i}" for i in range(3000)]
    out = [" ".join(rng.choice(vocab, size=20)) for _ in range(n)]
    out += [t.replace(t.split()[3], "changed", 1) for t in out[:40]]
    return pa.array(out)


@pytest.mark.skipif(importlib.util.find_spec("datasketch") is None, reason="datasketch absent")
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("num_perm", [64, 128])
def test_optimal_param_matches_datasketch(threshold, num_perm):
    from datasketch.lsh import _optimal_param

    assert optimal_param(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_signatures_estimate_jaccard():
    params = MinHashParams(ngram=1, num_perm=256, bands=32, rows=8)
    a = pa.array(["a b c d e f g h", "a b c d e f x y", "p q r s"])
    sig, ok = dedup_minhash.signatures(a, params)
    assert ok.all()
    est = (sig[0] == sig[1]).mean()
    assert abs(est - 6 / 10) < 0.1  # true Jaccard 6/10
    assert (sig[0] == sig[2]).mean() < 0.05
    true = dedup_minhash.jaccard(a[:2], a[1:], params)
    assert true[0] == pytest.approx(0.6)
    assert true[1] == 0.0


def test_signatures_ignore_case_and_punctuation_and_count_utf8_characters():
    params = MinHashParams(ngram=3, unit="char", num_perm=32, bands=8, rows=4)
    sig, _ = dedup_minhash.signatures(
        pa.array(["Café, au lait!", "café au lait", "cafe au lait"]), params
    )
    assert (sig[0] == sig[1]).all()
    assert not (sig[1] == sig[2]).all()


def test_bucket_pairs_are_the_same_under_any_hash_partitioning():
    """What the Ray engine relies on: a shuffle by bucket changes nothing."""
    params = MinHashParams.for_threshold(0.5, num_perm=64, ngram=2)
    rows = pa.table({"row": np.arange(440), "text": texts()})
    buckets = dedup_minhash.signature_table(rows, params)
    whole = dedup_minhash.bucket_pairs(buckets)
    part = pc.bit_wise_and(buckets["bucket"], pa.scalar(3, pa.uint64()))
    pieces = [dedup_minhash.bucket_pairs(buckets.filter(pc.equal(part, k))) for k in range(4)]
    a = np.concatenate([p["a"].to_numpy() for p in pieces])
    b = np.concatenate([p["b"].to_numpy() for p in pieces])
    ua, ub = dedup_minhash.unique_pairs(a, b)
    assert ua.tolist() == whole["a"].to_pylist() and ub.tolist() == whole["b"].to_pylist()
    planted = {(i, 400 + i) for i in range(40)}
    assert planted <= set(zip(ua.tolist(), ub.tolist(), strict=True))


def test_large_buckets_become_stars_with_the_same_components():
    rows = np.arange(100, dtype=np.int64)
    keys = np.full(100, 12345, dtype=np.uint64)
    a, b = dedup_minhash.pairs_from_buckets(rows[::-1].copy(), keys)
    assert len(a) == 99 and set(a.tolist()) == {0}
    assert (components(100, a, b) == 0).all()


def test_components_label_each_cluster_by_its_first_row():
    labels = components(7, np.array([5, 1, 3]), np.array([6, 3, 4]))
    assert labels.tolist() == [0, 1, 2, 1, 1, 5, 5]
