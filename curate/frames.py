"""Corpora from the frames people already have: polars, pandas, Arrow, Hugging Face datasets.

`from_frame` turns any of them into a plain table and hands it to the same column and label
mapping as file input (`io.to_corpus`), so a DataFrame and a CSV with the same columns give
the same corpus. A `DatasetDict` gives its splits from its keys (`validation` -> dev);
`ClassLabel` integers become their names. Nothing here imports pandas, pyarrow or datasets
unless the object passed in comes from them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import polars as pl
from pydantic import ValidationError

from assay import corpus as corpus_mod
from assay.curate import io
from assay.errors import InputError

log = logging.getLogger(__name__)

SPLIT_KEY = "__split"  # the column io.to_corpus reads as given splits


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
    table = to_table(obj, label)
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


def read(source: str, **options: Any) -> pl.DataFrame:
    """A validated corpus from a file, a directory, a dataset name or a Hugging Face id.

    Keyword options are those of a recipe's `input:` (`text_column`, `label_column`,
    `format`, `encoding`...). Rows without text are left out and logged.
    """
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


def to_table(obj: Any, label: str | None = "label") -> pl.DataFrame:
    """A plain polars table of `obj`'s columns (a DatasetDict adds its split names)."""
    if isinstance(obj, pl.DataFrame):
        return obj
    if isinstance(obj, pl.LazyFrame):
        return obj.collect()
    module = type(obj).__module__.split(".")[0]
    name = type(obj).__name__
    if module == "pandas" and name == "DataFrame":
        return pl.from_pandas(obj)
    if module == "pyarrow" and name in ("Table", "RecordBatch"):
        frame = pl.from_arrow(obj)
        assert isinstance(frame, pl.DataFrame)
        return frame
    if (module == "datasets" and name == "DatasetDict") or (
        isinstance(obj, dict) and obj and all(_is_dataset(v) for v in obj.values())
    ):
        parts = [
            _dataset_table(part, label).with_columns(pl.lit(str(key)).alias(SPLIT_KEY))
            for key, part in obj.items()
        ]
        return pl.concat(parts, how="diagonal_relaxed")
    if _is_dataset(obj):
        return _dataset_table(obj, label)
    raise InputError(
        f"from_frame expects a polars or pandas DataFrame, a pyarrow Table or a Hugging Face "
        f"Dataset/DatasetDict, but got a {type(obj).__module__}.{type(obj).__qualname__}; "
        "for Python lists use assay.from_records(texts, labels)"
    )


def _is_dataset(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "datasets" and type(obj).__name__ == "Dataset"


def _dataset_table(ds: Any, label: str | None) -> pl.DataFrame:
    """A Dataset's rows in their current order (selects and shuffles respected)."""
    frame = pl.from_arrow(ds.with_format("arrow")[:])
    assert isinstance(frame, pl.DataFrame)
    feature = ds.features.get(label or "")
    names = getattr(feature, "names", None)
    inner = getattr(getattr(feature, "feature", None), "names", None)  # Sequence(ClassLabel)
    if isinstance(feature, list) and feature:  # [ClassLabel] in newer datasets
        inner = getattr(feature[0], "names", None)
    if names and label in frame.columns:
        frame = frame.with_columns(
            pl.col(label).replace_strict(list(range(len(names))), names, default=None)
        )
    elif inner and label in frame.columns:
        frame = frame.with_columns(
            pl.col(label).list.eval(
                pl.element().replace_strict(list(range(len(inner))), inner, default=None)
            )
        )
    return frame
