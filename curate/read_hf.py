"""Hugging Face datasets: folders written by `save_to_disk` and Hub ids, read with the
`datasets` library (the `hf` extra); ClassLabel ids become their names and the dataset's
splits the corpus splits."""

from __future__ import annotations

import contextlib
import logging
import os
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


def read_hf(path: Path, options: ReadOptions) -> pl.DataFrame:
    import importlib.util

    from assay.errors import require

    if not path.exists() and importlib.util.find_spec("datasets") is None:
        raise InputError(
            f"input {options.source!r} does not exist; to read it as a Hugging Face Hub id, "
            "pip install 'assay[hf]'"
        )
    datasets = require("datasets", "hf", "Hugging Face datasets")
    from assay.resources import quiet_datasets

    try:
        if path.exists():
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
    except (FileNotFoundError, ValueError, OSError, ConnectionError) as exc:
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
        if split_name is not None and options.split_column is None:
            frame = frame.with_columns(pl.lit(split_name).alias("__split"))
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed")


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
