"""What a report is built from: a run directory's files, read once and only when asked for."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import polars as pl

from assay.rundir import CORPUS, DROPPED, LINEAGE, MANIFEST

ABLATION = "ablation.json"
ABLATION_TABLE = "ablation.csv"


class RunArtifacts:
    """A run directory (or an ablation's output folder) as the report sees it.

    The runner hands in the manifest, corpus and dropped rows it already holds; everything
    else (lineage, findings, an ablation's results) is read from `path` when a section asks.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any] | None = None,
        corpus: pl.DataFrame | None = None,
        dropped: pl.DataFrame | None = None,
    ) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self._corpus = corpus
        self._dropped = dropped

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list((self.manifest or {}).get("steps") or [])

    def steps_of(self, *, name: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            s
            for s in self.steps
            if (name is None or s["step"] == name) and (kind is None or s["kind"] == kind)
        ]

    @property
    def corpus(self) -> pl.DataFrame | None:
        if self._corpus is None and (self.path / CORPUS).exists():
            self._corpus = pl.read_parquet(self.path / CORPUS)
        return self._corpus

    @property
    def dropped(self) -> pl.DataFrame | None:
        if self._dropped is None and (self.path / DROPPED).exists():
            self._dropped = pl.read_parquet(self.path / DROPPED)
        return self._dropped

    @functools.cached_property
    def lineage(self) -> pl.DataFrame | None:
        target = self.path / LINEAGE
        return pl.read_parquet(target) if target.exists() else None

    def findings(self, step: dict[str, Any]) -> pl.DataFrame | None:
        """The findings table a step stored (`findings/NN_<step>.parquet`), if any."""
        target = self.path / "findings" / f"{step['index']:02d}_{step['step']}.parquet"
        return pl.read_parquet(target) if target.exists() else None

    @functools.cached_property
    def ablation(self) -> dict[str, Any] | None:
        target = self.path / ABLATION
        return json.loads(target.read_text()) if target.exists() else None

    @functools.cached_property
    def ablation_table(self) -> pl.DataFrame | None:
        target = self.path / ABLATION_TABLE
        return pl.read_csv(target) if target.exists() else None

    @property
    def is_run(self) -> bool:
        return self.manifest is not None or (self.path / MANIFEST).exists()

    def texts(self, ids: list[str]) -> dict[str, str]:
        """The text of each id found in the corpus or the dropped rows."""
        out: dict[str, str] = {}
        wanted = pl.Series(list(dict.fromkeys(i for i in ids if i is not None)), dtype=pl.String)
        if wanted.is_empty():
            return out
        for frame in (self.corpus, self.dropped):
            if frame is None or frame.is_empty():
                continue
            hits = frame.filter(pl.col("id").is_in(wanted)).select("id", "text")
            for row_id, text in hits.iter_rows():
                out.setdefault(row_id, text)
        return out
