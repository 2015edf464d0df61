"""Benchmark: exact dedup of a Parquet corpus larger than you would like to hold in memory.

Generates `--rows` short rows (8 random words; 30% are copies of an earlier row with
changed case, punctuation or spacing), written to Parquet outside the timing. Then, each
in its own fresh process (so peak RSS is its own), one after the other:

- assay: `assay.curate.dedup_exact.dedup_parquet` (streaming: hash partitions on disk,
  one partition in memory at a time, kept and dropped rows streamed out);
- polars eager: read the file, normalise, keep the first row of each normalised text
  (`is_first_distinct`), write kept and dropped rows.

Both use the same normalisation and write the same two Parquet files.

Then the recipe `dedup: {method: exact}` on `--recipe-rows` rows (`--recipe-copies` of them
copies) written as a directory of Parquet files, each path in its own process, peak RSS
of the driver:

- recipe streaming: the directory as input; the dedup runs while it is read and only the
  kept rows are loaded (`assay.curate.streaming_read`);
- recipe in memory: the same rows as one Parquet file, loaded whole, then deduplicated;
- with `--ray`, both again with `engine: ray` (a local Ray cluster started in the process;
  its workers and object store are other processes, not in the driver's peak).

Beside the peaks: the bytes of the loaded input corpus and of the kept corpus
(`estimated_size`), so a reader sees how many copies the driver holds. Memory does not
suffer from other work on the machine; the times do.

    .venv/bin/python bench/exact_dedup.py --rows 10000000 --recipe-rows 1000000 [--ray] [--json]
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


def generate(rows: int, path: Path, seed: int = 11, copy_share: float = 0.3) -> None:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i:x}" for i in range(50_000)])
    writer = None
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        n_copy = int(n * copy_share)
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


def as_directory(src: Path, folder: Path, rows_per_file: int = 250_000) -> Path:
    """The rows of `src` as a directory of Parquet files, in order."""
    folder.mkdir()
    batches = pq.ParquetFile(src).iter_batches(batch_size=rows_per_file)
    for k, batch in enumerate(batches):
        pq.write_table(pa_table(batch), folder / f"part-{k:04d}.parquet", compression="zstd")
    return folder


def pa_table(batch: object) -> object:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def dedup_recipe(source: str, engine: str) -> dict:
    return {
        "name": "dedup-bench",
        "cache": False,
        "engine": engine,
        "input": {"source": source, "id_column": "id", "split_column": "split"},
        "steps": [{"dedup": {"method": "exact"}}],
        "output": {"report": False},
    }


def run_recipe(source: str, out: str, engine: str) -> dict:
    """One run of the dedup recipe; peak RSS of this (driver) process."""
    import logging

    from assay import run

    if engine == "ray":
        import ray

        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    streamed: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            streamed.append(record.getMessage())

    log = logging.getLogger("assay.curate.streaming_read")
    log.setLevel(logging.INFO)
    log.addHandler(Seen())
    start = time.perf_counter()
    result = run(dedup_recipe(source, engine), out)
    seconds = time.perf_counter() - start
    corpus = result.pipeline.corpus
    if engine == "ray":
        import ray

        ray.shutdown()
    return {
        "streamed": any("while reading" in m for m in streamed),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rows_read": result.manifest["accounting"]["rows_read"],
        "rows_out": corpus.height,
        "kept_corpus_mb": round(corpus.estimated_size() / 2**20, 1),
        "corpus_hash": int(corpus.sort("id").hash_rows(seed=1).sum()),
    }


def loaded_size(source: str) -> dict:
    """The input as one in-memory corpus: its bytes, and the peak of loading it alone."""
    from assay.curate.io import ReadOptions, read

    corpus = read(ReadOptions(source=source, id_column="id", split_column="split")).corpus
    return {
        "input_corpus_mb": round(corpus.estimated_size() / 2**20, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def recipe_paths(rows: int, tmp: Path, ray: bool, copy_share: float = 0.1) -> dict:
    single = tmp / "recipe.parquet"
    generate(rows, single, seed=5, copy_share=copy_share)
    folder = as_directory(single, tmp / "recipe-dir")
    results: dict = {"load_only": isolated(loaded_size, str(single))}
    for engine in ("local", "ray") if ray else ("local",):
        for name, source in (("streaming", folder), ("in_memory", single)):
            key = f"{name}_{engine}"
            results[key] = isolated(run_recipe, str(source), str(tmp / key), engine)
            print(f"recipe {key} ({rows:,} rows): {results[key]}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--recipe-rows", type=int, default=1_000_000, help="0: skip the recipe")
    ap.add_argument("--recipe-copies", type=float, default=0.1, help="share of copied rows")
    ap.add_argument("--ray", action="store_true", help="the recipe on Ray too")
    ap.add_argument("--skip-parquet", action="store_true", help="only the recipe paths")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assay-bench-", ignore_cleanup_errors=True) as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    results: dict = {}
    targets: list[dict] = []
    if not args.skip_parquet:
        src = tmp / "corpus.parquet"
        generate(args.rows, src)
        results["assay_streaming"] = isolated(run_assay, str(src), str(tmp))
        results["polars_eager"] = isolated(run_polars, str(src), str(tmp))
        a, p = results["assay_streaming"], results["polars_eager"]
        same = a.get("kept") == p.get("kept")
        targets += [
            target("rows_per_s", a.get("rows_per_s", 0.0), 300_000, ">=", digits=1),
            target("peak_rss_mb", a.get("peak_rss_mb", float("inf")), 3072, "<=", digits=1),
            {"name": "same_kept_count_as_polars", "value": same, "target": "== true", "met": same},
        ]
    recipe = (
        recipe_paths(args.recipe_rows, tmp, args.ray, args.recipe_copies)
        if args.recipe_rows > 0
        else {}
    )
    for engine in ("local", "ray"):
        s, m = recipe.get(f"streaming_{engine}", {}), recipe.get(f"in_memory_{engine}", {})
        if "corpus_hash" in s and "corpus_hash" in m:
            same_run = s["corpus_hash"] == m["corpus_hash"] and s["streamed"] and not m["streamed"]
            targets.append(
                {
                    "name": f"recipe_streaming_same_corpus_{engine}",
                    "value": same_run,
                    "target": "== true",
                    "met": same_run,
                }
            )
            recipe[f"rss_streaming_over_in_memory_{engine}"] = round(
                s["peak_rss_mb"] / m["peak_rss_mb"], 2
            )
    report = {
        "bench": "exact_dedup",
        "params": {
            "rows": args.rows,
            "recipe_rows": args.recipe_rows,
            "recipe_copies": args.recipe_copies,
            "ray": args.ray,
        },
        "results": {**results, "recipe": recipe},
        "targets": targets,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    if results:
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
    if recipe:
        print(f"recipe dedup exact: rows={args.recipe_rows}")
        print(f"{'path':<20}{'seconds':>10}{'peak MB':>10}{'rows out':>12}{'kept MB':>10}")
        for name, r in recipe.items():
            if not isinstance(r, dict) or name == "load_only":
                continue
            if "error" in r:
                print(f"{name:<20} ERROR {r['error']}")
                continue
            print(
                f"{name:<20}{r['seconds']:>10.1f}{r['peak_rss_mb']:>10,.0f}"
                f"{r['rows_out']:>12,}{r['kept_corpus_mb']:>10,.1f}"
            )
        print(f"load only (input as one corpus): {recipe.get('load_only')}")
        for key, value in recipe.items():
            if key.startswith("rss_"):
                print(f"{key}: {value}")
        print()
    for t in targets:
        print(
            f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['value']} (target {t['target']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
