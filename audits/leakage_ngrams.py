"""The leakage audit's n-gram method: eval rows that share a word n-gram with a row of an
earlier split, with the longest shared run of words.

Word n-grams are hashed in a few vector passes (no loop over rows), and the join on their
hashes runs through an engine's shuffle when one is given. The other methods, and the
findings' schema, are in `assay.audits.leakage_methods`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from assay.audits.leakage_methods import _finish, empty

# 2**64 over the golden ratio (Fibonacci hashing): spreads the bits of word hashes as
# they are mixed into an n-gram's hash
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _word_table(rows: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Words of every row's normalised text: (words frame, row index, position, word hash)."""
    words = (
        rows.select(pl.col("row"), w=pl.col("norm").str.split(" "))
        .with_columns(n_words=pl.col("w").list.len())
        .explode("w")
        .filter(pl.col("w").is_not_null() & (pl.col("w") != ""))
        .with_columns(pos=pl.int_range(pl.len()).over("row"), h=pl.col("w").hash(seed=0x1EA))
    )
    return (
        words,
        words["row"].to_numpy(),
        words["pos"].to_numpy(),
        words["h"].to_numpy().astype(np.uint64),
    )


def _gram_hashes(row: np.ndarray, h: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(start index, hash) of every word n-gram that stays inside its row: n vector passes,
    no loop over rows."""
    m = len(h) - n + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    starts = np.arange(m, dtype=np.int64)
    valid = row[starts] == row[starts + n - 1]
    g = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            g = (g ^ h[j : j + m]) * _MIX
            g ^= g >> np.uint64(29)
    return starts[valid], g[valid]


def _gram_hits(ev: pl.DataFrame, other: pl.DataFrame, engine: Any = None) -> pl.DataFrame:
    """(row, pos, g, o_row): each eval n-gram (`ev`: row, pos, g) with every row of the
    other split (`other`: g, row) that has it; on an engine, per partition of hashes."""
    if engine is None:
        return _hits(ev, other)
    both = pl.concat(
        [
            ev.select("g", "row", "pos", side=pl.lit(0, pl.Int8)),
            other.select("g", "row", pos=pl.lit(-1, pl.Int64), side=pl.lit(1, pl.Int8)),
        ],
        how="vertical_relaxed",
    )
    out = pl.from_arrow(engine.shuffle_map(both.to_arrow(), "g", _hits_part))
    assert isinstance(out, pl.DataFrame)
    return out


def _hits(ev: pl.DataFrame, other: pl.DataFrame) -> pl.DataFrame:
    # only the other split's n-grams that some eval row has: a small frame to dedupe
    found = other.join(ev.select("g").unique(), on="g", how="semi").select("g", o_row="row")
    return ev.join(found.unique(), on="g", how="inner")


def _hits_part(part: Any) -> Any:
    both = pl.from_arrow(part)
    assert isinstance(both, pl.DataFrame)
    ev = both.filter(pl.col("side") == 0).select("row", "pos", "g")
    other = both.filter(pl.col("side") == 1).select("g", "row")
    return _hits(ev, other).to_arrow()


def ngram_overlap(
    rows: pl.DataFrame,
    pairs: Sequence[tuple[str, str]],
    ngram: int,
    short_ngram: int,
    short_below: int,
    engine: Any = None,
) -> pl.DataFrame:
    """Eval rows sharing a word n-gram with a row of an earlier split.

    The eval row's length decides n: `ngram` words when it has at least `short_below`
    words, else `short_ngram`; rows shorter than n have no n-gram and are left to the
    exact and MinHash methods. The earlier split's rows are hashed at both lengths. `score`
    is the share of the eval row's n-grams found in the other row; `span` the longest run
    of shared words. With an engine, the join on n-gram hashes runs through its shuffle.
    """
    words, row, pos, h = _word_table(rows)
    n_words = words.group_by("row").agg(pl.col("n_words").first())
    meta = rows.select("row", "id", "split", "rank")
    grams: dict[int, pl.DataFrame] = {}
    for n in sorted({ngram, short_ngram}):
        starts, g = _gram_hashes(row, h, n)
        grams[n] = pl.DataFrame(
            {"row": row[starts], "pos": pos[starts], "g": g}, schema_overrides={"g": pl.UInt64}
        ).join(meta, on="row")
    found: list[pl.DataFrame] = []
    for other_split, eval_split in pairs:
        eval_rows = n_words.join(meta.filter(pl.col("split") == eval_split), on="row").select(
            "row",
            n=pl.when(pl.col("n_words") >= short_below).then(ngram).otherwise(short_ngram),
        )
        for n, table in grams.items():
            wanted = eval_rows.filter(pl.col("n") == n).select("row")
            ev = table.join(wanted, on="row", how="semi").select("row", "pos", "g")
            if ev.is_empty():
                continue
            other = table.filter(pl.col("split") == other_split).select("g", "row")
            hit = _gram_hits(ev, other, engine)
            if hit.is_empty():
                continue
            totals = ev.group_by("row").agg(total=pl.len())
            # Runs of consecutive shared positions per (eval row, other row): sorted once,
            # a run starts where the pair changes or a position is skipped (no window
            # functions: millions of hits where sentences repeat across rows).
            new_run = (
                (pl.col("row") != pl.col("row").shift())
                | (pl.col("o_row") != pl.col("o_row").shift())
                | (pl.col("pos").diff() != 1)
            ).fill_null(True)
            runs = (
                hit.select("row", "o_row", "pos")
                .unique()
                .sort("row", "o_row", "pos")
                .with_columns(run=new_run.cum_sum())
                .group_by("run", maintain_order=True)
                .agg(
                    pl.col("row").first(),
                    pl.col("o_row").first(),
                    start=pl.col("pos").first(),
                    length=pl.len(),
                )
            )
            # matched words, and the longest run (the earliest of equal length)
            per_pair = runs.group_by("row", "o_row", maintain_order=True).agg(
                matched=pl.col("length").sum(),
                start=pl.col("start").sort_by("length", "start", descending=[True, False]).first(),
                length=pl.col("length").max(),
            )
            found.append(per_pair.join(totals, on="row").with_columns(n=pl.lit(n)))
    if not found:
        return empty()
    hits = pl.concat(found)
    texts = rows.select("row", "id", "split", w=pl.col("norm").str.split(" "))
    out = (
        hits.join(texts, on="row")
        .join(texts.select(o_row="row", other_id="id", other_split="split"), on="o_row")
        .select(
            eval_id=pl.col("id"),
            other_id=pl.col("other_id"),
            eval_split=pl.col("split"),
            other_split=pl.col("other_split"),
            score=pl.col("matched") / pl.col("total"),
            span=pl.col("w")
            .list.slice(pl.col("start"), pl.col("length") + pl.col("n") - 1)
            .list.join(" "),
        )
    )
    return _finish(out, "ngram")
