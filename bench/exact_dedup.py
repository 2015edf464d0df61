"""Benchmark: exact dedup of a Parquet corpus larger than you would like to hold in memory.

Generates `--rows` short rows (8 random words; 30% are copies of an earlier row with
changed case, punctuation or spacing), written to Parquet outside the timing. Then, each
in its own fresh process (so peak RSS is its own), one after the other:

- assay: `assay.curate.dedup_exact.dedup_parquet` (streaming: hash partitions on disk,
  one partition in memory at a time, kept and dropped rows streamed out);
- polars eager: read the file, normalise, keep the first row of each normalised text
  (`is_first_distinct`), write kept and dropped rows.

Both use the same normalisation and write the same two Parquet files.

    .venv/bin/python bench/exact_dedup.py --rows 10000000 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from harness import isolated, peak_rss_mb, target

CHUNK = 1_000_000


def generate(rows: int, path: Path, seed: int = 11) -> None:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i:x}" for i in range(50_000)])
    writer = None
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        n_copy = int(n * 0.3)
        words = [pl.Series(vocab[rng.integers(0, len(vocab), size=n - n_copy)]) for _ in range(8)]
        fresh = pl.DataFrame({f"w{k}": w for k, w in enumerate(words)}).select(
            pl.concat_str(pl.all(), separator=" ").alias("text")
        )["text"]
        src = fresh.gather(rng.integers(0, len(fresh), size=n_copy))
        variant = pl.Series(rng.integers(0, 3, size=n_copy))
        copies = pl.DataFrame({"t": src, "v": variant}).select(
            pl.when(pl.col("v") == 0)
            .then(pl.col("t").str.to_uppercase())
            .when(pl.col("v") == 1)
            .then(pl.col("t") + "!")
            .otherwise(pl.col("t").str.replace(" ", "  "))
        )["t"]
        text = pl.concat([fresh, copies])
        order = rng.permutation(n)
        chunk = pl.DataFrame({"text": text.gather(order)}).select(
            pl.format("x{}", pl.int_range(done, done + n)).alias("id"), pl.col("text")
        )
        table = chunk.with_columns(label=pl.lit("a"), split=pl.lit("train")).to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
        done += n
    if writer is not None:
        writer.close()


def run_assay(src: str, out: str) -> dict:
    from assay.curate.dedup_exact import dedup_parquet

    start = time.perf_counter()
    res = dedup_parquet(src, f"{out}/assay_kept.parquet", f"{out}/assay_dropped.parquet")
    seconds = time.perf_counter() - start
    return {
        "rows_per_s": res.rows / seconds,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "kept": res.kept,
        "dropped": res.dropped,
    }


def run_polars(src: str, out: str) -> dict:
    from assay.curate.dedup_exact import Normalization, normalized

    start = time.perf_counter()
    frame = pl.read_parquet(src)
    first = frame.select(normalized(pl.col("text"), Normalization()).is_first_distinct())
    mask = first.to_series()
    frame.filter(mask).write_parquet(f"{out}/polars_kept.parquet", compression="zstd")
    frame.filter(~mask).write_parquet(f"{out}/polars_dropped.parquet", compression="zstd")
    seconds = time.perf_counter() - start
    kept = int(mask.sum())
    return {
        "rows_per_s": frame.height / seconds,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "kept": kept,
        "dropped": frame.height - kept,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assay-bench-", ignore_cleanup_errors=True) as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    src = tmp / "corpus.parquet"
    generate(args.rows, src)
    results = {
        "assay_streaming": isolated(run_assay, str(src), str(tmp)),
        "polars_eager": isolated(run_polars, str(src), str(tmp)),
    }
    a, p = results["assay_streaming"], results["polars_eager"]
    same = a.get("kept") == p.get("kept")
    targets = [
        target("rows_per_s", a.get("rows_per_s", 0.0), 300_000, ">=", digits=1),
        target("peak_rss_mb", a.get("peak_rss_mb", float("inf")), 3072, "<=", digits=1),
        {"name": "same_kept_count_as_polars", "value": same, "target": "== true", "met": same},
    ]
    report = {
        "bench": "exact_dedup",
        "params": {"rows": args.rows},
        "results": results,
        "targets": targets,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"exact dedup benchmark: rows={args.rows}")
        print(
            f"{'method':<18}{'rows/s':>12}{'seconds':>10}{'peak MB':>10}{'kept':>12}{'dropped':>12}"
        )
        for name, r in results.items():
            if "error" in r:
                print(f"{name:<18} ERROR {r['error']}")
                continue
            print(
                f"{name:<18}{r['rows_per_s']:>12,.0f}{r['seconds']:>10.1f}"
                f"{r['peak_rss_mb']:>10,.0f}{r['kept']:>12,}{r['dropped']:>12,}"
            )
        print()
        for t in targets:
            print(
                f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['value']} (target {t['target']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
