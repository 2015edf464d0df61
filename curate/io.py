"""Data in and out: CSV/TSV, JSONL, Parquet, Hugging Face datasets, Label Studio exports.

`read(ReadOptions)` returns a corpus plus the rows it could not take (null or empty text),
each with a reason, so every input row is accounted for. Column and label mapping, multi-
label columns and given splits are handled here; making splits is the `split` step.

The names live in modules of their own, one concern each: `read_options` (what `read` is
told and gives back), `reader` (which reader takes a source), `read_files` (files on disk),
`read_hf` (Hugging Face datasets), `corpus_map` (a raw table onto the corpus schema) and
`writers`. This module is the one place to import them from.
"""

from __future__ import annotations

from assay.curate.corpus_map import (
    LOAD_STEP,
    SPLIT_ALIASES,
    mapped_columns,
    source_names,
    to_corpus,
)
from assay.curate.read_files import parquet_dir_hash, parquet_files
from assay.curate.read_options import Format, Loaded, ReadOptions
from assay.curate.reader import guess_format, looks_like_hub_id, read, read_corpus, read_raw
from assay.curate.writers import HF_COLUMNS, HF_SPLIT_NAMES, WRITE_FORMATS, to_dataset_dict, write

__all__ = [
    "HF_COLUMNS",
    "HF_SPLIT_NAMES",
    "LOAD_STEP",
    "SPLIT_ALIASES",
    "WRITE_FORMATS",
    "Format",
    "Loaded",
    "ReadOptions",
    "guess_format",
    "looks_like_hub_id",
    "mapped_columns",
    "parquet_dir_hash",
    "parquet_files",
    "read",
    "read_corpus",
    "read_raw",
    "source_names",
    "to_corpus",
    "to_dataset_dict",
    "write",
]
