"""A corpus out: CSV/TSV, JSONL, Parquet, or a Hugging Face DatasetDict, written
atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from assay import corpus as corpus_mod
from assay.atomic import atomic_path, write_parquet
from assay.errors import InputError

WRITE_FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
HF_SPLIT_NAMES = {"dev": "validation"}
HF_COLUMNS = ("id", "text", "label")


def write(
    corpus: pl.DataFrame,
    target: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    hf_all_columns: bool = False,
) -> Path:
    """Write a corpus as csv, tsv, jsonl, parquet or a Hugging Face DatasetDict (atomically).

    The DatasetDict follows the Hub's conventions: one split per corpus split (dev is
    `validation`), the label as a `ClassLabel` (a list of them for multi-label), and only
    id, text and label unless `hf_all_columns`.
    """
    target = Path(target)
    fmt = fmt or {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}.get(
        target.suffix, "hf"
    )
    if fmt not in WRITE_FORMATS:
        raise InputError(f"cannot write format {fmt!r}; choose one of {list(WRITE_FORMATS)}")
    if fmt == "parquet":
        write_parquet(target, corpus)
    elif fmt in ("csv", "tsv"):
        flat = corpus.with_columns(
            [pl.col(c).list.join("|") for c, t in corpus.schema.items() if isinstance(t, pl.List)]
        )
        with atomic_path(target) as tmp:
            flat.write_csv(tmp, separator="\t" if fmt == "tsv" else ",")
    elif fmt == "jsonl":
        with atomic_path(target) as tmp:
            corpus.write_ndjson(tmp)
    else:
        _write_hf(corpus, target, hf_all_columns)
    return target


def to_dataset_dict(corpus: pl.DataFrame, all_columns: bool = False) -> Any:
    """The corpus as a `datasets.DatasetDict` with ClassLabel labels and Hub split names."""
    from assay.errors import require
    from assay.resources import quiet_datasets

    datasets = require("datasets", "hf", "writing a Hugging Face DatasetDict")
    names = corpus_mod.label_set(corpus)
    multilabel = corpus_mod.is_multilabel(corpus)
    ids = list(range(len(names)))
    if multilabel:
        label = (
            pl.col("label")
            .fill_null([])
            .list.eval(pl.element().replace_strict(names, ids, return_dtype=pl.Int64))
        )
        feature = datasets.Sequence(datasets.ClassLabel(names=names))
    else:
        # -1 is the Hub's mark of an unlabelled row (GLUE test splits).
        label = pl.col("label").replace_strict(names, ids, default=-1, return_dtype=pl.Int64)
        feature = datasets.ClassLabel(names=names)
    columns = [c for c in corpus.columns if c != "split"] if all_columns else list(HF_COLUMNS)
    parts = {}
    for split in corpus["split"].fill_null("train").unique().sort().to_list():
        part = corpus.filter(pl.col("split").fill_null("train") == split)
        table = part.with_columns(label.alias("label")).select(columns)
        with quiet_datasets():
            ds = datasets.Dataset(table.to_arrow()).cast_column("label", feature)
        parts[HF_SPLIT_NAMES.get(split, split)] = ds
    return datasets.DatasetDict(parts)


def _write_hf(corpus: pl.DataFrame, target: Path, all_columns: bool = False) -> None:
    dataset_dict = to_dataset_dict(corpus, all_columns)
    tmp = Path(
        tempfile.mkdtemp(
            prefix=f".{target.name}.", dir=target.parent if target.parent.exists() else None
        )
    )
    from assay.resources import quiet_datasets

    try:
        with quiet_datasets():
            dataset_dict.save_to_disk(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
