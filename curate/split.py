"""Train/dev/test splits: stratified by label, seeded, and group-aware."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.registry import register
from assay.step import Changes, Edit, StepConfig


@register("split")
class SplitStep(Edit):
    """Assign train/dev/test splits, stratified by label, keeping every group in one split.

    Rows that already have a split keep it (unless `keep_existing` is false); unlabelled rows
    go to `unlabeled`. A group (the `group` column: document, author, template) never
    straddles splits: its unsplit rows follow any split the group already has, and new groups
    are assigned whole. With `clusters`, duplicates (`exact`: the same normalised text) or
    near-duplicates (`minhash`: dedup's MinHash-LSH, Jaccard >= 0.5 on word bigrams) are
    kept together too, so no cluster leaks across splits.
    """

    class Config(StepConfig):
        dev: float = Field(0.1, ge=0, lt=1, description="fraction of rows for dev")
        test: float = Field(0.1, ge=0, lt=1, description="fraction of rows for test")
        stratify: bool = Field(True, description="keep label proportions equal across splits")
        by_group: bool = Field(True, description="keep rows that share a group in one split")
        keep_existing: bool = Field(True, description="rows that already have a split keep it")
        clusters: Literal["none", "exact", "minhash"] = Field(
            "none",
            description="also keep duplicate clusters in one split: exact (normalised text) "
            "or minhash (near-duplicates)",
        )

        @model_validator(mode="after")
        def _fractions(self):
            if self.dev + self.test >= 1:
                raise ValueError(f"dev + test must be below 1, got {self.dev} + {self.test}")
            return self

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        cfg = self.config
        frame = (
            corpus
            if cfg.keep_existing
            else corpus.with_columns(split=pl.lit(None, dtype=pl.String))
        )
        by_group = cfg.by_group
        if cfg.clusters != "none":
            frame = frame.with_columns(group=cluster_units(frame, cfg.clusters, ctx, by_group))
            by_group = True
        assigned = assign_splits(frame, cfg.dev, cfg.test, ctx, cfg.stratify, by_group)
        changed = corpus["split"].ne_missing(assigned)
        counts = assigned.value_counts().sort("split")
        summary = {"splits": dict(counts.iter_rows()), "assigned": int(changed.sum())}
        return Changes(columns=pl.DataFrame([corpus["id"], assigned]), summary=summary)


def cluster_units(
    corpus: pl.DataFrame, method: str, ctx: RunContext, by_group: bool = True
) -> pl.Series:
    """A unit per row that joins duplicate clusters and (with `by_group`) groups: the
    connected components of "same cluster" and "same group"."""
    from assay.curate.dedup import DedupConfig, find_clusters
    from assay.curate.dedup_clusters import components

    n = corpus.height
    first_of_cluster, _ = find_clusters(corpus, DedupConfig(method=method), ctx)
    a, b = [np.arange(n)], [np.asarray(first_of_cluster, dtype=np.int64)]
    if by_group:
        first_of_group = (
            corpus.select(pl.coalesce("group", "id").alias("_unit"))
            .with_row_index("_row")
            .select(pl.col("_row").min().over("_unit"))
            .to_series()
            .to_numpy()
        )
        a.append(np.arange(n))
        b.append(first_of_group.astype(np.int64))
    labels = components(n, np.concatenate(a), np.concatenate(b))
    ids = corpus["id"].to_numpy()
    return pl.Series("group", ids[labels], dtype=pl.String)


def assign_splits(
    corpus: pl.DataFrame,
    dev: float,
    test: float,
    ctx: RunContext,
    stratify: bool = True,
    by_group: bool = True,
) -> pl.Series:
    """The split of every row: given splits kept, the rest assigned by seeded, stratified units."""
    label = pl.col("label").list.first() if corpus_mod.is_multilabel(corpus) else pl.col("label")
    unit = pl.coalesce(pl.col("group"), pl.col("id")) if by_group else pl.col("id")
    rows = corpus.select(
        pl.col("id"),
        pl.col("split"),
        label.alias("_label"),
        unit.alias("_unit"),
    )
    # Unsplit rows of a group that already has a split follow it (its most common one).
    known = (
        rows.filter(pl.col("split").is_not_null())
        .group_by("_unit", "split")
        .len()
        .sort(["_unit", "len", "split"], descending=[False, True, False])
        .unique("_unit", keep="first", maintain_order=True)
        .select("_unit", pl.col("split").alias("_group_split"))
    )
    rows = rows.join(known, on="_unit", how="left", maintain_order="left")
    rows = rows.with_columns(
        split=pl.coalesce(
            pl.col("split"),
            pl.when(pl.col("_label").is_null()).then(pl.lit("unlabeled")),
            pl.col("_group_split"),
        )
    )
    todo = rows.filter(pl.col("split").is_null())
    if todo.height == 0:
        return rows["split"]
    units = (
        todo.group_by("_unit")
        .agg(pl.len().alias("size"), pl.col("_label").mode().sort().first().alias("_label"))
        .sort("_unit")
    )
    key = ctx.rng("split").random(units.height)
    stratum = pl.col("_label") if stratify else pl.lit("")
    units = (
        units.with_columns(_key=pl.Series(key), _stratum=stratum)
        .sort(["_stratum", "_key"])
        .with_columns(
            _pos=(pl.col("size").cum_sum() - pl.col("size") / 2).over("_stratum")
            / pl.col("size").sum().over("_stratum")
        )
        .with_columns(
            _split=pl.when(pl.col("_pos") < test)
            .then(pl.lit("test"))
            .when(pl.col("_pos") < test + dev)
            .then(pl.lit("dev"))
            .otherwise(pl.lit("train"))
        )
        .select("_unit", "_split")
    )
    rows = rows.join(units, on="_unit", how="left", maintain_order="left")
    return rows.select(pl.coalesce("split", "_split").alias("split"))["split"]
