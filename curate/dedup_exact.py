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
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import Queue
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from assay.errors import InputError

log = logging.getLogger(__name__)
PUNCTUATION = r"[\p{P}\p{S}]"
PUNCTUATION_OR_SPACE = r"[\p{P}\p{S}\s]+"


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
    return _folded(text, norm)


def _folded(text: pl.Expr, norm: Normalization) -> pl.Expr:
    if norm.lowercase:
        text = text.str.to_lowercase()
    if norm.punctuation and norm.whitespace:
        # one pass: a run of marks and spaces becomes one space ("a , b" -> "a b")
        return text.str.replace_all(PUNCTUATION_OR_SPACE, " ").str.strip_chars()
    if norm.punctuation:
        text = text.str.replace_all(PUNCTUATION, "")
    if norm.whitespace:
        text = text.str.replace_all(r"\s+", " ").str.strip_chars()
    return text


def normalize_series(text: pl.Series, norm: Normalization) -> pl.Series:
    """`normalized` for a Series, with NFKC applied only to rows that are not pure ASCII
    (NFKC leaves ASCII unchanged, and it is the costliest part)."""
    if norm.unicode:
        non_ascii = text.str.len_bytes() != text.str.len_chars().cast(pl.UInt32)
        if non_ascii.any():
            idx = non_ascii.arg_true()
            text = text.scatter(idx, text.gather(idx).str.normalize("NFKC"))
    return pl.select(_folded(pl.lit(text), norm)).to_series().alias(text.name)


def label_key(frame: pl.DataFrame) -> pl.Expr:
    """A string key of the label (multi-label: the sorted labels joined), null stays null."""
    if isinstance(frame.schema.get("label"), pl.List):
        return pl.col("label").list.sort().list.join("\x1f")
    return pl.col("label").cast(pl.String)


def exact_clusters(
    frame: pl.DataFrame, norm: Normalization, same_label_only: bool = False
) -> np.ndarray:
    """Cluster label of every row: the first row (position) with the same normalised text."""
    keys = [pl.lit(normalize_series(frame["text"], norm)).alias("_key")]
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


def _keyed_batch(batch: pa.Table, norm: Normalization, same_label_only: bool) -> pa.Table:
    """Row position, normalised text (and label), and a hash of them to shuffle on."""
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    cols = [pl.col("_row"), pl.lit(normalize_series(frame["text"], norm)).alias("_key")]
    if same_label_only:
        cols.append(label_key(frame).fill_null("\x00null").alias("_label"))
    keyed = frame.select(cols)
    by = ["_key", "_label"] if same_label_only else ["_key"]
    return keyed.with_columns(
        pl.struct(by).hash(seed=0x5EED).reinterpret(signed=True).alias("_hash")
    ).to_arrow()


def _first_of_key(part: pa.Table) -> pa.Table:
    """Within a partition that holds every row of its keys: the first row of each key."""
    frame = pl.from_arrow(part)
    assert isinstance(frame, pl.DataFrame)
    by = [c for c in ("_key", "_label") if c in frame.columns]
    return frame.select(
        pl.col("_row"), pl.col("_row").min().over(by).cast(pl.Int64).alias("_first")
    ).to_arrow()


def exact_clusters_on(
    engine: Any, frame: pl.DataFrame, norm: Normalization, same_label_only: bool = False
) -> np.ndarray:
    """`exact_clusters` on an engine: normalisation in batches (`map_batches`), then a
    hash shuffle puts each key's rows together (`shuffle_map`); same clusters."""
    columns = ["text", "label"] if same_label_only else ["text"]
    table = frame.select(columns).with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    keyed = engine.map_batches(
        table.to_arrow(),
        functools.partial(_keyed_batch, norm=norm, same_label_only=same_label_only),
    )
    firsts = pl.from_arrow(engine.shuffle_map(keyed, "_hash", _first_of_key))
    assert isinstance(firsts, pl.DataFrame)
    return firsts.sort("_row")["_first"].to_numpy()


# -- out-of-core ---------------------------------------------------------------------------------


class _ParquetSource:
    """One Parquet file or a directory of them (name order), read batch by batch."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        import pyarrow.parquet as pq

        path = Path(source)
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not files:
            raise InputError(f"{str(path)!r} holds no *.parquet files")
        self.files = [pq.ParquetFile(f) for f in files]
        self.schema_arrow = self.files[0].schema_arrow
        self.num_rows = sum(f.metadata.num_rows for f in self.files)

    def iter_batches(self, **kw: Any) -> Iterator[Any]:
        for f in self.files:
            yield from f.iter_batches(**kw)


T = TypeVar("T")
THREADS = max(2, min(8, os.cpu_count() or 2))
_DONE = object()


def _prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Produce the next item (Parquet decoding releases the GIL) while the caller works."""
    queue: Queue[Any] = Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                queue.put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)
        queue.put(_DONE)

    threading.Thread(target=produce, daemon=True).start()
    while (item := queue.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        yield item


def _after(pending: Future | None, pool: ThreadPoolExecutor, fn: Callable, *args: Any) -> Future:
    """Run `fn` in `pool` once the previous write finished: writes stay in order."""
    if pending is not None:
        pending.result()
    return pool.submit(fn, *args)


@dataclasses.dataclass
class ParquetDedupResult:
    rows: int
    kept: int
    dropped: int
    partitions: int


def _hash_batch(batch: pl.DataFrame, norm: Normalization, same_label_only: bool) -> pl.DataFrame:
    key = pl.lit(normalize_series(batch["text"], norm))
    if same_label_only:
        key = pl.concat_str(
            [key, pl.col("label").cast(pl.String).fill_null("\x00null")], separator="\x1f"
        )
    return batch.select(key.alias("k")).select(
        pl.col("k").hash(seed=0x5EED).alias("h1"), pl.col("k").hash(seed=0xD00D).alias("h2")
    )


def _hash_parallel(
    batch: pl.DataFrame, norm: Normalization, same_label_only: bool, pool: ThreadPoolExecutor
) -> pl.DataFrame:
    """`_hash_batch` over slices in threads: polars runs one string chunk on one core, and
    its string functions release the GIL."""
    size = -(-batch.height // THREADS)
    slices = [batch.slice(i, size) for i in range(0, batch.height, size)]
    parts = list(pool.map(lambda b: _hash_batch(b, norm, same_label_only), slices))
    return pl.concat(parts) if len(parts) > 1 else parts[0]


@dataclasses.dataclass
class DuplicateRows:
    """Which rows repeat an earlier row's normalised text, by position in the stream."""

    rows: int
    partitions: int
    drop: np.ndarray  # per row: it repeats an earlier row
    dup: np.ndarray  # the repeating rows, sorted
    rep: np.ndarray  # the first row each of them repeats
    rep_rows: np.ndarray  # first rows of the texts seen more than once, sorted
    rep_sizes: np.ndarray  # how many rows share each of those texts

    def in_clusters(self) -> np.ndarray:
        """Per row: it shares its normalised text with another row."""
        mask = self.drop.copy()
        mask[self.rep_rows] = True
        return mask


def _frame(batch: Any) -> pl.DataFrame:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame


def find_duplicate_rows(
    batches: Iterable[pl.DataFrame],
    max_rows: int,
    *,
    norm: Normalization,
    same_label_only: bool = False,
    partition_rows: int = 2_000_000,
    workdir: str | os.PathLike[str] | None = None,
) -> DuplicateRows:
    """Passes 1 and 2 of the out-of-core dedup over frames of `text` (and `label`): hash
    (h1, h2, row) triples into partitions on disk, then find the first row of every key
    one partition at a time. `max_rows` bounds the rows to come (it sets the partitions).
    Hashes are 128 bits: a collision would merge two texts, at odds far below 2^-64."""
    started = time.perf_counter()
    nparts = max(1, -(-max_rows // partition_rows))
    scratch = Path(tempfile.mkdtemp(prefix="assay-dedup-", dir=workdir))
    try:
        # pass 1: (h1, h2, row) triples, partitioned by hash into flat binary files
        files = [open(scratch / f"part{p:04d}.bin", "wb") for p in range(nparts)]  # noqa: SIM115
        pool = ThreadPoolExecutor(THREADS)
        start = 0
        try:
            for batch in batches:
                hashed = _hash_parallel(batch, norm, same_label_only, pool)
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
            pool.shutdown(wait=True)
            for f in files:
                f.close()
        log.debug("exact dedup pass 1 (hash, partition): %.2fs", time.perf_counter() - started)
        # pass 2: per partition, the first row of each key; others point at it
        n = start
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
        # sorted by row, so that each batch of pass 3 finds its rows by binary search
        order = np.argsort(dup)
        dup, rep = dup[order], rep[order]
        rep_rows = np.concatenate(sizes_rep) if sizes_rep else np.zeros(0, np.int64)
        rep_sizes = np.concatenate(sizes_n) if sizes_n else np.zeros(0, np.int64)
        order = np.argsort(rep_rows)
        rep_rows, rep_sizes = rep_rows[order], rep_sizes[order]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.debug(
        "exact dedup passes 1-2 (hash, first of each key): %.2fs", time.perf_counter() - started
    )
    return DuplicateRows(n, nparts, drop, dup, rep, rep_rows, rep_sizes)


def dedup_parquet(
    source: str | os.PathLike[str],
    kept_path: str | os.PathLike[str],
    dropped_path: str | os.PathLike[str],
    *,
    norm: Normalization | None = None,
    same_label_only: bool = False,
    batch_rows: int = 250_000,
    partition_rows: int = 2_000_000,
    workdir: str | os.PathLike[str] | None = None,
    step: str = "dedup",
) -> ParquetDedupResult:
    """Exact-dedup a Parquet file (or a directory of them, in name order) of any size into
    kept and dropped Parquet files.

    The first row of every normalised text is kept, in input order. Kept rows gain
    `<step>__cluster` (their own id) and `<step>__cluster_size`; dropped rows gain
    `<step>__cluster` (the id of the kept row), `step` and `reason`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    norm = norm or Normalization()
    source_file = _ParquetSource(source)
    names = source_file.schema_arrow.names
    needed = ["id", "text"] + (["label"] if same_label_only else [])
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(f"{source} has no column(s) {missing}; found {names}")
    cols = ["text"] + (["label"] if same_label_only else [])
    batches = source_file.iter_batches(batch_size=batch_rows, columns=cols)
    found = find_duplicate_rows(
        (_frame(b) for b in _prefetch(batches)),
        source_file.num_rows,
        norm=norm,
        same_label_only=same_label_only,
        partition_rows=partition_rows,
        workdir=workdir,
    )
    n, nparts = found.rows, found.partitions
    drop, dup, rep = found.drop, found.dup, found.rep
    rep_rows, rep_sizes = found.rep_rows, found.rep_sizes
    # pass 3: stream the source again; representatives always come before their duplicates,
    # so the ids of the representatives seen so far are enough (kept as chunks, no copies).
    rep_id_chunks: list[pl.Series] = []
    kept_writer = dropped_writer = None
    writes = ThreadPoolExecutor(1)  # compress and write while the next batch is read
    pending: Future | None = None
    start = 0
    cluster, size_col = f"{step}__cluster", f"{step}__cluster_size"
    try:
        for record_batch in _prefetch(source_file.iter_batches(batch_size=batch_rows)):
            batch = pl.from_arrow(record_batch)
            lo, hi = start, start + batch.height
            start = hi
            i0, i1 = np.searchsorted(rep_rows, [lo, hi])
            rep_id_chunks.append(batch["id"].gather(rep_rows[i0:i1] - lo))
            sizes = np.ones(batch.height, dtype=np.int64)
            sizes[rep_rows[i0:i1] - lo] = rep_sizes[i0:i1]
            mask = drop[lo:hi]
            keep_mask = pl.Series(~mask)
            kept = batch.filter(keep_mask).with_columns(
                pl.col("id").alias(cluster), pl.Series(size_col, sizes[~mask])
            )
            gone = batch.filter(pl.Series(mask))
            if gone.height:
                j0, j1 = np.searchsorted(dup, [lo, hi])
                known = pl.concat(rep_id_chunks, rechunk=False)
                where = np.searchsorted(rep_rows[:i1], rep[j0:j1])
                gone = gone.with_columns(
                    known.gather(where).alias(cluster),
                    pl.lit(step).alias("step"),
                    pl.lit("duplicate").alias("reason"),
                )
            kept_table = kept.to_arrow()
            if kept_writer is None:
                kept_writer = pq.ParquetWriter(kept_path, kept_table.schema, compression="zstd")
            pending = _after(pending, writes, kept_writer.write_table, kept_table)
            if gone.height:
                gone_table = gone.to_arrow()
                if dropped_writer is None:
                    dropped_writer = pq.ParquetWriter(
                        dropped_path, gone_table.schema, compression="zstd"
                    )
                pending = _after(
                    pending,
                    writes,
                    dropped_writer.write_table,
                    gone_table.cast(dropped_writer.schema),
                )
        if pending is not None:
            pending.result()
    finally:
        writes.shutdown(wait=True)
        if kept_writer is not None:
            kept_writer.close()
        if dropped_writer is not None:
            dropped_writer.close()
    if dropped_writer is None:
        extra = [pa.field(c, pa.large_string()) for c in (cluster, "step", "reason")]
        schema = pa.schema([*source_file.schema_arrow, *extra])
        pq.write_table(schema.empty_table(), dropped_path)
    n_dropped = int(drop.sum())
    log.debug("exact dedup pass 3 (write): %.2fs", time.perf_counter() - started)
    return ParquetDedupResult(rows=n, kept=n - n_dropped, dropped=n_dropped, partitions=nparts)
