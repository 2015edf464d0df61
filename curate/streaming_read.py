"""Exact dedup while reading: an input that is a directory of Parquet files, read for a
first step that is `dedup` with `method: exact`, is never held in memory whole.

The input is read batch by batch and mapped onto the corpus as `read` maps it (rows
without text are dropped at load, as there). Each batch goes to a scratch Parquet file and
its normalised texts are hashed into partitions on disk (`find_duplicate_rows`, the first
passes of `dedup_parquet`). Only the rows that share a normalised text with another row
are then loaded, and the `dedup` step itself runs on them: every member of every cluster
is there, so its keep, split and label-conflict rules, its report, findings and dropped
rows are the ones it gives on the whole corpus. Unless its keep rule compares lengths, the
step gets a short key of each row's normalised text in place of the text, and its dropped
rows get their text back afterwards. A last pass over the scratch files, one at a time,
adds the other rows (each its own cluster of one) in input order: the corpus the later
steps get.

Content ids repeat only between rows of the same text and label, which are in one cluster
or all dropped at load, so numbering repeats among those rows gives the ids of a whole load.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import corpus as corpus_mod
from assay.cache import StepCache, step_key
from assay.context import RunContext
from assay.curate.corpus_map import mapped_columns, source_names, to_corpus
from assay.curate.dedup import DedupFilter
from assay.curate.dedup_exact import DuplicateRows, find_duplicate_rows
from assay.curate.read_files import parquet_dir_hash, parquet_files
from assay.curate.read_options import Loaded, ReadOptions
from assay.curate.reader import source_format
from assay.errors import InputError, StepError
from assay.ids import disambiguate
from assay.step import DROP_COLUMNS, Step, StepResult, check_accounting

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000
# Rows per hash partition: pass 2 holds one partition's (hash, hash, row) triples and its
# window; smaller than `dedup_parquet`'s default, the driver has a corpus to hold besides.
PARTITION_ROWS = 500_000
_REPEAT_SUFFIX = r"\.\d+$"  # what `disambiguate` appends to the k-th repeat of a content id


@dataclasses.dataclass
class StreamedStart:
    """The input as read (its corpus: the rows the first step kept) and that step's result."""

    loaded: Loaded
    result: StepResult
    key: str  # the cache key of the corpus after the first step


def streamed_source(options: ReadOptions, steps: list[Step]) -> Path | None:
    """The Parquet directory to read while deduplicating, or None for a whole load."""
    if not steps or not isinstance(steps[0], DedupFilter) or steps[0].config.method != "exact":
        return None
    path = Path(options.source).expanduser()
    if not parquet_files(path) or source_format(path, options) != "parquet":
        return None  # not a Parquet directory, or one `read` reads by its splits
    return path


def dedup_while_reading(
    options: ReadOptions, steps: list[Step], ctx: RunContext, cache: StepCache
) -> StreamedStart | None:
    """Read the input `options` name and run the first of `steps` (exact dedup) on it out of
    core, if they are shaped for it (see `streamed_source`); None otherwise."""
    path = streamed_source(options, steps)
    if path is None:
        return None
    step = steps[0]
    started = time.perf_counter()
    input_key = parquet_dir_hash(path, options)
    key = step_key(input_key, step, ctx.seed, 0)
    reader = _CorpusBatches(path, options)
    log.info(
        "input %s: %d Parquet files read in batches of %d rows; exact dedup runs while "
        "reading and only the rows it keeps are loaded",
        path,
        len(reader.files),
        BATCH_ROWS,
    )
    result = cache.get(key) if cache.enabled and step.cacheable else None
    if result is None:
        with tempfile.TemporaryDirectory(prefix="assay-stream-") as scratch:
            result = _dedup(step, reader, Path(scratch), ctx)
        result.report.seconds = round(time.perf_counter() - started, 4)
        if cache.enabled and step.cacheable:
            cache.put(key, result)
    else:
        for _ in reader:  # the rows dropped at load are not in the step's cache entry
            pass
    report = result.report
    log.info(
        "%s: %d -> %d rows (%d dropped, %d added)%s",
        step.name,
        report.n_in,
        report.n_out,
        report.n_dropped,
        report.n_added,
        " [cached]" if report.cached else "",
    )
    loaded = Loaded(
        corpus=result.corpus,
        dropped=reader.load_dropped(),
        rows_read=reader.rows_read,
        input_hash=input_key,
        source=str(path),
    )
    return StreamedStart(loaded, result, key)


class _CorpusBatches:
    """The input's rows mapped onto the corpus batch by batch, as `read` maps them;
    rows without text are set aside (`load_dropped`), ids are checked across batches."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        import pyarrow.parquet as pq

        self.path, self.options = path, options
        self.files = parquet_files(path)
        try:
            names = list(pl.read_parquet_schema(self.files[0]))
            self._rows = [pq.read_metadata(f).num_rows for f in self.files]
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"cannot read {str(path)!r} as parquet: {exc}") from None
        self.columns = mapped_columns(path, names, options)
        mapped = source_names(options)
        self.sourced = {mapped[c] for c in self.columns if c in mapped}  # corpus columns read
        total = sum(self._rows)
        self.max_rows = total if options.limit is None else min(total, options.limit)
        self.rows_read = 0
        self._dropped: list[pl.DataFrame] = []
        self._id_hashes: list[np.ndarray] = []

    def __iter__(self) -> Iterator[pl.DataFrame]:
        self.rows_read, self._dropped, self._id_hashes = 0, [], []
        lenient = self.options.model_copy(update={"strict": False})
        for raw in self._raw_batches():
            corpus, dropped = to_corpus(raw, lenient)
            if self.options.strict and dropped.height:
                text = raw[self.options.text_column].cast(pl.String)
                empty = text.is_null() | (text.str.strip_chars() == "")
                first = self.rows_read + int(empty.arg_true()[0])
                raise InputError(
                    f"rows have null or empty text (first at row {first + 1}); drop strict to "
                    "record them as dropped"
                )
            self.rows_read += raw.height
            if self.options.id_column is None:
                corpus = corpus.with_columns(pl.col("id").str.replace(_REPEAT_SUFFIX, ""))
                dropped = dropped.with_columns(pl.col("id").str.replace(_REPEAT_SUFFIX, ""))
            else:
                self._id_hashes.append(corpus["id"].hash().to_numpy())
                self._id_hashes.append(dropped["id"].hash().to_numpy())
            if dropped.height or not self._dropped:  # the first keeps the schema
                self._dropped.append(dropped)
            yield corpus
        if self.rows_read == 0:
            raise InputError(f"input {str(self.path)!r} has no rows")

    def _raw_batches(self) -> Iterator[pl.DataFrame]:
        # polars reads a slice's row groups only; pyarrow's batch reader keeps its memory
        # pool's pages, which costs more than the batches themselves
        left = self.max_rows
        for file, rows in zip(self.files, self._rows, strict=True):
            for start in range(0, rows, BATCH_ROWS):
                if left <= 0:
                    return
                size = min(BATCH_ROWS, left)
                try:
                    frame = pl.scan_parquet(file).select(self.columns).slice(start, size).collect()
                except (OSError, pl.exceptions.PolarsError) as exc:
                    raise InputError(
                        f"cannot read {str(file)!r} as parquet: {str(exc).splitlines()[0]}"
                    ) from None
                left -= frame.height
                if frame.height:
                    yield frame

    def load_dropped(self) -> pl.DataFrame:
        """The rows without text, with ids numbered as a whole load numbers them."""
        dropped = pl.concat(self._dropped, how="diagonal_relaxed")
        return _numbered(dropped) if self.options.id_column is None else dropped

    def repeated_id_hashes(self) -> np.ndarray:
        """Hashes of given ids seen more than once (empty: ids are unique); the hashes of
        the ids read are let go."""
        if not self._id_hashes:
            return np.zeros(0, np.uint64)
        hashes = np.sort(np.concatenate(self._id_hashes))
        self._id_hashes = []
        return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(id=pl.Series(disambiguate(frame["id"].to_list()), dtype=pl.String))


def _dedup(step: Step, reader: _CorpusBatches, scratch: Path, ctx: RunContext) -> StepResult:
    """Pass 1-2: write the mapped batches and find the rows in clusters; pass 3: run the
    step on those rows; pass 4: the kept corpus in input order."""
    schemas: list[pl.Schema] = []  # of the batches written
    # per column the mapping sets (not read from the input): its one value so far
    constant: dict[str, Any] = {}

    def texts() -> Iterator[pl.DataFrame]:
        for corpus in reader:
            if schemas:  # a column all null in one batch takes the type of the first batch
                corpus = corpus.cast(dict(schemas[0]))  # type: ignore[arg-type]
            corpus.write_parquet(scratch / f"{len(schemas):06d}.parquet", compression="lz4")
            schemas.append(corpus.schema)
            _constants(corpus, reader.sourced, constant, first=len(schemas) == 1)
            yield corpus.select("text")

    # candidates by normalised text alone: a superset of the clusters of same_label_only
    found = find_duplicate_rows(
        texts(),
        reader.max_rows,
        norm=step.config.normalization,
        partition_rows=PARTITION_ROWS,
        workdir=scratch,
    )
    if not schemas:  # every row was dropped at load
        empty = reader.load_dropped().drop(*DROP_COLUMNS).clear()
        empty.write_parquet(scratch / f"{0:06d}.parquet")
    _check_unique_ids(reader, scratch)
    n_rows, positions = found.rows, np.flatnonzero(found.in_clusters())
    # the step decides by normalised text, label and split; unless it compares lengths,
    # it gets a key of each row's text in place of the text, and the dropped rows get
    # their text back afterwards
    keyed = step.config.keep != "longest"
    sub = _rows(scratch, positions, constant, _text_keys(found, positions) if keyed else None)
    del found
    if reader.options.id_column is None:
        sub = _numbered(sub)
    sctx = ctx.for_step(0, step.name)
    sub_result = step.apply(sub, sctx)
    check_accounting(sub, sub_result)
    # from here on only the ids of the rows in clusters, the step's columns of the rows it
    # kept and its dropped rows are held, besides the corpus being built
    kept_sub = sub_result.corpus
    kept = sub["id"].is_in(kept_sub["id"].implode()).to_numpy()
    dropped_ids = sub["id"].filter(pl.Series(~kept))
    del sub
    own = [c for c in kept_sub.columns if c.startswith(f"{step.name}__")]
    decided = kept_sub.select(pl.col("id").alias("_id"), *own)
    sub_result.corpus = kept_sub = kept_sub.clear()
    if keyed:
        sub_result = _with_text(scratch, sub_result, dropped_ids, positions[~kept])
    del dropped_ids
    corpus = _kept_corpus(scratch, positions, kept, decided, kept_sub.schema, constant, step.name)
    del decided
    try:
        corpus_mod.validate(corpus)
    except corpus_mod.SchemaError as exc:
        raise StepError(f"step {step.name!r} produced an invalid corpus: {exc}") from None
    report = sub_result.report
    report.n_in, report.n_out = n_rows, corpus.height
    if report.n_out != report.n_in - report.n_dropped:
        raise StepError(f"step {step.name!r} broke accounting reading {reader.path}")
    return dataclasses.replace(sub_result, corpus=corpus)


def _constants(
    corpus: pl.DataFrame, sourced: set[str], constant: dict[str, Any], *, first: bool
) -> None:
    """Update `constant` (column: its one value) with a batch: columns the mapping sets,
    such as a default weight or language, hold one value in every row; whole loads hold
    them as that value once, and so do the streamed corpus and rows."""
    if first:
        for name in corpus.columns:
            column = corpus[name]
            if name not in sourced and not column.dtype.is_nested() and column.n_unique() == 1:
                constant[name] = column[0]
        return
    for name, value in list(constant.items()):
        column = corpus[name]
        if column.n_unique() != 1 or column[0] != value:
            del constant[name]


def _batches(scratch: Path, skip: Sequence[str] = ()) -> Iterator[tuple[int, pl.DataFrame]]:
    """The scratch corpus batch by batch (without the columns in `skip`), with the position
    of each batch's first row."""
    start = 0
    for file in sorted(scratch.glob("*.parquet")):
        columns = [name for name in pl.read_parquet_schema(file) if name not in skip]
        frame = pl.read_parquet(file, columns=columns)
        yield start, frame
        start += frame.height


def _text_keys(found: DuplicateRows, positions: np.ndarray) -> pl.Series:
    """Per row at `positions`: the position of the first row of its normalised text, as a
    string. Equal keys are equal normalised texts (as far as the 128-bit hashes of
    `find_duplicate_rows` tell them apart), normalising a key leaves it as it is, and a
    key of up to 12 digits is held inside its string view, without a buffer."""
    first = positions.copy()
    repeats = found.drop[positions]
    first[repeats] = found.rep[np.searchsorted(found.dup, positions[repeats])]
    return pl.Series("text", first).cast(pl.String)


def _rows(
    scratch: Path, positions: np.ndarray, constant: dict[str, Any], text: pl.Series | None = None
) -> pl.DataFrame:
    """The rows of the scratch corpus at `positions` (sorted), in order, in buffers of
    their own (a filtered batch would keep the whole batch's text alive). Columns of one
    value (`constant`) come back as that value once; `text`, if given, stands in for the
    text, which is then not read."""
    names = pl.read_parquet_schema(sorted(scratch.glob("*.parquet"))[0])
    if text is None:
        rows = (
            _scan(scratch)
            .filter(pl.col("_pos").is_in(pl.Series(positions, dtype=pl.Int64).implode()))
            .select(name for name in names if name not in constant)
            .collect(engine="streaming")
        )
    else:  # without the text, a filtered batch holds no more than its rows
        parts = []
        for start, frame in _batches(scratch, [*constant, "text"]):
            lo, hi = np.searchsorted(positions, [start, start + frame.height])
            mask = np.zeros(frame.height, dtype=bool)
            mask[positions[lo:hi] - start] = True
            parts.append(frame.filter(pl.Series(mask)))
        rows = pl.concat(parts, rechunk=False)
    extra = [pl.lit(value, dtype=names[name]).alias(name) for name, value in constant.items()]
    if text is not None:
        extra.append(pl.lit(text))
    return rows.with_columns(extra).select(list(names))


def _with_text(
    scratch: Path, result: StepResult, ids: pl.Series, positions: np.ndarray
) -> StepResult:
    """The step ran on text keys: its dropped rows (`ids`, at `positions` in the scratch
    files) and its examples get their text back, read for those rows only."""
    dropped = result.dropped
    if dropped is None or not dropped.height:
        return result
    where = pl.DataFrame({"id": ids, "_pos": pl.Series(positions, dtype=pl.Int64)})
    texts = (
        _scan(scratch)
        .select("_pos", "text")
        .filter(pl.col("_pos").is_in(where["_pos"].implode()))
        .collect(engine="streaming")
    )
    texts = where.join(texts, on="_pos", how="left", maintain_order="left").select("id", "text")
    dropped = (
        dropped.drop("text")
        .join(texts, on="id", how="left", maintain_order="left")
        .select(dropped.columns)
    )
    text_of = dict(
        texts.filter(
            pl.col("id").is_in([e["id"] for e in result.report.examples if "id" in e])
        ).iter_rows()
    )
    for example in result.report.examples:
        if "text" in example and example.get("id") in text_of:
            example["text"] = text_of[example["id"]]
    return dataclasses.replace(result, dropped=dropped)


def _scan(scratch: Path) -> pl.LazyFrame:
    """The scratch corpus, lazily, with each row's position."""
    return (
        pl.scan_parquet(sorted(scratch.glob("*.parquet")))
        .with_row_index("_pos")
        .with_columns(pl.col("_pos").cast(pl.Int64))
    )


def _kept_corpus(
    scratch: Path,
    positions: np.ndarray,
    kept: np.ndarray,
    decided: pl.DataFrame,
    schema: pl.Schema,
    constant: dict[str, Any],
    name: str,
) -> pl.DataFrame:
    """Rows in no cluster (each its own cluster of one) and the rows the step kept (at
    `positions[kept]`, its id and columns in `decided`), in order, built one scratch file
    at a time and joined without a copy: the driver holds the corpus and one batch, as a
    whole load holds it. Columns of one value (`constant`) are not read: they come back as
    that value once, as a whole load sets them."""
    kept_pos, drop_pos = positions[kept], positions[~kept]
    own = [c for c in decided.columns if c.startswith(f"{name}__")]
    decided = decided.with_columns(_pos=pl.Series(kept_pos, dtype=pl.Int64))
    alone = {
        f"{name}__cluster": pl.col("id"),
        f"{name}__cluster_size": pl.lit(1, dtype=pl.Int64),
        f"{name}__representative": pl.col("id"),
        f"{name}__is_duplicate": pl.lit(False),
        f"{name}__label_conflict": pl.lit(False),
    }
    columns = [c for c in schema if c not in constant]
    parts = []
    for start, frame in _batches(scratch, constant):
        end = start + frame.height
        lo, hi = np.searchsorted(drop_pos, [start, end])
        keep = np.ones(frame.height, dtype=bool)
        keep[drop_pos[lo:hi] - start] = False
        lo, hi = np.searchsorted(kept_pos, [start, end])
        part = (
            frame.with_columns(_pos=pl.int_range(start, end, dtype=pl.Int64))
            .filter(pl.Series(keep))
            .join(
                decided.slice(int(lo), int(hi - lo)), on="_pos", how="left", maintain_order="left"
            )
            .with_columns(id=pl.coalesce("_id", "id"))
            .with_columns(
                pl.when(pl.col("_id").is_null()).then(alone[c]).otherwise(pl.col(c)).alias(c)
                for c in own
            )
            .select(columns)
            .cast({c: schema[c] for c in columns})  # type: ignore[arg-type]
        )
        del frame
        parts.append(part)
    corpus = pl.concat(parts, rechunk=False)
    return corpus.with_columns(
        pl.lit(v, dtype=schema[c]).alias(c) for c, v in constant.items()
    ).select(list(schema))


def _check_unique_ids(reader: _CorpusBatches, scratch: Path) -> None:
    """Given ids must be unique across all files, as a whole load requires."""
    repeated = reader.repeated_id_hashes()
    if not len(repeated):
        return
    ids = [
        frame.filter(frame["id"].hash().is_in(pl.Series(repeated).implode()))["id"]
        for _, frame in _batches(scratch)
    ]
    ids.append(reader.load_dropped()["id"])
    found = pl.concat(ids)
    dup = found.filter(found.is_duplicated())
    if len(dup):
        raise InputError(
            f"id column {reader.options.id_column!r} has {len(dup)} null or repeated values, "
            f"e.g. {dup.head(3).to_list()}; ids must be unique"
        )
