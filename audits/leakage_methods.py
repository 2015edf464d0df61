"""How the leakage audit finds leaks: one function per method, each returning findings (the
n-gram method, with its hashing, in `assay.audits.leakage_ngrams`).

Every function takes a prepared frame (`row`, `id`, `text`, `label_key`, `split`, `rank`,
`norm`, `parent_id`, `group`; `rank` orders the splits train < dev < test) and returns a
frame of `FINDING_SCHEMA`. The eval side of a finding is always the row of the later split
(a test row against a train row is `eval_id` = the test row); label conflicts inside one
split order the two rows by id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

# every method; `semantic` and `crosslingual` need a sentence-embedding model, so they run
# only when asked (`crosslingual` also when the corpus has more than one `lang`)
METHODS = (
    "exact",
    "normalized",
    "ngram",
    "minhash",
    "lineage",
    "group",
    "label_conflict",
    "semantic",
    "crosslingual",
)
DEFAULT_METHODS = METHODS[:-2]
FINDING_SCHEMA = {
    "eval_id": pl.String,
    "other_id": pl.String,
    "method": pl.String,
    "score": pl.Float64,
    "span": pl.String,
    "eval_split": pl.String,
    "other_split": pl.String,
}
# a lineage chain longer than this is a cycle or a mistake, not a real derivation
MAX_LINEAGE_DEPTH = 64


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDING_SCHEMA)


def _finish(frame: pl.DataFrame, method: str) -> pl.DataFrame:
    """Findings of `frame` (`eval_row`, `other_row` ids and splits attached by the caller)."""
    if "span" not in frame.columns:
        frame = frame.with_columns(span=pl.lit(None, pl.String))
    return (
        frame.with_columns(method=pl.lit(method)).select(list(FINDING_SCHEMA)).cast(FINDING_SCHEMA)
    )


def _cross(
    a: pl.DataFrame, b: pl.DataFrame, on: str, keep_same_split: bool = False
) -> pl.DataFrame:
    """Pairs of rows of `a` and `b` equal on `on`, oriented so that eval = the later split."""
    joined = a.with_columns(_k=pl.col(on)).join(
        b.with_columns(_k=pl.col(on)), on="_k", how="inner", suffix="_o"
    )
    if keep_same_split:
        later = (pl.col("rank") > pl.col("rank_o")) | (
            (pl.col("rank") == pl.col("rank_o")) & (pl.col("id") > pl.col("id_o"))
        )
    else:
        later = pl.col("rank") > pl.col("rank_o")
    return joined.filter(later).select(
        eval_id=pl.col("id"),
        other_id=pl.col("id_o"),
        eval_split=pl.col("split"),
        other_split=pl.col("split_o"),
        label_key=pl.col("label_key"),
        label_key_o=pl.col("label_key_o"),
        text=pl.col("text"),
        norm=pl.col("norm"),
        norm_o=pl.col("norm_o"),
        text_o=pl.col("text_o"),
    )


def exact(rows: pl.DataFrame) -> pl.DataFrame:
    """The same text, byte for byte, in two splits."""
    cols = ["id", "text", "norm", "label_key", "split", "rank"]
    pairs = _cross(rows.select(cols), rows.select(cols), on="text")
    return _finish(pairs.with_columns(score=pl.lit(1.0)), "exact")


def normalized(rows: pl.DataFrame) -> pl.DataFrame:
    """The same text after normalisation (case, punctuation, spacing, NFKC), but not byte for
    byte: an exact copy is reported by `exact` alone."""
    cols = ["id", "text", "norm", "label_key", "split", "rank"]
    sub = rows.select(cols).filter(pl.col("norm") != "")
    pairs = _cross(sub, sub, on="norm").filter(pl.col("text") != pl.col("text_o"))
    return _finish(pairs.with_columns(score=pl.lit(1.0), span=pl.col("norm")), "normalized")


def label_conflicts(rows: pl.DataFrame) -> pl.DataFrame:
    """The same normalised text with different labels, within a split or across splits."""
    cols = ["id", "text", "norm", "label_key", "split", "rank"]
    sub = rows.select(cols).filter((pl.col("norm") != "") & pl.col("label_key").is_not_null())
    pairs = _cross(sub, sub, on="norm", keep_same_split=True).filter(
        pl.col("label_key") != pl.col("label_key_o")
    )
    span = pl.concat_str([pl.col("label_key_o"), pl.col("label_key")], separator=" -> ")
    return _finish(pairs.with_columns(score=pl.lit(1.0), span=span), "label_conflict")


def lineage(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows derived (through `parent_id`, any number of steps) from a row of a later split:
    a train row whose ancestor is a dev/test row teaches the model that row. `score` is the
    number of derivation steps between them."""
    info = rows.select("id", "split", "rank", "parent_id")
    walk = info.filter(pl.col("parent_id").is_not_null()).select(
        other_id=pl.col("id"),
        other_split=pl.col("split"),
        other_rank=pl.col("rank"),
        ancestor=pl.col("parent_id"),
        depth=pl.lit(1),
    )
    found: list[pl.DataFrame] = []
    parents = info.select(ancestor="id", a_split="split", a_rank="rank", next_parent="parent_id")
    for _ in range(MAX_LINEAGE_DEPTH):
        if walk.is_empty():
            break
        step = walk.join(parents, on="ancestor", how="inner")
        found.append(step.filter(pl.col("a_rank") > pl.col("other_rank")))
        walk = step.filter(pl.col("next_parent").is_not_null()).select(
            "other_id",
            "other_split",
            "other_rank",
            ancestor=pl.col("next_parent"),
            depth=pl.col("depth") + 1,
        )
    if not found:
        return empty()
    hits = (
        pl.concat(found)
        .group_by("other_id", "ancestor")
        .agg(pl.col("other_split").first(), pl.col("a_split").first(), pl.col("depth").min())
    )
    out = hits.select(
        eval_id=pl.col("ancestor"),
        other_id=pl.col("other_id"),
        eval_split=pl.col("a_split"),
        other_split=pl.col("other_split"),
        score=pl.col("depth").cast(pl.Float64),
        span=pl.lit(None, pl.String),
    )
    return _finish(out, "lineage")


def groups(rows: pl.DataFrame) -> pl.DataFrame:
    """Eval rows whose `group` also has rows in an earlier split. One finding per eval row and
    earlier split: `other_id` is the first such row (by id), `score` how many there are,
    `span` the group."""
    sub = rows.filter(pl.col("group").is_not_null()).select("id", "split", "rank", "group")
    per_split = sub.group_by("group", "split", "rank").agg(other_id=pl.col("id").min(), n=pl.len())
    joined = sub.join(per_split, on="group", how="inner", suffix="_o").filter(
        pl.col("rank") > pl.col("rank_o")
    )
    out = joined.select(
        eval_id=pl.col("id"),
        other_id=pl.col("other_id"),
        eval_split=pl.col("split"),
        other_split=pl.col("split_o"),
        score=pl.col("n").cast(pl.Float64),
        span=pl.col("group"),
    )
    return _finish(out, "group")


# Methods that pair rows equal on one column: an engine can run them on hash partitions
# of that column (every row of a key in one partition gives the same pairs).
KEYED: dict[str, tuple[str, Callable[[pl.DataFrame], pl.DataFrame]]] = {
    "exact": ("text", exact),
    "normalized": ("norm", normalized),
    "label_conflict": ("norm", label_conflicts),
    "group": ("group", groups),
}
KEY = "__key"


def keyed(method: str, rows: pl.DataFrame, engine: Any) -> pl.DataFrame:
    """A `KEYED` method through `engine.shuffle_map` on its key column."""
    import pyarrow as pa

    on, _ = KEYED[method]
    cols = ["id", "text", "norm", "label_key", "split", "rank", "group"]
    table = rows.select(*cols, pl.col(on).alias(KEY)).to_arrow()
    out = engine.shuffle_map(table, KEY, functools.partial(_keyed_part, method))
    frame = pl.from_arrow(out) if isinstance(out, pa.Table) else out
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(FINDING_SCHEMA) if frame.height else empty()


def _keyed_part(method: str, part: Any) -> Any:
    """One partition's findings, as an Arrow table (what an engine moves)."""
    frame = pl.from_arrow(part)
    assert isinstance(frame, pl.DataFrame)
    return KEYED[method][1](frame.drop(KEY)).to_arrow()


# -- MinHash -------------------------------------------------------------------------------------


def near_duplicates(
    rows: pl.DataFrame,
    pairs: Sequence[tuple[str, str]],
    params: Any,
    threshold: float,
    engine: Any = None,
) -> pl.DataFrame:
    """Rows of two splits whose word-shingle Jaccard is at least `threshold`, found by the
    dedup step's MinHash-LSH (on `engine`: None is in process) and verified by true
    Jaccard (`score`)."""
    from assay.curate import dedup_minhash
    from assay.curate.dedup import near_duplicate_pairs

    splits = sorted({s for pair in pairs for s in pair})
    sub = rows.filter(pl.col("split").is_in(splits))
    if sub.height < 2:
        return empty()
    texts = sub["text"].to_arrow()
    a, b, _ = near_duplicate_pairs(texts, params, engine, threshold)
    if not len(a):
        return empty()
    code = {name: i for i, name in enumerate(splits)}
    split = sub.select(pl.col("split").replace_strict(code, return_dtype=pl.Int64)).to_series()
    split = split.to_numpy()
    wanted = [code[o] * 16 + code[e] for o, e in pairs] + [code[e] * 16 + code[o] for o, e in pairs]
    keep = np.isin(split[a] * 16 + split[b], wanted)
    a, b = a[keep], b[keep]
    if not len(a):
        return empty()
    import pyarrow as pa

    score = dedup_minhash.jaccard(texts.take(pa.array(a)), texts.take(pa.array(b)), params)
    side = sub.select("id", "split", "rank")
    left = side[a].rename(lambda c: f"{c}_a")
    right = side[b].rename(lambda c: f"{c}_b")
    frame = pl.concat([left, right], how="horizontal").with_columns(score=pl.Series(score))
    a_later = pl.col("rank_a") > pl.col("rank_b")
    out = frame.select(
        eval_id=pl.when(a_later).then("id_a").otherwise("id_b"),
        other_id=pl.when(a_later).then("id_b").otherwise("id_a"),
        eval_split=pl.when(a_later).then("split_a").otherwise("split_b"),
        other_split=pl.when(a_later).then("split_b").otherwise("split_a"),
        score=pl.col("score"),
    )
    return _finish(out, "minhash")


# -- semantic ------------------------------------------------------------------------------------


def semantic(
    rows: pl.DataFrame,
    pairs: Sequence[tuple[str, str]],
    threshold: float,
    model: str | None = None,
    batch_size: int = 64,
    block: int = 2048,
    engine: Any = None,
) -> pl.DataFrame:
    """Rows of two splits whose sentence embeddings (the dedup step's, MiniLM by default)
    have cosine >= `threshold` (`score`). Each eval block is compared with the whole earlier
    split in one matrix product: the work is cross-split only."""
    from assay.curate import dedup_semantic

    splits = sorted({s for pair in pairs for s in pair})
    sub = rows.filter(pl.col("split").is_in(splits))
    if sub.height < 2:
        return empty()
    vectors = dedup_semantic.embed(sub["text"].to_list(), model, batch_size, engine)
    return _neighbours(sub, vectors, pairs, threshold, block, "semantic")


# -- cross-lingual -------------------------------------------------------------------------------


def crosslingual(
    rows: pl.DataFrame,
    pairs: Sequence[tuple[str, str]],
    threshold: float,
    block: int = 2048,
    engine: Any = None,
) -> pl.DataFrame:
    """An eval row whose translation sits in an earlier split: rows of two splits in
    DIFFERENT languages (`lang`) whose multilingual sentence embeddings (the Universal
    Sentence Encoder, `assay.resources.multilingual_encoder`) have cosine >= `threshold`.
    `span` names the two languages (`es -> en`: the earlier split's row, then the eval row's).
    Rows in the same language are left to the other methods.

    The default threshold (0.7, `crosslingual_threshold`) was measured on 200 MR test
    sentences against 1,300 other MR sentences translated to Spanish by Apertium (plus the
    Apertium translations of 100 of the test sentences): a true translation scored 0.64 at
    its minimum and 0.84 at its median; the most similar unrelated Spanish sentence per test
    row scored 0.48 at the median and 0.70 at the maximum. At 0.7, 90% of the translations
    were found and no test row was flagged falsely; at 0.65, 96% and 2%. USE has no Catalan:
    Catalan translations score lower (0.33 at the 5th percentile), so expect misses there."""
    from assay import embeddings

    splits = sorted({s for pair in pairs for s in pair})
    sub = rows.filter(pl.col("split").is_in(splits))
    if sub.height < 2 or sub["lang"].n_unique() < 2:
        return empty()
    vectors = embeddings.embed(sub["text"].to_list(), embeddings.MULTILINGUAL, engine=engine)
    found = _neighbours(sub, vectors, pairs, threshold, block, "crosslingual", by="lang")
    langs = sub.select(other_id="id", _lo="lang")
    return (
        found.join(langs, on="other_id", how="left")
        .join(sub.select(eval_id="id", _le="lang"), on="eval_id", how="left")
        .with_columns(span=pl.concat_str([pl.col("_lo"), pl.col("_le")], separator=" -> "))
        .select(list(FINDING_SCHEMA))
    )


def _neighbours(
    sub: pl.DataFrame,
    vectors: np.ndarray,
    pairs: Sequence[tuple[str, str]],
    threshold: float,
    block: int,
    method: str,
    by: str | None = None,
) -> pl.DataFrame:
    """Findings of rows of two splits with cosine >= `threshold` (`vectors` unit length, in
    the order of `sub`); with `by`, only pairs whose `by` values differ."""
    split = sub["split"].to_numpy()
    group = sub[by].fill_null("").to_numpy() if by else None
    found: list[pl.DataFrame] = []
    for other_split, eval_split in pairs:
        e_idx = np.flatnonzero(split == eval_split)
        o_idx = np.flatnonzero(split == other_split)
        if not len(e_idx) or not len(o_idx):
            continue
        others = vectors[o_idx]
        for lo in range(0, len(e_idx), block):
            part = e_idx[lo : lo + block]
            sims = vectors[part] @ others.T
            hit = sims >= threshold
            if group is not None:
                hit &= group[part][:, None] != group[o_idx][None, :]
            i, j = np.nonzero(hit)
            if len(i):
                found.append(
                    pl.DataFrame(
                        {"e": part[i], "o": o_idx[j], "score": sims[i, j].astype(np.float64)}
                    )
                )
    if not found:
        return empty()
    hits = pl.concat(found)
    side = sub.select("id", "split")
    out = pl.concat(
        [
            side[hits["e"].to_numpy()].rename({"id": "eval_id", "split": "eval_split"}),
            side[hits["o"].to_numpy()].rename({"id": "other_id", "split": "other_split"}),
            hits.select(pl.col("score").clip(upper_bound=1.0)),
        ],
        how="horizontal",
    )
    return _finish(out, method)
