"""Any table a user holds, as a polars DataFrame: the one conversion every entry point uses.

polars (eager or lazy), pandas, Arrow (a Table or RecordBatch, a `RecordBatchReader`, a
`pyarrow.dataset`, any object with `__arrow_c_stream__`) and Hugging Face datasets (a
`Dataset`, `IterableDataset`, or a dict of them such as a `DatasetDict`, whose keys become
the `SPLIT_KEY` column). `ClassLabel` integers become their names, since a corpus holds
labels, not indices into a feature the corpus does not carry. Nothing here imports pandas,
pyarrow or datasets unless the object passed in comes from them.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from assay.errors import InputError

# The column that carries a split taken from a dict's keys: the corpus mapping reads it
# as the rows' given splits (validation -> dev).
SPLIT_KEY = "__split"
_DATASETS = ("Dataset", "IterableDataset")
_DICTS = ("DatasetDict", "IterableDatasetDict")


def to_polars(obj: Any, label: str | None = "label") -> pl.DataFrame:
    """`obj`'s rows as a polars DataFrame of its own columns (a dict of datasets adds
    `SPLIT_KEY`); `label` names the column whose ClassLabel ids become names."""
    if isinstance(obj, pl.DataFrame):
        return obj
    if isinstance(obj, pl.LazyFrame):
        return obj.collect()
    module, name = _kind(obj)
    if module == "pandas" and name == "DataFrame":
        return pl.from_pandas(obj)
    if (module == "datasets" and name in _DICTS) or (
        isinstance(obj, dict) and obj and all(_is_dataset(v) for v in obj.values())
    ):
        parts = [
            _dataset_table(part, label).with_columns(pl.lit(str(key)).alias(SPLIT_KEY))
            for key, part in obj.items()
        ]
        return pl.concat(parts, how="diagonal_relaxed")
    if _is_dataset(obj):
        return _dataset_table(obj, label)
    table = _arrow_table(obj, module, name)
    if table is not None:
        return _frame(table)
    raise InputError(
        "expected a polars or pandas DataFrame, an Arrow table or stream (pyarrow Table, "
        "RecordBatchReader, pyarrow.dataset, an object with __arrow_c_stream__) or a Hugging "
        f"Face Dataset/DatasetDict, but got a {module}.{type(obj).__qualname__}; for Python "
        "lists use assay.from_records(texts, labels)"
    )


def _kind(obj: Any) -> tuple[str, str]:
    return type(obj).__module__.split(".")[0], type(obj).__name__


def _is_dataset(obj: Any) -> bool:
    module, name = _kind(obj)
    return module == "datasets" and name in _DATASETS


def _arrow_table(obj: Any, module: str, name: str) -> Any:
    """A pyarrow Table of an Arrow producer, or None when `obj` is none."""
    if module == "pyarrow" and name == "Table":
        return obj
    if module == "pyarrow" and name == "RecordBatch":
        import pyarrow as pa

        return pa.Table.from_batches([obj])
    if module == "pyarrow" and hasattr(obj, "to_table") and hasattr(obj, "scanner"):
        return obj.to_table()  # a pyarrow.dataset.Dataset: its fragments read in order
    if hasattr(obj, "__arrow_c_stream__"):  # RecordBatchReader, DuckDB, nanoarrow, ...
        import pyarrow as pa

        return pa.RecordBatchReader.from_stream(obj).read_all()
    return None


def _frame(table: Any) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _dataset_table(ds: Any, label: str | None) -> pl.DataFrame:
    """A Dataset's rows in their current order (selects and shuffles respected); an
    IterableDataset is read to its end."""
    if type(ds).__name__ == "IterableDataset":
        import pyarrow as pa

        batches = list(ds.with_format("arrow").iter(batch_size=10_000))
        if not batches:
            raise InputError("the IterableDataset has no rows")
        frame = _frame(pa.concat_tables(batches, promote_options="default"))
    else:
        frame = _frame(ds.with_format("arrow")[:])
    return class_names(frame, ds.features, label)


def class_names(frame: pl.DataFrame, features: Any, column: str | None) -> pl.DataFrame:
    """ClassLabel ids (and lists of them) in `column` become the class names; -1 (the Hub's
    unlabelled) and ids past the names become null."""
    feature = (features or {}).get(column or "")
    if feature is None or column not in frame.columns:
        return frame
    names = getattr(feature, "names", None)
    if names:
        return frame.with_columns(
            pl.col(column).replace_strict(
                list(range(len(names))), names, default=None, return_dtype=pl.String
            )
        )
    inner = getattr(feature, "feature", None)  # Sequence(ClassLabel)
    if isinstance(feature, list) and feature:  # [ClassLabel] in newer datasets
        inner = feature[0]
    inner_names = getattr(inner, "names", None)
    if inner_names and isinstance(frame.schema[column], pl.List):
        ids = list(range(len(inner_names)))
        return frame.with_columns(
            pl.col(column).list.eval(
                pl.element().replace_strict(ids, inner_names, default=None, return_dtype=pl.String)
            )
        )
    return frame
