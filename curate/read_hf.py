"""Hugging Face datasets: folders written by `save_to_disk`, local folders of data files
laid out as a Hub dataset (`train.parquet`, `data/test-00000-of-00001.parquet`...) and Hub
ids, read with the `datasets` library (the `hf` extra); ClassLabel ids become their names
and the dataset's splits the corpus splits."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from assay.curate.read_files import first_line
from assay.curate.read_options import ReadOptions
from assay.errors import InputError

# What `save_to_disk` writes: a folder with one of these is read with `load_from_disk`.
HF_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")
# The split names `load_dataset` finds in file and folder names (datasets'
# `data_files.SPLIT_KEYWORDS`, between the same separators), looked for without importing
# it: a folder that has none is read as before, as one table.
_SPLIT_WORDS = "train|training|validation|valid|dev|val|test|testing|eval|evaluation"
_SEP = "[-._ 0-9]"
_SPLIT_NAME = re.compile(f"(?:.*{_SEP})?(?:{_SPLIT_WORDS})(?:{_SEP}.*)?")


def saved_dataset(path: Path) -> bool:
    """Whether `path` is a folder `save_to_disk` wrote (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / marker).exists() for marker in HF_MARKERS)


def split_layout(path: Path) -> bool:
    """Whether a folder (not one `save_to_disk` wrote) names splits in its data files' or
    folders' names, as a Hub dataset does: `load_dataset` then reads one split per name."""
    if not path.is_dir() or saved_dataset(path):
        return False
    for file in path.rglob("*"):
        parts = file.relative_to(path).parts
        if not file.is_file() or any(p.startswith((".", "__")) for p in parts):
            continue  # datasets skips hidden files and folders too
        if any(_SPLIT_NAME.fullmatch(part) for part in parts):
            return True
    return False


def read_hf(path: Path, options: ReadOptions) -> pl.DataFrame:
    """A Hugging Face dataset as one table, its split in `__split` (unless the options
    name a split column): a `save_to_disk` folder, another local folder (read by
    `load_dataset`, offline) or a Hub id."""
    import importlib.util

    from assay.errors import require

    if not path.exists() and importlib.util.find_spec("datasets") is None:
        raise InputError(
            f"input {options.source!r} does not exist; to read it as a Hugging Face Hub id, "
            "pip install 'assay[hf]'"
        )
    datasets = require("datasets", "hf", "Hugging Face datasets")
    from assay.resources import quiet_datasets

    split_named = True  # whether the split names are the data's or load_dataset's default
    try:
        if path.is_dir() and not saved_dataset(path):
            ds, split_named = _load_folder(datasets, path, options)
        elif path.exists():
            with quiet_datasets():
                ds = datasets.load_from_disk(str(path))
            if options.source_split is not None and isinstance(ds, datasets.DatasetDict):
                if options.source_split not in ds:
                    raise InputError(
                        f"{str(path)!r} has no split {options.source_split!r}; it has {sorted(ds)}"
                    )
                ds = datasets.DatasetDict({options.source_split: ds[options.source_split]})
        else:
            ds = _load_from_hub(datasets, options)
    except (
        FileNotFoundError,
        ValueError,
        OSError,
        ConnectionError,
        datasets.exceptions.DatasetGenerationError,
    ) as exc:
        raise InputError(
            f"cannot load Hugging Face dataset {options.source!r}: {first_line(exc)}"
        ) from None
    split = options.source_split
    parts = (
        ds.items()
        if isinstance(ds, (datasets.DatasetDict, dict))
        else [(split.split("[")[0] if split else options.split, ds)]
    )
    frames = []
    for split_name, part in parts:
        frame = pl.from_arrow(part.data.table)
        assert isinstance(frame, pl.DataFrame)
        frame = class_names(frame, part.features, options.label_column)
        if split_name is not None and split_named and options.split_column is None:
            frame = frame.with_columns(pl.lit(split_name).alias("__split"))
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed")


def _load_folder(datasets: Any, path: Path, options: ReadOptions) -> tuple[Any, bool]:
    """A local folder of data files, read as `load_dataset` reads a Hub repository (split
    names from file and folder names, or the options' data_files), with the Hub off: nothing
    is downloaded. Also whether the data named its splits: a folder that names none comes
    back from `load_dataset` as one `train` split, which is not a split of the data."""
    from datasets.data_files import DEFAULT_PATTERNS_ALL, get_data_patterns

    from assay.resources import quiet_datasets

    with _hub_call(offline=True), quiet_datasets():
        ds = datasets.load_dataset(str(path), **options.hub_options())
        default = (
            options.data_files is None and get_data_patterns(str(path)) == DEFAULT_PATTERNS_ALL
        )
    named = not default or (isinstance(ds, datasets.DatasetDict) and set(ds) != {"train"})
    return ds, named


def class_names(frame: pl.DataFrame, features: Any, column: str | None) -> pl.DataFrame:
    """ClassLabel ids (and lists of them) become the class names."""
    feature = features.get(column or "")
    if feature is None or column not in frame.columns:
        return frame
    names = getattr(feature, "names", None)
    if names is not None:  # -1 (unlabelled) and ids past the names become null
        return frame.with_columns(
            pl.col(column).replace_strict(list(range(len(names))), names, default=None)
        )
    inner = getattr(feature, "feature", None)  # Sequence(ClassLabel) / List(ClassLabel)
    inner_names = getattr(inner, "names", None)
    if inner_names is not None and isinstance(frame.schema[column], pl.List):
        ids = list(range(len(inner_names)))
        return frame.with_columns(
            pl.col(column).list.eval(
                pl.element().replace_strict(ids, inner_names, default=None, return_dtype=pl.String)
            )
        )
    return frame


def _load_from_hub(datasets: Any, options: ReadOptions) -> Any:
    """load_dataset with the recipe's config/split/revision; offline, one line, no retries."""
    from assay.resources import quiet_datasets

    online = _hub_reachable()
    with _hub_call(offline=not online), quiet_datasets():
        try:
            return datasets.load_dataset(options.source, **options.hub_options())
        except (ConnectionError, OSError, ValueError) as exc:
            if online:
                raise
            raise InputError(
                f"{options.source!r} is not a local path, and cannot be loaded from the Hugging "
                "Face Hub: the Hub is not reachable from here and the dataset is not in the "
                f"local Hugging Face cache ({first_line(exc)}); fix the path, or download the "
                "dataset where the Hub is reachable"
            ) from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _hub_call(offline: bool) -> Iterator[None]:
    """Offline mode and quiet Hub loggers for this one call; the previous state comes back."""
    import datasets
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    loggers = [logging.getLogger(n) for n in ("datasets", "huggingface_hub", "fsspec")]
    levels = [lg.level for lg in loggers]
    try:
        if offline:
            datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
            for lg in loggers:
                lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            if offline:
                warnings.simplefilter("ignore")
            yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
