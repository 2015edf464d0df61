"""Benchmark: the leakage audit on real SST-2 and on a synthetic 100k x 10k corpus.

- SST-2 (`../shared/data/sst2`, read as train/dev/test files): every method (exact,
  normalized, ngram, minhash, lineage, group, label_conflict) over all split pairs; median
  of 3 runs after one warm-up (which compiles the MinHash kernels). Target: <= 10 s.
- Synthetic: `--train` rows of 20-40 random words and `--test` rows, 2% of them a train row
  with one word changed (near), 2% sharing a 13-word span with a train row (n-gram). The
  n-gram and MinHash methods, timed together. Target: <= 60 s. Recall of the planted leaks
  is reported for both methods.
- Peer for the n-gram method: the usual decontamination loop, a Python set of train
  13-gram tuples probed by every test row, on the same synthetic data.

    .venv/bin/python bench/leakage.py [--data ../shared/data] [--train 100000] [--test 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
from harness import peak_rss_mb, target

from assay import from_records
from assay.audits.leakage import LeakageConfig, find_leaks, read_split_files

REPO = Path(__file__).resolve().parents[1]
ALL_BUT_SEMANTIC = ["exact", "normalized", "ngram", "minhash", "lineage", "group", "label_conflict"]


def synthetic(n_train: int, n_test: int, seed: int = 5) -> tuple[pl.DataFrame, set, set]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i:x}" for i in range(50_000)])

    def rows(n: int) -> list[list[str]]:
        lengths = rng.integers(20, 41, size=n)
        flat = vocab[rng.integers(0, len(vocab), size=int(lengths.sum()))]
        return [list(x) for x in np.split(flat, np.cumsum(lengths)[:-1])]

    train, test = rows(n_train), rows(n_test)
    n_plant = n_test // 50
    near, span = set(), set()
    for i in range(n_plant):  # near copies: one word changed
        src = int(rng.integers(n_train))
        words = list(train[src])
        words[len(words) // 2] = "changed"
        test[i] = words
        near.add((f"e{i}", f"t{src}"))
    for i in range(n_plant, 2 * n_plant):  # a 13-word span of a train row inside new text
        src = int(rng.integers(n_train))
        test[i] = test[i][:10] + train[src][3:16] + test[i][10:15]
        span.add((f"e{i}", f"t{src}"))
    texts = [" ".join(w) for w in train + test]
    ids = [f"t{i}" for i in range(n_train)] + [f"e{i}" for i in range(n_test)]
    split = ["train"] * n_train + ["test"] * n_test
    return from_records(texts, ["a"] * len(texts), ids=ids, split=split), near, span


def python_sets(corpus: pl.DataFrame, n: int = 13) -> set[str]:
    """The usual decontamination loop: a set of train n-gram tuples, probed per test row."""
    grams = set()
    for text in corpus.filter(pl.col("split") == "train")["text"]:
        words = text.lower().split()
        grams.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    hits = set()
    for rid, text in corpus.filter(pl.col("split") == "test").select("id", "text").iter_rows():
        words = text.lower().split()
        if any(tuple(words[i : i + n]) in grams for i in range(len(words) - n + 1)):
            hits.add(rid)
    return hits


def timed(fn, repeat: int = 1):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--train", type=int, default=100_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results: dict[str, dict] = {}
    targets = []
    sst2 = read_split_files(args.data / "sst2")
    cfg = LeakageConfig(methods=ALL_BUT_SEMANTIC)
    find_leaks(sst2, cfg)  # warm-up: compiles the MinHash kernels
    found, seconds = timed(lambda: find_leaks(sst2, cfg), repeat=3)
    results["sst2_all_methods"] = {"rows": sst2.height, "seconds": round(seconds, 3)}
    targets.append(target("sst2_all_methods_seconds", seconds, 10.0, "<="))

    corpus, near, span = synthetic(args.train, args.test)
    both = LeakageConfig(methods=["ngram", "minhash"])
    found, seconds = timed(lambda: find_leaks(corpus, both))
    got = {
        m: set(zip(*found.filter(pl.col("method") == m)[["eval_id", "other_id"]], strict=True))
        for m in ("ngram", "minhash")
    }
    results["assay"] = {
        "rows": corpus.height,
        "seconds": round(seconds, 3),
        "ngram_recall_of_spans": round(len(got["ngram"] & span) / len(span), 4),
        "minhash_recall_of_near": round(len(got["minhash"] & near) / len(near), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    targets.append(target("synthetic_ngram_minhash_seconds", seconds, 60.0, "<="))
    ngram_only, ngram_seconds = timed(lambda: find_leaks(corpus, LeakageConfig(methods=["ngram"])))
    results["assay"]["ngram_seconds"] = round(ngram_seconds, 3)
    hits, peer_seconds = timed(lambda: python_sets(corpus))
    results["python_sets"] = {
        "seconds": round(peer_seconds, 3),
        "ngram_recall_of_spans": round(len({e for e, _ in span} & hits) / len(span), 4),
        "test_rows_flagged": len(hits),
    }
    results["assay"]["ngram_test_rows_flagged"] = ngram_only["eval_id"].n_unique()
    params = {"train": args.train, "test": args.test}
    if args.json:
        print(
            json.dumps(
                {"bench": "leakage", "params": params, "results": results, "targets": targets}
            )
        )
        return
    for name, values in results.items():
        print(f"{name:18s} " + "  ".join(f"{k}={v}" for k, v in values.items()))
    for t in targets:
        print(
            f"{t['name']:34s} {t['value']:>10} {t['target']:>8}  {'met' if t['met'] else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
