"""Content hashes for caching: of tables, files and configs."""

from __future__ import annotations

import json
import os
from typing import Any

import polars as pl
import xxhash


def frame_hash(frame: pl.DataFrame) -> str:
    """Hash of a table's content, column names and types (row order matters)."""
    h = xxhash.xxh3_128()
    h.update(json.dumps([[c, str(t)] for c, t in frame.schema.items()]).encode())
    h.update(str(frame.height).encode())
    if frame.height and frame.width:
        # hash_rows is fast but only stable within one polars version; the version is part
        # of every cache key that uses this.
        h.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()


def file_hash(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_hash(obj: Any) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps(obj, sort_keys=True, default=str).encode())
