"""Resolving duplicate clusters: per scope (the whole cluster, each split, or each eval
split and the rest), which row stays, which go and why, and the label conflicts.

A rule looks at one cluster's rows only, so on an engine the clusters are shuffled to
workers and decided there. `assay.curate.dedup` finds the clusters and records the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from assay.corpus import EVAL_SPLITS
from assay.curate.dedup_exact import label_key
from assay.errors import InputError

if TYPE_CHECKING:
    from assay.curate.dedup import DedupConfig

_REST = "\x00rest"


def resolve(
    corpus: pl.DataFrame, clusters: np.ndarray, cfg: DedupConfig, engine: Any = None
) -> pl.DataFrame:
    """Per row (in corpus order): keep, reason, representative row, conflict and dup flags."""
    n = corpus.height
    if len(clusters) != n:
        raise InputError(f"{len(clusters)} cluster labels for {n} rows")
    clusters = np.asarray(clusters, dtype=np.int64)
    size = np.bincount(clusters, minlength=n)[clusters] if n else np.zeros(0, np.int64)
    multi_rows = np.flatnonzero(size > 1)
    # Singletons keep themselves; only rows in clusters of two or more need a decision.
    multi = _resolve_multi(corpus, clusters, multi_rows, cfg, engine)
    frame = pl.DataFrame(
        {
            "row": np.arange(n, dtype=np.int64),
            "cluster": clusters,
            "size": size.astype(np.int64),
            "split": corpus["split"].fill_null(_REST),
        }
    )
    frame = frame.join(multi, on="row", how="left", maintain_order="left").with_columns(
        representative=pl.when(pl.col("size") > 1)
        .then(pl.col("representative"))
        .otherwise(pl.col("row")),
        label_conflict=pl.col("label_conflict").fill_null(False),
        duplicate=pl.col("reason").is_not_null(),
    )
    return frame.with_columns(kept=~pl.col("duplicate") | pl.lit(cfg.keep == "keep_all"))


def _resolve_multi(
    corpus: pl.DataFrame,
    clusters: np.ndarray,
    rows: np.ndarray,
    cfg: DedupConfig,
    engine: Any = None,
) -> pl.DataFrame:
    """The decision for rows of clusters of two or more; on an engine, through its shuffle
    by cluster (every rule looks at one cluster's rows only)."""
    members = corpus.select(
        pl.col("split").fill_null(_REST).alias("split"),
        label_key(corpus).alias("lab"),
        pl.col("text").str.len_chars().cast(pl.Int64).alias("length"),
    )[rows].with_columns(
        row=pl.Series(rows, dtype=pl.Int64), cluster=pl.Series(clusters[rows], dtype=pl.Int64)
    )
    if engine is None:
        return decide(members, cfg)
    import functools

    out = engine.shuffle_map(members.to_arrow(), "cluster", functools.partial(_decide_part, cfg))
    decided = pl.from_arrow(out)
    assert isinstance(decided, pl.DataFrame)
    return decided


def _decide_part(cfg: DedupConfig, part: pa.Table) -> pa.Table:
    members = pl.from_arrow(part)
    assert isinstance(members, pl.DataFrame)
    return decide(members, cfg).to_arrow()


def decide(frame: pl.DataFrame, cfg: DedupConfig) -> pl.DataFrame:
    """Per member row of `frame` (row, cluster, split, lab, length; whole clusters): its
    representative, the reason it goes (or null) and whether its cluster has a label
    conflict (group-bys, no window functions)."""
    is_eval = pl.col("split").is_in(list(EVAL_SPLITS))
    if cfg.splits == "ignore":
        frame = frame.with_columns(scope_split=pl.lit(""))
    elif cfg.splits == "within_split":
        frame = frame.with_columns(scope_split=pl.col("split"))
    else:
        frame = frame.with_columns(
            scope_split=pl.when(is_eval).then(pl.col("split")).otherwise(pl.lit(_REST))
        )
    scope = ["cluster", "scope_split"]
    labelled = frame.filter(pl.col("lab").is_not_null())
    counts = labelled.group_by([*scope, "lab"]).len("cnt")
    per_scope = counts.group_by(scope).agg(
        n_labels=pl.len(),
        top=pl.col("cnt").max(),
        n_top=(pl.col("cnt") == pl.col("cnt").max()).sum(),
    )
    per_cluster = labelled.group_by("cluster").agg(label_conflict=pl.col("lab").n_unique() > 1)
    frame = (
        frame.join(counts, on=[*scope, "lab"], how="left", maintain_order="left")
        .join(per_scope, on=scope, how="left", maintain_order="left")
        .join(per_cluster, on="cluster", how="left", maintain_order="left")
        .with_columns(
            cnt=pl.col("cnt").fill_null(0).cast(pl.Int64),
            scope_conflict=pl.col("n_labels").fill_null(0) > 1,
            label_conflict=pl.col("label_conflict").fill_null(False),
            is_top=pl.col("cnt") == pl.col("top"),
            tie=pl.col("n_top").fill_null(0) > 1,
        )
    )
    # rows a conflict rule removes before a representative is chosen
    if cfg.conflicts == "drop_all":
        conflict_drop = pl.col("scope_conflict")
        conflict_reason = pl.lit("label_conflict")
    elif cfg.conflicts == "keep_majority":
        conflict_drop = pl.col("scope_conflict") & (pl.col("tie") | ~pl.col("is_top"))
        conflict_reason = (
            pl.when(pl.col("tie"))
            .then(pl.lit("label_conflict_tie"))
            .otherwise(pl.lit("label_conflict_minority"))
        )
    else:
        conflict_drop = pl.lit(False)
        conflict_reason = pl.lit(None, dtype=pl.String)
    frame = frame.with_columns(conflict_drop=conflict_drop, conflict_reason=conflict_reason)
    if cfg.keep == "longest":
        rank = [pl.col("length"), pl.col("row")]
        descending = [True, False]
    elif cfg.keep == "most_frequent_label":
        rank = [pl.col("cnt"), pl.col("row")]
        descending = [True, False]
    else:
        rank = [pl.col("row")]
        descending = [False]
    reps = (
        frame.filter(~pl.col("conflict_drop"))
        .sort([*scope, *rank], descending=[False, False, *descending])
        .group_by(scope, maintain_order=True)
        .agg(pl.col("row").first().alias("rep"))
    )
    frame = frame.join(reps, on=scope, how="left", maintain_order="left")
    if cfg.splits == "keep_eval":
        # the eval representative that non-eval members of the same cluster defer to
        eval_rep = (
            frame.filter(is_eval & pl.col("rep").is_not_null())
            .group_by("cluster")
            .agg(pl.col("rep").min().alias("eval_rep"))
        )
        frame = frame.join(eval_rep, on="cluster", how="left", maintain_order="left")
        to_eval = ~is_eval & pl.col("eval_rep").is_not_null()
    else:
        frame = frame.with_columns(eval_rep=pl.lit(None, dtype=pl.Int64))
        to_eval = pl.lit(False)
    return frame.select(
        "row",
        pl.when(to_eval).then(pl.col("eval_rep")).otherwise(pl.col("rep")).alias("representative"),
        pl.when(to_eval)
        .then(pl.lit("duplicate_of_eval"))
        .when(pl.col("conflict_drop"))
        .then(pl.col("conflict_reason"))
        .when(pl.col("row") != pl.col("rep"))
        .then(pl.lit(f"{cfg.method}_duplicate"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("reason"),
        "label_conflict",
    )


def cross_split_pairs(decided: pl.DataFrame) -> dict[str, int]:
    """Duplicate pairs whose two rows are in different splits, by split pair."""
    counts = decided.filter(pl.col("size") > 1).group_by("cluster", "split").len()
    pairs = counts.join(counts, on="cluster", suffix="_b").filter(
        pl.col("split") < pl.col("split_b")
    )
    by = (
        pairs.with_columns(n=pl.col("len") * pl.col("len_b"))
        .group_by("split", "split_b")
        .agg(pl.col("n").sum())
        .sort("split", "split_b")
    )
    return {
        f"{s.replace(_REST, 'none')}-{t.replace(_REST, 'none')}": int(k)
        for s, t, k in by.iter_rows()
    }
