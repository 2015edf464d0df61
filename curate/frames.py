"""Corpora from the frames people already have: polars, pandas, Arrow, Hugging Face datasets.

`from_frame` turns any of them into a plain table (`assay.tables.to_polars`, the one
conversion every entry point uses) and hands it to the same column and label mapping as file
input (`io.to_corpus`), so a DataFrame and a CSV with the same columns give the same corpus.
A `DatasetDict` gives its splits from its keys (`validation` -> dev); `ClassLabel` integers
become their names. A table that already holds a corpus (a run's corpus.parquet, a result's
`to_pandas()`) is kept as it is: its ids, splits and lineage columns are not mapped again.
Nothing here imports pandas, pyarrow or datasets unless the object passed in comes from them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from assay import corpus as corpus_mod
from assay.curate import io
from assay.errors import InputError
from assay.rundir import CORPUS
from assay.tables import SPLIT_KEY, to_polars

log = logging.getLogger(__name__)


def from_frame(
    obj: Any,
    *,
    text: str = "text",
    label: str | None = "label",
    id: str | None = None,
    split: str | None = None,
    group: str | None = None,
    labels: Sequence[str] | None = None,
    **options: Any,
) -> pl.DataFrame:
    """A validated corpus from a polars/pandas DataFrame, an Arrow table or a HF dataset.

    `text`, `label`, `id`, `split` and `group` name the source columns; `labels` is the
    declared label set. Other keyword options are those of a recipe's `input:` (`lang`,
    `label_map`, `multilabel`, `label_separator`, `strict`...). Rows without text are left
    out and logged (an error with `strict=True`).
    """
    table = to_polars(obj, label)
    plain = (text, label, id, split, group) == ("text", "label", None, None, None)
    if plain and not options and corpus_mod.is_corpus_table(table):
        corpus = corpus_mod.conform(table)
        corpus_mod.validate(corpus, labels)
        return corpus
    if split is not None and SPLIT_KEY in table.columns:  # the named column wins
        table = table.drop(SPLIT_KEY)
    try:
        read = io.ReadOptions(
            source="<frame>",
            text_column=text,
            label_column=label,
            id_column=id,
            split_column=split,
            group_column=group,
            labels=list(labels) if labels is not None else None,
            **options,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"from_frame: option {where!r}: {first['msg']}") from None
    corpus, dropped = io.to_corpus(table, read)
    if dropped.height:
        log.warning(
            "from_frame left out %d rows with null or empty text, e.g. ids %s",
            dropped.height,
            dropped["id"].head(3).to_list(),
        )
    corpus_mod.validate(corpus, read.labels)
    return corpus


def read(source: Any, **options: Any) -> pl.DataFrame:
    """A validated corpus from a file, a directory, a dataset name or a Hugging Face id,
    or from a table already in memory (what `from_frame` takes: pandas, polars, Arrow or a
    Hugging Face dataset).

    Keyword options are those of a recipe's `input:` (`text_column`, `label_column`,
    `format`, `encoding`...). Rows without text are left out and logged. A run folder, or a
    parquet file that holds a corpus (a run's corpus.parquet), is read back as that corpus,
    splits and all.
    """
    if not isinstance(source, (str, os.PathLike)):
        return from_frame(source, **_frame_options(options))
    saved = _saved_corpus(Path(source).expanduser()) if set(options) <= {"labels"} else None
    if saved is not None:
        corpus = corpus_mod.conform(pl.read_parquet(saved))
        corpus_mod.validate(corpus, options.get("labels"))
        return corpus
    try:
        read_options = io.ReadOptions(source=str(source), **options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"read: option {where!r}: {first['msg']}") from None
    loaded = io.read(read_options)
    if loaded.dropped.height:
        log.warning(
            "read %s: left out %d rows with null or empty text",
            loaded.source,
            loaded.dropped.height,
        )
    corpus_mod.validate(loaded.corpus, read_options.labels)
    return loaded.corpus


def _saved_corpus(path: Path) -> Path | None:
    """The corpus parquet of a run folder, or `path` itself when it is a parquet file with
    the corpus columns; None for anything else (raw data to map)."""
    if path.is_dir():
        return path / CORPUS if (path / CORPUS).is_file() else None
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return None
    try:
        columns = pl.read_parquet_schema(path)
    except (OSError, pl.exceptions.PolarsError):
        return None  # the raw reader says what is wrong with it
    return path if all(c in columns for c in corpus_mod.REQUIRED) else None


def _frame_options(options: dict[str, Any]) -> dict[str, Any]:
    """`read`'s column options (`text_column`...) under `from_frame`'s names (`text`...)."""
    names = {"text_column": "text", "label_column": "label", "id_column": "id",
             "split_column": "split", "group_column": "group"}  # fmt: skip
    return {names.get(key, key): value for key, value in options.items()}
