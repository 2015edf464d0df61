"""Train/dev/test splits: stratified by label, seeded, and group-aware."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field, model_validator

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.engine import Engine
from assay.engine_steps import run_engine
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
        assigned = assign_splits(
            frame, cfg.dev, cfg.test, ctx, cfg.stratify, by_group, run_engine(ctx)
        )
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
    engine: Engine | None = None,
) -> pl.Series:
    """The split of every row: given splits kept, the rest assigned by seeded, stratified units.

    In three stages: each unit (group, or row) summarised from its own rows; one seeded draw
    over the units still to assign (the only global decision: a unit's place in its
    stratum); each row given its unit's split. With an `engine`, the first and the last run
    on it, in a shuffle by unit; the assignment is the same as in-process.
    """
    label = pl.col("label").list.first() if corpus_mod.is_multilabel(corpus) else pl.col("label")
    unit = pl.coalesce(pl.col("group"), pl.col("id")) if by_group else pl.col("id")
    rows = corpus.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
        pl.col("split"),
        label.alias("_label"),
        unit.alias("_unit"),
    )
    units = _by_unit(engine, rows, unit_summary)
    drawn = _draw(units.filter(pl.col("size") > 0), dev, test, ctx, stratify)
    decisions = pl.concat(
        [units.filter(pl.col("size") == 0).select("_unit", "_group_split"), drawn],
        how="diagonal",
    )
    if engine is None:
        return assign_rows(rows, decisions)["split"]
    both = pl.concat([rows, decisions], how="diagonal")
    return _by_unit(engine, both, unit_splits).sort("_row")["split"]


def unit_summary(rows: pl.DataFrame) -> pl.DataFrame:
    """The units of `rows` (which hold every row of their units) that need a decision: one
    with split rows gets the split they mostly have (`_group_split`, ties to the first name;
    `size` 0), one with rows still to assign their count (`size`) and most common label."""
    known = (
        rows.filter(pl.col("split").is_not_null())
        .group_by("_unit", "split")
        .len()
        .sort(["_unit", "len", "split"], descending=[False, True, False])
        .unique("_unit", keep="first", maintain_order=True)
        .select("_unit", pl.col("split").alias("_group_split"), pl.lit(0, pl.Int64).alias("size"))
    )
    # Unsplit rows of a unit that already has a split follow it; unlabelled rows go to
    # `unlabeled`: the rest are to assign.
    todo = (
        rows.filter(pl.col("split").is_null() & pl.col("_label").is_not_null())
        .join(known, on="_unit", how="anti")
        .group_by("_unit")
        .agg(
            pl.len().cast(pl.Int64).alias("size"),
            pl.col("_label").mode().sort().first().alias("_label"),
        )
    )
    return pl.concat([known, todo], how="diagonal")


def _draw(
    todo: pl.DataFrame, dev: float, test: float, ctx: RunContext, stratify: bool
) -> pl.DataFrame:
    """Each unit to assign (`_unit`, `size`, `_label`) with its split (`_split`): units in a
    seeded random order per stratum, cut at the test and dev shares of its rows."""
    todo = todo.sort("_unit")
    key = ctx.rng("split").random(todo.height)
    stratum = pl.col("_label") if stratify else pl.lit("")
    return (
        todo.with_columns(_key=pl.Series(key), _stratum=stratum)
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


def unit_splits(both: pl.DataFrame) -> pl.DataFrame:
    """`_row` and `split` of the rows in `both` (rows, with a `_row`, and the decisions of
    their units, without)."""
    rows = both.filter(pl.col("_row").is_not_null()).select("_row", "split", "_label", "_unit")
    decisions = both.filter(pl.col("_row").is_null()).select("_unit", "_group_split", "_split")
    return assign_rows(rows, decisions)


def assign_rows(rows: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """`_row` and `split` of each row, in the order of `rows`: its given split, else
    `unlabeled`, else its unit's."""
    return rows.join(decisions, on="_unit", how="left", maintain_order="left").select(
        "_row",
        pl.coalesce(
            pl.col("split"),
            pl.when(pl.col("_label").is_null()).then(pl.lit("unlabeled")),
            pl.col("_group_split"),
            pl.col("_split"),
        ).alias("split"),
    )


def _by_unit(
    engine: Engine | None, frame: pl.DataFrame, fn: Callable[[pl.DataFrame], pl.DataFrame]
) -> pl.DataFrame:
    """`fn` over `frame`, whole in-process, or on the engine in partitions of whole units."""
    if engine is None:
        return fn(frame)
    out = pl.from_arrow(engine.shuffle_map(frame.to_arrow(), "_unit", partial(_on_arrow, fn)))
    assert isinstance(out, pl.DataFrame)
    return out


def _on_arrow(fn: Callable[[pl.DataFrame], pl.DataFrame], table: pa.Table) -> pa.Table:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return fn(frame).to_arrow()
