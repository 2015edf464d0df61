"""Benchmark: assay's MinHash dedup against datasketch's MinHashLSH, in one run.

A corpus of short texts (25-35 words, Zipf-distributed vocabulary) gets planted
near-duplicates: 10% of rows are copies of another row with 1-3 word edits (substitute,
insert or delete). Each method runs in its own fresh process (so peak RSS is its own) on
the same data, one after the other:

- assay with datasketch's parameters (word 5-grams, 64 permutations, threshold 0.5, no
  verification: the same LSH),
- datasketch MinHashLSH with those parameters (MinHash.update_batch, insert, query),
- assay with its recommended defaults for short texts (the step's defaults).

Printed per method: docs/s (end to end: texts in, clusters out, for assay the whole
`dedup` step), peak RSS, pairwise precision and recall against the planted clusters, and
recall by number of edits. datasketch is slow, so it runs on the first `--peer-rows`
rows' worth of an identically generated corpus, and assay runs on that corpus too, so the
quality columns compare like with like.

    .venv/bin/python bench/dedup.py --rows 1000000 [--peer-rows 100000] [--engine ray] [--json]
    .venv/bin/python bench/dedup.py --rows 100000 --check-ray   # Ray vs local kept ids
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from harness import isolated, peak_rss_mb, target

SHARED = {"ngram": 5, "unit": "word", "num_perm": 64, "threshold": 0.5, "verify": False}
SYLLABLES = [
    "ka",
    "to",
    "ri",
    "men",
    "sa",
    "lo",
    "ve",
    "den",
    "pa",
    "tur",
    "ni",
    "que",
    "bo",
    "ral",
    "fi",
    "zen",
    "mo",
    "ther",
    "wa",
    "lin",
    "cor",
    "esh",
    "ul",
    "dra",
    "gim",
    "pon",
    "hal",
    "vek",
    "tas",
    "orn",
]


# -- data ----------------------------------------------------------------------------------------


def vocabulary(size: int, rng: np.random.Generator) -> np.ndarray:
    words: set[str] = set()
    out: list[str] = []
    while len(out) < size:
        w = "".join(rng.choice(SYLLABLES, size=int(rng.integers(1, 5))))
        if w not in words:
            words.add(w)
            out.append(w)
    return np.array(out)


def generate(rows: int, seed: int = 7) -> pl.DataFrame:
    """Texts with planted near-duplicates: columns id, text, true_cluster, edits."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary(30_000, rng)
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    p /= p.sum()
    n_dup = rows // 10
    n_base = rows - n_dup
    lengths = rng.integers(25, 36, size=n_base)
    tokens = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    sources = rng.choice(n_base, size=n_dup, replace=False)
    edits = rng.integers(1, 4, size=n_dup)
    # every edit draws its position, operation and new word up front (vectorised sampling)
    fresh = iter(rng.choice(len(vocab), size=int(edits.sum()), p=p).tolist())
    ops = iter(rng.integers(0, 3, size=int(edits.sum())).tolist())
    where = iter(rng.random(size=int(edits.sum())).tolist())
    dup_tokens: list[np.ndarray] = []
    for src, k in zip(sources, edits, strict=True):
        t = tokens[offsets[src] : offsets[src + 1]].tolist()
        for _ in range(k):
            op, pos, word = next(ops), int(next(where) * len(t)), next(fresh)
            if op == 0:
                t[pos] = word
            elif op == 1:
                t.insert(pos, word)
            else:
                del t[pos]
        dup_tokens.append(np.array(t))
    all_lengths = np.concatenate([lengths, [len(t) for t in dup_tokens]])
    all_tokens = np.concatenate([tokens, *dup_tokens]) if dup_tokens else tokens
    doc = np.repeat(np.arange(rows), all_lengths)
    texts = (
        pl.DataFrame({"doc": doc, "w": vocab[all_tokens]})
        .group_by("doc", maintain_order=True)
        .agg(pl.col("w").str.join(" "))["w"]
    )
    cluster = np.concatenate([np.arange(n_base), sources])
    frame = pl.DataFrame(
        {
            "text": texts,
            "true_cluster": cluster,
            "edits": np.concatenate([np.zeros(n_base, np.int64), edits]),
        }
    )
    # interleave the copies with the originals, reproducibly
    frame = frame[rng.permutation(rows)]
    return frame.with_columns(id=pl.format("d{}", pl.int_range(pl.len())))


# -- quality -------------------------------------------------------------------------------------


def quality(frame: pl.DataFrame, predicted: np.ndarray) -> dict[str, float]:
    """Pairwise precision/recall of predicted cluster labels against the planted ones."""
    df = frame.select("true_cluster", "edits").with_columns(pred=pl.Series(predicted))

    def pairs(by: list[str]) -> int:
        sizes = df.group_by(by).len()["len"].cast(pl.Int64)
        return int((sizes * (sizes - 1) // 2).sum())

    tp, pred, true = pairs(["pred", "true_cluster"]), pairs(["pred"]), pairs(["true_cluster"])
    out = {
        "precision": tp / pred if pred else 1.0,
        "recall": tp / true if true else 1.0,
    }
    # recall by number of edits: is each planted copy in its source's predicted cluster?
    source_pred = df.filter(pl.col("edits") == 0).select("true_cluster", pl.col("pred").alias("sp"))
    copies = df.filter(pl.col("edits") > 0).join(source_pred, on="true_cluster", how="left")
    for k in (1, 2, 3):
        sub = copies.filter(pl.col("edits") == k)
        out[f"recall_{k}_edit"] = float((sub["pred"] == sub["sp"]).mean()) if sub.height else 1.0
    return out


# -- runners (each in its own process) -----------------------------------------------------------


def run_assay(path: str, params: dict, engine: str, repeats: int) -> dict:
    from assay import RunContext
    from assay.corpus import conform
    from assay.curate.dedup import DedupFilter

    frame = pl.read_parquet(path)
    corpus = conform(frame.select("id", "text", pl.lit(None, dtype=pl.String).alias("label")))
    corpus = corpus.with_columns(split=pl.lit("train"))
    step = DedupFilter(method="minhash", engine=engine, **params)
    ctx = RunContext(engine=engine).for_step(0, "dedup")
    step.apply(corpus.head(2000), ctx)  # compile kernels / start Ray outside the timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = step.apply(corpus, ctx)
        times.append(time.perf_counter() - start)
    cluster_of = (
        pl.concat(
            [
                result.corpus.select("id", "dedup__cluster"),
                result.dropped.select("id", "dedup__cluster"),
            ]
        )
        .join(frame.select("id"), on="id", how="right")["dedup__cluster"]
        .cast(pl.Categorical)
        .to_physical()
        .to_numpy()
    )
    seconds = statistics.median(times)
    return {
        "docs_per_s": frame.height / seconds,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "bands": result.report.summary.get("bands"),
        "rows_per_band": result.report.summary.get("rows"),
        "kept": result.corpus.height,
        **quality(frame, cluster_of),
    }


def run_datasketch(path: str, params: dict, repeats: int) -> dict:
    import re

    from datasketch import MinHash, MinHashLSH

    from assay.curate.dedup_clusters import components

    frame = pl.read_parquet(path)
    texts = frame["text"].to_list()
    word = re.compile(r"[0-9a-z\x80-\U0010ffff]+")
    n = params["ngram"]
    start = time.perf_counter()
    lsh = MinHashLSH(threshold=params["threshold"], num_perm=params["num_perm"])
    sigs = []
    for i, text in enumerate(texts):
        toks = word.findall(text.lower())
        shingles = [" ".join(toks[j : j + n]).encode() for j in range(max(1, len(toks) - n + 1))]
        m = MinHash(num_perm=params["num_perm"])
        m.update_batch(shingles)
        lsh.insert(i, m)
        sigs.append(m)
    a, b = [], []
    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            if j != i:
                a.append(min(i, j))
                b.append(max(i, j))
    labels = components(len(texts), np.array(a, dtype=np.int64), np.array(b, dtype=np.int64))
    seconds = time.perf_counter() - start
    return {
        "docs_per_s": len(texts) / seconds,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "bands": lsh.b,
        "rows_per_band": lsh.r,
        "kept": len(np.unique(labels)),
        **quality(frame, labels),
    }


def check_ray(path: str, params: dict) -> dict:
    from assay import RunContext
    from assay.corpus import conform
    from assay.curate.dedup import DedupFilter

    frame = pl.read_parquet(path)
    corpus = conform(frame.select("id", "text", pl.lit(None, dtype=pl.String).alias("label")))
    out = {}
    for engine in ("local", "ray"):
        step = DedupFilter(method="minhash", engine=engine, **params)
        start = time.perf_counter()
        result = step.apply(corpus, RunContext(engine=engine).for_step(0, "dedup"))
        out[engine] = (sorted(result.corpus["id"].to_list()), time.perf_counter() - start)
    return {
        "identical": out["local"][0] == out["ray"][0],
        "kept": len(out["local"][0]),
        "local_s": out["local"][1],
        "ray_s": out["ray"][1],
    }


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--peer-rows", type=int, default=None, help="datasketch corpus size")
    ap.add_argument("--engine", choices=["local", "ray"], default="local")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check-ray", action="store_true", help="only: Ray vs local kept ids")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assay-bench-", ignore_cleanup_errors=True) as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    peer_rows = min(args.rows, args.peer_rows or 100_000)
    big, small = tmp / "big.parquet", tmp / "small.parquet"
    generate(args.rows).write_parquet(big)
    if peer_rows != args.rows:
        generate(peer_rows).write_parquet(small)
    else:
        small = big

    if args.check_ray:
        res = isolated(check_ray, str(big), {})
        report = {
            "bench": "dedup_ray_identity",
            "params": {"rows": args.rows},
            "results": {"ray_vs_local": res},
            "targets": [
                {
                    "name": "ray_identical_to_local",
                    "value": res.get("identical"),
                    "target": "== true",
                    "met": bool(res.get("identical")),
                }
            ],
        }
        print(json.dumps(report) if args.json else json.dumps(report, indent=2))
        return 0

    results: dict[str, dict] = {}
    results[f"assay_shared@{peer_rows}"] = isolated(
        run_assay, str(small), SHARED, "local", args.repeats
    )
    results[f"datasketch_shared@{peer_rows}"] = isolated(run_datasketch, str(small), SHARED, 1)
    results[f"assay_defaults@{peer_rows}"] = isolated(
        run_assay, str(small), {}, "local", args.repeats
    )
    if peer_rows != args.rows or args.engine != "local":
        results[f"assay_shared@{args.rows}"] = isolated(
            run_assay, str(big), SHARED, args.engine, args.repeats
        )
        results[f"assay_defaults@{args.rows}"] = isolated(
            run_assay, str(big), {}, args.engine, args.repeats
        )
    shared_big = results[f"assay_shared@{args.rows}"]
    shared_small = results[f"assay_shared@{peer_rows}"]
    peer = results[f"datasketch_shared@{peer_rows}"]
    defaults = results[f"assay_defaults@{peer_rows}"]

    def get(r: dict, k: str) -> float:
        return float(r.get(k, float("nan")))

    speedup = get(shared_big, "docs_per_s") / get(peer, "docs_per_s")
    targets = [
        target(f"docs_per_s_at_{args.rows}", get(shared_big, "docs_per_s"), 250_000, ">="),
        target("speedup_vs_datasketch", speedup, 60, ">="),
        target(f"peak_rss_mb_at_{args.rows}", get(shared_big, "peak_rss_mb"), 2048, "<="),
        target(
            "recall_minus_datasketch_shared_params",
            get(shared_small, "recall") - get(peer, "recall"),
            0.0,
            ">=",
        ),
        target(
            "defaults_recall_1_2_edits",
            min(get(defaults, "recall_1_edit"), get(defaults, "recall_2_edit")),
            0.95,
            ">=",
        ),
        target("defaults_precision", get(defaults, "precision"), 0.99, ">="),
    ]
    report = {
        "bench": "dedup",
        "params": {"rows": args.rows, "peer_rows": peer_rows, "engine": args.engine, **SHARED},
        "results": results,
        "targets": targets,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


def print_table(report: dict) -> None:
    cols = [
        ("docs_per_s", "docs/s", "{:,.0f}"),
        ("peak_rss_mb", "peak MB", "{:,.0f}"),
        ("precision", "P", "{:.4f}"),
        ("recall", "R", "{:.4f}"),
        ("recall_1_edit", "R 1 edit", "{:.3f}"),
        ("recall_2_edit", "R 2 edits", "{:.3f}"),
        ("recall_3_edit", "R 3 edits", "{:.3f}"),
        ("bands", "b", "{}"),
        ("rows_per_band", "r", "{}"),
    ]
    p = report["params"]
    print(f"dedup benchmark: rows={p['rows']} peer_rows={p['peer_rows']} engine={p['engine']}")
    header = f"{'method':<28}" + "".join(f"{c[1]:>11}" for c in cols)
    print(header)
    print("-" * len(header))
    for name, r in report["results"].items():
        if "error" in r:
            print(f"{name:<28} ERROR {r['error']}")
            continue
        print(f"{name:<28}" + "".join(f"{fmt.format(r.get(k)):>11}" for k, _, fmt in cols))
    print()
    for t in report["targets"]:
        print(
            f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['value']} (target {t['target']})"
        )


if __name__ == "__main__":
    sys.exit(main())
