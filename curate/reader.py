"""Reading a source: which reader takes it (its format, guessed from the path unless
given), then the mapping onto the corpus, and the key of the input for the step cache."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import polars as pl

from assay import corpus as corpus_mod
from assay.curate.corpus_map import to_corpus
from assay.curate.read_files import (
    FILE_FORMATS,
    first_line,
    parquet_dir_hash,
    parquet_files,
    read_file,
)
from assay.curate.read_hf import HF_MARKERS, read_hf, saved_dataset, split_layout
from assay.curate.read_options import Loaded, ReadOptions
from assay.errors import InputError
from assay.hashing import file_hash, json_hash

log = logging.getLogger(__name__)


def read(options: ReadOptions) -> Loaded:
    """Read a source into a corpus; rows without text are dropped with a reason."""
    from assay.curate import datasets

    path = Path(options.source).expanduser()
    if not path.exists() and datasets.is_known(options.source):
        path = datasets.cached_path(options.source)
        if options.id_column is None:  # the datasets carry their source keys as ids
            options = options.model_copy(update={"id_column": "id"})
    fmt = source_format(path, options)
    notes: list[str] = []
    raw = read_raw(path if path.exists() else Path(options.source), fmt, options, notes)
    if options.limit is not None:
        raw = raw.head(options.limit)
    if path.is_file():
        input_hash = json_hash(
            {"file": file_hash(path), "options": options.model_dump(mode="json")}
        )
    elif fmt == "parquet" and path.is_dir():
        input_hash = parquet_dir_hash(path, options)
    else:
        from assay.hashing import frame_hash

        input_hash = json_hash(
            {"frame": frame_hash(raw), "options": options.model_dump(mode="json")}
        )
    corpus, dropped = to_corpus(raw, options)
    for note in notes:
        log.warning("%s", note)
    return Loaded(
        corpus,
        dropped,
        raw.height,
        input_hash,
        str(path if path.exists() else options.source),
        notes,
    )


def read_corpus(path: str | os.PathLike[str]) -> pl.DataFrame:
    """A corpus from a run directory (its corpus.parquet), a corpus parquet file, or any
    file or dataset `read` takes (then mapped with the default options)."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / "corpus.parquet").exists():
            path = path / "corpus.parquet"
        elif not any((path / f).exists() for f in HF_MARKERS):
            raise InputError(
                f"{str(path)!r} is neither a corpus parquet nor a run directory with "
                "corpus.parquet; pass a corpus file or the directory `assay run` wrote"
            )
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"cannot read {str(path)!r} as parquet: {first_line(exc)}") from None
        if "id" in frame.columns:  # already a corpus (a run's output), not raw data
            return corpus_mod.conform(frame)
    return read(ReadOptions(source=str(path))).corpus


def source_format(path: Path, options: ReadOptions) -> str:
    """The format `read` reads `path` (the source, resolved) as. A folder whose data files
    name splits (`train.parquet`, `data/test-00000-of-00001.parquet`), or that the options
    give Hugging Face data_files or a split to read, is read by `datasets` (format `hf`)
    with its splits, whatever the format of its files."""
    hf_folder = options.data_files is not None or options.source_split is not None
    if (
        options.format in ("auto", "parquet")
        and path.is_dir()
        and not saved_dataset(path)
        and (hf_folder or split_layout(path))
    ):
        return "hf"
    if options.format != "auto":
        return options.format
    if options.hub_options() and not path.exists():
        return "hf"
    return guess_format(path, options.source)


def guess_format(path: Path, source: str) -> str:
    if path.is_dir():
        return "parquet" if parquet_files(path) else "hf"
    suffix = (
        path.suffixes[-2].lower()
        if path.suffix.lower() in (".gz", ".gzip") and len(path.suffixes) >= 2
        else path.suffix.lower()
    )
    by_suffix = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".tab": "tsv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".json": "labelstudio",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    if not path.exists() and looks_like_hub_id(source):
        return "hf"
    if not path.exists():
        raise InputError(
            f"input {source!r} does not exist (and is not a dataset from `assay data list`)"
        )
    raise InputError(
        f"cannot tell the format of {source!r} from its name; set format to one of "
        "csv, tsv, jsonl, parquet, hf, labelstudio"
    )


def read_raw(
    path: Path, fmt: str, options: ReadOptions, notes: list[str] | None = None
) -> pl.DataFrame:
    """Read a source into a plain table of its own columns; doubts are appended to `notes`."""
    notes = notes if notes is not None else []
    if fmt == "hf":
        frame = read_hf(path, options)
    elif fmt in FILE_FORMATS:
        frame = read_file(path, fmt, options, notes)
    else:
        raise InputError(f"unknown input format {fmt!r}")
    if frame.height == 0:
        raise InputError(f"input {str(path)!r} has no rows")
    return frame


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def looks_like_hub_id(source: str) -> bool:
    """`owner/name` with no local folder `owner`: a Hugging Face Hub id, not a missing path."""
    if not _HUB_ID.fullmatch(source) or ".." in source:
        return False
    return not Path(source.split("/", 1)[0]).exists()
