"""The corpus: one polars DataFrame type that flows through every step.

Required columns and their types are in `SCHEMA`. Steps may add columns, always namespaced
`<step>__<field>`. Rows are joined by `id`, never by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from assay.errors import SchemaError

SPLITS = ("train", "dev", "test", "unlabeled")
EVAL_SPLITS = ("dev", "test")
SOURCE_ORIGIN = "source"

# label is str (single-label) or list[str] (multi-label); both are accepted by validate().
SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "text": pl.String(),
    "label": pl.String(),
    "split": pl.String(),
    "weight": pl.Float32(),
    "lang": pl.String(),
    "origin": pl.String(),
    "parent_id": pl.String(),
    "group": pl.String(),
}
REQUIRED = tuple(SCHEMA)
MULTILABEL = pl.List(pl.String())
DEFAULTS: dict[str, Any] = {
    "split": None,
    "weight": 1.0,
    "lang": "en",
    "origin": SOURCE_ORIGIN,
    "parent_id": None,
    "group": None,
}


def is_multilabel(corpus: pl.DataFrame) -> bool:
    return corpus.schema.get("label") == MULTILABEL


def label_dtype(corpus: pl.DataFrame) -> pl.DataType:
    return MULTILABEL if is_multilabel(corpus) else pl.String()


def empty(multilabel: bool = False) -> pl.DataFrame:
    schema = dict(SCHEMA)
    if multilabel:
        schema["label"] = MULTILABEL
    return pl.DataFrame(schema=schema)


def from_records(
    texts: Sequence[str],
    labels: Sequence[Any] | None = None,
    *,
    ids: Sequence[str] | None = None,
    **columns: Sequence[Any] | Any,
) -> pl.DataFrame:
    """Build a corpus from Python sequences, filling defaults and deterministic ids."""
    from assay.ids import content_ids

    data: dict[str, Any] = {"text": list(texts)}
    data["label"] = list(labels) if labels is not None else [None] * len(texts)
    frame = pl.DataFrame(data, strict=False)
    for name, value in columns.items():
        if isinstance(value, (list, tuple)):
            frame = frame.with_columns(pl.Series(name, list(value), strict=False))
        else:
            frame = frame.with_columns(pl.lit(value).alias(name))
    if ids is None:
        frame = frame.with_columns(id=pl.Series(content_ids(frame["text"], frame["label"])))
    else:
        frame = frame.with_columns(id=pl.Series(list(ids), dtype=pl.String))
    return conform(frame)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing optional columns with their defaults, cast types, put schema columns first."""
    missing = [c for c in ("id", "text", "label") if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"a corpus needs the columns id, text and label; missing {missing}, "
            f"found {frame.columns}"
        )
    additions = [pl.lit(v).alias(c) for c, v in DEFAULTS.items() if c not in frame.columns]
    if additions:
        frame = frame.with_columns(additions)
    label_type = frame.schema["label"]
    casts = []
    for name, dtype in SCHEMA.items():
        if name == "label":
            if isinstance(label_type, pl.List):
                casts.append(pl.col("label").cast(MULTILABEL))
            elif label_type != pl.String:
                casts.append(pl.col("label").cast(pl.String))
        elif frame.schema[name] != dtype:
            casts.append(pl.col(name).cast(dtype))
    if casts:
        frame = frame.with_columns(casts)
    extra = [c for c in frame.columns if c not in SCHEMA]
    return frame.select([*REQUIRED, *extra])


def validate(
    corpus: pl.DataFrame,
    labels: Iterable[str] | None = None,
    *,
    allow_unsplit: bool = True,
) -> None:
    """Check the corpus schema; raise one SchemaError that names every problem found."""
    problems: list[str] = []
    missing = [c for c in REQUIRED if c not in corpus.columns]
    if missing:
        problems.append(f"missing columns {missing} (found {corpus.columns})")
    for name, dtype in SCHEMA.items():
        if name not in corpus.columns:
            continue
        found = corpus.schema[name]
        ok = found in (dtype, MULTILABEL) if name == "label" else found == dtype
        if not ok and found != pl.Null:
            problems.append(f"column {name!r} has type {found}, expected {dtype}")
    if problems:  # row-level checks need the right columns and types
        raise SchemaError("invalid corpus: " + "; ".join(problems))
    if "id" in corpus.columns:
        ids = corpus["id"]
        if ids.null_count():
            problems.append(f"{ids.null_count()} rows have a null id")
        dup = corpus.filter(pl.col("id").is_duplicated())["id"].unique().sort()
        if len(dup):
            problems.append(f"{len(dup)} ids are not unique, e.g. {dup.head(3).to_list()}")
    if "text" in corpus.columns:
        bad = corpus.filter(pl.col("text").is_null() | (pl.col("text").str.strip_chars() == ""))
        if len(bad):
            problems.append(f"{len(bad)} rows have null or empty text, e.g. ids {_head(bad)}")
    if "split" in corpus.columns:
        allowed = [*SPLITS]
        cond = ~pl.col("split").is_in(allowed)
        cond = (
            cond & pl.col("split").is_not_null()
            if allow_unsplit
            else cond | pl.col("split").is_null()
        )
        bad = corpus.filter(cond)
        if len(bad):
            found = bad["split"].unique().to_list()
            problems.append(f"{len(bad)} rows have split {found}, expected one of {allowed}")
    if "weight" in corpus.columns:
        bad = corpus.filter(
            pl.col("weight").is_null() | (pl.col("weight") < 0) | pl.col("weight").is_nan()
        )
        if len(bad):
            problems.append(
                f"{len(bad)} rows have a null, NaN or negative weight, e.g. ids {_head(bad)}"
            )
    if labels is not None:
        unknown = unknown_labels(corpus, labels)
        if unknown:
            problems.append(
                f"labels {unknown[:10]} are not in the declared label set {sorted(set(labels))}"
            )
    if problems:
        raise SchemaError("invalid corpus: " + "; ".join(problems))


def is_corpus_table(frame: pl.DataFrame) -> bool:
    """Whether a table already holds a corpus (every schema column, as a run writes it):
    then its ids, splits and lineage columns are kept, not mapped again from raw data."""
    return all(c in frame.columns for c in REQUIRED)


def as_corpus(obj: Any, where: str, labels: Iterable[str] | None = None) -> pl.DataFrame:
    """`obj` as a valid corpus, or one SchemaError naming `where` and the fix.

    A polars corpus is taken as it is; a corpus that went through pandas, Arrow or another
    table type (`assay.tables.to_polars`) comes back with the corpus types. Raw data (no
    corpus columns) needs its columns mapped: that is `assay.from_frame`.
    """
    if not isinstance(obj, pl.DataFrame):
        from assay.errors import InputError
        from assay.tables import to_polars

        try:
            frame = to_polars(obj)
        except InputError:
            frame = None
        if frame is not None and is_corpus_table(frame):
            obj = conform(frame)
        elif frame is not None:
            kind = f"{type(obj).__module__.split('.')[0]}.{type(obj).__qualname__}"
            raise SchemaError(
                f"{where} expects a corpus (a polars, pandas or Arrow table with the columns "
                f"{list(REQUIRED)}), but got a {kind} with the columns {frame.columns}; build "
                "one with assay.from_frame(frame, text=..., label=...)"
            )
    check_corpus(obj, where, labels)
    return obj


def check_corpus(obj: Any, where: str, labels: Iterable[str] | None = None) -> None:
    """Raise one SchemaError if `obj` is not a valid corpus, naming `where` and the fix.

    The entry points (`Step.apply`, `run_recipe`) call this, so a pandas frame or a table
    with the wrong columns fails with a message instead of deep inside a step.
    """
    fix = "build one with assay.from_frame(frame, text=..., label=...)"
    if not isinstance(obj, pl.DataFrame):
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        raise SchemaError(
            f"{where} expects a corpus (a polars DataFrame with the columns "
            f"{list(REQUIRED)}), but got a {kind}; {fix}"
        )
    missing = [c for c in REQUIRED if c not in obj.columns]
    if missing:
        raise SchemaError(
            f"{where} expects a corpus with the columns {list(REQUIRED)}, but {missing} are "
            f"missing (found {obj.columns}); {fix}"
        )
    try:
        validate(obj, labels)
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None


def unknown_labels(corpus: pl.DataFrame, labels: Iterable[str]) -> list[str]:
    declared = set(labels)
    col = corpus["label"]
    values = col.explode() if is_multilabel(corpus) else col
    found = values.drop_nulls().unique().to_list()
    return sorted(v for v in found if v not in declared)


def label_set(corpus: pl.DataFrame) -> list[str]:
    col = corpus["label"]
    values = col.explode() if is_multilabel(corpus) else col
    return sorted(values.drop_nulls().unique().to_list())


def _head(frame: pl.DataFrame, n: int = 3) -> list[str]:
    return frame["id"].head(n).to_list()
