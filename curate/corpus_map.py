"""A raw table onto the corpus schema: the text, label, id, split, group and language
columns the options name, label maps and label sets, split names, content ids, and the
rows without text set aside with a reason."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assay import corpus as corpus_mod
from assay.curate.read_options import ReadOptions
from assay.errors import InputError, shorten
from assay.ids import content_ids
from assay.step import dropped_rows

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "development": "dev",
    "test": "test",
    "testing": "test",
    "unlabeled": "unlabeled",
    "unlabelled": "unlabeled",
}
LOAD_STEP = "load"


def source_names(options: ReadOptions) -> dict[str, str]:
    """Input column -> corpus column, for the columns the options map."""
    names = {
        options.text_column: "text",
        options.label_column: "label",
        options.id_column: "id",
        options.split_column: "split",
        options.group_column: "group",
        options.lang_column: "lang",
    }
    return {src: dst for src, dst in names.items() if src is not None}


def mapped_columns(path: Path, names: list[str], options: ReadOptions) -> list[str]:
    """The columns of `names` the options map onto the corpus; the text column must be one."""
    wanted = [
        options.text_column,
        options.label_column,
        options.id_column,
        options.split_column,
        options.group_column,
        options.lang_column,
    ]
    if options.text_column not in names:
        raise InputError(
            f"{str(path)!r}: expected a text column {options.text_column!r}, found "
            f"{shorten(names)}; set text_column"
        )
    return [c for c in dict.fromkeys(wanted) if c is not None and c in names]


def to_corpus(raw: pl.DataFrame, options: ReadOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Map a raw table onto the corpus schema; returns (corpus, dropped rows)."""
    wanted = {
        "text_column": options.text_column,
        "label_column": options.label_column,
        "id_column": options.id_column,
        "split_column": options.split_column,
        "group_column": options.group_column,
        "lang_column": options.lang_column,
    }
    missing = {k: v for k, v in wanted.items() if v is not None and v not in raw.columns}
    if missing:
        what = ", ".join(f"{k}={v!r}" for k, v in missing.items())
        raise InputError(
            f"expected the column(s) {what}, but found only {raw.columns}; "
            "set text_column / label_column to the right names"
        )
    renames = source_names(options)
    # Source columns that collide with schema names but are not mapped are kept, prefixed.
    collisions = {
        c: f"source__{c}" for c in raw.columns if c in corpus_mod.SCHEMA and c not in renames
    }
    frame = raw.rename(collisions).rename(renames)
    if "__split" in frame.columns:
        frame = frame.rename({"__split": "split"})
    text_type = frame.schema["text"]
    if not (text_type in (pl.String, pl.Null, pl.Categorical) or isinstance(text_type, pl.Enum)):
        raise InputError(
            f"text column {options.text_column!r} holds {text_type} values, not text; "
            "set text_column to the column with the text"
        )
    frame = frame.with_columns(pl.col("text").cast(pl.String))
    if "label" not in frame.columns:
        frame = frame.with_columns(label=pl.lit(None, dtype=pl.String))
    frame = _labels(frame, options)
    if options.split is not None:
        frame = frame.with_columns(split=pl.lit(options.split))
    if "split" in frame.columns:
        frame = _splits(frame)
    if "lang" not in frame.columns:
        frame = frame.with_columns(lang=pl.lit(options.lang))
    for col in ("group", "id"):
        if col in frame.columns:
            frame = frame.with_columns(pl.col(col).cast(pl.String))
    if "id" in frame.columns:
        dup = frame.filter(pl.col("id").is_duplicated() | pl.col("id").is_null())
        if dup.height:
            raise InputError(
                f"id column {options.id_column!r} has {dup.height} null or repeated values, "
                f"e.g. {dup['id'].head(3).to_list()}; ids must be unique"
            )
    else:
        frame = frame.with_columns(
            id=pl.Series(content_ids(frame["text"].fill_null(""), frame["label"]))
        )
    corpus = corpus_mod.conform(frame)
    empty = pl.col("text").is_null() | (pl.col("text").str.strip_chars() == "")
    bad = corpus.filter(empty)
    if bad.height and options.strict:
        raise InputError(
            f"{bad.height} rows have null or empty text (first at row "
            f"{corpus.with_row_index().filter(empty)['index'][0] + 1}); drop strict to record them as dropped"
        )
    reasons = (
        pl.when(pl.col("text").is_null()).then(pl.lit("null_text")).otherwise(pl.lit("empty_text"))
    )
    dropped = dropped_rows(bad, LOAD_STEP, bad.select(reasons.alias("reason")).to_series())
    return corpus.filter(~empty), dropped


def _labels(frame: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    label = frame["label"]
    multilabel = (
        options.multilabel
        or options.label_separator is not None
        or isinstance(label.dtype, pl.List)
    )
    if multilabel:
        if isinstance(label.dtype, pl.List):
            expr = pl.col("label").cast(pl.List(pl.String))
        else:
            sep = options.label_separator or "|"
            expr = (
                pl.col("label")
                .cast(pl.String)
                .str.split(sep)
                .list.eval(pl.element().str.strip_chars())
            )
        frame = frame.with_columns(expr.alias("label"))
        if options.label_map:
            frame = frame.with_columns(
                pl.col("label").list.eval(pl.element().replace(options.label_map))
            )
    else:
        frame = frame.with_columns(pl.col("label").cast(pl.String).str.strip_chars())
        if options.label_map:
            frame = frame.with_columns(pl.col("label").replace(options.label_map))
    if options.labels is not None:
        unknown = corpus_mod.unknown_labels(frame, options.labels)
        if unknown:
            raise InputError(
                f"labels {unknown[:10]} are not in the declared label set {options.labels}; "
                "fix the data, extend labels, or map them with label_map"
            )
    return frame


def _splits(frame: pl.DataFrame) -> pl.DataFrame:
    raw = pl.col("split").cast(pl.String).str.strip_chars().str.to_lowercase()
    frame = frame.with_columns(
        split=raw.replace_strict(SPLIT_ALIASES, default=None, return_dtype=pl.String),
        __raw_split=raw,
    )
    unknown = frame.filter(pl.col("split").is_null() & pl.col("__raw_split").is_not_null())
    if unknown.height:
        raise InputError(
            f"split values {unknown['__raw_split'].unique().sort().to_list()[:5]} are not known; "
            f"expected one of {sorted(SPLIT_ALIASES)}"
        )
    return frame.drop("__raw_split")
