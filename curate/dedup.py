"""The `dedup` step: exact, near (MinHash-LSH) and semantic duplicates, split- and label-aware.

Finding duplicates gives clusters (connected components of the duplicate graph, labelled
by their first row). Resolving a cluster decides, per scope, which row stays:

- scope: the whole cluster (`splits: ignore`), each split (`within_split`), or, by
  default (`keep_eval`), each eval split (dev, test) on its own plus the other rows
  together; rows outside dev/test that duplicate a dev/test row are dropped
  (`duplicate_of_eval`), so a train/test pair keeps the test copy;
- label conflicts (members with different labels) are a finding, and handled by
  `conflicts`: drop the whole scope, keep the majority label (a tie drops the scope),
  or only flag;
- the representative is the first, the longest, or a row of the most frequent label
  (`keep`), or every row is kept and the duplicates flagged (`keep: keep_all`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field, model_validator

from assay.context import RunContext
from assay.curate.dedup_clusters import components
from assay.curate.dedup_exact import Normalization, exact_clusters, label_key
from assay.curate.dedup_resolve import cross_split_pairs, resolve
from assay.engine import get_engine
from assay.engine_steps import run_engine
from assay.registry import register
from assay.step import Filter, Keep, StepConfig

if TYPE_CHECKING:
    from assay.curate.dedup_minhash import MinHashParams

log = logging.getLogger(__name__)

Method = Literal["exact", "minhash", "semantic"]
KeepRule = Literal["first", "longest", "most_frequent_label", "keep_all"]
ConflictRule = Literal["drop_all", "keep_majority", "flag"]
SplitRule = Literal["keep_eval", "within_split", "ignore"]
MINHASH_THRESHOLD = 0.5
SEMANTIC_THRESHOLD = 0.9


class DedupConfig(StepConfig):
    """How duplicates are found and resolved; the keys after `method` depend on it."""

    method: Method = Field("exact", description="exact, minhash (near) or semantic duplicates")
    same_label_only: bool = Field(
        False, description="only rows with the same label can be duplicates"
    )
    keep: KeepRule = Field(
        "first",
        description="which row of a cluster stays: first, longest, most_frequent_label, "
        "or keep_all (keep every row, flag the duplicates)",
    )
    conflicts: ConflictRule = Field(
        "keep_majority",
        description="duplicates with different labels: drop_all, keep_majority (a tie "
        "drops them all) or flag",
    )
    splits: SplitRule = Field(
        "keep_eval",
        description="keep_eval: a dev/test copy wins over train copies; within_split: "
        "dedup each split alone; ignore: splits play no part",
    )


class ExactDedupConfig(DedupConfig):
    """Exact duplicates after text normalisation."""

    method: Literal["exact"] = Field("exact", description="exact duplicates")
    normalization: Normalization = Field(
        default_factory=Normalization, description="text normalisation before comparing"
    )


class MinHashDedupConfig(DedupConfig):
    """Near duplicates by MinHash-LSH, verified by true Jaccard."""

    method: Literal["minhash"] = Field("minhash", description="near duplicates (MinHash-LSH)")
    # defaults tuned for short texts (see bench/dedup.py)
    unit: Literal["word", "char"] = Field("word", description="shingles: word or char n-grams")
    ngram: int = Field(2, ge=1, le=32, description="shingle length in units")
    num_perm: int = Field(64, ge=8, le=1024, description="MinHash permutations")
    threshold: float = Field(
        MINHASH_THRESHOLD,
        gt=0,
        lt=1,
        description="similarity threshold: Jaccard for minhash, cosine for semantic",
    )
    bands: int | None = Field(None, ge=1, description="LSH bands (chosen from threshold if unset)")
    rows: int | None = Field(None, ge=1, description="LSH rows per band (with bands)")
    verify: bool = Field(
        True, description="keep only candidate pairs whose true Jaccard >= threshold"
    )
    engine: Literal["local", "ray"] | None = Field(
        None, description="where MinHash runs (default: the run's engine)"
    )

    @property
    def similarity(self) -> float:
        return self.threshold

    @model_validator(mode="after")
    def _bands_and_rows(self) -> MinHashDedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then threshold decides)")
        if self.bands is not None and self.bands * (self.rows or 0) > self.num_perm:
            raise ValueError(
                f"bands x rows must be at most num_perm: {self.bands} x {self.rows} > "
                f"{self.num_perm}"
            )
        return self


class SemanticDedupConfig(DedupConfig):
    """Semantic duplicates by sentence-embedding cosine."""

    method: Literal["semantic"] = Field("semantic", description="semantic duplicates")
    threshold: float = Field(
        SEMANTIC_THRESHOLD,
        gt=0,
        lt=1,
        description="similarity threshold: Jaccard for minhash, cosine for semantic",
    )
    model: str | None = Field(None, description="sentence embedding model (default: MiniLM)")
    neighbours: Literal["exact", "blocked", "ann"] = Field(
        "exact",
        description="exact all-pairs, SimHash-blocked, or approximate (faiss IVF) neighbours",
    )
    nlist: int | None = Field(
        None, ge=1, description="ann: k-means cells of the IVF index (default about 4*sqrt(n))"
    )
    nprobe: int | None = Field(
        None, ge=1, description="ann: cells scanned per query (default 16: recall >= 0.99)"
    )
    batch_size: int = Field(64, ge=1, description="embedding batch size")

    @property
    def similarity(self) -> float:
        return self.threshold

    @model_validator(mode="after")
    def _index_options_need_ann(self) -> SemanticDedupConfig:
        given = [k for k in ("nlist", "nprobe") if getattr(self, k) is not None]
        if given and self.neighbours != "ann":
            raise ValueError(
                f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} only to "
                f"neighbours: ann (got neighbours: "
                f"{self.neighbours}); set neighbours: ann or remove them"
            )
        return self


DedupConfig.variants = {
    "exact": ExactDedupConfig,
    "minhash": MinHashDedupConfig,
    "semantic": SemanticDedupConfig,
}


@register("dedup")
class DedupFilter(Filter):
    """Remove exact, near (MinHash-LSH) or semantic duplicates, keeping one row per cluster.

    Every removed row is recorded with its reason, cluster and representative; kept rows
    get `dedup__cluster` and `dedup__cluster_size`. Duplicates across splits keep the
    dev/test copy by default, and label conflicts are reported and resolved by rule.
    """

    Config = DedupConfig

    def keep(self, corpus: pl.DataFrame, ctx: RunContext) -> Keep:
        cfg = self.config
        n = corpus.height
        with ctx.task(f"dedup ({cfg.method})", total=n) as task:
            clusters, stats = find_clusters(corpus, cfg, ctx)
            task.advance(n)
        decided = resolve(corpus, clusters, cfg, run_engine(ctx))
        return _decision(self.name, corpus, decided, cfg, stats)


# -- finding clusters ----------------------------------------------------------------------------


def find_clusters(
    corpus: pl.DataFrame, cfg: DedupConfig, ctx: RunContext
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster label (first member row) of every row, and statistics for the report."""
    n = corpus.height
    if cfg.method == "exact":
        engine = run_engine(ctx)
        if engine is not None:
            from assay.curate.dedup_exact import exact_clusters_on

            return exact_clusters_on(engine, corpus, cfg.normalization, cfg.same_label_only), {
                "engine": engine.name
            }
        return exact_clusters(corpus, cfg.normalization, cfg.same_label_only), {}
    if cfg.method == "minhash":
        a, b, stats = minhash_pairs(corpus, cfg, ctx)
    else:
        a, b, stats = semantic_pairs(corpus, cfg, ctx)
    if cfg.same_label_only and len(a):
        labels = corpus.select(label_key(corpus).fill_null("\x00null")).to_series().to_numpy()
        same = labels[a] == labels[b]
        a, b = a[same], b[same]
    stats["duplicate_pairs"] = len(a)
    return components(n, a, b), stats


def minhash_params(cfg: MinHashDedupConfig, ctx: RunContext) -> MinHashParams:
    from assay.curate.dedup_minhash import MinHashParams, optimal_param

    if cfg.bands is None:
        bands, rows = optimal_param(cfg.similarity, cfg.num_perm)
    else:
        bands, rows = cfg.bands, cfg.rows or 1
    return MinHashParams(
        ngram=cfg.ngram,
        unit=cfg.unit,
        num_perm=cfg.num_perm,
        bands=bands,
        rows=rows,
        seed=ctx.step_seed("minhash"),
    )


def minhash_pairs(
    corpus: pl.DataFrame, cfg: MinHashDedupConfig, ctx: RunContext
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Near-duplicate pairs (a < b) by MinHash-LSH, verified by true Jaccard if asked."""
    params = minhash_params(cfg, ctx)
    engine = get_engine(cfg.engine or ctx.engine, ctx.options.get("ray"))
    verify = cfg.similarity if cfg.verify else None
    a, b, stats = near_duplicate_pairs(corpus["text"].to_arrow(), params, engine, verify)
    stats.update(bands=params.bands, rows=params.rows, threshold=cfg.similarity, engine=engine.name)
    return a, b, stats


def near_duplicate_pairs(
    texts: pa.Array | pa.ChunkedArray,
    params: Any,
    engine: Any = None,
    verify_threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Candidate pairs from LSH buckets, optionally verified; rows are positions in `texts`."""
    import functools

    from assay.curate import dedup_minhash

    engine = get_engine(engine)
    n = len(texts)
    rows = pa.table({"row": pa.array(np.arange(n, dtype=np.int64)), "text": texts})
    buckets = engine.map_batches(
        rows, functools.partial(dedup_minhash.signature_table, params=params)
    )
    pairs = engine.shuffle_map(buckets, "bucket", dedup_minhash.bucket_pairs)
    a, b = dedup_minhash.unique_pairs(
        np.asarray(pairs["a"], dtype=np.int64), np.asarray(pairs["b"], dtype=np.int64)
    )
    stats: dict[str, Any] = {"candidate_pairs": len(a)}
    if verify_threshold is not None and len(a):
        table = pa.table(
            {"a": a, "b": b, "text_a": texts.take(pa.array(a)), "text_b": texts.take(pa.array(b))}
        )
        scored = engine.map_batches(
            table, functools.partial(dedup_minhash.verify_pairs, params=params)
        )
        score = np.asarray(scored["jaccard"])
        ok = score >= verify_threshold
        a = np.asarray(scored["a"], dtype=np.int64)[ok]
        b = np.asarray(scored["b"], dtype=np.int64)[ok]
        a, b = dedup_minhash.unique_pairs(a, b)
        stats["verified_pairs"] = len(a)
    return a, b, stats


def semantic_pairs(
    corpus: pl.DataFrame, cfg: SemanticDedupConfig, ctx: RunContext
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    from assay.curate import dedup_semantic

    texts = corpus["text"].to_list()
    engine = run_engine(ctx)
    vectors = dedup_semantic.embed(texts, cfg.model, cfg.batch_size, engine)
    stats: dict[str, Any] = {"model": cfg.model or "all-MiniLM-L6-v2", "neighbours": cfg.neighbours}
    a, b, _ = dedup_semantic.similar_pairs(
        vectors,
        cfg.similarity,
        cfg.neighbours,
        rng=ctx.rng("semantic"),
        nlist=cfg.nlist,
        nprobe=cfg.nprobe,
        engine=engine,
        stats=stats,
    )
    return a, b, {**stats, "threshold": cfg.similarity}


def _decision(
    step: str, corpus: pl.DataFrame, decided: pl.DataFrame, cfg: DedupConfig, stats: dict[str, Any]
) -> Keep:
    ids = corpus["id"]
    row_id = decided.select(
        pl.col("row"), pl.Series("id", ids)
    )  # positions -> ids for cluster and representative columns
    id_of = row_id["id"]
    cluster_id = id_of.gather(decided["cluster"])
    rep = decided["representative"]
    rep_id = pl.select(
        pl.when(rep.is_not_null()).then(id_of.gather(rep.fill_null(0))).otherwise(None)
    ).to_series()
    columns = pl.DataFrame(
        {
            "id": ids,
            f"{step}__cluster": cluster_id,
            f"{step}__cluster_size": decided["size"],
            f"{step}__representative": rep_id,
            f"{step}__is_duplicate": decided["duplicate"],
            f"{step}__label_conflict": decided["label_conflict"],
        }
    )
    multi = decided.filter(pl.col("size") > 1)
    by_pair = cross_split_pairs(decided)
    conflict_clusters = multi.filter(pl.col("label_conflict"))["cluster"].n_unique()
    findings = _findings(corpus, decided, cluster_id, rep_id)
    reasons = decided["reason"]
    summary: dict[str, Any] = {
        "method": cfg.method,
        "clusters": multi["cluster"].n_unique(),
        "rows_in_clusters": multi.height,
        "duplicates": int(decided["duplicate"].sum()),
        "dropped": int((~decided["kept"]).sum()),
        "cross_split_pairs": sum(by_pair.values()),
        "cross_split_by_splits": by_pair,
        "label_conflict_clusters": conflict_clusters,
        **stats,
    }
    log.info(
        "dedup %s: %d clusters, %d duplicates, %d cross-split pairs, %d label conflicts",
        cfg.method,
        summary["clusters"],
        summary["duplicates"],
        summary["cross_split_pairs"],
        conflict_clusters,
    )
    return Keep(
        mask=decided["kept"].to_numpy(),
        reason=reasons,
        columns=columns,
        findings=findings,
        summary=summary,
    )


def _findings(
    corpus: pl.DataFrame, decided: pl.DataFrame, cluster_id: pl.Series, rep_id: pl.Series
) -> pl.DataFrame:
    """One row per member of a conflicting or cross-split cluster."""
    multi = (decided["size"] > 1).to_numpy()
    if not multi.any():
        return pl.DataFrame(
            schema={
                "finding": pl.String,
                "id": pl.String,
                "cluster": pl.String,
                "representative": pl.String,
                "split": pl.String,
                "label": pl.String,
                "size": pl.Int64,
            }
        )
    rows = np.flatnonzero(multi)
    frame = pl.DataFrame(
        {
            "id": corpus["id"].gather(rows),
            "cluster": cluster_id.gather(rows),
            "representative": rep_id.gather(rows),
            "split": corpus["split"].gather(rows),
            "label": corpus.select(label_key(corpus)).to_series().gather(rows),
            "size": decided["size"].gather(rows),
            "label_conflict": decided["label_conflict"].gather(rows),
        }
    ).with_columns(n_splits=pl.col("split").n_unique().over("cluster"))
    conflict = frame.filter(pl.col("label_conflict")).with_columns(finding=pl.lit("label_conflict"))
    cross = frame.filter(pl.col("n_splits") > 1).with_columns(finding=pl.lit("cross_split"))
    return pl.concat([conflict, cross]).select(
        "finding", "id", "cluster", "representative", "split", "label", "size"
    )
