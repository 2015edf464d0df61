"""The run directory: corpus, dropped rows, lineage, findings and the manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from assay import atomic
from assay.hashing import file_hash

CORPUS = "corpus.parquet"
DROPPED = "dropped.parquet"
LINEAGE = "lineage.parquet"
MANIFEST = "manifest.json"
REPORT = "report.html"


class RunDirectory:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def prepare(self) -> RunDirectory:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_table(self, name: str, frame: pl.DataFrame) -> Path:
        target = self.path / name
        atomic.write_parquet(target, frame)
        return target

    def write_findings(self, index: int, step: str, frame: pl.DataFrame) -> Path:
        return self.write_table(f"findings/{index:02d}_{step}.parquet", frame)

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        target = self.path / MANIFEST
        atomic.write_json(target, manifest)
        return target

    def hashes(self, names: list[str]) -> dict[str, str]:
        return {n: file_hash(self.path / n) for n in names if (self.path / n).exists()}

    def read_corpus(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / CORPUS)

    def read_dropped(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / DROPPED)

    def read_manifest(self) -> dict[str, Any]:
        import json

        return json.loads((self.path / MANIFEST).read_text())
