"""Exact duplicates: equal text after a configurable normalisation.

In memory, rows are grouped by their normalised text itself (no hash, so no collisions).
For corpora larger than memory, `dedup_parquet` streams a Parquet file in batches, hashes
the normalised text to 128 bits, partitions (hash, row) pairs to disk by hash, finds the
first row of every key one partition at a time, then streams the source again to write the
kept and the dropped rows. Memory stays bounded by one batch, one partition, and one byte
per row.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.errors import InputError

PUNCTUATION = r"[\p{P}\p{S}]"


class Normalization(BaseModel):
    """How text is normalised before it is compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lowercase: bool = Field(True, description="compare case-insensitively")
    punctuation: bool = Field(True, description="ignore punctuation and symbols")
    whitespace: bool = Field(True, description="collapse runs of whitespace and strip the ends")
    unicode: bool = Field(True, description="apply Unicode NFKC normalisation first")


def normalized(text: pl.Expr, norm: Normalization) -> pl.Expr:
    """The normalised form of a text expression."""
    if norm.unicode:
        text = text.str.normalize("NFKC")
    if norm.lowercase:
        text = text.str.to_lowercase()
    if norm.punctuation:
        # A removed mark may separate words ("a,b"): replace it with a space.
        text = text.str.replace_all(PUNCTUATION, " " if norm.whitespace else "")
    if norm.whitespace:
        text = text.str.replace_all(r"\s+", " ").str.strip_chars()
    return text


def label_key(frame: pl.DataFrame) -> pl.Expr:
    """A string key of the label (multi-label: the sorted labels joined), null stays null."""
    if isinstance(frame.schema.get("label"), pl.List):
        return pl.col("label").list.sort().list.join("\x1f")
    return pl.col("label").cast(pl.String)


def exact_clusters(
    frame: pl.DataFrame, norm: Normalization, same_label_only: bool = False
) -> np.ndarray:
    """Cluster label of every row: the first row (position) with the same normalised text."""
    keys = [normalized(pl.col("text"), norm).alias("_key")]
    by = ["_key"]
    if same_label_only:
        keys.append(label_key(frame).fill_null("\x00null").alias("_label"))
        by.append("_label")
    out = (
        frame.select(*keys)
        .with_row_index("_row")
        .select(pl.col("_row").min().over(by).cast(pl.Int64))
    )
    return out.to_series().to_numpy()


# -- out-of-core ---------------------------------------------------------------------------------


@dataclasses.dataclass
class ParquetDedupResult:
    rows: int
    kept: int
    dropped: int
    partitions: int


def _hash_batch(batch: pl.DataFrame, norm: Normalization, same_label_only: bool) -> pl.DataFrame:
    key = normalized(pl.col("text"), norm)
    if same_label_only:
        key = pl.concat_str(
            [key, pl.col("label").cast(pl.String).fill_null("\x00null")], separator="\x1f"
        )
    return batch.select(key.alias("k")).select(
        pl.col("k").hash(seed=0x5EED).alias("h1"), pl.col("k").hash(seed=0xD00D).alias("h2")
    )


def dedup_parquet(
    source: str | os.PathLike[str],
    kept_path: str | os.PathLike[str],
    dropped_path: str | os.PathLike[str],
    *,
    norm: Normalization | None = None,
    same_label_only: bool = False,
    batch_rows: int = 1_000_000,
    partition_rows: int = 4_000_000,
    workdir: str | os.PathLike[str] | None = None,
    step: str = "dedup",
) -> ParquetDedupResult:
    """Exact-dedup a Parquet file of any size into kept and dropped Parquet files.

    The first row of every normalised text is kept, in input order. Kept rows gain
    `<step>__cluster` (their own id) and `<step>__cluster_size`; dropped rows gain
    `<step>__cluster` (the id of the kept row), `step` and `reason`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    norm = norm or Normalization()
    source_file = pq.ParquetFile(source)
    names = source_file.schema_arrow.names
    needed = ["id", "text"] + (["label"] if same_label_only else [])
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(f"{source} has no column(s) {missing}; found {names}")
    n = source_file.metadata.num_rows
    nparts = max(1, -(-n // partition_rows))
    scratch = Path(tempfile.mkdtemp(prefix="assay-dedup-", dir=workdir))
    try:
        # pass 1: (h1, h2, row) triples, partitioned by hash into flat binary files
        files = [open(scratch / f"part{p:04d}.bin", "wb") for p in range(nparts)]  # noqa: SIM115
        try:
            start = 0
            cols = ["text"] + (["label"] if same_label_only else [])
            for record_batch in source_file.iter_batches(batch_size=batch_rows, columns=cols):
                hashed = _hash_batch(pl.from_arrow(record_batch), norm, same_label_only)
                h1 = hashed["h1"].to_numpy()
                h2 = hashed["h2"].to_numpy()
                rows = np.arange(start, start + len(h1), dtype=np.uint64)
                start += len(h1)
                triples = np.stack([h1, h2, rows], axis=1)
                part = (h1 % np.uint64(nparts)).astype(np.int64)
                order = np.argsort(part, kind="stable")
                bounds = np.searchsorted(part[order], np.arange(nparts + 1))
                for p in range(nparts):
                    chunk = triples[order[bounds[p] : bounds[p + 1]]]
                    if len(chunk):
                        files[p].write(chunk.tobytes())
        finally:
            for f in files:
                f.close()
        # pass 2: per partition, the first row of each key; others point at it
        drop = np.zeros(n, dtype=bool)
        rep_of: list[np.ndarray] = []
        dup_rows: list[np.ndarray] = []
        sizes_rep: list[np.ndarray] = []
        sizes_n: list[np.ndarray] = []
        for p in range(nparts):
            triples = np.fromfile(scratch / f"part{p:04d}.bin", dtype=np.uint64).reshape(-1, 3)
            if not len(triples):
                continue
            frame = pl.DataFrame(
                {"h1": triples[:, 0], "h2": triples[:, 1], "row": triples[:, 2].astype(np.int64)}
            )
            del triples
            frame = frame.with_columns(
                rep=pl.col("row").min().over("h1", "h2"), size=pl.len().over("h1", "h2")
            ).filter(pl.col("size") > 1)
            dups = frame.filter(pl.col("row") != pl.col("rep"))
            dup_rows.append(dups["row"].to_numpy())
            rep_of.append(dups["rep"].to_numpy())
            reps = frame.filter(pl.col("row") == pl.col("rep"))
            sizes_rep.append(reps["row"].to_numpy())
            sizes_n.append(reps["size"].to_numpy().astype(np.int64))
        dup = np.concatenate(dup_rows) if dup_rows else np.zeros(0, np.int64)
        rep = np.concatenate(rep_of) if rep_of else np.zeros(0, np.int64)
        drop[dup] = True
        rep_rows = np.concatenate(sizes_rep) if sizes_rep else np.zeros(0, np.int64)
        rep_sizes = np.concatenate(sizes_n) if sizes_n else np.zeros(0, np.int64)
        size_of = pl.DataFrame({"_row": rep_rows, "_size": rep_sizes})
        rep_frame = pl.DataFrame({"_row": dup, "_rep": rep})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # pass 3: stream the source again; representatives always come before their duplicates
    rep_ids = pl.DataFrame(schema={"_row": pl.Int64, "_rep_id": pl.String})
    kept_writer = dropped_writer = None
    start = 0
    cluster, size_col = f"{step}__cluster", f"{step}__cluster_size"
    try:
        for record_batch in source_file.iter_batches(batch_size=batch_rows):
            batch = pl.from_arrow(record_batch).with_row_index("_row", offset=start)
            batch = batch.with_columns(pl.col("_row").cast(pl.Int64))
            stop = start + batch.height
            start = stop
            mask = pl.Series(drop[batch["_row"].to_numpy()])
            is_rep = batch.select("_row", "id").join(size_of, on="_row", how="inner")
            if is_rep.height:
                rep_ids = pl.concat([rep_ids, is_rep.select("_row", pl.col("id").alias("_rep_id"))])
            kept = batch.filter(~mask).join(size_of, on="_row", how="left", maintain_order="left")
            kept = kept.with_columns(
                pl.col("id").alias(cluster),
                pl.col("_size").fill_null(1).cast(pl.Int64).alias(size_col),
            ).drop("_row", "_size")
            gone = batch.filter(mask)
            if gone.height:
                gone = (
                    gone.join(rep_frame, on="_row", how="left", maintain_order="left")
                    .join(
                        rep_ids, left_on="_rep", right_on="_row", how="left", maintain_order="left"
                    )
                    .with_columns(
                        pl.col("_rep_id").alias(cluster),
                        pl.lit(step).alias("step"),
                        pl.lit("duplicate").alias("reason"),
                    )
                    .drop("_row", "_rep", "_rep_id")
                )
            kept_table = kept.to_arrow()
            if kept_writer is None:
                kept_writer = pq.ParquetWriter(kept_path, kept_table.schema, compression="zstd")
            kept_writer.write_table(kept_table)
            if gone.height:
                gone_table = gone.to_arrow()
                if dropped_writer is None:
                    dropped_writer = pq.ParquetWriter(
                        dropped_path, gone_table.schema, compression="zstd"
                    )
                dropped_writer.write_table(gone_table.cast(dropped_writer.schema))
    finally:
        if kept_writer is not None:
            kept_writer.close()
        if dropped_writer is not None:
            dropped_writer.close()
    if dropped_writer is None:
        schema = pa.schema([*source_file.schema_arrow, pa.field(cluster, pa.large_string())])
        pq.write_table(schema.empty_table(), dropped_path)
    n_dropped = int(drop.sum())
    return ParquetDedupResult(rows=n, kept=n - n_dropped, dropped=n_dropped, partitions=nparts)
